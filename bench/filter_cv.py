#!/usr/bin/env python3
"""Chooses the weight of postcore's Bayes symbol by cross-validation inside a training half
(issue "Judge mail": "choose rules and weights by cross-validation inside the training half").

For the training half of a split (bench/bayes_quality.py's splits), message i of each class
goes to fold i mod 5; for each fold a fresh model learns the other four folds and
`postcore filter check --json --rules /usr/share/spamassassin --bayes-db` judges the fold.
From every message's rule score and Bayes probability it prints, for each candidate weight W
of BAYES_SPAM and sharpness k (scored W x (q - 0.5) x 2 above p = 0.5, where q is p with its
log-odds multiplied by k, as scanner/src/bayes/mod.rs scores it), the recall and false
positives at the spam-flag threshold 6. The test half is never read.

  bench/filter_cv.py CORPUS_DATA_DIR [--split even] [--weights 5,6,7,8,9,10] [--sharpness 24]
"""

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bayes_quality as bq  # noqa: E402


def judged(binary, db, files, cache):
    out = []
    for batch in bq.batches(files, 1000):
        p = subprocess.run([binary, "filter", "check", "--json", "--rules", "/usr/share/spamassassin",
                            "--cache", cache, "--bayes-db", db] + batch,
                           capture_output=True, text=True)
        if p.returncode not in (0, 1):
            sys.exit(p.stderr)
        for line in p.stdout.splitlines():
            o = json.loads(line)
            bayes = [s for s in o["symbols"] if s["name"] in ("BAYES_SPAM", "BAYES_HAM")]
            prob = None
            spam_part = 0.0
            for s in bayes:
                if s["name"] == "BAYES_SPAM":
                    spam_part = s["score"]
                    prob = float((s.get("options") or s.get("detail") or "50%").rstrip("%")) / 100
            out.append((o["score"] - spam_part, prob))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--split", default="even")
    ap.add_argument("--weights", default="5,6,7,8,9,10")
    ap.add_argument("--sharpness", default="24")
    ap.add_argument("--postcore", default="target/release/postcore")
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "postcore-spam-cache"))
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "filter-cv"))
    a = ap.parse_args()
    binary = os.path.abspath(a.postcore)
    dirs = bq.make_split(a.data, a.work, a.split)
    train = {c: bq.files_of(dirs[("train", c)]) for c in ("spam", "ham")}
    results = {"spam": [], "ham": []}
    for k in range(5):
        fold = os.path.join(a.work, f"fold{k}")
        shutil.rmtree(fold, ignore_errors=True)
        for c in ("spam", "ham"):
            d = os.path.join(fold, c)
            os.makedirs(d)
            for i, f in enumerate(train[c]):
                if i % 5 != k:
                    os.symlink(os.path.realpath(f), os.path.join(d, os.path.basename(f)))
        db = os.path.join(fold, "db")
        for c in ("spam", "ham"):
            subprocess.run([binary, "bayes", "--db", db, f"learn-{c}", os.path.join(fold, c)],
                           check=True, stdout=subprocess.DEVNULL)
        for c in ("spam", "ham"):
            held = [os.path.realpath(f) for i, f in enumerate(train[c]) if i % 5 == k]
            results[c] += judged(binary, db, held, a.cache)
        print(f"fold {k}: {len(results['spam'])} spam, {len(results['ham'])} ham judged", flush=True)
    print(f"\nsplit {a.split}, training half, 5 folds: recall and false positives at 6")
    print("| BAYES_SPAM weight | sharpness | spam recall | ham false positives |")
    print("|---|---|---|---|")
    for k in [float(x) for x in a.sharpness.split(",")]:
        for w in [float(x) for x in a.weights.split(",")]:
            def score(r):
                rules, p = r
                if p is None or p <= 0.5:
                    return rules
                # p is shown to 0.01 %: 100.00 % is certainty.
                q = 1.0 if p >= 1.0 else 1.0 / (1.0 + math.exp(-k * math.log(p / (1.0 - p))))
                return rules + w * (q - 0.5) * 2
            tp = sum(1 for r in results["spam"] if score(r) >= 6.0)
            fp = sum(1 for r in results["ham"] if score(r) >= 6.0)
            print(f"| {w:g} | {k:g} | {100*tp/len(results['spam']):.2f} % ({tp}/{len(results['spam'])}) "
                  f"| {fp} ({100*fp/len(results['ham']):.2f} %) |")


if __name__ == "__main__":
    main()
