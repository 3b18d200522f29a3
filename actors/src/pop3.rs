//! POP3 sessions (RFC 1939) over the users' Maildirs: CAPA (RFC 2449), STLS (RFC 2595),
//! USER/PASS and AUTH PLAIN (RFC 5034) — only inside TLS unless "allow unencrypted
//! connections" is on — UIDL, TOP; deletions happen at QUIT (the UPDATE state), the maildrop
//! is locked for the session (RFC 1939 §8), and messages are read with memmap2.

use crate::conn::{Conn, ReadEnd, Transport};
use crate::context::{ListenerKind, WorkerCtx};
use crate::usage::mailbox_path;
use base64::Engine;
use postcore_protocol::pop3::{self, Command, CommandError};
use postcore_protocol::smtp::{LineEvent, LineReader};
use postcore_storage::directory::Mailbox;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// Failed logins in one session before it is closed.
const MAX_FAILURES: u32 = 3;

struct Msg {
    path: PathBuf,
    size: u64,
    uidl: String,
    deleted: bool,
}

/// Releases the maildrop lock when the session ends, however it ends.
struct Lock {
    shared: Arc<crate::context::Shared>,
    login: String,
}

impl Drop for Lock {
    fn drop(&mut self) {
        self.shared
            .pop3_locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.login);
    }
}

struct Session {
    ctx: Rc<WorkerCtx>,
    peer: SocketAddr,
    conn: Conn,
    lines: LineReader,
    user: Option<String>,
    login: Option<(String, Lock)>,
    msgs: Vec<Msg>,
    failures: u32,
    /// Unknown or malformed commands so far (`limits.max_errors` of them close the session).
    errors: u32,
}

/// Entry point for an accepted POP3 connection (`io`: TCP, or a duplex stream in tests).
pub async fn serve(
    io: Box<dyn Transport>,
    peer: SocketAddr,
    kind: ListenerKind,
    ctx: Rc<WorkerCtx>,
) {
    let shared = ctx.shared.clone();
    let Some((conn, _admitted)) = crate::conn::admit(io, peer, kind, &shared).await else {
        return;
    };
    let mut s = Session {
        ctx,
        peer,
        conn,
        lines: LineReader::new(1024),
        user: None,
        login: None,
        msgs: Vec::new(),
        failures: 0,
        errors: 0,
    };
    s.run().await;
    s.conn.shutdown().await;
}

impl Session {
    fn is_tls(&self) -> bool {
        self.conn.is_tls()
    }

    fn plaintext_allowed(&self) -> bool {
        crate::login::plaintext_allowed(&self.ctx.shared, self.is_tls())
    }

    async fn send(&mut self, data: &[u8]) -> bool {
        self.conn.out.extend_from_slice(data);
        self.conn.flush().await.is_ok()
    }

    async fn read_line(&mut self) -> Option<Vec<u8>> {
        let timeout = Duration::from_secs(self.ctx.shared.config.limits.command_timeout_secs);
        loop {
            match self.conn.next_frame(&mut self.lines, timeout).await {
                Ok(LineEvent::Line(l)) => return Some(l),
                Ok(LineEvent::TooLong) => {
                    if !self.send(&pop3::err("line too long")).await {
                        return None;
                    }
                }
                Ok(LineEvent::NeedMore) => {}
                Err(ReadEnd::Closed) => return None,
                Err(ReadEnd::Timeout) => {
                    let _ = self.send(&pop3::err("autologout; idle for too long")).await;
                    return None;
                }
            }
        }
    }

    async fn run(&mut self) {
        if !self
            .send(&pop3::ok(&format!(
                "{} POP3 server ready (postcore)",
                self.ctx.shared.config.hostname
            )))
            .await
        {
            return;
        }
        while let Some(line) = self.read_line().await {
            let reply = match Command::parse(&line) {
                Ok(Command::Quit) => {
                    let r = self.quit();
                    let _ = self.send(&r).await;
                    return;
                }
                Ok(c) => self.command(c).await,
                Err(e) => {
                    self.errors += 1;
                    if self.errors >= self.ctx.shared.config.limits.max_errors {
                        tracing::info!(client = %self.peer, errors = self.errors, "pop3: too many invalid commands, closing");
                        let _ = self
                            .send(&pop3::err("[SYS/TEMP] too many invalid commands"))
                            .await;
                        return;
                    }
                    Some(match e {
                        CommandError::Unknown => pop3::err("unknown command"),
                        CommandError::Syntax(e) => pop3::err(e),
                    })
                }
            };
            match reply {
                Some(r) => {
                    if !self.send(&r).await {
                        return;
                    }
                }
                None => return,
            }
            if self.failures >= MAX_FAILURES {
                let _ = self.send(&pop3::err("[AUTH] too many failed logins")).await;
                return;
            }
        }
    }

    fn capa(&self) -> Vec<u8> {
        let mut c = String::from(
            "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\n",
        );
        if self.login.is_none() {
            if self.plaintext_allowed() {
                c.push_str("USER\r\nSASL PLAIN\r\n");
            }
            if !self.is_tls() {
                c.push_str("STLS\r\n");
            }
        }
        c.push_str("IMPLEMENTATION postcore\r\n.\r\n");
        c.into_bytes()
    }

    /// Handles one command; `None` closes the connection.
    /// One command; `None` closes the connection.
    async fn command(&mut self, c: Command) -> Option<Vec<u8>> {
        match c {
            Command::Capa => Some(self.capa()),
            c if self.login.is_none() => self.authorization(c).await,
            c => Some(self.transaction(c)),
        }
    }

    /// The AUTHORIZATION state (RFC 1939 §4): STLS, USER/PASS, AUTH.
    async fn authorization(&mut self, c: Command) -> Option<Vec<u8>> {
        match c {
            Command::Stls if !self.is_tls() => self.stls().await,
            Command::Stls => Some(pop3::err("STLS not available now")),
            Command::User(u) => {
                if !self.plaintext_allowed() {
                    return Some(pop3::err(
                        "[AUTH] Plaintext authentication disallowed on non-secure connections; use STLS",
                    ));
                }
                self.user = Some(u);
                Some(pop3::ok("send PASS"))
            }
            Command::Pass(p) => {
                let Some(u) = self.user.take() else {
                    return Some(pop3::err("send USER first"));
                };
                Some(self.authenticate(&u, p).await)
            }
            Command::Auth(None, _) => Some(b"+OK\r\nPLAIN\r\n.\r\n".to_vec()),
            Command::Auth(Some(m), initial) => self.auth_plain(&m, initial).await,
            _ => Some(pop3::err("not logged in")),
        }
    }

    /// STLS (RFC 2595 §4).
    async fn stls(&mut self) -> Option<Vec<u8>> {
        if !self.send(&pop3::ok("Begin TLS negotiation")).await {
            return None;
        }
        // RFC 2595 §4 / RFC 3207-style injection: the connection core drops anything
        // pipelined in plain text.
        match self.conn.start_tls().await {
            Ok(()) => {
                self.user = None;
                Some(Vec::new())
            }
            Err(e) => {
                tracing::info!(client = %self.peer, "pop3 STLS: {e}");
                None
            }
        }
    }

    /// AUTH PLAIN (RFC 5034), with or without an initial response.
    async fn auth_plain(&mut self, m: &str, initial: Option<String>) -> Option<Vec<u8>> {
        if m != "PLAIN" {
            return Some(pop3::err("unsupported authentication mechanism"));
        }
        if !self.plaintext_allowed() {
            return Some(pop3::err(
                "[AUTH] Plaintext authentication disallowed on non-secure connections; use STLS",
            ));
        }
        let resp = match initial {
            Some(i) => i,
            None => {
                if !self.send(b"+ \r\n").await {
                    return None;
                }
                String::from_utf8_lossy(&self.read_line().await?).into_owned()
            }
        };
        if resp == "*" {
            return Some(pop3::err("authentication cancelled"));
        }
        let creds = base64::engine::general_purpose::STANDARD
            .decode(resp.trim())
            .ok()
            .and_then(|d| postcore_protocol::smtp::sasl::parse_plain(&d));
        match creds {
            Some(c) if c.authzid.is_empty() || c.authzid == c.authcid => {
                Some(self.authenticate(&c.authcid, c.password).await)
            }
            _ => {
                self.failures += 1;
                Some(pop3::err("[AUTH] invalid response"))
            }
        }
    }

    /// The TRANSACTION state (RFC 1939 §5) and QUIT into UPDATE (§6).
    fn transaction(&mut self, c: Command) -> Vec<u8> {
        match c {
            Command::Capa => self.capa(),
            Command::Noop => pop3::ok(""),
            Command::Stls => pop3::err("STLS not available now"),
            Command::User(_) | Command::Pass(_) | Command::Auth(..) => {
                pop3::err("already logged in")
            }
            Command::Stat => {
                let live = self.msgs.iter().filter(|m| !m.deleted);
                let (n, size) = live.fold((0, 0), |(n, s), m| (n + 1, s + m.size));
                pop3::ok(&format!("{n} {size}"))
            }
            Command::List(None) | Command::Uidl(None) => {
                let uidl = matches!(c, Command::Uidl(None));
                let mut out = pop3::ok(if uidl {
                    "unique-id listing follows"
                } else {
                    "scan listing follows"
                });
                for (i, m) in self.msgs.iter().enumerate().filter(|(_, m)| !m.deleted) {
                    let v = if uidl {
                        m.uidl.clone()
                    } else {
                        m.size.to_string()
                    };
                    out.extend_from_slice(format!("{} {v}\r\n", i + 1).as_bytes());
                }
                out.extend_from_slice(b".\r\n");
                out
            }
            Command::List(Some(n)) => match self.msg(n) {
                Ok(m) => pop3::ok(&format!("{n} {}", m.size)),
                Err(e) => e,
            },
            Command::Uidl(Some(n)) => match self.msg(n) {
                Ok(m) => pop3::ok(&format!("{n} {}", m.uidl)),
                Err(e) => e,
            },
            Command::Retr(n) | Command::Top(n, _) => {
                let lines = if let Command::Top(_, l) = c {
                    Some(l)
                } else {
                    None
                };
                let path = match self.msg(n) {
                    Ok(m) => m.path.clone(),
                    Err(e) => return e,
                };
                match read_message(&path, lines) {
                    Ok(out) => out,
                    Err(e) => {
                        tracing::warn!(client = %self.peer, "pop3: reading {}: {e}", path.display());
                        pop3::err("[SYS/TEMP] message not readable")
                    }
                }
            }
            Command::Dele(n) => {
                let r = self.msg(n).err();
                if let Some(e) = r {
                    return e;
                }
                self.msgs[n - 1].deleted = true;
                pop3::ok(&format!("message {n} deleted"))
            }
            Command::Rset => {
                self.msgs.iter_mut().for_each(|m| m.deleted = false);
                pop3::ok("")
            }
            Command::Quit => self.quit(),
        }
    }

    fn msg(&self, n: usize) -> Result<&Msg, Vec<u8>> {
        match n.checked_sub(1).and_then(|i| self.msgs.get(i)) {
            Some(m) if !m.deleted => Ok(m),
            Some(_) => Err(pop3::err(&format!("message {n} already deleted"))),
            None => Err(pop3::err("no such message")),
        }
    }

    async fn authenticate(&mut self, user: &str, password: String) -> Vec<u8> {
        if crate::login::blocked(&self.ctx.shared, self.peer.ip()) {
            tracing::info!(client = %self.peer, "pop3 login refused: failure limit for this IP");
            self.failures = MAX_FAILURES;
            return pop3::err("[AUTH] too many failed logins, try later");
        }
        let Some(login) = crate::login::verify(&self.ctx.shared, user, password).await else {
            self.failures += 1;
            crate::login::record_failure(&self.ctx.shared, self.peer.ip());
            tracing::info!(client = %self.peer, user, result = "failed", "pop3 login: user=<{user}>, rip={}, result=failed", self.peer.ip());
            return pop3::err("[AUTH] authentication failed");
        };
        {
            let mut locks = self
                .ctx
                .shared
                .pop3_locks
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if !locks.insert(login.clone()) {
                return pop3::err("[IN-USE] maildrop is locked by another POP3 session");
            }
        }
        let lock = Lock {
            shared: self.ctx.shared.clone(),
            login: login.clone(),
        };
        let root = mailbox_path(&self.ctx.shared.mail_root, &Mailbox::User(login.clone()));
        self.msgs = scan_maildrop(&root);
        tracing::info!(client = %self.peer, user = %login, result = "ok", "pop3 login: user=<{login}>, rip={}, result=ok, messages={}", self.peer.ip(), self.msgs.len());
        let reply = pop3::ok(&format!("{} has {} messages", login, self.msgs.len()));
        self.login = Some((login, lock));
        reply
    }

    /// RFC 1939 §6: the UPDATE state removes messages marked deleted.
    fn quit(&mut self) -> Vec<u8> {
        let Some((login, _lock)) = self.login.take() else {
            return pop3::ok("bye");
        };
        let mb = Mailbox::User(login.clone());
        let mut removed = 0;
        let mut failed = 0;
        for m in self.msgs.iter().filter(|m| m.deleted) {
            match std::fs::remove_file(&m.path) {
                Ok(()) => {
                    removed += 1;
                    self.ctx.shared.usage.remove(&mb, m.size);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    failed += 1;
                    tracing::warn!(user = %login, "pop3: cannot delete {}: {e}", m.path.display());
                }
            }
        }
        tracing::info!(user = %login, removed, "pop3 logout: user=<{login}>, deleted={removed}");
        if failed > 0 {
            pop3::err("[SYS/TEMP] some deleted messages not removed")
        } else {
            pop3::ok(&format!("logging out, {removed} messages deleted"))
        }
    }
}

/// Messages in `new/` and `cur/`, oldest first (Maildir names start with the arrival time).
fn scan_maildrop(root: &std::path::Path) -> Vec<Msg> {
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        let Ok(rd) = std::fs::read_dir(root.join(sub)) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let Ok(meta) = e.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            // The unique part stays the same when flags are added (`:2,S`), so UIDL is stable.
            let uidl: String = name
                .split(':')
                .next()
                .unwrap_or(&name)
                .chars()
                .filter(|c| c.is_ascii_graphic())
                .take(70)
                .collect();
            out.push(Msg {
                path: e.path(),
                size: meta.len(),
                uidl,
                deleted: false,
            });
        }
    }
    out.sort_by(|a, b| a.uidl.cmp(&b.uidl));
    out
}

/// The `+OK` reply with the message (or its header and first `lines` body lines, for TOP),
/// byte-stuffed straight from the memory-mapped file.
fn read_message(path: &std::path::Path, lines: Option<usize>) -> std::io::Result<Vec<u8>> {
    let body = crate::message_file::open(path)?;
    let data: &[u8] = body.bytes();
    let reply = |part: &[u8]| {
        [
            pop3::ok(&format!("{} octets", part.len())),
            pop3::multiline(part),
        ]
        .concat()
    };
    let Some(n) = lines else {
        return Ok(reply(data));
    };
    let head_end = data
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .or_else(|| data.windows(2).position(|w| w == b"\n\n").map(|p| p + 2))
        .unwrap_or(data.len());
    let mut end = head_end;
    for _ in 0..n {
        match memchr_nl(&data[end..]) {
            Some(p) => end += p + 1,
            None => {
                end = data.len();
                break;
            }
        }
    }
    Ok(reply(&data[..end]))
}

fn memchr_nl(d: &[u8]) -> Option<usize> {
    d.iter().position(|b| *b == b'\n')
}
