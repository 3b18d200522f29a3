//! Unit tests of the mailbox index.

use super::*;

/// A fresh index over a temporary store, and mailbox `name` of user `u` in `<tmp>/mail`.
fn fixture(name: &str) -> (tempfile::TempDir, Store, MailboxIndex, PathBuf, MailboxMeta) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db")).unwrap();
    let idx = MailboxIndex::new(store.clone()).unwrap();
    let root = dir.path().join("mail");
    let meta = idx.create("u", name, &root, None).unwrap();
    (dir, store, idx, root, meta)
}

#[test]
fn record_roundtrip_and_names() {
    let r = MessageRecord {
        name: "1700000000.ABC_0.host".into(),
        flags: flag::SEEN | flag::FLAGGED,
        keywords: vec!["$Junk".into()],
        size: 1234,
        internal_date: 1_700_000_000,
        modseq: 7,
        in_new: false,
        saved: None,
    };
    assert_eq!(MessageRecord::decode(&r.encode()), Some(r.clone()));
    // With a save date (RFC 8514), and a record written before save dates still reads.
    let s = MessageRecord {
        saved: Some(1_700_000_100),
        in_new: true,
        ..r.clone()
    };
    assert_eq!(MessageRecord::decode(&s.encode()), Some(s.clone()));
    assert_eq!(s.encode().len(), r.encode().len() + 8);
    assert_eq!(r.relative_path(), "cur/1700000000.ABC_0.host:2,FS");
    assert_eq!(split_name("x.y:2,RS"), ("x.y", flag::ANSWERED | flag::SEEN));
    assert_eq!(
        folder_path(Path::new("/m"), "Archive/2024.1"),
        Path::new("/m/.Archive.2024%2E1")
    );
}

#[test]
fn sync_picks_up_outside_changes() {
    let (_dir, _store, idx, root, mut meta) = fixture("INBOX");
    std::fs::write(root.join("new/100.a.h"), b"Subject: a\r\n\r\nbody").unwrap();
    std::fs::write(root.join("cur/200.b.h:2,S"), b"Subject: b\r\n\r\nbody").unwrap();
    let r = idx.sync("u", "INBOX", &mut meta, &root).unwrap();
    assert_eq!(r.added, 2);
    let msgs = idx.messages(meta.id).unwrap();
    assert_eq!(msgs[0].0, 1);
    assert_eq!(msgs[1].1.flags, flag::SEEN);
    assert_eq!(
        idx.header(meta.id, 1).unwrap().unwrap(),
        b"Subject: a\r\n\r\n"
    );
    // Another tool marks b answered and deletes a.
    std::fs::rename(root.join("cur/200.b.h:2,S"), root.join("cur/200.b.h:2,RS")).unwrap();
    std::fs::remove_file(root.join("new/100.a.h")).unwrap();
    let r = idx.sync("u", "INBOX", &mut meta, &root).unwrap();
    assert_eq!((r.expunged, r.flag_changes), (1, 1));
    assert_eq!(idx.vanished_since(meta.id, 0).unwrap(), vec![1]);
    assert_eq!(meta.uidnext, 3);
    // Full-text index: words by prefix. Message 1 was expunged before its words were
    // inverted, so they never reach the postings.
    assert_eq!(
        idx.fts_lookup(meta.id, "BOD").unwrap(),
        [2].into_iter().collect()
    );
    assert_eq!(idx.uid_by_name(meta.id, "200.b.h").unwrap(), Some(2));
    assert_eq!(idx.uid_by_name(meta.id, "100.a.h").unwrap(), None);
}

#[test]
fn recent_is_claimed_once() {
    let (_dir, store, idx, _root, meta) = fixture("INBOX");
    assert_eq!(idx.first_recent(meta.id).unwrap(), 1);
    // The first session gets UIDs 1..4, the second none, a later one the new 4..6.
    assert_eq!(idx.claim_recent(meta.id, 4).unwrap(), 1);
    assert_eq!(idx.claim_recent(meta.id, 4).unwrap(), 4);
    assert_eq!(idx.claim_recent(meta.id, 6).unwrap(), 4);
    assert_eq!(idx.first_recent(meta.id).unwrap(), 6);
    // Kept across a restart; removed with the mailbox.
    drop(idx);
    let idx = MailboxIndex::new(store).unwrap();
    assert_eq!(idx.first_recent(meta.id).unwrap(), 6);
    idx.delete("u", "INBOX").unwrap();
    assert_eq!(idx.first_recent(meta.id).unwrap(), 1);
}

#[test]
fn expunged_postings_are_pruned_and_deleted_mailboxes_leave_nothing() {
    let (_dir, store, idx, root, mut meta) = fixture("INBOX");
    for (n, body) in ["alpha common", "beta common", "gamma common"]
        .iter()
        .enumerate()
    {
        let file = format!("10{n}.x.h");
        let data = format!("Subject: s\r\n\r\n{body}\r\n");
        std::fs::write(root.join("new").join(&file), &data).unwrap();
    }
    idx.sync("u", "INBOX", &mut meta, &root).unwrap();
    let id = meta.id;
    assert_eq!(idx.invert_pending(id).unwrap(), 3);
    let postings = |word: &str| -> Vec<u8> {
        let mut k = id.to_be_bytes().to_vec();
        k.extend_from_slice(word.as_bytes());
        store.get(CF_FTS, &k).unwrap().unwrap_or_default()
    };
    assert_eq!(postings("COMMON").len(), 12);
    idx.expunge("u", "INBOX", &mut meta, &[1, 2]).unwrap();
    assert_eq!(meta.fts_dead, 2);
    // Two dead of one live is worth a pass even unforced.
    assert_eq!(idx.prune_fts("u", "INBOX", false).unwrap(), 4);
    assert_eq!(postings("COMMON"), 3u32.to_be_bytes());
    assert!(postings("ALPHA").is_empty() && postings("BETA").is_empty());
    assert_eq!(idx.get("u", "INBOX").unwrap().unwrap().fts_dead, 0);
    assert_eq!(
        idx.fts_lookup(meta.id, "GAMMA").unwrap(),
        [3].into_iter().collect()
    );
    // Deleting the mailbox removes its postings and records; its id is never reused,
    // not even after a restart.
    idx.delete("u", "INBOX").unwrap();
    assert!(postings("COMMON").is_empty());
    assert!(idx.messages(meta.id).unwrap().is_empty());
    assert_eq!(idx.uid_by_name(meta.id, "102.x.h").unwrap(), None);
    drop(idx);
    let idx = MailboxIndex::new(store).unwrap();
    let again = idx.create("u", "INBOX", &root, None).unwrap();
    assert!(again.id > meta.id, "{} reused", again.id);
}

#[test]
fn prune_runs_by_itself_once_enough_messages_are_expunged() {
    let (_dir, store, idx, root, mut meta) = fixture("Trash");
    let n = FTS_PRUNE_MIN + 10;
    for i in 0..n {
        let data = format!("Subject: s\r\n\r\nword{i} shared\r\n");
        std::fs::write(root.join("new").join(format!("{i}.x.h")), data).unwrap();
    }
    idx.sync("u", "Trash", &mut meta, &root).unwrap();
    // Below the threshold nothing happens; at it, a background pass prunes.
    let uids: Vec<u32> = (1..FTS_PRUNE_MIN).collect();
    idx.expunge("u", "Trash", &mut meta, &uids).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(meta.fts_dead, FTS_PRUNE_MIN - 1);
    assert_eq!(
        idx.get("u", "Trash").unwrap().unwrap().fts_dead,
        FTS_PRUNE_MIN - 1
    );
    idx.expunge("u", "Trash", &mut meta, &[FTS_PRUNE_MIN])
        .unwrap();
    let mut k = meta.id.to_be_bytes().to_vec();
    k.extend_from_slice(b"SHARED");
    idx.invert_pending(meta.id).unwrap();
    for _ in 0..100 {
        if idx.get("u", "Trash").unwrap().unwrap().fts_dead == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(idx.get("u", "Trash").unwrap().unwrap().fts_dead, 0);
    let left = store.get(CF_FTS, &k).unwrap().unwrap();
    assert_eq!(
        left.len(),
        10 * 4,
        "postings of the 10 live messages remain"
    );
}

/// Adding a message leaves its folder, not its words, for the inversion, which reads the
/// file where the message is then (renamed into `cur/` meanwhile); entries written as word
/// lists by earlier versions still invert.
#[test]
fn pending_entries_name_the_folder_and_words_are_read_at_inversion() {
    let (_dir, store, idx, root, mut meta) = fixture("INBOX");
    std::fs::write(root.join("new/1.x.h"), "Subject: s\r\n\r\nalpha bravo\r\n").unwrap();
    idx.sync("u", "INBOX", &mut meta, &root).unwrap();
    let id = meta.id;
    let entry = store.get(CF_MAILBOX, &msg_key(b'w', id, 1)).unwrap();
    // Relative to the data directory (the store's parent), as `mail` under it.
    assert_eq!(entry, Some(b"\x01mail".to_vec()));
    assert_eq!(
        fts::pending_entry(&root, Path::new("/elsewhere"))[1..],
        *std::os::unix::ffi::OsStrExt::as_bytes(root.as_os_str())
    );
    // A reader marks it seen: the file moves to cur/ before any search.
    std::fs::rename(root.join("new/1.x.h"), root.join("cur/1.x.h:2,S")).unwrap();
    idx.sync("u", "INBOX", &mut meta, &root).unwrap();
    // An entry in the earlier form: the words themselves.
    store
        .commit_blocking(vec![Op::Put(
            CF_MAILBOX,
            msg_key(b'w', id, 7),
            b"LEGACY\0WORDS".to_vec(),
        )])
        .unwrap();
    assert_eq!(
        idx.fts_lookup(id, "BRAVO").unwrap(),
        [1].into_iter().collect()
    );
    assert_eq!(
        idx.fts_lookup(id, "LEGACY").unwrap(),
        [7].into_iter().collect()
    );
    assert!(
        store
            .scan_prefix(CF_MAILBOX, &id_prefix(b'w', id))
            .unwrap()
            .is_empty()
    );
}

/// Adding a message writes one pending entry; the next lookup (or a background pass once
/// `INVERT_AT` wait) turns the waiting messages' words into postings in bulk, with the same
/// answers; the entries survive a restart and go with their mailbox.
#[test]
fn words_wait_as_one_entry_each_and_are_inverted_in_bulk() {
    let (_dir, store, idx, root, mut meta) = fixture("INBOX");
    for i in 0..5 {
        let data = format!("Subject: s\r\n\r\nword{i} together\r\n");
        std::fs::write(root.join("new").join(format!("{i}.x.h")), data).unwrap();
    }
    idx.sync("u", "INBOX", &mut meta, &root).unwrap();
    let id = meta.id;
    let pending = |store: &Store| {
        store
            .scan_prefix(CF_MAILBOX, &id_prefix(b'w', id))
            .unwrap()
            .len()
    };
    let mut k = id.to_be_bytes().to_vec();
    k.extend_from_slice(b"TOGETHER");
    assert_eq!(pending(&store), 5);
    assert_eq!(store.get(CF_FTS, &k).unwrap(), None, "nothing inverted yet");
    // Still pending after a restart (written with the message's record).
    drop(idx);
    let idx = MailboxIndex::new(store.clone()).unwrap();
    assert_eq!(idx.fts_lookup(id, "TOGETHER").unwrap(), (1..=5).collect());
    assert_eq!(
        idx.fts_lookup_containing(id, "ORD3").unwrap(),
        [4].into_iter().collect()
    );
    assert_eq!(pending(&store), 0);
    assert_eq!(
        store.get(CF_FTS, &k).unwrap().map(|v| v.len()),
        Some(20),
        "one merge, five UIDs"
    );
    // Steps are bounded by count and by octets (at least one list each).
    for i in 0..6 {
        let data = format!("Subject: s\r\n\r\nstep{i} together\r\n");
        std::fs::write(root.join("new").join(format!("s{i}.x.h")), data).unwrap();
    }
    idx.sync("u", "INBOX", &mut meta, &root).unwrap();
    assert_eq!(
        idx.invert_pending_in_steps(id, 4, usize::MAX).unwrap(),
        (6, 2)
    );
    for i in 0..3 {
        let data = format!("Subject: s\r\n\r\nbyte{i} together\r\n");
        std::fs::write(root.join("new").join(format!("b{i}.x.h")), data).unwrap();
    }
    idx.sync("u", "INBOX", &mut meta, &root).unwrap();
    assert_eq!(idx.invert_pending_in_steps(id, 1000, 1).unwrap(), (3, 3));
    assert_eq!(idx.fts_lookup(id, "BYTE2").unwrap().len(), 1);
    assert_eq!(idx.fts_lookup(id, "TOGETHER").unwrap().len(), 14);
    // A background pass once INVERT_AT messages wait, without any lookup.
    for i in 0..fts::INVERT_AT {
        let data = format!("Subject: s\r\n\r\nmore{i} together\r\n");
        std::fs::write(root.join("new").join(format!("m{i}.x.h")), data).unwrap();
    }
    idx.sync("u", "INBOX", &mut meta, &root).unwrap();
    for _ in 0..500 {
        if pending(&store) == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(pending(&store), 0, "the background pass inverted them");
    assert_eq!(
        store.get(CF_FTS, &k).unwrap().map(|v| v.len()),
        Some(4 * (14 + fts::INVERT_AT))
    );
    // Pending words go with their mailbox.
    std::fs::write(root.join("new/last.x.h"), b"Subject: s\r\n\r\nlast\r\n").unwrap();
    idx.sync("u", "INBOX", &mut meta, &root).unwrap();
    assert_eq!(pending(&store), 1);
    idx.delete("u", "INBOX").unwrap();
    assert_eq!(pending(&store), 0);
}

/// The background pass waits for a pause in deliveries (or for `INVERT_MAX` waiting
/// messages), so that indexing does not compete with a burst of mail.
#[test]
fn background_inversion_waits_for_a_pause_in_deliveries() {
    use std::time::{Duration, Instant};
    assert!(!fts::pass_may_start(
        fts::INVERT_AT - 1,
        Duration::from_secs(60)
    ));
    assert!(!fts::pass_may_start(fts::INVERT_AT, fts::INVERT_QUIET / 2));
    assert!(fts::pass_may_start(fts::INVERT_AT, fts::INVERT_QUIET));
    assert!(fts::pass_may_start(fts::INVERT_MAX, Duration::ZERO));

    let (_dir, store, idx, root, mut meta) = fixture("INBOX");
    let id = meta.id;
    let pending = || {
        store
            .scan_prefix(CF_MAILBOX, &id_prefix(b'w', id))
            .unwrap()
            .len()
    };
    for i in 0..fts::INVERT_AT {
        let data = format!("Subject: s\r\n\r\nburst{i} together\r\n");
        std::fs::write(root.join("new").join(format!("m{i}.x.h")), data).unwrap();
    }
    idx.sync("u", "INBOX", &mut meta, &root).unwrap();
    // Deliveries go on, one every 50 ms, for twice the quiet period: no pass meanwhile.
    let until = Instant::now() + 2 * fts::INVERT_QUIET;
    let mut n = 0;
    while Instant::now() < until {
        std::fs::write(
            root.join("new").join(format!("t{n}.x.h")),
            b"Subject: s\r\n\r\nx\r\n",
        )
        .unwrap();
        idx.sync("u", "INBOX", &mut meta, &root).unwrap();
        n += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        pending(),
        fts::INVERT_AT + n,
        "no pass during the deliveries"
    );
    // Then the pause: everything waiting is inverted without a lookup.
    for _ in 0..500 {
        if pending() == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(pending(), 0, "the pass ran after the pause");
    let mut k = id.to_be_bytes().to_vec();
    k.extend_from_slice(b"TOGETHER");
    assert_eq!(
        store.get(CF_FTS, &k).unwrap().map(|v| v.len()),
        Some(4 * fts::INVERT_AT)
    );
    // A search while the pass waits inverts everything itself; the waiting pass then ends
    // without running (and a later burst starts a new one).
    for _ in 0..100 {
        if !idx.live().fts_inverting.contains(&id) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for i in 0..fts::INVERT_AT {
        let data = format!("Subject: s\r\n\r\nagain{i} together\r\n");
        std::fs::write(root.join("new").join(format!("a{i}.x.h")), data).unwrap();
    }
    idx.sync("u", "INBOX", &mut meta, &root).unwrap();
    assert!(idx.live().fts_inverting.contains(&id), "a pass waits");
    assert_eq!(idx.fts_lookup(id, "AGAIN4095").unwrap().len(), 1);
    assert_eq!(pending(), 0);
    // One more delivery after the search counts from one again: still no pass.
    std::fs::write(root.join("new/after.x.h"), b"Subject: s\r\n\r\nafter\r\n").unwrap();
    idx.sync("u", "INBOX", &mut meta, &root).unwrap();
    std::thread::sleep(fts::INVERT_QUIET + fts::INVERT_QUIET / 2);
    assert_eq!(pending(), 1);
    assert!(
        !idx.live().fts_inverting.contains(&id),
        "the waiting pass ended"
    );
}

#[test]
fn private_seen_is_kept_per_uid_and_per_user() {
    let (_d, store, idx, _root, meta) = fixture("INBOX");
    idx.set_private_seen(meta.id, "al", &[1, 2, 3], true)
        .unwrap();
    idx.set_private_seen(meta.id, "alice", &[7], true).unwrap();
    idx.set_private_seen(meta.id, "al", &[2], false).unwrap();
    let al = idx.private_seen(meta.id, "al").unwrap();
    assert_eq!(al, [1, 3].into_iter().collect());
    // Each change moves the user's generation on; an empty one does not.
    assert_eq!(idx.private_seen_generation(meta.id, "al"), 2);
    assert_eq!(idx.set_private_seen(meta.id, "al", &[], true).unwrap(), 2);
    assert_eq!(idx.private_seen_generation(meta.id, "alice"), 1);
    // A login that starts another's does not see its keys.
    assert_eq!(
        idx.private_seen(meta.id, "alice").unwrap(),
        [7].into_iter().collect()
    );
    assert!(idx.private_seen(meta.id, "bob").unwrap().is_empty());
    // A set written whole by an earlier version is read, then converted to per-UID keys.
    let legacy: Vec<u8> = [4u32, 9].iter().flat_map(|u| u.to_be_bytes()).collect();
    store
        .write_relaxed(vec![Op::Put(
            CF_MAILBOX,
            seen_user_prefix(meta.id, "bob"),
            legacy,
        )])
        .unwrap();
    assert_eq!(
        idx.private_seen(meta.id, "bob").unwrap(),
        [4, 9].into_iter().collect()
    );
    assert!(
        store
            .get(CF_MAILBOX, &seen_user_prefix(meta.id, "bob"))
            .unwrap()
            .is_none()
    );
    idx.set_private_seen(meta.id, "bob", &[4], false).unwrap();
    assert_eq!(
        idx.private_seen(meta.id, "bob").unwrap(),
        [9].into_iter().collect()
    );
    // Deleting the mailbox removes every user's set.
    idx.delete("u", "INBOX").unwrap();
    let mut left = 0;
    store
        .for_each_prefix(CF_MAILBOX, &id_prefix(b's', meta.id), |_, _| {
            left += 1;
            Ok(())
        })
        .unwrap();
    assert_eq!(left, 0);
}

#[test]
fn subscriptions_live_apart_and_old_flags_carry_over_once() {
    let (_dir, store, idx, root, mut meta) = fixture("Projects");
    assert!(
        idx.subscriptions("u").unwrap().is_empty(),
        "CREATE does not subscribe"
    );
    idx.set_subscribed("u", "Gone/child", true).unwrap();
    idx.set_subscribed("u", "Projects", true).unwrap();
    idx.delete("u", "Projects").unwrap();
    let subs: Vec<String> = idx.subscriptions("u").unwrap().into_iter().collect();
    assert_eq!(
        subs,
        ["Gone/child", "Projects"],
        "DELETE does not unsubscribe"
    );
    idx.set_subscribed("u", "Projects", false).unwrap();
    // An index from before: a mailbox flagged subscribed in its meta and no marker.
    idx.create("u2", "Old", &root, None).unwrap();
    meta.subscribed = true;
    idx.put_meta("u2", "Old", &meta).unwrap();
    store
        .write_relaxed(vec![Op::Delete(CF_MAILBOX, b"U1".to_vec())])
        .unwrap();
    let again = MailboxIndex::new(store.clone()).unwrap();
    assert!(again.subscriptions("u2").unwrap().contains("Old"));
    // Once only: unsubscribing sticks across opens.
    again.set_subscribed("u2", "Old", false).unwrap();
    let third = MailboxIndex::new(store).unwrap();
    assert!(third.subscriptions("u2").unwrap().is_empty());
    assert_eq!(third.subscriptions("u").unwrap().len(), 1);
}

/// Substring search over the in-memory vocabulary: read once, then kept exact by every
/// indexing write (a word that arrives after the first search is found by the next).
#[test]
fn substring_search_keeps_its_vocabulary_exact() {
    let (_dir, _store, idx, root, mut meta) = fixture("INBOX");
    assert!(meta.fts, "the fixture indexes text");
    let write = |n: usize, body: &str| {
        let data = format!("Subject: s\r\n\r\n{body}\r\n");
        std::fs::write(root.join("new").join(format!("10{n}.x.h")), data).unwrap();
    };
    write(0, "asdfghjkl common");
    write(1, "zebra common");
    idx.sync("u", "INBOX", &mut meta, &root).unwrap();
    let set = |v: &[u32]| {
        v.iter()
            .copied()
            .collect::<std::collections::HashSet<u32>>()
    };
    assert_eq!(
        idx.fts_lookup_containing(meta.id, "SDFGHJK").unwrap(),
        set(&[1])
    );
    assert_eq!(
        idx.fts_lookup_containing(meta.id, "OMMO").unwrap(),
        set(&[1, 2])
    );
    write(2, "qwertyuiop zebra");
    idx.sync("u", "INBOX", &mut meta, &root).unwrap();
    assert_eq!(
        idx.fts_lookup_containing(meta.id, "WERTYU").unwrap(),
        set(&[3])
    );
    assert_eq!(
        idx.fts_lookup_containing(meta.id, "EBR").unwrap(),
        set(&[2, 3])
    );
    assert!(
        idx.fts_lookup_containing(meta.id, "NOTHERE")
            .unwrap()
            .is_empty()
    );
}

/// An index written before words were kept in their casemap form is rebuilt: the next sync
/// starts it, searches find the words in the new form, the old keys are gone.
#[test]
fn old_word_forms_are_rebuilt() {
    let (_dir, store, idx, root, mut meta) = fixture("INBOX");
    let data = "Subject: s\r\n\r\nCrème brûlée\r\n";
    std::fs::write(root.join("new").join("100.x.h"), data).unwrap();
    idx.sync("u", "INBOX", &mut meta, &root).unwrap();
    // As an older version left it: lower-case words, no form number.
    meta.fts_format = 0;
    idx.put_meta("u", "INBOX", &meta).unwrap();
    store
        .write_relaxed(vec![
            Op::DeleteRange(
                CF_FTS,
                meta.id.to_be_bytes().to_vec(),
                (meta.id + 1).to_be_bytes().to_vec(),
            ),
            Op::Merge(
                CF_FTS,
                fts_key(meta.id, "crème"),
                1u32.to_be_bytes().to_vec(),
            ),
        ])
        .unwrap();
    assert_eq!(idx.rebuild_fts("u", "INBOX", &root).unwrap(), 1);
    let meta = idx.get("u", "INBOX").unwrap().unwrap();
    assert!(meta.fts && meta.fts_format == FTS_FORMAT);
    let crème = postcore_protocol::imap::text::casemap("CRÈME");
    assert_eq!(
        idx.fts_lookup_containing(meta.id, &crème).unwrap(),
        [1].into_iter().collect()
    );
    assert!(
        idx.fts_lookup(meta.id, "crème").unwrap().is_empty(),
        "old keys gone"
    );
    // The words the sync left waiting were dropped by the rebuild, which read the message
    // itself: its UID is in the posting once.
    assert_eq!(
        store
            .get(CF_FTS, &fts_key(meta.id, &crème))
            .unwrap()
            .map(|v| v.len()),
        Some(4)
    );
    assert_eq!(idx.rebuild_fts("u", "INBOX", &root).unwrap(), 0, "once");
}
