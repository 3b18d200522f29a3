//! ManageSieve (RFC 5804) through the real server: the real client `sieve-connect`, raw
//! sessions over TCP (literals, response codes, quotas, errors, limits) and the STARTTLS
//! injection check (issue 17).

mod common;

use common::{TestServer, run_py};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

struct Raw {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Raw {
    fn connect(port: u16) -> Raw {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let w = s.try_clone().unwrap();
        let mut raw = Raw {
            r: BufReader::new(s),
            w,
        };
        let greeting = raw.response();
        assert!(
            greeting.contains("\"IMPLEMENTATION\" \"postcore\""),
            "{greeting}"
        );
        raw
    }

    /// Lines up to and including the OK/NO/BYE line, literals read whole.
    fn response(&mut self) -> String {
        let mut out = String::new();
        loop {
            let mut line = String::new();
            if self.r.read_line(&mut line).unwrap_or(0) == 0 {
                return out;
            }
            out.push_str(&line);
            // A line ending in a literal's length: its octets, then the rest of the line.
            let t = line.trim_end();
            if let Some(open) = t.rfind('{').filter(|_| t.ends_with('}')) {
                let n: usize = t[open + 1..t.len() - 1].parse().unwrap();
                let mut buf = vec![0; n];
                std::io::Read::read_exact(&mut self.r, &mut buf).unwrap();
                out.push_str(&String::from_utf8_lossy(&buf));
                let mut rest = String::new();
                self.r.read_line(&mut rest).unwrap();
                out.push_str(&rest);
            }
            if line.starts_with("OK") || line.starts_with("NO") || line.starts_with("BYE") {
                return out;
            }
        }
    }

    fn cmd(&mut self, c: &str) -> String {
        self.w.write_all(c.as_bytes()).unwrap();
        self.w.write_all(b"\r\n").unwrap();
        self.response()
    }
}

fn plain(user: &str, pw: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{pw}"))
}

#[test]
fn raw_sessions() {
    let s = TestServer::start_with("[sieve]\nmax_scripts = 3\nmax_script_size = 200\n");
    s.setup_basic();
    // Without TLS no mechanism is offered and AUTHENTICATE is refused.
    let mut c = Raw::connect(s.managesieve);
    let caps = c.cmd("CAPABILITY");
    assert!(
        caps.contains("\"SASL\" \"\"") && caps.contains("\"STARTTLS\""),
        "{caps}"
    );
    assert!(
        caps.contains("\"SIEVE\" \"fileinto reject") && caps.contains("vacation"),
        "{caps}"
    );
    assert!(
        c.cmd(&format!(
            "AUTHENTICATE \"PLAIN\" \"{}\"",
            plain("alice", "alice-pw")
        ))
        .starts_with("NO (ENCRYPT-NEEDED)")
    );
    assert!(
        c.cmd("LISTSCRIPTS").starts_with("NO"),
        "commands need a login"
    );
    s.allow_unencrypted();
    let mut c = Raw::connect(s.managesieve);
    let r = c.cmd(&format!(
        "AUTHENTICATE \"PLAIN\" \"{}\"",
        plain("alice", "alice-pw")
    ));
    assert!(r.starts_with("OK"), "{r}");
    // PUTSCRIPT with a non-synchronising literal; a syntax error names its line and column.
    let script = "require [\"fileinto\", \"mailbox\"];\r\nif header :contains \"subject\" \"x\" { fileinto :create \"X\"; }\r\n";
    let r = c.cmd(&format!(
        "PUTSCRIPT \"one\" {{{}+}}\r\n{script}",
        script.len()
    ));
    assert!(r.starts_with("OK"), "{r}");
    let bad = "keep;\r\nfileinto \"x\";\r\n";
    let r = c.cmd(&format!("PUTSCRIPT \"bad\" {{{}+}}\r\n{bad}", bad.len()));
    assert!(r.starts_with("NO") && r.contains("line 2, column 1"), "{r}");
    let r = c.cmd(&format!("CHECKSCRIPT {{{}+}}\r\n{bad}", bad.len()));
    assert!(
        r.starts_with("NO") && r.contains("require \"fileinto\""),
        "{r}"
    );
    assert!(c.cmd("CHECKSCRIPT \"keep;\"").starts_with("OK"));
    // Quotas: size and count.
    assert!(c.cmd("HAVESPACE \"two\" 100").starts_with("OK"));
    assert!(
        c.cmd("HAVESPACE \"two\" 5000")
            .starts_with("NO (QUOTA/MAXSIZE)")
    );
    assert!(c.cmd("PUTSCRIPT \"two\" \"keep;\"").starts_with("OK"));
    assert!(c.cmd("PUTSCRIPT \"three\" \"keep;\"").starts_with("OK"));
    assert!(
        c.cmd("PUTSCRIPT \"four\" \"keep;\"")
            .starts_with("NO (QUOTA/MAXSCRIPTS)")
    );
    // Activate, list, download, rename, delete.
    assert!(c.cmd("SETACTIVE \"one\"").starts_with("OK"));
    let l = c.cmd("LISTSCRIPTS");
    assert!(
        l.contains("\"one\" ACTIVE\r\n") && l.contains("\"two\"\r\n"),
        "{l}"
    );
    let g = c.cmd("GETSCRIPT \"one\"");
    assert!(
        g.starts_with(&format!("{{{}}}\r\n{script}", script.len())),
        "{g}"
    );
    assert!(
        c.cmd("GETSCRIPT \"nosuch\"")
            .starts_with("NO (NONEXISTENT)")
    );
    assert!(c.cmd("DELETESCRIPT \"one\"").starts_with("NO (ACTIVE)"));
    assert!(
        c.cmd("RENAMESCRIPT \"one\" \"two\"")
            .starts_with("NO (ALREADYEXISTS)")
    );
    assert!(c.cmd("RENAMESCRIPT \"one\" \"main\"").starts_with("OK"));
    assert!(c.cmd("LISTSCRIPTS").contains("\"main\" ACTIVE"));
    assert!(c.cmd("DELETESCRIPT \"two\"").starts_with("OK"));
    assert!(c.cmd("NOOP \"t1\"").starts_with("OK (TAG \"t1\")"));
    // The uploaded script files mail at delivery.
    let mut smtp = s.smtp();
    let body = "From: a@remote.test\r\nTo: alice@example.test\r\nSubject: x marks\r\n\r\nhi\r\n";
    assert_eq!(
        smtp.send_mail("a@remote.test", &["alice@example.test"], body)
            .0,
        250
    );
    let x = s.maildir("users/alice").join(".X/new");
    assert_eq!(
        std::fs::read_dir(&x).map(|d| d.count()).unwrap_or(0),
        1,
        "{}",
        x.display()
    );
    // SETACTIVE "" deactivates; UNAUTHENTICATE returns to the start.
    assert!(c.cmd("SETACTIVE \"\"").starts_with("OK"));
    assert!(!c.cmd("LISTSCRIPTS").contains("ACTIVE\r\n"));
    assert!(c.cmd("UNAUTHENTICATE").starts_with("OK"));
    assert!(c.cmd("LISTSCRIPTS").starts_with("NO"));
    // Errors: unknown command, a literal over the limit ends the session.
    assert!(c.cmd("FROBNICATE").starts_with("NO"));
    assert!(
        c.cmd("PUTSCRIPT \"x\" {99999999+}")
            .starts_with("BYE (QUOTA/MAXSIZE)")
    );
    // Wrong passwords: three and the session ends.
    let mut c = Raw::connect(s.managesieve);
    for i in 0..3 {
        let r = c.cmd(&format!(
            "AUTHENTICATE \"PLAIN\" \"{}\"",
            plain("alice", "wrong")
        ));
        assert!(r.starts_with("NO"), "{i}: {r}");
    }
    assert!(c.response().starts_with("BYE"));
    // AUTHENTICATE LOGIN with challenges.
    let mut c = Raw::connect(s.managesieve);
    use base64::Engine;
    let b = |t: &str| base64::engine::general_purpose::STANDARD.encode(t);
    c.w.write_all(b"AUTHENTICATE \"LOGIN\"\r\n").unwrap();
    let mut line = String::new();
    c.r.read_line(&mut line).unwrap();
    assert_eq!(line.trim_end(), format!("\"{}\"", b("Username:")));
    c.w.write_all(format!("\"{}\"\r\n", b("bob")).as_bytes())
        .unwrap();
    line.clear();
    c.r.read_line(&mut line).unwrap();
    assert_eq!(line.trim_end(), format!("\"{}\"", b("Password:")));
    c.w.write_all(format!("{{{}+}}\r\n{}\r\n", b("bob-pw").len(), b("bob-pw")).as_bytes())
        .unwrap();
    assert!(c.response().starts_with("OK"));
    assert!(c.cmd("LOGOUT").starts_with("OK"));
}

#[test]
fn starttls_drops_injected_commands() {
    let s = TestServer::start();
    s.setup_basic();
    let (ok, out) = run_py(
        "managesieve_starttls.py",
        &[s.managesieve.to_string(), "carol".into(), "carol-pw".into()],
    );
    assert!(ok, "{out}");
    assert!(out.contains("ok"), "{out}");
}

/// sieve-connect (Debian), as a user would run it: upload, list, activate, download, delete.
#[test]
fn sieve_connect_client() {
    let s = TestServer::start();
    s.setup_basic();
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("filter.sieve");
    std::fs::write(&local, "require \"fileinto\";\nif address :is \"from\" \"boss@remote.test\" { fileinto \"Boss\"; }\n").unwrap();
    let run =
        |action: &[&str]| {
            let mut cmd = Command::new("bash");
            cmd.arg("-c").arg(format!(
            "sieve-connect --notlsverify -s 127.0.0.1 -p {} -u bob --passwordfd 3 {} 3<<<'bob-pw'",
            s.managesieve,
            action.iter().map(|a| format!("'{a}'")).collect::<Vec<_>>().join(" ")
        ));
            let out = cmd
                .output()
                .expect("sieve-connect runs (scripts/deps.sh test installs it)");
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(out.status.success(), "sieve-connect {action:?}: {text}");
            text
        };
    run(&[
        "--upload",
        "--localsieve",
        local.to_str().unwrap(),
        "--remotesieve",
        "filter",
    ]);
    run(&["--activate", "--remotesieve", "filter"]);
    let listed = run(&["--list"]);
    assert!(listed.contains("\"filter\" ACTIVE"), "{listed}");
    let back = dir.path().join("back.sieve");
    run(&[
        "--download",
        "--remotesieve",
        "filter",
        "--localsieve",
        back.to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(&back).unwrap(),
        std::fs::read_to_string(&local).unwrap()
    );
    let v = s.api_ok("GET", "/sieve/bob", None);
    assert_eq!(v["scripts"][0]["active"], true, "{v}");
    run(&["--deactivate"]);
    run(&["--delete", "--remotesieve", "filter"]);
    let v = s.api_ok("GET", "/sieve/bob", None);
    assert_eq!(v["scripts"].as_array().map(Vec::len), Some(0), "{v}");
}
