//! The memory budget for mail in flight (`limits.memory_budget_mb`): slow transfers of large
//! messages from many source addresses keep the server's memory under the budget plus a fixed
//! margin; transactions past the budget get `452 4.3.1`; a client on another address is still
//! served while the budget has room; everything acknowledged is delivered; the refusals are
//! logged a bounded number of times.

mod common;
use common::*;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

const BUDGET_MB: u64 = 16;

struct Session {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Session {
    fn open(src: &str, port: u16) -> Session {
        let t = connect_from(src, port);
        let mut s = Session {
            w: t.try_clone().unwrap(),
            r: BufReader::new(t),
        };
        let banner = s.reply();
        assert!(banner.starts_with("220"), "{banner}");
        s
    }

    fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut l = String::new();
            self.r.read_line(&mut l).unwrap();
            all.push_str(&l);
            if l.len() < 4 || l.as_bytes()[3] != b'-' {
                return all;
            }
        }
    }

    fn cmd(&mut self, c: &str) -> String {
        self.w.write_all(format!("{c}\r\n").as_bytes()).unwrap();
        self.reply()
    }
}

fn body(tag: &str, size: usize) -> Vec<u8> {
    let mut m = format!("Subject: {tag}\r\nX-Tag: {tag}\r\n\r\n").into_bytes();
    let line = format!("{tag} {}\r\n", "m".repeat(60));
    while m.len() < size {
        m.extend_from_slice(line.as_bytes());
    }
    m
}

/// Log lines about MAIL refused for want of resources.
fn refusal_lines(s: &TestServer) -> usize {
    s.log()
        .lines()
        .filter(|l| l.contains("MAIL refused, 452 4.3.1"))
        .count()
}

#[test]
fn transfers_past_the_budget_are_refused_and_memory_stays_bounded() {
    let s = TestServer::start_with(&format!(
        "[limits]\nmemory_budget_mb = {BUDGET_MB}\nmax_connections_per_ip = 10\n"
    ));
    s.setup_basic();
    let pid = s.pid().unwrap();
    let before = rss_kib(pid);
    // Slow transfers of 2 MB messages from 20 addresses, each stopped halfway.
    let mut flood = Vec::new();
    let mut refused = 0;
    for i in 0..40 {
        let src = format!("127.0.{}.{}", 1 + i / 20, 2 + i % 20);
        let mut c = Session::open(&src, s.smtp);
        assert!(c.cmd("EHLO flood.test").starts_with("250"));
        let mail = c.cmd("MAIL FROM:<f@remote.test>");
        if mail.starts_with("452 4.3.1") {
            refused += 1;
            // The session goes on: QUIT is answered.
            assert!(c.cmd("QUIT").starts_with("221"));
            continue;
        }
        assert!(mail.starts_with("250"), "{mail}");
        assert!(c.cmd("RCPT TO:<alice@example.test>").starts_with("250"));
        assert!(c.cmd("DATA").starts_with("354"));
        let b = body(&format!("flood{i}"), 2 << 20);
        c.w.write_all(&b[..1 << 20]).unwrap();
        flood.push((c, b));
        if flood.len() == 20 {
            // A client on another address, while the budget still has room: served.
            let mut legit = Smtp::connect(s.smtp);
            let (code, text) = legit.send_mail(
                "friend@remote.test",
                &["bob@example.test"],
                &message("legit"),
            );
            assert_eq!(code, 250, "{text}");
        }
    }
    let room = (BUDGET_MB as usize) << 20;
    let per = postcore_actors::budget::PER_TRANSACTION;
    assert_eq!(
        flood.len(),
        room / per,
        "transactions admitted within a {BUDGET_MB} MiB budget of {per} octets each"
    );
    assert_eq!(refused, 40 - flood.len());
    std::thread::sleep(Duration::from_millis(300));
    let grown_mib = rss_kib(pid).saturating_sub(before) / 1024;
    assert!(
        grown_mib < BUDGET_MB + 16,
        "RSS grew by {grown_mib} MiB with {} transfers of 1 MB in flight (budget {BUDGET_MB} MiB)",
        flood.len()
    );
    // Every transfer completes and is delivered whole.
    for (c, b) in flood.iter_mut() {
        c.w.write_all(&b[1 << 20..]).unwrap();
        c.w.write_all(b".\r\n").unwrap();
        let r = c.reply();
        assert!(r.starts_with("250"), "{r}");
    }
    let stored = s.wait_messages("users/alice", flood.len());
    assert_eq!(stored.len(), flood.len());
    for (_, b) in &flood {
        assert_eq!(stored.iter().filter(|m| m.ends_with(b)).count(), 1);
    }
    assert_eq!(s.wait_messages("users/bob", 1).len(), 1);
    // With the transfers done, the budget is free again.
    let mut again = Smtp::connect(s.smtp);
    assert_eq!(
        again
            .send_mail("x@remote.test", &["carol@example.test"], &message("after"))
            .0,
        250
    );
    // Refusals are logged, but not one line each without bound: at most 10 per address and
    // window (each address here was refused once or twice).
    let lines = s
        .log()
        .lines()
        .filter(|l| l.contains("MAIL refused, 452 4.3.1"))
        .count();
    assert!(
        lines >= 1 && lines <= refused,
        "{lines} log lines for {refused} refusals"
    );
}

#[test]
fn repeated_refusals_from_one_address_are_logged_a_bounded_number_of_times() {
    let s = TestServer::start_with("[limits]\nmemory_budget_mb = 1\nmax_connections_per_ip = 10\n");
    s.setup_basic();
    let mut holder = Smtp::connect(s.smtp);
    holder.ok("EHLO hold.test", 250);
    holder.ok("MAIL FROM:<h@remote.test>", 250);
    let mut c = Smtp::connect(s.smtp);
    c.ok("EHLO again.test", 250);
    for _ in 0..200 {
        let (code, text) = c.cmd("MAIL FROM:<x@remote.test>");
        assert_eq!(code, 452, "{text}");
        assert!(text.starts_with("4.3.1"), "{text}");
    }
    let lines = refusal_lines(&s);
    assert!(
        lines <= postcore_actors::limits::LOG_LINES_PER_WINDOW as usize,
        "{lines} log lines for 200 refusals"
    );
}

/// Memory goes back to the system after a flood: 300 sessions each holding 200 KB of DATA,
/// then all gone; within a few seconds the server's RSS is back near where it started
/// (glibc keeps freed pages in its arenas unless asked to trim them).
#[test]
fn memory_is_given_back_after_a_flood() {
    let s = TestServer::start_with(
        "[limits]\nmax_connections_per_ip = 400\nmax_connections_per_network = 400\n",
    );
    s.setup_basic();
    let pid = s.pid().unwrap();
    let before = rss_kib(pid);
    let mut flood = Vec::new();
    for _ in 0..300 {
        let mut c = Session::open("127.0.0.1", s.smtp);
        for cmd in [
            "EHLO flood.test",
            "MAIL FROM:<f@remote.test>",
            "RCPT TO:<alice@example.test>",
        ] {
            assert!(c.cmd(cmd).starts_with('2'));
        }
        assert!(c.cmd("DATA").starts_with("354"));
        c.w.write_all(&body("flood", 200 * 1024)).unwrap();
        flood.push(c);
    }
    std::thread::sleep(Duration::from_millis(500));
    let during = rss_kib(pid);
    drop(flood);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let mut after = rss_kib(pid);
    while after > before + 20 * 1024 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        after = rss_kib(pid);
    }
    assert!(
        after <= before + 20 * 1024,
        "RSS {before} KiB before, {during} KiB during, still {after} KiB 15 s after the flood"
    );
}
