//! The filter's antivirus and attachment rules over real SMTP sessions: EICAR in every
//! encoding and container the issue lists, Debian's clamav-testfiles samples caught by hash
//! and body signatures, attachment classes from content, zip bombs, reloads while mail
//! flows, a corrupt signature file, a `.cvd` container, and the relay exemption.

mod common;
use base64::Engine as _;
use common::*;
use serde_json::json;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

const EICAR: &[u8] = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
const TESTFILES: &str = "/usr/share/clamav-testfiles";

fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (n, d) in files {
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        w.start_file(*n, opts).unwrap();
        w.write_all(d).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn tar_gz_of(name: &str, data: &[u8]) -> Vec<u8> {
    let mut t = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    t.append_data(&mut h, name, data).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&t.into_inner().unwrap()).unwrap();
    gz.finish().unwrap()
}

fn b64_lines(data: &[u8]) -> String {
    let s = base64::engine::general_purpose::STANDARD.encode(data);
    s.as_bytes()
        .chunks(76)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("\r\n")
}

/// A message with one base64 attachment.
fn with_attachment(subject: &str, name: &str, ctype: &str, data: &[u8]) -> String {
    format!(
        "From: s@remote.test\r\nTo: alice@example.test\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"bnd\"\r\n\r\n--bnd\r\nContent-Type: text/plain\r\n\r\n\
         see attached\r\n--bnd\r\nContent-Type: {ctype}; name=\"{name}\"\r\n\
         Content-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\
         {}\r\n--bnd--\r\n",
        b64_lines(data)
    )
}

fn send(s: &TestServer, body: &str) -> (u16, String) {
    s.smtp()
        .send_mail("s@remote.test", &["alice@example.test"], body)
}

fn set_filter(s: &TestServer, filter: serde_json::Value) {
    s.api_ok("PATCH", "/settings", Some(json!({ "filter": filter })));
}

fn eicar_text() -> String {
    String::from_utf8(EICAR.to_vec()).unwrap()
}

#[test]
fn eicar_in_every_encoding_and_container_is_refused_with_its_name() {
    let s = TestServer::start();
    s.setup_basic();
    set_filter(&s, json!({"discard_infected": false}));
    let eicar = eicar_text();
    let qp = eicar.replace('=', "=3D");
    let inner_msg = format!("Subject: inner\r\n\r\n{eicar}\r\n");
    let cases: Vec<(&str, String)> = vec![
        ("plain", format!("Subject: plain\r\n\r\n{eicar}\r\n")),
        (
            "base64",
            with_attachment("b64", "e.com", "application/octet-stream", EICAR),
        ),
        (
            "quoted-printable",
            format!(
                "Subject: qp\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\
                 Content-Transfer-Encoding: quoted-printable\r\n\r\n{qp}\r\n"
            ),
        ),
        (
            "zip",
            with_attachment(
                "zip",
                "e.zip",
                "application/zip",
                &zip_of(&[("eicar.com", EICAR)]),
            ),
        ),
        (
            "zip in zip",
            with_attachment(
                "zz",
                "outer.zip",
                "application/zip",
                &zip_of(&[("inner.zip", &zip_of(&[("eicar.com", EICAR)]))]),
            ),
        ),
        (
            "attached message",
            format!(
                "Subject: fwd\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
                 --b\r\nContent-Type: text/plain\r\n\r\nforwarded\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n\
                 {inner_msg}\r\n--b--\r\n"
            ),
        ),
        (
            "tar.gz",
            with_attachment(
                "tgz",
                "e.tar.gz",
                "application/gzip",
                &tar_gz_of("eicar.com", EICAR),
            ),
        ),
    ];
    for (what, body) in &cases {
        let (code, text) = send(&s, body);
        assert_eq!(code, 554, "{what}: {text}");
        assert!(
            text.contains("5.7.1") && text.contains("Eicar-Test-Signature"),
            "{what}: {text}"
        );
    }
    assert_eq!(s.messages("users/alice").len(), 0);
    let (code, _) = send(&s, &message("clean"));
    assert_eq!(code, 250);
    assert_eq!(s.wait_messages("users/alice", 1).len(), 1);
    let log = s.log();
    assert!(
        log.contains("antivirus: infected: Eicar-Test-Signature"),
        "{log}"
    );
}

#[test]
fn default_discards_infected_mail_and_the_relay_networks_are_not_scanned() {
    let s = TestServer::start();
    s.setup_basic();
    let body = with_attachment("virus", "e.com", "application/octet-stream", EICAR);
    let (code, text) = send(&s, &body);
    assert_eq!(code, 250, "the reference accepts and discards: {text}");
    let (code, _) = send(&s, &message("clean"));
    assert_eq!(code, 250);
    let got = s.wait_messages("users/alice", 1);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        s.messages("users/alice").len(),
        1,
        "only the clean one is delivered"
    );
    assert!(String::from_utf8_lossy(&got[0]).contains("Subject: clean"));
    assert!(s.log().contains("Eicar-Test-Signature"));
    // "Allow relay from IP addresses" is excluded from all checks.
    s.api_ok(
        "PATCH",
        "/settings",
        Some(json!({"relay": {"allow_relay_from": ["127.0.0.1/32"]}})),
    );
    let (code, _) = send(&s, &body);
    assert_eq!(code, 250);
    assert_eq!(s.wait_messages("users/alice", 2).len(), 2);
}

#[test]
fn attachment_classes_come_from_content_not_names() {
    let s = TestServer::start();
    s.setup_basic();
    let zip_as_txt = zip_of(&[("readme.txt", b"hello")]);
    let docx = zip_of(&[
        ("[Content_Types].xml", b"<Types/>"),
        ("word/document.xml", b"<w/>"),
    ]);
    let elf = b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00".to_vec();
    let mut pe = b"MZ\x90\x00\x03\x00\x00\x00".to_vec();
    pe.resize(128, 0);
    // Off by default: everything passes.
    for (n, d) in [
        ("notes.txt", &zip_as_txt),
        ("report.docx", &docx),
        ("tool.dat", &elf),
    ] {
        assert_eq!(
            send(&s, &with_attachment(n, n, "text/plain", d)).0,
            250,
            "{n}"
        );
    }
    set_filter(&s, json!({"block_archives": true}));
    let (code, text) = send(
        &s,
        &with_attachment("z", "notes.txt", "text/plain", &zip_as_txt),
    );
    assert_eq!(code, 554, "{text}");
    assert!(
        text.contains("archive") && text.contains("notes.txt"),
        "{text}"
    );
    let (code, text) = send(
        &s,
        &with_attachment("d", "report.docx", "application/msword", &docx),
    );
    assert_eq!(code, 554, "{text}");
    assert_eq!(
        send(&s, &with_attachment("e", "tool.dat", "text/plain", &elf)).0,
        250
    );
    set_filter(
        &s,
        json!({"block_archives": false, "block_executables": true}),
    );
    for (n, d) in [("tool.dat", &elf), ("photo.jpg", &pe)] {
        let (code, text) = send(&s, &with_attachment(n, n, "image/jpeg", d));
        assert_eq!(code, 554, "{n}: {text}");
        assert!(text.contains("executable"), "{text}");
    }
    assert_eq!(
        send(
            &s,
            &with_attachment("z", "notes.txt", "text/plain", &zip_as_txt)
        )
        .0,
        250
    );
    // Secondary: a name rule.
    set_filter(
        &s,
        json!({"block_executables": false, "block_extensions": ["scr"]}),
    );
    let (code, text) = send(
        &s,
        &with_attachment("s", "Invoice.SCR", "text/plain", b"plain text"),
    );
    assert_eq!(code, 554, "{text}");
    // Bad values are refused by the API.
    let (status, _) = s.api(
        "PATCH",
        "/settings",
        Some(json!({"filter": {"block_types": ["nonsense"]}})),
    );
    assert_eq!(status, 400);
}

#[test]
fn zip_bomb_is_answered_by_the_limit_setting_in_bounded_time() {
    let s = TestServer::start();
    s.setup_basic();
    // 16 MiB of zeros packed in zips nested 12 deep, plus a flat 64 MiB member.
    let zeros = vec![0u8; 64 << 20];
    let flat = zip_of(&[("zeros.bin", &zeros)]);
    let mut nested = zip_of(&[("z.bin", &zeros[..16 << 20])]);
    for i in 0..12 {
        nested = zip_of(&[(&format!("layer{i}.zip"), &nested)]);
    }
    let started = Instant::now();
    for (n, d) in [("flat.zip", &flat), ("nested.zip", &nested)] {
        let (code, text) = send(&s, &with_attachment(n, n, "application/zip", d));
        assert_eq!(code, 250, "over-limit content passes by default: {text}");
    }
    set_filter(&s, json!({"block_over_limit": true}));
    for (n, d) in [("flat.zip", &flat), ("nested.zip", &nested)] {
        let (code, text) = send(&s, &with_attachment(n, n, "application/zip", d));
        assert_eq!(code, 554, "{n}: {text}");
        assert!(text.contains("scan limit"), "{text}");
    }
    // Bounded: the server never unpacked the bombs (its RSS stays far below their size).
    let rss = s.pid().map(rss_kib).unwrap_or(0);
    assert!(rss < 400 * 1024, "RSS {rss} KiB");
    assert!(started.elapsed() < Duration::from_secs(120));
}

fn write_sig(dir: &Path, name: &str, text: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(tmp, dir.join(name)).unwrap();
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn clamav_testfiles_caught_by_hash_and_body_signatures() {
    if !Path::new(TESTFILES).join("clam.exe").exists() {
        panic!("clamav-testfiles is not installed (scripts/deps.sh installs it)");
    }
    let s = TestServer::start_with("[scanner]\nreload_check_secs = 1\n");
    s.setup_basic();
    set_filter(&s, json!({"discard_infected": false}));
    let exe = std::fs::read(Path::new(TESTFILES).join("clam.exe")).unwrap();
    let md5 = {
        use md5::Digest;
        hex(&md5::Md5::digest(&exe))
    };
    let sigs = s.data_dir().join("clamav");
    write_sig(
        &sigs,
        "test.hdb",
        &format!("{md5}:{}:Test.ClamExe.Hash\n", exe.len()),
    );
    s.api_ok("POST", "/av/reload", None);
    let samples = [
        "clam.exe",
        "clam.zip",
        "clam.tar.gz",
        "clam.exe.bz2",
        "clam.bz2.zip",
        "clam.newc.cpio",
        "clam.odc.cpio",
        "clam.bin-le.cpio",
        "clam.bin-be.cpio",
        "clam.ole.doc",
        "clam.ppt",
        "clam.cab",
        "clam.exe.szdd",
        "clam.pdf",
        "clam.tnef",
        "clam.exe.binhex",
        "clam.exe.html",
        "clam.impl.zip",
        "clam.arj",
        "clam.exe.rtf",
        "clam.sis",
        "clam.chm",
        "clam-mew.exe",
        "clam-upack.exe",
        "clam-upx.exe",
        "clam-fsg.exe",
        "clam-wwpack.exe",
        "clam-yc.exe",
        "clam-petite.exe",
        "clam-aspack.exe",
        "clam-nsis.exe",
    ];
    for f in samples {
        let d = std::fs::read(Path::new(TESTFILES).join(f)).unwrap();
        let (code, text) = send(&s, &with_attachment(f, f, "application/octet-stream", &d));
        assert_eq!(code, 554, "{f}: {text}");
        assert!(text.contains("Test.ClamExe.Hash"), "{f}: {text}");
    }
    // A body signature over a stretch of the program instead of its hash: a copy with one
    // byte changed at the end has another hash but the same body.
    let mut changed = exe.clone();
    *changed.last_mut().unwrap() ^= 0xff;
    let body_sig = format!("Test.ClamExe.Body:1:*:{}\n", hex(&exe[64..96]));
    write_sig(&sigs, "test.ndb", &body_sig);
    s.api_ok("POST", "/av/reload", None);
    let (code, text) = send(
        &s,
        &with_attachment("b", "c.exe", "application/octet-stream", &changed),
    );
    assert_eq!(code, 554, "{text}");
    assert!(text.contains("Test.ClamExe.Body"), "{text}");
    // Offsets into the program's structure: clam.exe's entry point is at file offset 64 (its
    // one section's raw pointer, 1, rounded down to the file alignment, as ClamAV and the
    // Windows loader do). The same octets one place later are no match.
    let ep_sig = format!(
        "Test.ClamExe.Ep:1:EP+0:{}\nTest.ClamExe.Late:1:EP+1:{}\n",
        hex(&exe[64..80]),
        hex(&exe[64..80])
    );
    write_sig(&sigs, "test.ndb", &ep_sig);
    s.api_ok("POST", "/av/reload", None);
    let (code, text) = send(
        &s,
        &with_attachment("e", "c.exe", "application/octet-stream", &changed),
    );
    assert_eq!(code, 554, "{text}");
    assert!(text.contains("Test.ClamExe.Ep"), "{text}");
    write_sig(
        &sigs,
        "test.ndb",
        &format!("Test.ClamExe.Late:1:EP+1:{}\n", hex(&exe[64..80])),
    );
    s.api_ok("POST", "/av/reload", None);
    let (code, text) = send(
        &s,
        &with_attachment("l", "c.exe", "application/octet-stream", &changed),
    );
    assert_eq!(code, 250, "EP+1 must not match at the entry point: {text}");
    // The uuencoded sample, as the message it is (an mbox; its From_ line dropped): decoded
    // up to its zero-length line, it is clam.exe again.
    let mbox = std::fs::read_to_string(Path::new(TESTFILES).join("clam.exe.mbox.uu")).unwrap();
    let msg = mbox.split_once('\n').map(|x| x.1).unwrap_or(&mbox);
    let (code, text) = send(&s, msg);
    assert_eq!(code, 554, "uuencoded: {text}");
    assert!(text.contains("Test.ClamExe.Hash"), "{text}");
    // The same mbox as an attachment: recognised as mail by content and walked as one.
    let (code, text) = send(
        &s,
        &with_attachment(
            "m",
            "saved.mbox",
            "application/octet-stream",
            mbox.as_bytes(),
        ),
    );
    assert_eq!(code, 554, "mbox attachment: {text}");
    let status = s.api_ok("GET", "/av/status", None);
    assert_eq!(status["stats"]["loaded"]["md5"], 1, "{status}");
    assert_eq!(status["stats"]["loaded"]["body"], 1, "{status}");
}

#[test]
fn reload_while_mail_flows_and_a_corrupt_file_keeps_the_old_database() {
    let s = TestServer::start_with("[scanner]\nreload_check_secs = 1\n");
    s.setup_basic();
    set_filter(&s, json!({"discard_infected": false}));
    let sigs = s.data_dir().join("clamav");
    let marker = "POSTCORE-RELOAD-TEST-MARKER-0001";
    let body = format!("Subject: m\r\n\r\nsome text {marker} more\r\n");
    assert_eq!(send(&s, &body).0, 250);
    // Messages keep arriving while the new signature is written and picked up by the
    // watcher; every one gets a definite answer and the accepted ones are all delivered.
    let sender = {
        let port = s.smtp;
        std::thread::spawn(move || {
            let mut answers = Vec::new();
            for i in 0..40 {
                let (code, _) = Smtp::connect(port).send_mail(
                    "s@remote.test",
                    &["bob@example.test"],
                    &format!("Subject: flow {i}\r\n\r\nclean body {i}\r\n"),
                );
                answers.push(code);
                std::thread::sleep(Duration::from_millis(50));
            }
            answers
        })
    };
    write_sig(
        &sigs,
        "local.ndb",
        &format!("Local.Reload.Marker:0:*:{}\n", hex(marker.as_bytes())),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut code = 250;
    while Instant::now() < deadline {
        code = send(&s, &body).0;
        if code == 554 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(code, 554, "the watcher loaded the new signature");
    let answers = sender.join().unwrap();
    assert!(answers.iter().all(|&c| c == 250), "{answers:?}");
    assert_eq!(s.wait_messages("users/bob", 40).len(), 40);
    // A broken file: the reload fails with its place, the old database keeps working.
    write_sig(&sigs, "broken.ndb", "Broken.Sig:0:*:41zz42\n");
    let (status, answer) = s.api("POST", "/av/reload", None);
    assert_eq!(status, 400, "{answer}");
    assert!(answer.to_string().contains("broken.ndb:1"), "{answer}");
    assert_eq!(send(&s, &body).0, 554, "old database still in use");
    let st = s.api_ok("GET", "/av/status", None);
    assert!(
        st["last_reload"]
            .as_str()
            .unwrap_or("")
            .starts_with("failed"),
        "{st}"
    );
    let (ok, out, err) = s.cli(&["av", "status"], None);
    assert!(ok && out.contains("\"body\": 1"), "{out}{err}");
}

#[test]
fn cvd_container_is_unpacked_and_checked() {
    let s = TestServer::start();
    s.setup_basic();
    set_filter(&s, json!({"discard_infected": false}));
    let marker = b"POSTCORE-CVD-TEST-MARKER";
    let ndb = format!("Cvd.Test.Marker:0:*:{}\n", hex(marker));
    let cvd = postcore_scanner::clamav::container::build(42, &[("daily.ndb", ndb.as_bytes())]);
    let sigs = s.data_dir().join("clamav");
    std::fs::create_dir_all(&sigs).unwrap();
    std::fs::write(sigs.join("daily.cvd"), &cvd).unwrap();
    let st = s.api_ok("POST", "/av/reload", None);
    assert_eq!(st["stats"]["version"], 42, "{st}");
    let (code, text) = send(
        &s,
        &format!(
            "Subject: c\r\n\r\nx {} y\r\n",
            String::from_utf8_lossy(marker)
        ),
    );
    assert_eq!(code, 554, "{text}");
    assert!(text.contains("Cvd.Test.Marker"));
    // A container whose archive does not match its header's MD5 is refused.
    let mut bad = cvd.clone();
    let n = bad.len();
    bad[n - 1] ^= 1;
    std::fs::write(sigs.join("daily.cvd"), &bad).unwrap();
    let (status, answer) = s.api("POST", "/av/reload", None);
    assert_eq!(status, 400, "{answer}");
    assert!(answer.to_string().contains("MD5"), "{answer}");
}

#[test]
fn scan_command_reports_like_clamscan() {
    let dir = tempfile::tempdir().unwrap();
    let sigs = dir.path().join("sigs");
    write_sig(
        &sigs,
        "local.ndb",
        &format!("Local.Marker:0:*:{}\n", hex(b"POSTCORE-SCAN-CLI")),
    );
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("a.txt"), b"nothing here").unwrap();
    std::fs::write(
        files.join("b.zip"),
        zip_of(&[("x.bin", b"..POSTCORE-SCAN-CLI..")]),
    )
    .unwrap();
    std::fs::write(
        files.join("c.eml"),
        format!("Subject: e\r\n\r\n{}\r\n", eicar_text()),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_postcore"))
        .args(["scan", "-d"])
        .arg(&sigs)
        .arg(&files)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "infected files exit 1: {text}");
    assert!(text.contains("a.txt: OK"), "{text}");
    assert!(text.contains("b.zip: Local.Marker FOUND"), "{text}");
    assert!(text.contains("c.eml: Eicar-Test-Signature FOUND"), "{text}");
    std::fs::write(sigs.join("bad.ndb"), "Bad:0:*:zz\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_postcore"))
        .args(["scan", "-d"])
        .arg(&sigs)
        .arg(&files)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.ndb:1"));
}
