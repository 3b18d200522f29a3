//! The admin API and the `postcore admin` CLI: every operation, its bad input (clear error,
//! nothing changed), authentication, run-time effect without restart, and /metrics.

mod common;
use common::*;
use serde_json::{Value, json};

#[test]
fn api_requires_the_bearer_token() {
    let s = TestServer::start();
    let url = format!("http://127.0.0.1:{}/api/domains", s.admin);
    match ureq::get(&url).call() {
        Err(ureq::Error::Status(401, _)) => {}
        other => panic!("expected 401, got {other:?}"),
    }
    match ureq::get(&url).set("Authorization", "Bearer wrong").call() {
        Err(ureq::Error::Status(401, _)) => {}
        other => panic!("expected 401, got {other:?}"),
    }
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(s.data_dir().join("admin.token"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o077, 0, "token file is private");
}

#[test]
fn domains_users_groups_public_addresses_bad_input_changes_nothing() {
    let s = TestServer::start();
    let before = |s: &TestServer| {
        [
            "/domains",
            "/users",
            "/groups",
            "/public",
            "/addresses",
            "/settings",
        ]
        .map(|p| s.api_ok("GET", p, None))
    };
    s.setup_basic();
    let snapshot = before(&s);
    // 254 characters: one more than a domain name can have (RFC 1035 §2.3.4).
    let long_domain = [
        &"a".repeat(63)[..],
        &"b".repeat(63),
        &"c".repeat(63),
        &"d".repeat(62),
    ]
    .join(".");
    assert_eq!(long_domain.len(), 254);
    let bad: Vec<(&str, &str, Value, u16)> = vec![
        ("POST", "/domains", json!({"name": "not a domain"}), 400),
        ("POST", "/domains", json!({"name": "127.0.0.1"}), 400),
        ("POST", "/domains", json!({"name": "[127.0.0.1]"}), 400),
        ("POST", "/domains", json!({"name": long_domain}), 400),
        (
            "POST",
            "/domains/example.test/dkim",
            json!({"selector": "s".repeat(300)}),
            400,
        ),
        (
            "POST",
            "/domains/example.test/dkim",
            json!({"selector": "-bad"}),
            400,
        ),
        (
            "POST",
            "/domains/example.test/dkim",
            json!({"selector": "a..b"}),
            400,
        ),
        ("POST", "/domains", json!({"name": "localhost"}), 400),
        ("POST", "/domains", json!({"name": "example.test"}), 409),
        (
            "POST",
            "/domains",
            json!({"name": "x.test", "bcc": "not-an-address"}),
            400,
        ),
        (
            "POST",
            "/domains",
            json!({"name": "x.test", "accept_unknown": true}),
            400,
        ),
        (
            "POST",
            "/domains",
            json!({"name": "x.test", "accept_unknown": true, "catch_all": "user:ghost"}),
            404,
        ),
        ("POST", "/domains", json!({"nam": "x.test"}), 400),
        (
            "PATCH",
            "/domains/ghost.test",
            json!({"bcc": "a@b.test"}),
            404,
        ),
        ("DELETE", "/domains/ghost.test", Value::Null, 404),
        (
            "POST",
            "/users",
            json!({"login": "Bad Name", "password": "pw-pw"}),
            400,
        ),
        (
            "POST",
            "/users",
            json!({"login": "../etc", "password": "pw-pw"}),
            400,
        ),
        (
            "POST",
            "/users",
            json!({"login": "alice", "password": "pw-pw"}),
            409,
        ),
        (
            "POST",
            "/users",
            json!({"login": "dave", "password": "x"}),
            400,
        ),
        (
            "POST",
            "/users",
            json!({"login": "dave", "password": "pw-pw", "forward": ["nope"]}),
            400,
        ),
        ("POST", "/users", json!({"login": "dave"}), 400),
        ("PATCH", "/users/ghost", json!({"quota_mb": 1}), 404),
        ("PATCH", "/users/alice", json!({"password_hash": "x"}), 400),
        ("PATCH", "/users/alice", json!({"quota_mb": "lots"}), 400),
        ("DELETE", "/users/ghost", Value::Null, 404),
        (
            "POST",
            "/groups",
            json!({"name": "g", "members": ["ghost"]}),
            404,
        ),
        ("POST", "/groups", json!({"name": "Bad Group"}), 400),
        ("PATCH", "/groups/ghost", json!({"members": []}), 404),
        ("DELETE", "/groups/ghost", Value::Null, 404),
        (
            "POST",
            "/public",
            json!({"name": "info", "owners": []}),
            400,
        ),
        (
            "POST",
            "/public",
            json!({"name": "info", "owners": ["ghost"]}),
            404,
        ),
        ("DELETE", "/public/ghost", Value::Null, 404),
        (
            "POST",
            "/addresses",
            json!({"local": "x", "destinations": []}),
            400,
        ),
        (
            "POST",
            "/addresses",
            json!({"local": "x", "destinations": ["user:ghost"]}),
            404,
        ),
        (
            "POST",
            "/addresses",
            json!({"local": "x", "destinations": ["group:ghost"]}),
            404,
        ),
        (
            "POST",
            "/addresses",
            json!({"local": "x", "destinations": ["public:ghost"]}),
            404,
        ),
        (
            "POST",
            "/addresses",
            json!({"local": "x", "destinations": ["bogus:thing"]}),
            400,
        ),
        (
            "POST",
            "/addresses",
            json!({"local": "x", "destinations": ["not an address"]}),
            400,
        ),
        (
            "POST",
            "/addresses",
            json!({"local": "x", "domain": "ghost.test", "destinations": ["user:alice"]}),
            404,
        ),
        (
            "POST",
            "/addresses",
            json!({"local": "a b", "destinations": ["user:alice"]}),
            400,
        ),
        ("DELETE", "/addresses/ghost@*", Value::Null, 404),
        ("PATCH", "/settings", json!({"max_message_size": 10}), 400),
        (
            "PATCH",
            "/settings",
            json!({"max_message_size": 18_446_744_073_709_551_615u64}),
            400,
        ),
        (
            "PATCH",
            "/settings",
            json!({"max_recipients": 1_000_000}),
            400,
        ),
        ("PATCH", "/settings", json!({"max_recipients": 0}), 400),
        (
            "PATCH",
            "/settings",
            json!({"relay": {"allow_relay_from": ["not-a-net"]}}),
            400,
        ),
        (
            "PATCH",
            "/settings",
            json!({"bare_newline": "sometimes"}),
            400,
        ),
        ("PATCH", "/settings", json!({"always_bcc": "nope"}), 400),
        ("PATCH", "/settings", json!([1, 2]), 400),
    ];
    for (m, p, b, want) in bad {
        let body = if b.is_null() { None } else { Some(b.clone()) };
        let (code, v) = s.api(m, p, body);
        assert_eq!(code, want, "{m} {p} {b}: {v}");
        assert!(
            v["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{m} {p}: error text expected, got {v}"
        );
    }
    assert_eq!(before(&s), snapshot, "bad input changed nothing");
    // Malformed JSON body.
    let url = format!("http://127.0.0.1:{}/api/users", s.admin);
    let r = ureq::post(&url)
        .set("Authorization", &format!("Bearer {}", s.token()))
        .set("Content-Type", "application/json")
        .send_string("{");
    assert!(matches!(r, Err(ureq::Error::Status(400, _))));
}

#[test]
fn full_lifecycle_through_the_api_applies_without_restart() {
    let s = TestServer::start();
    s.setup_basic();
    s.api_ok(
        "POST",
        "/domains",
        Some(json!({"name": "relay.test", "kind": "relay", "relay_host": "mx.relay.test:25"})),
    );
    s.api_ok(
        "POST",
        "/groups",
        Some(json!({"name": "sales", "members": ["alice", "bob"]})),
    );
    s.api_ok(
        "POST",
        "/public",
        Some(json!({"name": "shared", "owners": ["sales"]})),
    );
    s.api_ok("POST", "/addresses", Some(json!({"local": "info", "domain": "example.test", "destinations": ["public:shared", "user:carol"]})));
    // Referenced objects cannot be removed while in use.
    assert_eq!(s.api("DELETE", "/users/carol", None).0, 409);
    assert_eq!(s.api("DELETE", "/groups/sales", None).0, 409);
    assert_eq!(s.api("DELETE", "/public/shared", None).0, 409);
    let a = s.api_ok("GET", "/addresses/info@example.test", None);
    assert_eq!(a["destinations"], json!(["public:shared", "user:carol"]));
    s.api_ok(
        "PATCH",
        "/addresses/info@example.test",
        Some(json!({"destinations": ["user:alice"], "internal": true})),
    );
    assert_eq!(
        s.api_ok("GET", "/addresses/info@example.test", None)["internal"],
        true
    );
    // Relay domain mail is accepted and stays queued for its host.
    let (code, text) = s.smtp().send_mail(
        "x@remote.test",
        &["anyone@relay.test"],
        &message("relay dom"),
    );
    assert_eq!(code, 250, "{text}");
    let q = s.api_ok("GET", "/queue", None);
    assert_eq!(q[0]["rcpts"][0]["target"]["address"], "anyone@relay.test");
    // Password change applies at once.
    s.api_ok(
        "PATCH",
        "/users/alice",
        Some(json!({"password": "new-secret"})),
    );
    let u = s.api_ok("GET", "/users/alice", None);
    assert!(
        u.get("password_hash").is_none(),
        "hashes are never returned"
    );
    // Removal in dependency order.
    s.api_ok("DELETE", "/addresses/info@example.test", None);
    s.api_ok("DELETE", "/public/shared", None);
    s.api_ok(
        "PATCH",
        "/groups/sales",
        Some(json!({"members": ["carol"]})),
    );
    assert_eq!(
        s.api_ok("GET", "/groups/sales", None)["members"],
        json!(["carol"])
    );
    s.api_ok("DELETE", "/users/carol", None);
    assert_eq!(
        s.api_ok("GET", "/groups/sales", None)["members"],
        json!([]),
        "membership removed with the user"
    );
    s.api_ok("DELETE", "/groups/sales", None);
    s.api_ok("DELETE", "/domains/relay.test", None);
    let mut c = s.smtp();
    c.ok("EHLO c.test", 250);
    c.ok("MAIL FROM:<x@remote.test>", 250);
    assert_eq!(
        c.cmd("RCPT TO:<carol@example.test>").0,
        550,
        "removed user is unknown at once"
    );
    assert_eq!(
        c.cmd("RCPT TO:<anyone@relay.test>").0,
        554,
        "removed domain is foreign at once"
    );
}

#[test]
fn cli_covers_every_object_and_reports_errors() {
    let s = TestServer::start();
    let ok = |args: &[&str], stdin: Option<&str>| {
        let (success, out, err) = s.cli(args, stdin);
        assert!(success, "{args:?}: {out} {err}");
        out
    };
    ok(&["domain", "add", "example.test"], None);
    ok(
        &[
            "domain",
            "add",
            "lists.test",
            "--bcc",
            "archive@example.test",
        ],
        None,
    );
    ok(
        &["user", "add", "alice", "--password-stdin"],
        Some("alice-pw\n"),
    );
    ok(
        &["user", "add", "bob", "--password-stdin", "--quota-mb", "50"],
        Some("bob-pw\n"),
    );
    ok(
        &["user", "add", "archive", "--password-stdin"],
        Some("archive-pw\n"),
    );
    ok(
        &[
            "user",
            "set",
            "bob",
            "--forward",
            "bob@elsewhere.test",
            "--keep-copy",
            "on",
            "--mail-access",
            "off",
        ],
        None,
    );
    ok(
        &["user", "set", "bob", "--password-stdin"],
        Some("bob-new\n"),
    );
    ok(&["group", "add", "sales", "--member", "alice,bob"], None);
    ok(&["group", "set", "sales", "--address", "off"], None);
    ok(&["public", "add", "shared", "--owner", "sales"], None);
    ok(
        &[
            "address",
            "add",
            "info",
            "--to",
            "user:alice,public:shared,partner@remote.test",
        ],
        None,
    );
    ok(
        &[
            "address",
            "add",
            "help@example.test",
            "--to",
            "user:bob",
            "--internal",
        ],
        None,
    );
    ok(
        &["address", "set", "help@example.test", "--internal", "off"],
        None,
    );
    ok(
        &["domain", "set", "example.test", "--catch-all", "user:alice"],
        None,
    );
    ok(
        &[
            "settings",
            "set",
            "max_message_size=1048576",
            "relay.auth_on_port25=true",
            "relay.allow_relay_from=[\"192.0.2.0/24\"]",
            "group_addresses=true",
        ],
        None,
    );
    let users: Value = serde_json::from_str(&ok(&["user", "list"], None)).unwrap();
    let bob = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["login"] == "bob")
        .unwrap();
    assert_eq!(
        (
            bob["quota_mb"].clone(),
            bob["mail_access"].clone(),
            bob["forward"].clone()
        ),
        (json!(50), json!(false), json!(["bob@elsewhere.test"]))
    );
    let settings: Value = serde_json::from_str(&ok(&["settings", "show"], None)).unwrap();
    assert_eq!(settings["max_message_size"], 1048576);
    assert_eq!(settings["relay"]["auth_on_port25"], true);
    assert_eq!(
        settings["relay"]["allow_relay_from"],
        json!(["192.0.2.0/24"])
    );
    let domains: Value = serde_json::from_str(&ok(&["domain", "list"], None)).unwrap();
    assert_eq!(domains[0]["catch_all"], "user:alice");
    let addrs: Value = serde_json::from_str(&ok(&["address", "list"], None)).unwrap();
    assert_eq!(addrs.as_array().unwrap().len(), 2);
    assert_eq!(
        serde_json::from_str::<Value>(&ok(&["group", "list"], None)).unwrap()[0]["address_enabled"],
        false
    );
    assert_eq!(
        serde_json::from_str::<Value>(&ok(&["public", "list"], None)).unwrap()[0]["owners"],
        json!(["sales"])
    );
    assert_eq!(
        serde_json::from_str::<Value>(&ok(&["queue", "list"], None)).unwrap(),
        json!([])
    );
    // The changes are live: the address delivers now.
    assert_eq!(
        s.smtp()
            .send_mail("x@remote.test", &["info@example.test"], &message("cli"))
            .0,
        250
    );
    assert_eq!(s.messages("users/alice").len(), 1);
    assert_eq!(s.messages("public/shared").len(), 1);
    // Errors: non-zero exit and the API's reason on stderr.
    let (success, _, err) = s.cli(
        &["user", "add", "alice", "--password-stdin"],
        Some("x-pw-x\n"),
    );
    assert!(
        !success && err.contains("user alice exists") && err.contains("409"),
        "{err}"
    );
    let (success, _, err) = s.cli(&["domain", "add", "bad domain"], None);
    assert!(!success && err.contains("invalid"), "{err}");
    let (success, _, err) = s.cli(&["user", "add", "eve", "--password-stdin"], Some(""));
    assert!(!success && err.contains("empty password"), "{err}");
    let (success, _, err) = s.cli(&["address", "remove", "ghost"], None);
    assert!(!success && err.contains("not found"), "{err}");
    // Removal.
    ok(&["address", "remove", "info"], None);
    ok(&["address", "remove", "help@example.test"], None);
    ok(&["public", "remove", "shared"], None);
    ok(&["group", "remove", "sales"], None);
    ok(&["user", "remove", "bob"], None);
    ok(&["domain", "remove", "lists.test"], None);
    assert_eq!(
        serde_json::from_str::<Value>(&ok(&["user", "list"], None))
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn cli_reports_an_unreachable_server() {
    let mut s = TestServer::start();
    s.kill9();
    let (success, _, err) = s.cli(&["domain", "list"], None);
    assert!(
        !success && err.contains("cannot reach the admin API"),
        "{err}"
    );
}

#[test]
fn metrics_are_exported_for_prometheus() {
    let s = TestServer::start();
    s.setup_basic();
    let mut c = s.smtp();
    assert_eq!(
        c.send_mail("x@remote.test", &["alice@example.test"], &message("m"))
            .0,
        250
    );
    c.ok("MAIL FROM:<x@remote.test>", 250);
    assert_eq!(c.cmd("RCPT TO:<victim@remote.test>").0, 554);
    c.ok("QUIT", 221);
    let body = ureq::get(&format!("http://127.0.0.1:{}/metrics", s.admin))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    for needle in [
        "postcore_smtp_connections_total{listener=\"smtp\"}",
        "postcore_messages_received_total 1",
        "postcore_smtp_rejected_total{reason=\"relay_denied\"} 1",
        "postcore_deliveries_total{kind=\"local\",status=\"sent\"} 1",
        "postcore_delivery_latency_seconds_bucket",
        "postcore_queue_messages",
    ] {
        assert!(body.contains(needle), "{needle} missing in\n{body}");
    }
}
