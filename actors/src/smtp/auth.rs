//! AUTH (RFC 4954) with PLAIN (RFC 4616) and LOGIN, only inside TLS; failures are counted
//! per session and per client IP.

use super::session::{Next, Session};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use postcore_protocol::smtp::codes;
use postcore_protocol::smtp::sasl;

/// Failed attempts in one session before it is closed.
const MAX_SESSION_FAILURES: u32 = 3;

enum Step {
    Response(Vec<u8>),
    Cancelled,
    Malformed,
    Gone,
}

impl Session {
    async fn sasl_step(&mut self, challenge: &str) -> Step {
        let line = format!("334 {challenge}\r\n");
        self.conn.out.extend_from_slice(line.as_bytes());
        let Some(resp) = self.read_line().await else {
            return Step::Gone;
        };
        if resp == b"*" {
            return Step::Cancelled;
        }
        decode(&resp)
    }

    /// AUTH (RFC 4954): the whole exchange, every step, within one command timeout.
    pub(super) async fn authenticate(
        &mut self,
        mechanism: String,
        initial: Option<String>,
    ) -> Next {
        self.sasl_deadline = Some(
            std::time::Instant::now()
                + std::time::Duration::from_secs(
                    self.ctx.shared.config.limits.command_timeout_secs,
                ),
        );
        let next = self.authenticate_steps(mechanism, initial).await;
        self.sasl_deadline = None;
        next
    }

    async fn authenticate_steps(&mut self, mechanism: String, initial: Option<String>) -> Next {
        if let Some(next) = self.auth_refused() {
            return next;
        }
        let creds = match self.read_credentials(&mechanism, initial).await {
            Ok(c) => c,
            Err(next) => return next,
        };
        let ok_login = match creds {
            // Argon2 runs on the blocking pool, never on this event loop.
            Some((login, password)) => {
                crate::login::verify(&self.ctx.shared, &login, password).await
            }
            None => None,
        };
        match ok_login {
            Some(login) => {
                tracing::info!(client = %self.peer, sasl_method = %mechanism, sasl_username = %login, "authenticated");
                self.auth = Some(login);
                self.send(codes::AUTH_OK);
                Next::Continue
            }
            None => {
                self.auth_failures += 1;
                crate::login::record_failure(&self.ctx.shared, self.peer.ip());
                self.reject(
                    "auth_failed",
                    codes::AUTH_FAILED,
                    &format!("SASL {mechanism} authentication failed"),
                );
                if self.auth_failures >= MAX_SESSION_FAILURES {
                    self.send(codes::TOO_MANY_AUTH_FAILURES);
                    return Next::Close;
                }
                Next::Continue
            }
        }
    }

    /// RFC 4954 §4: AUTH is refused once authenticated, inside a transaction, before EHLO,
    /// before TLS, where not offered, and while this address is over its failure limit.
    fn auth_refused(&mut self) -> Option<Next> {
        if self.auth.is_some() {
            self.send(codes::ALREADY_AUTHENTICATED);
            return Some(Next::Continue);
        }
        if self.tx.is_some() {
            self.send(codes::AUTH_IN_TRANSACTION);
            return Some(Next::Continue);
        }
        if self.helo.is_none() {
            self.send(codes::NEED_EHLO);
            return Some(Next::Continue);
        }
        if !self.is_tls() {
            // RFC 4954 §4 / RFC 3207: no plaintext passwords on the wire.
            self.reject(
                "auth_without_tls",
                codes::ENCRYPTION_REQUIRED,
                "AUTH before STARTTLS",
            );
            return Some(Next::Continue);
        }
        if !self.auth_offered() {
            self.reject(
                "auth_not_offered",
                codes::AUTH_NOT_ENABLED,
                "AUTH on port 25 while disabled",
            );
            return Some(Next::Continue);
        }
        if crate::login::blocked(&self.ctx.shared, self.peer.ip()) {
            self.reject(
                "auth_rate_limit",
                codes::AUTH_RATE_LIMITED,
                "AUTH failure limit for this IP",
            );
            return Some(Next::Close);
        }
        None
    }

    /// Runs the SASL exchange of `mechanism` (PLAIN, RFC 4616; LOGIN) and returns the
    /// credentials (`None` when malformed), or how the session goes on when it ends early.
    async fn read_credentials(
        &mut self,
        mechanism: &str,
        initial: Option<String>,
    ) -> Result<Option<(String, String)>, Next> {
        let creds = match mechanism {
            "PLAIN" => {
                let step = match initial.as_deref() {
                    Some("=") => Step::Response(Vec::new()),
                    Some(s) => decode(s.as_bytes()),
                    None => self.sasl_step("").await,
                };
                match step {
                    Step::Response(r) => match sasl::parse_plain(&r) {
                        Some(c) if c.authzid.is_empty() || c.authzid == c.authcid => {
                            Some((c.authcid, c.password))
                        }
                        _ => None,
                    },
                    Step::Cancelled => return Err(self.auth_cancelled()),
                    Step::Malformed => return Err(self.auth_malformed()),
                    Step::Gone => return Err(Next::Close),
                }
            }
            "LOGIN" => {
                let user = match initial.as_deref() {
                    Some(s) => decode(s.as_bytes()),
                    None => self.sasl_step("VXNlcm5hbWU6").await,
                };
                let user = match user {
                    Step::Response(u) => u,
                    Step::Cancelled => return Err(self.auth_cancelled()),
                    Step::Malformed => return Err(self.auth_malformed()),
                    Step::Gone => return Err(Next::Close),
                };
                let pass = match self.sasl_step("UGFzc3dvcmQ6").await {
                    Step::Response(p) => p,
                    Step::Cancelled => return Err(self.auth_cancelled()),
                    Step::Malformed => return Err(self.auth_malformed()),
                    Step::Gone => return Err(Next::Close),
                };
                match (String::from_utf8(user), String::from_utf8(pass)) {
                    (Ok(u), Ok(p)) => Some((u, p)),
                    _ => None,
                }
            }
            _ => {
                self.send(codes::UNSUPPORTED_MECHANISM);
                return Err(Next::Continue);
            }
        };
        Ok(creds)
    }

    fn auth_cancelled(&mut self) -> Next {
        self.send(codes::AUTH_CANCELLED);
        Next::Continue
    }

    fn auth_malformed(&mut self) -> Next {
        self.send(codes::AUTH_UNDECODABLE);
        Next::Continue
    }
}

fn decode(s: &[u8]) -> Step {
    match B64.decode(s) {
        Ok(v) => Step::Response(v),
        Err(_) => Step::Malformed,
    }
}
