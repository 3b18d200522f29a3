#!/usr/bin/env python3
"""Parity with clamscan on body signatures whose offsets name an executable's structure
(EP+n, EP-n, Sx+n, SEx, SL+n) and on PE section hashes (.mdb): every signature must hit the
same files in both engines.

usage: bench/av_exe_offsets.py [WORKDIR] [--postcore target/release/postcore]

Executables: the PE programs of Debian's clamav-testfiles (plain, packed, InstallShield) and
ELF programs and libraries of this machine. For each, signatures are written from octets at
places this script works out on its own, deliberately naively (raw section pointers as
stored, the entry point through each section's raw size) and shifted by a few octets both
ways, so that some hit and some miss in each engine; what counts is that clamscan and
postcore agree on every one. Each signature is run alone (neither scanner reports more than
one name per file), on its file.

Prints each disagreement and a summary; exit status 0 only when there is none.
"""
import argparse, hashlib, os, struct, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TESTFILES = "/usr/share/clamav-testfiles"
ELF_FILES = ["/usr/bin/true", "/usr/bin/ls", "/usr/bin/python3", "/lib/x86_64-linux-gnu/libc.so.6"]


def pe_naive(d):
    pe = struct.unpack_from("<I", d, 0x3c)[0]
    if d[pe:pe + 4] != b"PE\0\0":
        return None
    n, osz = struct.unpack_from("<H", d, pe + 6)[0], struct.unpack_from("<H", d, pe + 20)[0]
    opt = pe + 24
    vep = struct.unpack_from("<I", d, opt + 16)[0]
    secs = []
    for i in range(n):
        at = opt + osz + 40 * i
        if at + 40 > len(d):
            break
        vs, va, rs, ra = struct.unpack_from("<IIII", d, at + 8)
        secs.append((va, rs, ra))
    ep = next((ra + vep - va for va, rs, ra in secs if va <= vep < va + rs), vep)
    return ep, [(ra, rs) for va, rs, ra in secs]


def elf_naive(d):
    wide = d[4] == 2
    f = "<Q" if wide else "<I"
    a = 8 if wide else 4
    entry = struct.unpack_from(f, d, 24)[0]
    phoff, shoff = struct.unpack_from(f, d, 24 + a)[0], struct.unpack_from(f, d, 24 + 2 * a)[0]
    at = 24 + 3 * a + 4
    phentsize, phnum, shentsize, shnum = struct.unpack_from("<HHHH", d, at + 2)
    ep = None
    for i in range(phnum):
        p = phoff + i * phentsize
        if wide:
            kind, _, off, va, _, filesz = struct.unpack_from("<IIQQQQ", d, p)
        else:
            kind, off, va, _, filesz = struct.unpack_from("<IIIII", d, p)
        if kind == 1 and va <= entry < va + filesz:
            ep = off + entry - va
            break
    secs = []
    for i in range(shnum):
        s = shoff + i * shentsize
        kind = struct.unpack_from("<I", d, s + 4)[0]
        off, size = struct.unpack_from("<QQ" if wide else "<II", d, s + 8 + 2 * a)
        if kind != 0:
            secs.append((off, 0 if kind == 8 else size))
    return ep, secs


def signatures(tag, d, ep, secs):
    """(name, ndb line) pairs around the naive places, some meant to hit and some to miss."""
    out = []

    def at(o, n=12):
        return d[o:o + n].hex() if 0 <= o and o + n <= len(d) else None

    target = 1 if d[:2] == b"MZ" else 6
    if ep is not None:
        for shift in (-2, -1, 0, 1, 2):
            h = at(ep + shift)
            if h:
                out.append((f"{tag}.ep{shift:+d}", f"EP+0:{h}"))
        h = at(ep)
        if h and ep >= 4:
            out.append((f"{tag}.epback", f"EP-4,8:{at(ep - 4)}"))
    for i, (raw, size) in enumerate(secs[:6]):
        for name, o in ((f"s{i}", raw + 8), (f"s{i}a", (raw // 512) * 512 + 8)):
            h = at(o)
            if h:
                out.append((f"{tag}.{name}", f"S{i}+8:{h}"))
        if size > 64:
            h = at(raw + size // 2)
            if h:
                out.append((f"{tag}.se{i}", f"SE{i}:{h}"))
                out.append((f"{tag}.se{i}x", f"SE{(i + 1) % max(len(secs), 1)}:{h}"))
    if secs:
        raw, size = secs[-1]
        for name, o in (("sl", raw + 4), ("sla", (raw // 512) * 512 + 4)):
            h = at(o)
            if h:
                out.append((f"{tag}.{name}", f"SL+4:{h}"))
    sigs = [(n, "ndb", f"{n.replace('.', '_')}:{target}:{body}") for n, body in out]
    if target == 1:
        # Section hashes (.mdb), over the section as stored and as aligned to 512 octets.
        for i, (raw, size) in enumerate(secs[:6]):
            al_raw = (raw // 512) * 512
            al_size = min(-(-size // 512) * 512, len(d) - al_raw)
            for name, (o, n) in (("h", (raw, size)), ("ha", (al_raw, al_size))):
                if n > 0 and o + n <= len(d):
                    md5 = hashlib.md5(d[o:o + n]).hexdigest()
                    sigs.append((f"{tag}.{name}{i}", "mdb", f"{n}:{md5}:{tag}_{name}{i}"))
    return sigs


def flagged(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode not in (0, 1):
        sys.exit(f"{cmd[0]} failed ({p.returncode}): {p.stderr[-400:]}")
    return "FOUND" in p.stdout or ": infected" in p.stdout.lower() or p.returncode == 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("work", nargs="?", default=os.path.join(tempfile.gettempdir(), "av-exe-offsets"))
    ap.add_argument("--postcore", default=os.path.join(ROOT, "target", "release", "postcore"))
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    files = sorted(os.path.join(TESTFILES, f) for f in os.listdir(TESTFILES) if f.endswith(".exe"))
    files += [f for f in ELF_FILES if os.path.exists(f)]
    total = agree = hits = 0
    for k, path in enumerate(files):
        d = open(path, "rb").read()
        try:
            layout = pe_naive(d) if d[:2] == b"MZ" else elf_naive(d)
        except struct.error:
            layout = None
        if not layout:
            print(f"  {os.path.basename(path)}: no layout worked out here, skipped")
            continue
        for name, ext, line in signatures(f"f{k}", d, *layout):
            db = os.path.join(a.work, "db")
            os.makedirs(db, exist_ok=True)
            for old in os.listdir(db):
                os.remove(os.path.join(db, old))
            open(os.path.join(db, f"t.{ext}"), "w").write(line + "\n")
            c = flagged(["clamscan", "--no-summary", "-d", db, path])
            p = flagged([a.postcore, "scan", "--files", "-d", db, path])
            total += 1
            hits += c
            if c == p:
                agree += 1
            else:
                print(f"  DIFFERENT {os.path.basename(path)} {line[:60]}: clamscan {c}, postcore {p}")
    print(f"{len(files)} executables, {total} signatures, clamscan hits {hits}, agree {agree}, "
          f"disagree {total - agree}")
    sys.exit(0 if total and agree == total else 1)


if __name__ == "__main__":
    main()
