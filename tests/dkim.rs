//! DKIM signing of submitted mail, checked by an independent verifier (dkimpy), for RSA and
//! Ed25519, with and without a legal notice; and the legal notice's MIME structure.

mod common;
use common::*;
use serde_json::json;

fn verifier() -> bool {
    std::process::Command::new("/usr/bin/python3")
        .args(["-c", "import dkim, nacl"])
        .status()
        .is_ok_and(|s| s.success())
}

fn verify(file: &std::path::Path, record: &str) -> (bool, String) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/dkim_verify.py");
    let out = std::process::Command::new("/usr/bin/python3")
        .arg(script)
        .arg(file)
        .arg(record)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn submit(s: &TestServer, user: &str, from: &str, to: &str) {
    let (ok, out) = run_py(
        "tls_client.py",
        &[
            "send",
            &s.submission.to_string(),
            "starttls",
            user,
            &format!("{user}-pw"),
            from,
            to,
        ]
        .map(String::from),
    );
    assert!(ok, "{out}");
}

fn newest(s: &TestServer, mailbox: &str) -> std::path::PathBuf {
    let mut files: Vec<_> = std::fs::read_dir(s.maildir(mailbox).join("new"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    files.pop().unwrap()
}

#[test]
fn rsa_and_ed25519_signatures_verify_with_and_without_legal_notice() {
    if !verifier() || python().is_none() {
        eprintln!("python3-dkim/python3-nacl not installed: skipped");
        return;
    }
    let s = TestServer::start();
    s.setup_basic();
    s.api_ok("POST", "/domains", Some(json!({"name": "other.test"})));
    let (ok, out, err) = s.cli(&["dkim", "enable", "example.test"], None);
    assert!(ok, "{err}");
    assert!(
        out.contains("\"record_name\": \"default._domainkey.example.test\""),
        "{out}"
    );
    let (ok, out, err) = s.cli(
        &[
            "dkim",
            "enable",
            "other.test",
            "--algorithm",
            "ed25519",
            "--selector",
            "ed1",
        ],
        None,
    );
    assert!(ok, "{err} {out}");
    let (ok, rsa_zone, _) = s.cli(&["dkim", "show", "example.test"], None);
    assert!(ok);
    assert!(rsa_zone.starts_with("default._domainkey.example.test. IN TXT \"v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"), "{rsa_zone}");
    let rsa_record = s.api_ok("GET", "/domains/example.test/dkim", None)["record"]
        .as_str()
        .unwrap()
        .to_string();
    let ed_record = s.api_ok("GET", "/domains/other.test/dkim", None)["record"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        ed_record.starts_with("v=DKIM1; k=ed25519; p="),
        "{ed_record}"
    );

    submit(&s, "alice", "alice@example.test", "bob@example.test");
    let f = newest(&s, "users/bob");
    let text = std::fs::read_to_string(&f).unwrap();
    assert!(
        text.contains(
            "DKIM-Signature: v=1; a=rsa-sha256; s=default; d=example.test; c=relaxed/relaxed;"
        ),
        "{text}"
    );
    let (ok, log) = verify(&f, &rsa_record);
    assert!(ok, "RSA signature: {log}");
    // A tampered copy must fail: the verifier is really checking.
    let tampered = f.with_extension("tampered");
    std::fs::write(&tampered, text.replace("sent over TLS", "sent over TLS!")).unwrap();
    assert!(!verify(&tampered, &rsa_record).0, "tampering not detected");

    submit(&s, "carol", "carol@other.test", "bob@example.test");
    let f = newest(&s, "users/bob");
    let (ok, log) = verify(&f, &ed_record);
    assert!(ok, "Ed25519 signature: {log}");
    assert!(
        std::fs::read_to_string(&f)
            .unwrap()
            .contains("a=ed25519-sha256; s=ed1; d=other.test;")
    );

    // Legal notice: appended as a MIME part, then signed.
    let (ok, _, err) = s.cli(
        &[
            "domain",
            "set",
            "example.test",
            "--legal-notice",
            "**Confidential**: for the addressee only.",
        ],
        None,
    );
    assert!(ok, "{err}");
    submit(&s, "alice", "alice@example.test", "carol@example.test");
    let f = newest(&s, "users/carol");
    let (ok, log) = verify(&f, &rsa_record);
    assert!(ok, "signature over the notice: {log}");
    let check = std::process::Command::new("python3")
        .args(["-c", "import email,sys; m=email.message_from_binary_file(open(sys.argv[1],'rb')); p=m.get_payload(); print(m.get_content_type(), len(p), p[0].get_payload().strip(), '|', p[1].get_payload().strip())"])
        .arg(&f)
        .output()
        .unwrap();
    let parsed = String::from_utf8_lossy(&check.stdout);
    assert!(
        parsed.starts_with(
            "multipart/mixed 2 sent over TLS | **Confidential**: for the addressee only."
        ),
        "{parsed}"
    );

    // Mail that was not submitted by an authenticated user is not signed.
    assert_eq!(
        s.smtp()
            .send_mail(
                "alice@example.test",
                &["bob@example.test"],
                "From: alice@example.test\r\nSubject: unsigned\r\n\r\nx\r\n"
            )
            .0,
        250
    );
    let text = std::fs::read_to_string(newest(&s, "users/bob")).unwrap();
    assert!(!text.contains("DKIM-Signature"), "{text}");

    // Disable keeps the key; show then reports it is not enabled.
    let (ok, _, _) = s.cli(&["dkim", "disable", "example.test"], None);
    assert!(ok);
    let (ok, _, err) = s.cli(&["dkim", "show", "example.test"], None);
    assert!(!ok && err.contains("not enabled"), "{err}");
    let (ok, _, err) = s.cli(&["dkim", "enable", "ghost.test"], None);
    assert!(!ok && err.contains("not found"), "{err}");
}
