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

/// Matches a transcript `S:` line: exact, a trailing `*` matches any rest, and `%V` matches
/// a run of digits (UIDVALIDITY and other values that change per run).
fn line_matches(want: &str, got: &str) -> bool {
    if let Some(prefix) = want.strip_suffix('*')
        && !prefix.contains("%V")
    {
        return got.starts_with(prefix);
    }
    let mut parts = want.split("%V");
    let mut rest = got;
    let Some(first) = parts.next() else {
        return got.is_empty();
    };
    let Some(r) = rest.strip_prefix(first) else {
        return false;
    };
    rest = r;
    for p in parts {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        if let Some(prefix) = p.strip_suffix('*') {
            return rest.starts_with(prefix);
        }
        let Some(r) = rest.strip_prefix(p) else {
            return false;
        };
        rest = r;
    }
    rest.is_empty()
}

/// Record mode: numbers that change from run to run become `%V`.
fn volatile_to_placeholder(line: &str) -> String {
    let mut out = line.to_string();
    for key in ["UIDVALIDITY ", "COPYUID ", "APPENDUID ", "QRESYNC ("] {
        let mut from = 0;
        while let Some(p) = out[from..].find(key) {
            let start = from + p + key.len();
            let digits = out[start..].bytes().take_while(u8::is_ascii_digit).count();
            if digits > 0 {
                out.replace_range(start..start + digits, "%V");
            }
            from = start;
        }
    }
    out
}

/// `{N}` or `{N+}` at the end of a command line: (N, non-synchronizing).
fn literal_at_end(line: &str) -> Option<(usize, bool)> {
    let inner = line.strip_suffix('}')?;
    let open = inner.rfind('{')?;
    let n = &inner[open + 1..];
    let (n, plus) = match n.strip_suffix('+') {
        Some(n) => (n, true),
        None => (n, false),
    };
    Some((n.parse().ok()?, plus))
}

/// Replays one IMAP transcript (see `imap_transcripts`); with `POSTCORE_RECORD=1` the file
/// is rewritten with the lines the server actually sent (to review, then commit).
/// `%UIDVALIDITY` in a `C:` line is replaced by the last UIDVALIDITY the server announced.
fn replay_imap(s: &TestServer, path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let record = std::env::var("POSTCORE_RECORD").is_ok();
    let stream = TcpStream::connect(("127.0.0.1", s.imap)).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    let read_line = |r: &mut BufReader<TcpStream>| -> Option<String> {
        let mut got = String::new();
        match r.read_line(&mut got) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(got.trim_end_matches(['\r', '\n']).to_string()),
        }
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<String> = Vec::new();
    let mut expected: Vec<&str> = Vec::new();
    let mut received: Vec<String> = vec![read_line(&mut r).unwrap_or_default()];
    let mut tag = String::new();
    let mut in_command = false;
    let mut literal_left = 0usize;
    let mut uidvalidity = String::new();
    let check =
        |expected: &mut Vec<&str>, received: &mut Vec<String>, out: &mut Vec<String>, at: usize| {
            if !record {
                assert_eq!(
                    expected.len(),
                    received.len(),
                    "{name}:{at}: expected {expected:#?}\ngot {received:#?}"
                );
                for (w, g) in expected.iter().zip(received.iter()) {
                    assert!(line_matches(w, g), "{name}:{at}: expected {w:?}, got {g:?}");
                }
            }
            for g in received.drain(..) {
                out.push(format!("S: {}", volatile_to_placeholder(&g)));
            }
            expected.clear();
        };
    for (n, l) in lines.iter().enumerate() {
        if let Some(want) = l.strip_prefix("S: ") {
            expected.push(want);
            continue;
        }
        let Some(content) = l.strip_prefix("C: ").or(l.strip_prefix("C:")) else {
            out.push(l.to_string());
            continue;
        };
        check(&mut expected, &mut received, &mut out, n);
        out.push(l.to_string());
        let content = content.replace("%UIDVALIDITY", &uidvalidity);
        if !in_command {
            tag = content.split(' ').next().unwrap_or("").to_string();
        }
        w.write_all(format!("{content}\r\n").as_bytes()).unwrap();
        let len = content.len() + 2;
        let rest = if literal_left >= len {
            literal_left -= len;
            in_command = true;
            continue;
        } else {
            let r = &content[literal_left.min(content.len())..];
            literal_left = 0;
            r
        };
        if let Some((n, nonsync)) = literal_at_end(rest) {
            literal_left = n;
            in_command = true;
            if nonsync {
                continue;
            }
        }
        while let Some(got) = read_line(&mut r) {
            if let Some(v) = got.split("[UIDVALIDITY ").nth(1) {
                uidvalidity = v.split(']').next().unwrap_or("").to_string();
            }
            let tagged = got.starts_with(&format!("{tag} "));
            let plus = got.starts_with('+');
            received.push(got);
            if tagged {
                in_command = false;
                literal_left = 0;
                break;
            }
            if plus {
                in_command = true;
                break;
            }
        }
    }
    check(&mut expected, &mut received, &mut out, lines.len());
    if record {
        let mut t = out.join("\n");
        t.push('\n');
        std::fs::write(path, t).unwrap();
    }
}

/// Golden IMAP transcripts: every file in tests/data/imap/*.txt names a user
/// (`# user: name`); the test creates that user (password `secret`), drops the three fixture
/// messages into its Maildir from outside, runs the file's `# setup-…` lines, and replays
/// the file on the IMAP listener.
#[test]
fn imap_transcripts() {
    let s = TestServer::start();
    s.setup_basic();
    s.api_ok(
        "PATCH",
        "/settings",
        Some(serde_json::json!({"allow_unencrypted": true})),
    );
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/imap");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "transcripts missing");
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let user = text
            .lines()
            .find_map(|l| l.strip_prefix("# user: "))
            .unwrap_or_else(|| panic!("{}: no # user:", f.display()))
            .trim()
            .to_string();
        s.api_ok(
            "POST",
            "/users",
            Some(serde_json::json!({"login": user, "password": "secret"})),
        );
        seed_imap_fixtures(&s, &user);
        // `# setup-api: METHOD PATH JSON` calls the admin API first; `# setup-imap: USER
        // COMMAND` runs an IMAP command as USER (created with password `secret` if needed).
        for l in text.lines() {
            if let Some(rest) = l.strip_prefix("# setup-api: ") {
                let mut it = rest.splitn(3, ' ');
                let (m, path, body) = (it.next().unwrap(), it.next().unwrap(), it.next());
                let body = body.map(|b| serde_json::from_str(b).unwrap());
                s.api_ok(m, path, body);
            } else if let Some(rest) = l.strip_prefix("# setup-fill: ") {
                // APPEND one message of about that many bytes to the user's INBOX.
                let (u, n) = rest.split_once(' ').unwrap();
                let n: usize = n.trim().parse().unwrap();
                let mut msg = String::from("Subject: filler\r\n\r\n");
                while msg.len() + 100 <= n {
                    msg.push_str(&"x".repeat(98));
                    msg.push_str("\r\n");
                }
                let mut c = Imap::login(s.imap, u, "secret");
                c.ok(&format!("APPEND INBOX {{{}+}}\r\n{msg}", msg.len()));
            } else if let Some(rest) = l.strip_prefix("# setup-imap: ") {
                let (u, cmd) = rest.split_once(' ').unwrap();
                let (code, _) = s.api("GET", &format!("/users/{u}"), None);
                if code == 404 {
                    s.api_ok(
                        "POST",
                        "/users",
                        Some(serde_json::json!({"login": u, "password": "secret"})),
                    );
                }
                let mut c = Imap::login(s.imap, u, "secret");
                c.ok(&String::from_utf8(unescape(cmd)).unwrap());
            }
        }
        replay_imap(&s, f);
    }
}
