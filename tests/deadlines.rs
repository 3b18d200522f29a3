//! Deadlines a slow client cannot stretch: a client that sends one octet now and then is cut
//! when the whole command (SMTP, IMAP before login, POP3) has taken the command timeout, and a
//! DATA transfer once it falls below the minimum rate after its grace period — not kept open
//! because each octet restarts an idle timer.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const CONFIG: &str = "[limits]\ncommand_timeout_secs = 3\ndata_timeout_secs = 3\ndata_grace_secs = 2\ndata_min_rate = 200\n";

/// Sends `text` one octet every 700 ms (after `setup` lines, sent at once) until the server
/// closes the connection; returns how long the dribbling lasted and what the server said.
fn dribble(port: u16, setup: &[&str], text: &str) -> (Duration, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let mut read_some = |s: &mut TcpStream, seen: &mut Vec<u8>| -> bool {
        match s.read(&mut buf) {
            Ok(0) => false,
            Ok(n) => {
                seen.extend_from_slice(&buf[..n]);
                true
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                true
            }
            Err(_) => false,
        }
    };
    read_some(&mut s, &mut seen);
    for l in setup {
        s.write_all(format!("{l}\r\n").as_bytes()).unwrap();
        read_some(&mut s, &mut seen);
    }
    let start = Instant::now();
    for b in text.bytes().cycle() {
        if start.elapsed() > Duration::from_secs(20) {
            break;
        }
        if s.write_all(&[b]).is_err() {
            break;
        }
        if !read_some(&mut s, &mut seen) {
            break;
        }
    }
    (start.elapsed(), String::from_utf8_lossy(&seen).into_owned())
}

#[test]
fn smtp_command_line_has_a_total_deadline() {
    let s = TestServer::start_with(CONFIG);
    let (t, said) = dribble(s.smtp, &[], "EHLO slow.example.test");
    assert!(t < Duration::from_secs(7), "cut after {t:?}: {said}");
    assert!(said.contains("421 4.4.2"), "{said}");
}

#[test]
fn smtp_data_has_a_minimum_rate_after_its_grace_period() {
    let s = TestServer::start_with(CONFIG);
    s.setup_basic();
    let (t, said) = dribble(
        s.smtp,
        &[
            "EHLO slow.test",
            "MAIL FROM:<s@remote.test>",
            "RCPT TO:<alice@example.test>",
            "DATA",
        ],
        "Subject: slow\r\n\r\nbody line\r\n",
    );
    assert!(said.contains("354"), "{said}");
    assert!(t < Duration::from_secs(7), "cut after {t:?}: {said}");
    assert!(said.contains("421 4.4.2"), "{said}");
    assert!(s.messages("users/alice").is_empty());
}

#[test]
fn imap_before_login_has_a_total_deadline() {
    let s = TestServer::start_with(CONFIG);
    let (t, said) = dribble(s.imap, &[], "a1 CAPABILITY");
    assert!(t < Duration::from_secs(7), "cut after {t:?}: {said}");
    assert!(said.contains("* BYE"), "{said}");
}

#[test]
fn pop3_command_has_a_total_deadline() {
    let s = TestServer::start_with(CONFIG);
    let (t, said) = dribble(s.pop3, &[], "USER alice");
    assert!(t < Duration::from_secs(7), "cut after {t:?}: {said}");
    assert!(said.contains("-ERR"), "{said}");
}

/// A normal client is not affected: commands and a quick DATA go through with the same
/// short limits.
#[test]
fn prompt_clients_are_served_under_the_same_limits() {
    let s = TestServer::start_with(CONFIG);
    s.setup_basic();
    let mut c = s.smtp();
    std::thread::sleep(Duration::from_secs(1));
    let (code, text) = c.send_mail("a@remote.test", &["alice@example.test"], &message("quick"));
    assert_eq!(code, 250, "{text}");
}

/// A login exchange has one deadline in all: an IMAP AUTHENTICATE LOGIN whose two answers
/// each come 2 s after their challenge (under the 3 s command timeout) is cut, because the
/// exchange as a whole takes longer than the timeout.
#[test]
fn an_authentication_exchange_has_one_total_deadline() {
    let s = TestServer::start_with(CONFIG);
    s.setup_basic();
    s.api_ok(
        "PATCH",
        "/settings",
        Some(serde_json::json!({"allow_unencrypted": true})),
    );
    let mut c = Imap::connect(s.imap);
    c.send_raw(b"a1 AUTHENTICATE LOGIN\r\n");
    let started = Instant::now();
    let challenge = c.read_line();
    assert!(challenge.starts_with('+'), "{challenge}");
    std::thread::sleep(Duration::from_secs(2));
    c.send_raw(b"YWxpY2U=\r\n"); // alice
    let challenge = c.read_line();
    assert!(challenge.starts_with('+'), "{challenge}");
    std::thread::sleep(Duration::from_secs(2));
    let _ = c.try_send_raw(b"YWxpY2UtcHc=\r\n"); // alice-pw, too late
    let rest = c.read_rest();
    assert!(
        !rest.contains("a1 OK"),
        "logged in after {:?}: {rest}",
        started.elapsed()
    );
}
