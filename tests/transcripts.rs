//! Golden transcripts: every file in tests/data/transcripts is replayed against a real
//! server. `C:` lines are sent with CRLF, `C~:` lines are sent raw (with `\r`, `\n` escapes),
//! `S:` lines must match the server's reply lines exactly (a trailing `*` matches any rest).
//! A `# listener: submission` comment picks the listener.

mod common;
use common::*;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;

fn unescape(s: &str) -> Vec<u8> {
    s.replace("\\r", "\r").replace("\\n", "\n").into_bytes()
}

fn replay(s: &TestServer, path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    let port = if text.contains("# listener: submission") {
        s.submission
    } else {
        s.smtp
    };
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    let name = path.file_name().unwrap().to_string_lossy();
    for (n, line) in text.lines().enumerate() {
        if let Some(c) = line.strip_prefix("C: ") {
            w.write_all(format!("{c}\r\n").as_bytes()).unwrap();
        } else if line == "C:" {
            w.write_all(b"\r\n").unwrap();
        } else if let Some(c) = line.strip_prefix("C~: ") {
            w.write_all(&unescape(c)).unwrap();
        } else if let Some(want) = line.strip_prefix("S: ") {
            let mut got = String::new();
            r.read_line(&mut got).unwrap();
            let got = got.trim_end_matches(['\r', '\n']);
            let ok = match want.strip_suffix('*') {
                Some(prefix) => got.starts_with(prefix),
                None => got == want,
            };
            assert!(ok, "{name}:{}: expected {want:?}, got {got:?}", n + 1);
        }
    }
}

#[test]
fn golden_transcripts() {
    let s = TestServer::start();
    s.setup_basic();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/transcripts");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    assert!(files.len() >= 4);
    for f in &files {
        replay(&s, f);
    }
    // basic_session and bdat_chunks each delivered one message.
    assert_eq!(s.messages("users/alice").len(), 1);
    let m = String::from_utf8_lossy(&s.messages("users/alice")[0]).into_owned();
    assert!(
        m.ends_with("Subject: transcript\r\n\r\n.a stuffed dot\r\n"),
        "{m}"
    );
    assert!(
        String::from_utf8_lossy(&s.messages("users/bob")[0])
            .ends_with("Subject: chunked\r\n\r\nx\r\n")
    );
}
