//! ManageSieve sessions (RFC 5804) on the `managesieve` listener: CAPABILITY, STARTTLS,
//! AUTHENTICATE PLAIN and LOGIN (only inside TLS unless "allow unencrypted connections" is
//! on; the same failure limits per IP and account as IMAP and POP3), HAVESPACE, PUTSCRIPT,
//! LISTSCRIPTS, SETACTIVE, GETSCRIPT, DELETESCRIPT, RENAMESCRIPT, CHECKSCRIPT, NOOP,
//! UNAUTHENTICATE, LOGOUT. Scripts are checked by compiling them and stored through
//! [`crate::sieve_admin`], the same path as the admin API.

use crate::conn::{Conn, ReadEnd, Transport};
use crate::context::{ListenerKind, WorkerCtx};
use crate::sieve_admin::{self, SieveError};
use base64::Engine;
use postcore_protocol::managesieve::{Arg, CommandReader, ReadEvent, response, string};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

/// Failed logins in one session before it is closed.
const MAX_FAILURES: u32 = 3;

struct Session {
    ctx: Rc<WorkerCtx>,
    peer: SocketAddr,
    conn: Conn,
    reader: CommandReader,
    user: Option<String>,
    failures: u32,
    errors: u32,
}

/// Entry point for an accepted ManageSieve connection.
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
    let max_literal = shared.config.sieve.max_script_size as u64 + 1024;
    let mut s = Session {
        ctx,
        peer,
        conn,
        reader: CommandReader::new(shared.config.limits.max_line_length.max(1024), max_literal),
        user: None,
        failures: 0,
        errors: 0,
    };
    s.run().await;
    s.conn.shutdown().await;
}

fn ok(text: &str) -> Vec<u8> {
    response("OK", None, text)
}

fn no(text: &str) -> Vec<u8> {
    response("NO", None, text)
}

/// RFC 5804 §1.3 response codes for the script errors.
fn refusal(e: &SieveError) -> Vec<u8> {
    let code = match e {
        SieveError::NotFound(_) => Some("NONEXISTENT"),
        SieveError::Exists(_) => Some("ALREADYEXISTS"),
        SieveError::Active(_) => Some("ACTIVE"),
        SieveError::Quota(which, _) => Some(if *which == "MAXSIZE" {
            "QUOTA/MAXSIZE"
        } else {
            "QUOTA/MAXSCRIPTS"
        }),
        SieveError::Internal(_) => Some("TRYLATER"),
        SieveError::Invalid(_) | SieveError::BadName => None,
    };
    let text = match e {
        SieveError::Internal(_) => "internal error, try again later".to_string(),
        other => other.to_string(),
    };
    response("NO", code, &text)
}

impl Session {
    fn plaintext_allowed(&self) -> bool {
        crate::login::plaintext_allowed(&self.ctx.shared, self.conn.is_tls())
    }

    async fn send(&mut self, data: &[u8]) -> bool {
        self.conn.out.extend_from_slice(data);
        self.conn.flush().await.is_ok()
    }

    /// The next command; `None` when the session must end (closed, timed out, or a literal
    /// over the limit, answered with BYE).
    async fn next(&mut self) -> Option<(String, Vec<Arg>)> {
        let timeout = Duration::from_secs(self.ctx.shared.config.limits.command_timeout_secs);
        loop {
            match self.conn.next_frame(&mut self.reader, timeout).await {
                Ok(ReadEvent::Command(name, args)) => return Some((name, args)),
                Ok(ReadEvent::Invalid(why)) => {
                    if !self.error(&format!("syntax error: {why}")).await {
                        return None;
                    }
                }
                Ok(ReadEvent::TooLong) => {
                    if !self.error("line too long").await {
                        return None;
                    }
                }
                Ok(ReadEvent::LiteralTooLarge(n)) => {
                    let _ = self
                        .send(&response(
                            "BYE",
                            Some("QUOTA/MAXSIZE"),
                            &format!("literal of {n} octets is too large"),
                        ))
                        .await;
                    return None;
                }
                Ok(ReadEvent::NeedMore) => {}
                Err(ReadEnd::Closed) => return None,
                Err(ReadEnd::Timeout) => {
                    let _ = self.send(&response("BYE", None, "idle for too long")).await;
                    return None;
                }
            }
        }
    }

    /// A NO for a bad command; false once `limits.max_errors` of them ended the session.
    async fn error(&mut self, text: &str) -> bool {
        self.errors += 1;
        if self.errors >= self.ctx.shared.config.limits.max_errors {
            tracing::info!(client = %self.peer, errors = self.errors, "managesieve: too many invalid commands, closing");
            let _ = self
                .send(&response("BYE", None, "too many invalid commands"))
                .await;
            return false;
        }
        self.send(&no(text)).await
    }

    /// RFC 5804 §1.7: the capability lines, then OK.
    fn capability(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut line = |k: &str, v: Option<&str>| {
            out.extend_from_slice(&string(k.as_bytes()));
            if let Some(v) = v {
                out.push(b' ');
                out.extend_from_slice(&string(v.as_bytes()));
            }
            out.extend_from_slice(b"\r\n");
        };
        line("IMPLEMENTATION", Some("postcore"));
        let sasl = if self.user.is_none() && self.plaintext_allowed() {
            "PLAIN LOGIN"
        } else {
            ""
        };
        line("SASL", Some(sasl));
        line(
            "SIEVE",
            Some(&postcore_protocol::sieve::CAPABILITIES.join(" ")),
        );
        if !self.conn.is_tls() {
            line("STARTTLS", None);
        }
        line(
            "MAXREDIRECTS",
            Some(
                &postcore_protocol::sieve::Limits::default()
                    .max_redirects
                    .to_string(),
            ),
        );
        if let Some(u) = &self.user {
            line("OWNER", Some(u));
        }
        line("VERSION", Some("1.0"));
        out.extend_from_slice(&ok(""));
        out
    }

    async fn run(&mut self) {
        let greeting = self.capability();
        if !self.send(&greeting).await {
            return;
        }
        while let Some((name, args)) = self.next().await {
            metrics::counter!(crate::metrics::MANAGESIEVE_COMMANDS, "command" => command_label(&name)).increment(1);
            let reply = match name.as_str() {
                "LOGOUT" => {
                    let _ = self.send(&ok("bye")).await;
                    return;
                }
                "CAPABILITY" => self.capability(),
                "NOOP" => match args.first().and_then(Arg::text) {
                    // RFC 5804 §2.13: the tag comes back in a TAG response code.
                    Some(tag) => response(
                        "OK",
                        Some(&format!(
                            "TAG {}",
                            String::from_utf8_lossy(&string(tag.as_bytes()))
                        )),
                        "done",
                    ),
                    None => ok("done"),
                },
                "STARTTLS" => match self.starttls().await {
                    Some(r) => r,
                    None => return,
                },
                "AUTHENTICATE" => match self.authenticate(&args).await {
                    Some(r) => r,
                    None => return,
                },
                "UNAUTHENTICATE" if self.user.is_some() => {
                    // RFC 5804 §2.14.1: back to the non-authenticated state.
                    self.user = None;
                    ok("")
                }
                _ if self.user.is_none() => {
                    if !self.error("authenticate first").await {
                        return;
                    }
                    continue;
                }
                _ => match self.script_command(&name, &args) {
                    Some(r) => r,
                    None => {
                        if !self
                            .error(&format!("unknown command or wrong arguments: {name}"))
                            .await
                        {
                            return;
                        }
                        continue;
                    }
                },
            };
            if !self.send(&reply).await {
                return;
            }
            if self.failures >= MAX_FAILURES {
                let _ = self
                    .send(&response("BYE", None, "too many failed logins"))
                    .await;
                return;
            }
        }
    }

    /// RFC 5804 §2.2: after the handshake the capabilities are sent again (SASL may change).
    async fn starttls(&mut self) -> Option<Vec<u8>> {
        if self.conn.is_tls() || self.user.is_some() {
            return Some(no("STARTTLS not available now"));
        }
        if !self.send(&ok("begin TLS negotiation")).await {
            return None;
        }
        // The connection core drops anything pipelined in plain text (command injection).
        if let Err(e) = self.conn.start_tls().await {
            tracing::info!(client = %self.peer, "managesieve STARTTLS: {e}");
            return None;
        }
        Some(self.capability())
    }

    /// AUTHENTICATE "PLAIN" / "LOGIN" (RFC 5804 §2.1, RFC 4616); `None` ends the session.
    async fn authenticate(&mut self, args: &[Arg]) -> Option<Vec<u8>> {
        if self.user.is_some() {
            return Some(no("already authenticated"));
        }
        if !self.plaintext_allowed() {
            return Some(response("NO", Some("ENCRYPT-NEEDED"), "use STARTTLS first"));
        }
        let mech = args
            .first()
            .and_then(Arg::text)
            .unwrap_or("")
            .to_ascii_uppercase();
        let initial = args.get(1).and_then(Arg::text).map(str::to_string);
        let (user, password) = match mech.as_str() {
            "PLAIN" => {
                let resp = match initial {
                    Some(i) => i,
                    None => self.challenge("").await?,
                };
                if resp == "*" {
                    return Some(no("authentication cancelled"));
                }
                let creds = b64(&resp).and_then(|d| postcore_protocol::smtp::sasl::parse_plain(&d));
                match creds {
                    Some(c) if c.authzid.is_empty() || c.authzid == c.authcid => {
                        (c.authcid, c.password)
                    }
                    _ => {
                        self.failures += 1;
                        return Some(no("invalid PLAIN response"));
                    }
                }
            }
            "LOGIN" => {
                let user = match initial {
                    Some(i) => i,
                    None => self.challenge("Username:").await?,
                };
                if user == "*" {
                    return Some(no("authentication cancelled"));
                }
                let pass = self.challenge("Password:").await?;
                let text = |s: &str| b64(s).and_then(|d| String::from_utf8(d).ok());
                match (text(&user), text(&pass)) {
                    (Some(u), Some(p)) => (u, p),
                    _ => {
                        self.failures += 1;
                        return Some(no("invalid LOGIN response"));
                    }
                }
            }
            _ => return Some(no("unsupported mechanism (PLAIN, LOGIN)")),
        };
        Some(self.login(&user, password).await)
    }

    /// Sends a SASL challenge (a string, base64) and reads the client's answer (a string);
    /// "*" cancels (`None` only when the connection ends).
    async fn challenge(&mut self, prompt: &str) -> Option<String> {
        let c = base64::engine::general_purpose::STANDARD.encode(prompt);
        let mut line = string(c.as_bytes());
        line.extend_from_slice(b"\r\n");
        if !self.send(&line).await {
            return None;
        }
        let (name, args) = self.next().await?;
        match (name.as_str(), args.first()) {
            ("", Some(a)) => a.text().map(str::to_string),
            (n, _) => Some(n.to_string()),
        }
    }

    async fn login(&mut self, user: &str, password: String) -> Vec<u8> {
        let shared = self.ctx.shared.clone();
        if crate::login::blocked(&shared, self.peer.ip()) {
            self.failures = MAX_FAILURES;
            return no("too many failed logins, try later");
        }
        match crate::login::verify(&shared, user, password).await {
            Some(login) => {
                tracing::info!(client = %self.peer, user = %login, result = "ok", "managesieve login: user=<{login}>, rip={}, result=ok", self.peer.ip());
                self.user = Some(login);
                ok("logged in")
            }
            None => {
                self.failures += 1;
                crate::login::record_failure(&shared, self.peer.ip());
                tracing::info!(client = %self.peer, user, result = "failed", "managesieve login: user=<{user}>, rip={}, result=failed", self.peer.ip());
                no("authentication failed")
            }
        }
    }

    /// The authenticated commands; `None` for an unknown one or wrong arguments.
    fn script_command(&mut self, name: &str, args: &[Arg]) -> Option<Vec<u8>> {
        let user = self.user.clone()?;
        let shared = self.ctx.shared.clone();
        let text = |i: usize| args.get(i).and_then(Arg::text);
        let result = match (name, args.len()) {
            ("LISTSCRIPTS", 0) => {
                let list = match sieve_admin::list(&shared, &user) {
                    Ok(l) => l,
                    Err(e) => return Some(refusal(&e)),
                };
                let mut out = Vec::new();
                for s in list {
                    out.extend_from_slice(&string(s.name.as_bytes()));
                    if s.active {
                        out.extend_from_slice(b" ACTIVE");
                    }
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(&ok(""));
                return Some(out);
            }
            ("HAVESPACE", 2) => {
                let size = match args.get(1) {
                    Some(Arg::Number(n)) => usize::try_from(*n).unwrap_or(usize::MAX),
                    _ => return None,
                };
                sieve_admin::have_space(&shared, &user, text(0)?, size)
            }
            ("PUTSCRIPT", 2) => {
                let Some(src) = text(1) else {
                    return Some(no("a script is UTF-8 text"));
                };
                sieve_admin::put(&shared, &user, text(0)?, src)
            }
            ("CHECKSCRIPT", 1) => {
                let Some(src) = text(0) else {
                    return Some(no("a script is UTF-8 text"));
                };
                sieve_admin::check(src)
            }
            ("GETSCRIPT", 1) => match sieve_admin::get(&shared, &user, text(0)?) {
                Ok(src) => {
                    let mut out = format!("{{{}}}\r\n", src.len()).into_bytes();
                    out.extend_from_slice(src.as_bytes());
                    out.extend_from_slice(b"\r\n");
                    out.extend_from_slice(&ok(""));
                    return Some(out);
                }
                Err(e) => Err(e),
            },
            // RFC 5804 §2.8: the empty name deactivates.
            ("SETACTIVE", 1) => {
                let n = text(0)?;
                sieve_admin::activate(&shared, &user, (!n.is_empty()).then_some(n), false)
            }
            ("DELETESCRIPT", 1) => sieve_admin::delete(&shared, &user, text(0)?),
            ("RENAMESCRIPT", 2) => sieve_admin::rename(&shared, &user, text(0)?, text(1)?),
            _ => return None,
        };
        Some(match result {
            Ok(()) => ok(""),
            Err(e) => refusal(&e),
        })
    }
}

fn b64(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .ok()
}

/// A fixed label for the commands metric (never the client's text).
fn command_label(name: &str) -> &'static str {
    const KNOWN: [&str; 14] = [
        "AUTHENTICATE",
        "STARTTLS",
        "LOGOUT",
        "CAPABILITY",
        "HAVESPACE",
        "PUTSCRIPT",
        "LISTSCRIPTS",
        "SETACTIVE",
        "GETSCRIPT",
        "DELETESCRIPT",
        "RENAMESCRIPT",
        "CHECKSCRIPT",
        "NOOP",
        "UNAUTHENTICATE",
    ];
    KNOWN
        .iter()
        .find(|k| **k == name)
        .copied()
        .unwrap_or("other")
}
