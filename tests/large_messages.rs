//! Large messages stream to disk as they arrive: many sessions in the middle of sending a
//! large body do not grow the server's memory with message size × sessions, and every message
//! is stored byte for byte as sent (DATA and BDAT alike).

mod common;
use common::*;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

fn body(tag: usize, size: usize) -> Vec<u8> {
    let mut m = format!("Subject: large {tag}\r\nX-Tag: {tag}\r\n\r\n").into_bytes();
    let line = format!("{tag:04} {}\r\n", "b".repeat(70));
    while m.len() < size {
        m.extend_from_slice(line.as_bytes());
    }
    m
}

fn reply(r: &mut BufReader<TcpStream>) -> String {
    let mut all = String::new();
    loop {
        let mut l = String::new();
        r.read_line(&mut l).unwrap();
        all.push_str(&l);
        if l.as_bytes().get(3) != Some(&b'-') {
            return all;
        }
    }
}

/// 20 sessions each send 4 MB of DATA and stop before the final dot: the server holds at
/// most its in-memory threshold per session, not the messages (80 MB); then each finishes and
/// every copy is stored whole.
#[test]
fn large_bodies_in_flight_do_not_grow_memory_and_arrive_whole() {
    const SESSIONS: usize = 20;
    const SIZE: usize = 4 << 20;
    let s = TestServer::start_with("[limits]\nmax_connections_per_ip = 100\n");
    s.setup_basic();
    let pid = s.pid().unwrap();
    let before = rss_kib(pid);
    let mut conns = Vec::new();
    for i in 0..SESSIONS {
        let t = TcpStream::connect(("127.0.0.1", s.smtp)).unwrap();
        t.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut w = t.try_clone().unwrap();
        let mut r = BufReader::new(t);
        reply(&mut r);
        for c in [
            "EHLO big.test",
            "MAIL FROM:<s@remote.test>",
            "RCPT TO:<alice@example.test>",
            "DATA",
        ] {
            w.write_all(format!("{c}\r\n").as_bytes()).unwrap();
            let rep = reply(&mut r);
            assert!(rep.starts_with('2') || rep.starts_with('3'), "{c}: {rep}");
        }
        let b = body(i, SIZE);
        // write_all returns once the server has read nearly all of it (socket buffers are
        // far smaller than 4 MB).
        w.write_all(&b).unwrap();
        conns.push((w, r, b));
    }
    std::thread::sleep(Duration::from_millis(300));
    let during = rss_kib(pid);
    let grown_mib = during.saturating_sub(before) / 1024;
    assert!(
        grown_mib < 40,
        "RSS grew by {grown_mib} MiB with {SESSIONS} x 4 MB in flight (before {before} KiB, during {during} KiB)"
    );
    for (w, r, _) in conns.iter_mut() {
        w.write_all(b".\r\n").unwrap();
        let rep = reply(r);
        assert!(rep.starts_with("250"), "{rep}");
    }
    let stored = s.wait_messages("users/alice", SESSIONS);
    assert_eq!(stored.len(), SESSIONS);
    for (_, _, b) in &conns {
        let tag = String::from_utf8_lossy(&b[..40]).to_string();
        let n = stored.iter().filter(|m| m.ends_with(b)).count();
        assert_eq!(n, 1, "message {tag} stored {n} times whole");
    }
}

/// BDAT chunks of a large message also go to disk as they arrive, and the message is whole.
#[test]
fn large_bdat_message_arrives_whole() {
    let s = TestServer::start();
    s.setup_basic();
    let b = body(7, 3 << 20);
    let mut c = s.smtp();
    c.ok("EHLO big.test", 250);
    c.ok("MAIL FROM:<s@remote.test>", 250);
    c.ok("RCPT TO:<bob@example.test>", 250);
    let chunks: Vec<&[u8]> = b.chunks(700_001).collect();
    for (i, ch) in chunks.iter().enumerate() {
        let last = i + 1 == chunks.len();
        c.send(format!("BDAT {}{}\r\n", ch.len(), if last { " LAST" } else { "" }).as_bytes());
        c.send(ch);
        let (code, text) = c.reply();
        assert_eq!(code, 250, "chunk {i}: {text}");
    }
    let m = s.wait_messages("users/bob", 1);
    assert_eq!(m.len(), 1);
    assert!(
        m[0].ends_with(&b),
        "stored {} octets, sent {}",
        m[0].len(),
        b.len()
    );
    assert!(m[0].starts_with(b"Received: "));
}
