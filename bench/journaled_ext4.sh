#!/usr/bin/env bash
# Puts the SMTP benchmark's files on a journaled ext4, for both servers: the Maildir root of the
# anchor Postfix (/tmp/anchor-vmail/example.test), Postfix's queue (/var/spool/postfix) and
# postcore's data directory (use WORK=/mnt/j/postcore-bench with bench/smtp_throughput.sh).
# The VM's own root file system is ext4 without a journal, where the kernel refuses to reuse
# inodes freed in the last minutes and scans past them on every file creation (see
# bench/RESULTS.md); a journaled ext4, mkfs.ext4's default, has no such check.
#
# usage: bench/journaled_ext4.sh up     image /tmp/ext4j.img (4 GiB) on /mnt/j, bind mounts, Postfix restarted
#        bench/journaled_ext4.sh down   back to the plain directories
# needs root and the anchors (../shared/bench/anchors/setup.sh all).
set -euo pipefail
IMG=${IMG:-/tmp/ext4j.img}
MNT=/mnt/j
VMAIL=/tmp/anchor-vmail/example.test
case ${1:-} in
  up)
    mountpoint -q "$MNT" || {
      [ -f "$IMG" ] || { truncate -s 4G "$IMG"; mkfs.ext4 -q -F "$IMG"; }
      mkdir -p "$MNT"
      mount -o loop "$IMG" "$MNT"
    }
    grep -q has_journal <(dumpe2fs -h "$(findmnt -n -o SOURCE "$MNT")" 2>/dev/null) \
      || { echo "$MNT has no journal" >&2; exit 1; }
    postfix stop >/dev/null 2>&1 || true
    mkdir -p "$MNT/pfspool" "$MNT/vmail" "$VMAIL"
    mountpoint -q /var/spool/postfix || {
      cp -a /var/spool/postfix/. "$MNT/pfspool/"
      mount --bind "$MNT/pfspool" /var/spool/postfix
    }
    chown vmail:vmail "$MNT/vmail"
    chmod 700 "$MNT/vmail"
    mountpoint -q "$VMAIL" || mount --bind "$MNT/vmail" "$VMAIL"
    postfix start >/dev/null 2>&1
    for m in /var/spool/postfix "$VMAIL" "$MNT"; do findmnt -n "$m"; done
    ;;
  down)
    postfix stop >/dev/null 2>&1 || true
    mountpoint -q /var/spool/postfix && umount /var/spool/postfix
    mountpoint -q "$VMAIL" && umount "$VMAIL"
    postfix start >/dev/null 2>&1
    echo "Postfix queue and $VMAIL are back on the root file system ($MNT stays mounted)"
    ;;
  *)
    echo "usage: $0 up|down" >&2
    exit 2
    ;;
esac
