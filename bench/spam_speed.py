#!/usr/bin/env python3
"""Judging alone, postcore against Rspamd, side by side (issue "Judge mail": >= 10x Rspamd's
messages per second).

The same message files go to both, runs alternating. Rspamd: Debian's stock configuration
(a copy with its own Redis, ports, the NXDOMAIN DNS stub, fuzzy off; bench/bayes_quality.py's
set-up), `rspamc -n 16` over the directory (the anchors' rspamd_bench.sh way; rspamc reads
each file and sends it over HTTP; rspamd runs its normal workers, one per core). postcore:
`postcore filter check --threads <cores>` with Debian's SpamAssassin rules (the quality
configuration), the rate it prints for judging (files read and parsed, rules run; the rule
databases' load from the cache before it not counted, as rspamd's start is not). Neither has
a trained Bayes model.

  bench/spam_speed.py DIR [--runs 3] [--postcore target/release/postcore]

Prints each run's messages per second, then the medians and their ratio.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bayes_quality as bq  # noqa: E402


def rspamd_run(files):
    t = time.monotonic()
    p = subprocess.run(["rspamc", "-h", f"127.0.0.1:{bq.RSPAMD_PORT}", "-n", "16", "-t", "120",
                        "-i", "192.0.2.10", "--helo", "mx.example.org",
                        "-F", "alice@example.org", "-r", "user1@example.test"] + files,
                       capture_output=True, text=True)
    took = time.monotonic() - t
    done = p.stdout.count("Action:")
    return done / took, done


def postcore_run(binary, files, cache):
    p = subprocess.run([binary, "filter", "check", "--rules", "/usr/share/spamassassin",
                        "--cache", cache, "--from", "alice@example.org"] + files,
                       capture_output=True, text=True)
    m = re.search(r"judged (\d+) messages in [0-9.]+ s \(([0-9.]+) msg/s", p.stderr)
    if not m:
        sys.exit(f"postcore: {p.stderr}")
    return float(m.group(2)), int(m.group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--postcore", default="target/release/postcore")
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "postcore-spam-cache"))
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "spam-speed"))
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    files = sorted(os.path.join(a.dir, f) for f in os.listdir(a.dir))
    mb = sum(os.path.getsize(f) for f in files) / 1e6
    print(f"{len(files)} messages, {mb:.1f} MB, {os.cpu_count()} cores")
    binary = os.path.abspath(a.postcore)
    postcore_run(binary, files[:5], a.cache)  # rule databases into the cache
    proc, run = bq.rspamd_start(a.work)
    rates = {"rspamd": [], "postcore": []}
    try:
        rspamd_run(files[:20])  # warm-up
        for r in range(a.runs):
            for name in ("rspamd", "postcore") if r % 2 == 0 else ("postcore", "rspamd"):
                rate, n = (rspamd_run(files) if name == "rspamd"
                           else postcore_run(binary, files, a.cache))
                rates[name].append(rate)
                print(f"run {r + 1} {name}: {n}/{len(files)} judged, {rate:.1f} msg/s", flush=True)
    finally:
        bq.rspamd_stop(proc, run)
    med = {k: statistics.median(v) for k, v in rates.items()}
    ratios = [p / s for p, s in zip(rates["postcore"], rates["rspamd"])]
    print(f"median: rspamd {med['rspamd']:.1f} msg/s ({min(rates['rspamd']):.1f}-"
          f"{max(rates['rspamd']):.1f}), postcore {med['postcore']:.1f} msg/s "
          f"({min(rates['postcore']):.1f}-{max(rates['postcore']):.1f}); ratio "
          f"{med['postcore'] / med['rspamd']:.2f}x (per run {min(ratios):.2f}-{max(ratios):.2f})")


if __name__ == "__main__":
    main()
