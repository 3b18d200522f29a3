//! In-process session tests: SMTP, IMAP and POP3 sessions driven over an in-memory duplex
//! stream through the same connection core and admission as real sockets, with the real
//! store, delivery actor and scanner pool of a temporary data directory. No sockets; each
//! test takes milliseconds (the real-socket and real-client tests are in the top-level
//! `tests/`).

use actix::Actor;
use postcore_actors::config::Config;
use postcore_actors::context::{ListenerKind, Shared, WorkerCtx};
use postcore_actors::delivery::DeliveryActor;
use serde_json::json;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

/// A data directory with `example.test` and the users alice and bob.
struct Harness {
    _tmp: tempfile::TempDir,
    /// Kept: a dropped sender reads as "shutting down".
    _shutdown: tokio::sync::watch::Sender<bool>,
    dir: PathBuf,
    shared: Arc<Shared>,
}

fn harness(command_timeout_secs: u64) -> Harness {
    harness_with(|cfg| cfg.limits.command_timeout_secs = command_timeout_secs)
}

/// A harness whose configuration `tune` adjusts.
fn harness_with(tune: impl FnOnce(&mut Config)) -> Harness {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let mut cfg = Config {
        data_dir: dir.clone(),
        hostname: "mx.example.test".into(),
        ..Config::default()
    };
    tune(&mut cfg);
    let (tx, rx) = tokio::sync::watch::channel(false);
    let shared = Arc::new(Shared::open(cfg, rx).unwrap());
    let d = &shared.directory;
    d.add_domain(serde_json::from_value(json!({"name": "example.test"})).unwrap())
        .unwrap();
    for u in ["alice", "bob"] {
        let user = serde_json::from_value(json!({"login": u, "password_hash": ""})).unwrap();
        d.add_user(user, &format!("{u}-pw")).unwrap();
    }
    Harness {
        _tmp: tmp,
        _shutdown: tx,
        dir,
        shared,
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        // As the server does at exit: the store's background work stops, and the database
        // is left open (never closed by a thread racing the process's static destructors).
        let _ = self.shared.store.flush();
        self.shared.store.db().cancel_all_background_work(true);
        std::mem::forget(self.shared.clone());
    }
}

impl Harness {
    /// Runs one session of `kind` with `client` on the other end of a duplex stream.
    fn session<F, Fut>(&self, kind: ListenerKind, client: F)
    where
        F: FnOnce(tokio::io::DuplexStream) -> Fut,
        Fut: Future<Output = ()>,
    {
        let shared = self.shared.clone();
        tokio_uring::start(async move {
            let ctx = Rc::new(WorkerCtx {
                id: 0,
                shared: shared.clone(),
                delivery: DeliveryActor::new(shared.clone()).start().recipient(),
                // No network checks in-process: these sessions are about the protocols.
                net: None,
            });
            let (ours, theirs) = tokio::io::duplex(256 * 1024);
            let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
            let serve: std::pin::Pin<Box<dyn Future<Output = ()>>> =
                match kind {
                    ListenerKind::Imap | ListenerKind::Imaps => Box::pin(
                        postcore_actors::imap::serve(Box::new(theirs), peer, kind, ctx),
                    ),
                    ListenerKind::Pop3 | ListenerKind::Pop3s => Box::pin(
                        postcore_actors::pop3::serve(Box::new(theirs), peer, kind, ctx),
                    ),
                    _ => Box::pin(postcore_actors::smtp::session::serve(
                        Box::new(theirs),
                        peer,
                        kind,
                        ctx,
                    )),
                };
            let server = tokio::task::spawn_local(serve);
            tokio::time::timeout(Duration::from_secs(20), client(ours))
                .await
                .expect("client finished in time");
            tokio::time::timeout(Duration::from_secs(20), server)
                .await
                .expect("session ended")
                .expect("session task");
        });
    }

    fn files(&self, sub: &str) -> Vec<Vec<u8>> {
        let p = self.dir.join("mail").join(sub);
        let mut v: Vec<PathBuf> = std::fs::read_dir(&p)
            .map(|r| r.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        v.sort();
        v.iter().map(|f| std::fs::read(f).unwrap()).collect()
    }
}

/// A line-oriented client over any stream (plain duplex, or TLS over it).
struct Client<S> {
    io: BufReader<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    fn new(s: S) -> Self {
        Client {
            io: BufReader::new(s),
        }
    }

    async fn line(&mut self) -> String {
        let mut l = String::new();
        self.io.read_line(&mut l).await.unwrap();
        l
    }

    /// An SMTP reply (continuation lines joined); "" at EOF.
    async fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let l = self.line().await;
            all.push_str(&l);
            if l.len() < 4 || l.as_bytes()[3] != b'-' {
                return all;
            }
        }
    }

    async fn send(&mut self, data: &[u8]) {
        self.io.get_mut().write_all(data).await.unwrap();
        self.io.get_mut().flush().await.unwrap();
    }

    async fn cmd(&mut self, c: &str) -> String {
        self.send(format!("{c}\r\n").as_bytes()).await;
        self.reply().await
    }

    /// IMAP: sends `tag cmd` and reads up to the tagged response; all lines.
    async fn imap(&mut self, tag: &str, c: &str) -> String {
        self.send(format!("{tag} {c}\r\n").as_bytes()).await;
        let mut all = String::new();
        loop {
            let l = self.line().await;
            assert!(!l.is_empty(), "EOF before {tag}: {all}");
            all.push_str(&l);
            if l.starts_with(&format!("{tag} ")) {
                return all;
            }
        }
    }

    fn into_inner(self) -> S {
        self.io.into_inner()
    }
}

async fn tls_client<S: AsyncRead + AsyncWrite + Unpin>(s: S) -> tokio_rustls::client::TlsStream<S> {
    let cfg = postcore_actors::outbound::client::tls_config().unwrap();
    let name = rustls::pki_types::ServerName::try_from("mx.example.test").unwrap();
    tokio_rustls::TlsConnector::from(cfg)
        .connect(name, s)
        .await
        .expect("TLS handshake")
}

fn only_message(h: &Harness, mailbox: &str) -> Vec<u8> {
    let mut all = h.files(&format!("{mailbox}/new"));
    all.extend(h.files(&format!("{mailbox}/cur")));
    assert_eq!(all.len(), 1, "{mailbox}");
    all.remove(0)
}

#[test]
fn smtp_transaction_is_delivered_to_the_maildir() {
    let h = harness(30);
    h.session(ListenerKind::Smtp, |io| async move {
        let mut c = Client::new(io);
        assert!(c.reply().await.starts_with("220 mx.example.test ESMTP"));
        assert!(c.cmd("EHLO client.test").await.contains("250 "));
        assert!(
            c.cmd("MAIL FROM:<x@remote.test>")
                .await
                .starts_with("250 2.1.0")
        );
        assert!(
            c.cmd("RCPT TO:<alice@example.test>")
                .await
                .starts_with("250 2.1.5")
        );
        assert!(
            c.cmd("RCPT TO:<nobody@example.test>")
                .await
                .starts_with("550 5.1.1")
        );
        assert!(c.cmd("DATA").await.starts_with("354"));
        c.send(b"Subject: in process\r\n\r\n..dot\r\n.\r\n").await;
        assert!(c.reply().await.starts_with("250 2.0.0 Ok: queued as "));
        assert!(c.cmd("QUIT").await.starts_with("221"));
    });
    let msg = String::from_utf8(only_message(&h, "users/alice")).unwrap();
    assert!(
        msg.starts_with("Received: from client.test ([127.0.0.1])"),
        "{msg}"
    );
    assert!(
        msg.ends_with("Subject: in process\r\n\r\n.dot\r\n"),
        "{msg}"
    );
}

#[test]
fn smtp_starttls_discards_pipelined_plaintext_and_resets_the_session() {
    let h = harness(30);
    h.session(ListenerKind::Smtp, |io| async move {
        let mut c = Client::new(io);
        c.reply().await;
        c.cmd("EHLO client.test").await;
        // The injected command rides in the same write as STARTTLS.
        c.send(b"STARTTLS\r\nMAIL FROM:<evil@remote.test>\r\n")
            .await;
        assert!(c.reply().await.starts_with("220 2.0.0"));
        let mut t = Client::new(tls_client(c.into_inner()).await);
        // Had the injected MAIL run, this would be "503 nested MAIL" or the EHLO would be
        // preceded by its reply.
        let ehlo = t.cmd("EHLO client.test").await;
        assert!(ehlo.starts_with("250-mx.example.test"), "{ehlo}");
        assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
        assert!(
            t.cmd("MAIL FROM:<x@remote.test>")
                .await
                .starts_with("250 2.1.0")
        );
        assert!(t.cmd("QUIT").await.starts_with("221"));
    });
    let log_free = h.files("users/alice/new");
    assert!(log_free.is_empty());
}

#[test]
fn smtp_command_timeout_closes_with_421() {
    let h = harness(1);
    h.session(ListenerKind::Smtp, |io| async move {
        let mut c = Client::new(io);
        c.reply().await;
        c.cmd("EHLO client.test").await;
        // Say nothing: the configured command timeout (1 s) ends the session.
        let r = c.reply().await;
        assert!(
            r.starts_with("421 4.4.2 mx.example.test Error: timeout exceeded"),
            "{r}"
        );
        assert_eq!(c.line().await, "", "closed after the 421");
    });
}

#[test]
fn smtp_submissions_port_speaks_tls_first() {
    let h = harness(30);
    h.session(ListenerKind::Submissions, |io| async move {
        let mut c = Client::new(tls_client(io).await);
        assert!(c.reply().await.starts_with("220 "));
        assert!(c.cmd("EHLO client.test").await.contains("AUTH PLAIN LOGIN"));
        assert!(c.cmd("QUIT").await.starts_with("221"));
    });
}

#[test]
fn imap_login_select_fetch_and_starttls_injection() {
    let h = harness(30);
    let alice = h.dir.join("mail/users/alice");
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(alice.join(sub)).unwrap();
    }
    std::fs::write(
        alice.join("new/1.test.host"),
        b"Subject: hello imap\r\nFrom: <x@remote.test>\r\n\r\nbody\r\n",
    )
    .unwrap();
    h.session(ListenerKind::Imap, |io| async move {
        let mut c = Client::new(io);
        assert!(c.line().await.starts_with("* OK [CAPABILITY "));
        // Pipelined after STARTTLS in plain text: must never run inside TLS.
        c.send(b"a STARTTLS\r\nb LOGIN alice alice-pw\r\n").await;
        assert!(c.line().await.starts_with("a OK"));
        let mut t = Client::new(tls_client(c.into_inner()).await);
        let caps = t.imap("c", "CAPABILITY").await;
        assert!(
            caps.starts_with("* CAPABILITY") && !caps.contains("STARTTLS"),
            "{caps}"
        );
        assert!(!caps.contains("b OK"), "the injected LOGIN ran: {caps}");
        assert!(t.imap("d", "LOGIN alice alice-pw").await.contains("d OK"));
        let sel = t.imap("e", "SELECT INBOX").await;
        assert!(sel.contains("* 1 EXISTS"), "{sel}");
        let f = t
            .imap("f", "FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            .await;
        assert!(f.contains("Subject: hello imap"), "{f}");
        assert!(t.imap("g", "LOGOUT").await.contains("* BYE"));
    });
}

#[test]
fn imap_bad_literal_and_timeout_before_login() {
    let h = harness(1);
    h.session(ListenerKind::Imap, |io| async move {
        let mut c = Client::new(io);
        c.line().await;
        let r = c.imap("a", "NOSUCHCOMMAND").await;
        assert!(r.starts_with("a BAD"), "{r}");
        // Nothing more: the 1 s pre-login timeout ends it with BYE.
        let bye = c.line().await;
        assert!(bye.starts_with("* BYE"), "{bye}");
        assert_eq!(c.line().await, "");
    });
}

#[test]
fn pop3_stls_injection_login_and_retrieve() {
    let h = harness(30);
    let alice = h.dir.join("mail/users/alice");
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(alice.join(sub)).unwrap();
    }
    std::fs::write(alice.join("new/1.test.host"), b"Subject: pop\r\n\r\nhi\r\n").unwrap();
    h.session(ListenerKind::Pop3, |io| async move {
        let mut c = Client::new(io);
        assert!(c.line().await.starts_with("+OK"));
        c.send(b"STLS\r\nUSER alice\r\n").await;
        assert!(c.line().await.starts_with("+OK Begin TLS"));
        let mut t = Client::new(tls_client(c.into_inner()).await);
        // The injected USER was dropped: PASS now has no user.
        t.send(b"PASS alice-pw\r\n").await;
        assert!(
            t.line().await.starts_with("-ERR"),
            "injected USER survived STLS"
        );
        t.send(b"USER alice\r\n").await;
        assert!(t.line().await.starts_with("+OK"));
        t.send(b"PASS alice-pw\r\n").await;
        assert!(t.line().await.starts_with("+OK"));
        t.send(b"RETR 1\r\n").await;
        assert!(t.line().await.starts_with("+OK"));
        assert_eq!(t.line().await, "Subject: pop\r\n");
        t.line().await;
        assert_eq!(t.line().await, "hi\r\n");
        assert_eq!(t.line().await, ".\r\n");
        t.send(b"QUIT\r\n").await;
        assert!(t.line().await.starts_with("+OK"));
    });
}

#[test]
fn pop3_idle_timeout_logs_out() {
    let h = harness(1);
    h.session(ListenerKind::Pop3, |io| async move {
        let mut c = Client::new(io);
        c.line().await;
        let r = c.line().await;
        assert!(r.starts_with("-ERR autologout"), "{r}");
        assert_eq!(c.line().await, "");
    });
}

/// Messages in the charsets the restructure issue names, each found by IMAP SEARCH on its
/// body text and its RFC 2047 subject (UTF-8 search strings, RFC 9051 §6.4.4).
#[test]
fn imap_search_finds_text_in_every_charset() {
    use base64::Engine;
    let samples: [(&str, &[u8], &str); 5] = [
        ("koi8-r", b"\xf0\xd2\xc9\xd7\xc5\xd4", "Привет"),
        (
            "shift_jis",
            b"\x83n\x83\x8D\x81[\x81E\x83\x8F\x81[\x83\x8B\x83h",
            "ワールド",
        ),
        ("iso-2022-jp", b"\x1b$B%O%m!<!&%o!<%k%I\x1b(B", "ワールド"),
        (
            "gb2312",
            b"\xc4\xe3\xba\xc3\xa3\xac\xca\xc0\xbd\xe7",
            "世界",
        ),
        ("windows-1251", b"\xcf\xf0\xe8\xe2\xe5\xf2", "Привет"),
    ];
    let h = harness(30);
    let inbox = h.dir.join("mail/users/alice");
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(inbox.join(sub)).unwrap();
    }
    for (i, (cs, octets, _)) in samples.iter().enumerate() {
        let subject = base64::engine::general_purpose::STANDARD.encode(octets);
        let mut m = format!(
            "Subject: =?{cs}?B?{subject}?=\r\nContent-Type: text/plain; charset={cs}\r\n\r\n"
        )
        .into_bytes();
        m.extend_from_slice(octets);
        m.extend_from_slice(b"\r\n");
        std::fs::write(inbox.join(format!("new/{i}.charset.host")), m).unwrap();
    }
    h.session(ListenerKind::Imaps, |io| async move {
        let mut c = Client::new(tls_client(io).await);
        c.line().await;
        assert!(c.imap("a", "LOGIN alice alice-pw").await.contains("a OK"));
        assert!(c.imap("b", "SELECT INBOX").await.contains("* 5 EXISTS"));
        // UID order is the order the folder scan found the files in: map it back.
        let order = c
            .imap("c", "FETCH 1:5 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            .await;
        for (key, want) in [
            ("BODY", "Привет"),
            ("SUBJECT", "Привет"),
            ("BODY", "ワールド"),
            ("BODY", "世界"),
            ("SUBJECT", "世界"),
        ] {
            let n = want.len();
            let r = c
                .imap(
                    "d",
                    &format!("SEARCH CHARSET UTF-8 {key} {{{n}+}}\r\n{want}"),
                )
                .await;
            let hits: Vec<&str> = r
                .lines()
                .find(|l| l.starts_with("* SEARCH"))
                .map(|l| l.split_whitespace().skip(2).collect())
                .unwrap_or_default();
            let expected = samples.iter().filter(|s| s.2 == want).count();
            assert_eq!(hits.len(), expected, "{key} {want}: {r}\n{order}");
        }
        c.imap("z", "LOGOUT").await;
    });
}

/// IMAP closes a session after `limits.max_errors` BAD responses (issue 12); IDLE garbage
/// counts too.
#[test]
fn imap_bad_command_limit_closes_the_session() {
    let h = harness_with(|cfg| cfg.limits.max_errors = 5);
    h.session(ListenerKind::Imaps, |io| async move {
        let mut c = Client::new(tls_client(io).await);
        c.line().await;
        for i in 0..4 {
            assert!(c.imap(&format!("a{i}"), "JUNK").await.contains(" BAD "));
        }
        c.send(b"a5 JUNK\r\n").await;
        assert!(c.line().await.starts_with("a5 BAD"));
        let bye = c.line().await;
        assert!(bye.starts_with("* BYE Too many invalid commands"), "{bye}");
        assert_eq!(c.line().await, "", "closed");
    });
}

/// POP3 closes a session after `limits.max_errors` unknown or malformed commands.
#[test]
fn pop3_bad_command_limit_closes_the_session() {
    let h = harness_with(|cfg| cfg.limits.max_errors = 3);
    h.session(ListenerKind::Pop3s, |io| async move {
        let mut c = Client::new(tls_client(io).await);
        c.line().await;
        for _ in 0..2 {
            c.send(b"JUNK\r\n").await;
            assert!(c.line().await.starts_with("-ERR unknown command"));
        }
        c.send(b"JUNK\r\n").await;
        let last = c.line().await;
        assert!(
            last.starts_with("-ERR [SYS/TEMP] too many invalid commands"),
            "{last}"
        );
        assert_eq!(c.line().await, "", "closed");
    });
}

/// CREATE refuses names with control characters, blank levels or broken modified UTF-7, and
/// stops at the per-user mailbox limit with `[LIMIT]` (issue 12).
#[test]
fn imap_create_checks_names_and_the_mailbox_limit() {
    let h = harness_with(|_| {});
    h.shared
        .directory
        .patch_settings(json!({"imap": {"max_mailboxes": 8}}))
        .unwrap();
    h.session(ListenerKind::Imaps, |io| async move {
        let mut c = Client::new(tls_client(io).await);
        c.line().await;
        assert!(c.imap("a", "LOGIN alice alice-pw").await.contains("a OK"));
        // INBOX and the five special-use folders made at first login: 6 of 8.
        for (tag, name) in [("b", "\"a\tb\""), ("c", "\"   \""), ("d", "&Jjo")] {
            let r = c.imap(tag, &format!("CREATE {name}")).await;
            assert!(r.contains(&format!("{tag} NO [CANNOT]")), "{name}: {r}");
        }
        assert!(c.imap("e", "CREATE &Jjo-").await.contains("e OK"));
        assert!(c.imap("f", "CREATE two").await.contains("f OK"));
        let r = c.imap("g", "CREATE three").await;
        assert!(r.contains("g NO [LIMIT]"), "{r}");
        c.imap("z", "LOGOUT").await;
    });
}

/// The global connection cap (`limits.max_connections`): past it a new connection gets its
/// protocol's temporary refusal, whatever its address (issue 12).
#[test]
fn connections_over_the_global_cap_are_refused() {
    let h = harness_with(|cfg| cfg.limits.max_connections = 2);
    // Two sessions are open (counted as the server counts them).
    h.shared
        .active_sessions
        .fetch_add(2, std::sync::atomic::Ordering::SeqCst);
    h.session(ListenerKind::Smtp, |io| async move {
        let mut c = Client::new(io);
        let r = c.reply().await;
        assert!(r.starts_with("421 4.7.0"), "{r}");
        assert_eq!(c.line().await, "");
    });
    h.session(ListenerKind::Imap, |io| async move {
        let mut c = Client::new(io);
        let r = c.line().await;
        assert!(r.starts_with("* BYE [UNAVAILABLE]"), "{r}");
    });
    h.shared
        .active_sessions
        .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    h.session(ListenerKind::Smtp, |io| async move {
        let mut c = Client::new(io);
        assert!(c.reply().await.starts_with("220 "), "below the cap again");
        c.cmd("QUIT").await;
    });
}
