#!/usr/bin/env python3
"""Antivirus parity: the set of messages postcore flags must equal the set clamscan flags.

usage: bench/av_parity.py [WORKDIR] [--count N] [--keep]

1. Signature set: ../shared/bench/anchors/make_clamdb.py WORKDIR/db mixed (every construct of
   ClamAV's signature language; see that script) -- the same directory for both engines.
2. Corpus: make_clam_corpus.py WORKDIR/corpus N (default 1000; a manifest of what each message
   carries), plus WORKDIR/corpus/extra-*.eml: EICAR plain, base64, quoted-printable, in a zip, in a
   zip in a zip, in an attached message/rfc822, in a tar.gz, and every sample of Debian's
   clamav-testfiles as a base64 attachment, in a zip and in a tar.gz.
3. clamscan -d db -r corpus, and postcore scan -d db corpus (target/release/postcore).
4. Prints both counts, every message flagged by one and not the other, and every message both flag
   under different names ('.UNOFFICIAL' dropped). Samples in formats postcore does not open yet
   (NOT_OPENED, empty since the MEW and Upack unpackers) would be listed as known gaps.
5. clamav-testfiles' packed programs (clam-*.exe) against the hash signatures alone (in the
   mixed set their DOS stub's body signature flags them whether unpacked or not): clam.exe must
   be found inside wherever clamscan finds it, but for packers listed in NOT_UNPACKED.
   Exit status 0 only when the sets are equal apart from those gaps.
"""
import argparse, base64, io, os, re, subprocess, sys, tarfile, time, zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ANCHORS = os.path.join(ROOT, "..", "shared", "bench", "anchors")
TESTFILES = "/usr/share/clamav-testfiles"
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def zip_of(files):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
        for n, d in files:
            z.writestr(n, d)
    return b.getvalue()


def tgz_of(name, data):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w:gz") as t:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    return b.getvalue()


def attach(subject, name, data):
    b64 = base64.encodebytes(data).decode().replace("\n", "\r\n")
    return (f"From: s@remote.test\r\nTo: u@example.test\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n"
            f"see attached\r\n--b\r\nContent-Type: application/octet-stream; name=\"{name}\"\r\n"
            f"Content-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            f"{b64}--b--\r\n").encode()


def extra_messages():
    e = EICAR.decode()
    yield "eicar-plain", f"Subject: plain\r\n\r\n{e}\r\n".encode()
    yield "eicar-base64", attach("b64", "e.com", EICAR)
    qp = e.replace("=", "=3D")
    yield "eicar-qp", (f"Subject: qp\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n"
                       f"Content-Transfer-Encoding: quoted-printable\r\n\r\n{qp}\r\n").encode()
    yield "eicar-zip", attach("zip", "e.zip", zip_of([("eicar.com", EICAR)]))
    yield "eicar-zipzip", attach("zz", "o.zip", zip_of([("i.zip", zip_of([("eicar.com", EICAR)]))]))
    yield "eicar-rfc822", (f"Subject: fwd\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
                           f"--b\r\nContent-Type: text/plain\r\n\r\nfwd\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n"
                           f"Subject: inner\r\n\r\n{e}\r\n\r\n--b--\r\n").encode()
    yield "eicar-tgz", attach("tgz", "e.tar.gz", tgz_of("eicar.com", EICAR))
    if os.path.isdir(TESTFILES):
        for f in sorted(os.listdir(TESTFILES)):
            d = open(os.path.join(TESTFILES, f), "rb").read()
            yield f"tf-{f}", attach(f, f, d)
            yield f"tf-{f}-zip", attach(f, f + ".zip", zip_of([(f, d)]))
            yield f"tf-{f}-tgz", attach(f, f + ".tar.gz", tgz_of(f, d))


# clamav-testfiles samples whose own format postcore does not open yet (ClamAV unpacks them):
# a difference on these is reported as a known gap, not hidden and not counted as a bug.
NOT_OPENED: dict = {}


def gap(f):
    m = re.match(r"^extra-tf-(.+?)(-zip|-tgz)?\.eml$", f)
    return NOT_OPENED.get(m.group(1)) if m else None


FOUND = re.compile(r"^(.*): (.+) FOUND$")


def verdicts(text):
    out = {}
    for line in text.splitlines():
        m = FOUND.match(line.strip())
        if m:
            out[os.path.basename(m.group(1))] = m.group(2).removesuffix(".UNOFFICIAL")
    return out


def main():
    ap = argparse.ArgumentParser(usage=__doc__)
    ap.add_argument("work", nargs="?", default="/tmp/postcore-av-parity")
    ap.add_argument("--count", type=int, default=1000)
    a = ap.parse_args()
    db, corpus = os.path.join(a.work, "db"), os.path.join(a.work, "corpus")
    os.makedirs(a.work, exist_ok=True)
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    subprocess.run([sys.executable, os.path.join(ANCHORS, "make_clamdb.py"), db, "mixed"], check=True, env=env)
    subprocess.run([sys.executable, os.path.join(ANCHORS, "make_clam_corpus.py"), corpus, str(a.count)],
                   check=True, env=env)
    n_extra = 0
    for name, data in extra_messages():
        open(os.path.join(corpus, f"extra-{name}.eml"), "wb").write(data)
        n_extra += 1
    postcore = os.path.join(ROOT, "target", "release", "postcore")
    t0 = time.monotonic()
    c = subprocess.run(["clamscan", "--no-summary", "-d", db, "-r", corpus], capture_output=True, text=True)
    t_clam = time.monotonic() - t0
    t0 = time.monotonic()
    p = subprocess.run([postcore, "scan", "-d", db, corpus], capture_output=True, text=True)
    t_pc = time.monotonic() - t0
    if p.returncode not in (0, 1) or c.returncode not in (0, 1):
        sys.exit(f"scanner failed: clamscan {c.returncode} {c.stderr[-500:]}\npostcore {p.returncode} {p.stderr[-500:]}")
    cv, pv = verdicts(c.stdout), verdicts(p.stdout)
    total = len(os.listdir(corpus))
    print(f"corpus: {total} messages ({n_extra} extra: EICAR and clamav-testfiles); db: {db}")
    print(f"clamscan flags {len(cv)} ({t_clam:.1f} s with load); postcore flags {len(pv)} ({t_pc:.1f} s with load)")
    print(p.stderr.strip().splitlines()[-1] if p.stderr.strip() else "")
    gaps = sorted(f for f in set(cv) - set(pv) if gap(f))
    only_c = sorted(f for f in set(cv) - set(pv) if not gap(f))
    only_p = sorted(set(pv) - set(cv))
    renamed = sorted(f for f in set(cv) & set(pv) if cv[f] != pv[f])
    for f in only_c:
        print(f"  only clamscan: {f}: {cv[f]}")
    for f in only_p:
        print(f"  only postcore: {f}: {pv[f]}")
    for f in renamed:
        print(f"  both, other name: {f}: clamscan {cv[f]}, postcore {pv[f]}")
    for reason in sorted(set(gap(f) for f in gaps)):
        n = sum(1 for f in gaps if gap(f) == reason)
        print(f"  known gap, format not opened by postcore: {reason}: {n} message(s)")
    same = not only_c and not only_p
    print(f"parity: {'EQUAL' if same else 'DIFFERENT'} ({len(only_c)} only clamscan, {len(only_p)} only "
          f"postcore, {len(renamed)} named differently; {len(gaps)} known gaps in formats not opened)")
    packed_same = packed_programs(a.work, postcore)
    sys.exit(0 if same and packed_same else 1)


# Packers postcore does not unpack yet: a hash signature of what they hold is missed.
NOT_UNPACKED = {"clam-pespin.exe"}


def packed_programs(work, postcore):
    """clamav-testfiles' packed programs against hash signatures alone: in the mixed set the
    DOS stub's body signature flags them all, whether or not the scanner unpacks; with only
    hashes, clam.exe must be found inside (unpacked, or kept whole inside the packed file)."""
    db = os.path.join(work, "db-hash")
    os.makedirs(db, exist_ok=True)
    subprocess.run(["cp", os.path.join(work, "db", "anchor.hdb"), db], check=True)
    files = sorted(os.path.join(TESTFILES, f) for f in os.listdir(TESTFILES)
                   if f.startswith("clam-") and f.endswith(".exe"))
    c = subprocess.run(["clamscan", "--no-summary", "-d", db] + files, capture_output=True, text=True)
    p = subprocess.run([postcore, "scan", "-d", db] + files, capture_output=True, text=True)
    cv, pv = verdicts(c.stdout), verdicts(p.stdout)
    only_c = sorted(set(cv) - set(pv) - NOT_UNPACKED)
    only_p = sorted(set(pv) - set(cv))
    gaps = sorted((set(cv) - set(pv)) & NOT_UNPACKED)
    print(f"packed programs, hash signatures only: clamscan flags {len(cv)} of {len(files)}, "
          f"postcore {len(pv)}: only clamscan {only_c or 'none'}, only postcore {only_p or 'none'}; "
          f"known gaps (packer not unpacked): {', '.join(gaps) or 'none'}")
    return not only_c and not only_p


if __name__ == "__main__":
    main()
