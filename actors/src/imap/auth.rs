//! CAPABILITY, STARTTLS (RFC 9051 §6.2.1), LOGIN (§6.2.3), AUTHENTICATE PLAIN/LOGIN with
//! SASL-IR (RFC 4959), master and migration logins, ENABLE (RFC 5161), ID (RFC 2971).

use super::{Done, Login, Session, UserSlot};
use base64::Engine;
use postcore_protocol::imap::Code;
use std::time::{Duration, Instant};

/// Special-use folders created on first login (RFC 6154).
pub(super) const SPECIAL_FOLDERS: [(&str, &str); 5] = [
    ("Drafts", "\\Drafts"),
    ("Sent", "\\Sent"),
    ("Trash", "\\Trash"),
    ("Junk", "\\Junk"),
    ("Archive", "\\Archive"),
];

impl Session {
    fn plaintext_allowed(&self) -> bool {
        crate::login::plaintext_allowed(&self.ctx.shared, self.is_tls())
    }

    /// The capability list for the current state (RFC 9051 §7.2.2).
    pub(super) fn capabilities(&self) -> String {
        let mut c = String::from("IMAP4rev1 IMAP4rev2 SASL-IR LITERAL+ ID ENABLE IDLE");
        if self.login.is_none() {
            if !self.is_tls() {
                c.push_str(" STARTTLS");
            }
            if self.plaintext_allowed() {
                c.push_str(" AUTH=PLAIN AUTH=LOGIN");
            } else {
                c.push_str(" LOGINDISABLED");
            }
        } else {
            c.push_str(
                " NAMESPACE UIDPLUS MULTIAPPEND CATENATE MOVE UNSELECT CHILDREN SPECIAL-USE CREATE-SPECIAL-USE \
                 LIST-EXTENDED LIST-STATUS ESEARCH SEARCHRES CONDSTORE QRESYNC QUOTA \
                 QUOTA=RES-STORAGE ACL RIGHTS=texk STATUS=SIZE SORT SORT=DISPLAY ESORT \
                 CONTEXT=SEARCH CONTEXT=SORT \
                 BINARY UTF8=ACCEPT WITHIN PREVIEW PREVIEW=FUZZY SNIPPET=FUZZY SAVEDATE",
            );
            c.push_str(" COMPRESS=DEFLATE METADATA NOTIFY URLAUTH URL-PARTIAL I18NLEVEL=1");
            for alg in postcore_protocol::imap::thread::ALGORITHMS {
                c.push_str(" THREAD=");
                c.push_str(alg);
            }
        }
        c
    }

    pub(super) async fn starttls(&mut self, tag: &str) -> Done {
        if self.is_tls() {
            return Done::bad("TLS is already active");
        }
        self.line(&format!("{tag} OK Begin TLS negotiation now"));
        if !self.flush().await {
            self.conn.close();
            return Done::Silent;
        }
        // RFC 9051 §6.2.1 / CVE-2011-0411 class: the connection core discards anything
        // pipelined after STARTTLS in plain text; it is never executed inside TLS.
        if let Err(e) = self.conn.start_tls().await {
            tracing::info!(client = %self.peer, "imap STARTTLS: {e}");
            self.conn.close();
        }
        Done::Silent
    }

    pub(super) async fn login_command(&mut self, user: &str, password: String) -> Done {
        if !self.plaintext_allowed() {
            return Done::no_with(
                Code::PrivacyRequired,
                "Plaintext authentication disallowed on non-secure connections; use STARTTLS",
            );
        }
        self.authenticate_user(user, password).await
    }

    /// AUTHENTICATE (RFC 9051 §6.2.2): the whole exchange, every step, within one timeout.
    pub(super) async fn authenticate(&mut self, mechanism: &str, initial: Option<String>) -> Done {
        self.sasl_deadline = Some(Instant::now() + self.timeout());
        let done = self.authenticate_steps(mechanism, initial).await;
        self.sasl_deadline = None;
        done
    }

    async fn authenticate_steps(&mut self, mechanism: &str, initial: Option<String>) -> Done {
        if !self.plaintext_allowed() {
            return Done::no_with(
                Code::PrivacyRequired,
                "Authentication disallowed on non-secure connections; use STARTTLS",
            );
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        match mechanism {
            "PLAIN" => {
                let resp = match initial {
                    Some(i) => i,
                    None => match self.sasl_step("").await {
                        Some(r) => r,
                        None => return Done::bad("Authentication cancelled"),
                    },
                };
                let data = if resp == "=" {
                    Some(Vec::new())
                } else {
                    b64.decode(resp.trim()).ok()
                };
                let creds = data.and_then(|d| postcore_protocol::smtp::sasl::parse_plain(&d));
                match creds {
                    Some(c) if c.authzid.is_empty() || c.authzid == c.authcid => {
                        self.authenticate_user(&c.authcid, c.password).await
                    }
                    Some(c) => {
                        // authzid = the user to act as, authcid = a master login.
                        let as_master = format!("{}*{}", c.authzid, c.authcid);
                        self.authenticate_user(&as_master, c.password).await
                    }
                    None => {
                        self.failures += 1;
                        Done::bad("Invalid SASL PLAIN response")
                    }
                }
            }
            "LOGIN" => {
                let user = match initial {
                    Some(i) => Some(i),
                    None => self.sasl_step("VXNlcm5hbWU6").await,
                };
                let Some(user) = user.and_then(|u| b64.decode(u.trim()).ok()) else {
                    return Done::bad("Authentication cancelled");
                };
                let Some(pass) = self
                    .sasl_step("UGFzc3dvcmQ6")
                    .await
                    .and_then(|p| b64.decode(p.trim()).ok())
                else {
                    return Done::bad("Authentication cancelled");
                };
                let user = String::from_utf8_lossy(&user).into_owned();
                let pass = String::from_utf8_lossy(&pass).into_owned();
                self.authenticate_user(&user, pass).await
            }
            _ => Done::no("Unsupported authentication mechanism"),
        }
    }

    /// Sends a `+ challenge` and reads one response line (`*` cancels: `None`).
    async fn sasl_step(&mut self, challenge: &str) -> Option<String> {
        self.line(&format!("+ {challenge}"));
        if !self.flush().await {
            return None;
        }
        // RFC 9051 §6.2.2: one line per response; 16 KiB is far above any SASL step here.
        let mut lines = postcore_protocol::smtp::LineReader::new(16 * 1024);
        let t = self.sasl_deadline.map_or_else(
            || self.timeout(),
            |d| d.saturating_duration_since(Instant::now()),
        );
        match self.conn.next_frame(&mut lines, t).await {
            Ok(postcore_protocol::smtp::LineEvent::Line(l)) => {
                let s = String::from_utf8_lossy(&l).into_owned();
                (s != "*").then_some(s)
            }
            Ok(_) => None,
            Err(_) => {
                self.conn.close();
                None
            }
        }
    }

    /// Checks credentials (`user`, or `user*master` for master/migration logins), applies
    /// the limits, and enters the authenticated state.
    async fn authenticate_user(&mut self, user: &str, password: String) -> Done {
        let shared = self.ctx.shared.clone();
        if crate::login::blocked(&shared, self.peer.ip()) {
            tracing::info!(client = %self.peer, "imap login refused: failure limit for this IP");
            self.failures = super::MAX_FAILURES;
            return Done::no_with(Code::Unavailable, "Too many failed logins, try later");
        }
        let (target, master) = match user.split_once('*') {
            Some((t, m)) => (t.to_lowercase(), Some(m.to_lowercase())),
            None => (user.to_lowercase(), None),
        };
        let ok = match &master {
            None => crate::login::verify(&shared, &target, password).await,
            Some(m) => self.verify_master(&target, m, password).await,
        };
        let Some(login) = ok else {
            self.failures += 1;
            crate::login::record_failure(&shared, self.peer.ip());
            tracing::info!(client = %self.peer, user, result = "failed", "imap login: user=<{user}>, rip={}, result=failed", self.peer.ip());
            // Slow down guessing a little (RFC 9051 §11.3 suggests delays).
            tokio::time::sleep(Duration::from_millis(200)).await;
            return Done::no_with(Code::AuthenticationFailed, "Authentication failed");
        };
        let max = shared
            .directory
            .snapshot()
            .settings
            .imap
            .max_connections_per_user_ip;
        let key = (login.clone(), self.peer.ip());
        {
            let mut m = shared
                .imap_sessions
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let n = m.entry(key.clone()).or_insert(0);
            if max > 0 && *n >= max {
                tracing::info!(client = %self.peer, user = %login, "imap login refused: {max} connections for this user from this IP");
                return Done::no_with(
                    Code::Limit,
                    format!(
                        "Maximum number of connections ({max}) from this IP for this user exceeded"
                    ),
                );
            }
            *n += 1;
        }
        let slot = UserSlot {
            shared: shared.clone(),
            key,
        };
        if let Err(e) = self.ensure_folders(&login) {
            tracing::warn!(user = %login, "imap: creating default folders: {e:#}");
            return Done::no_with(Code::ServerBug, "Mailbox not available");
        }
        self.expire_spam(&login);
        tracing::info!(client = %self.peer, user = %login, master = master.as_deref().unwrap_or(""), result = "ok", "imap login: user=<{login}>, rip={}, result=ok{}", self.peer.ip(), master.as_deref().map(|m| format!(", master=<{m}>")).unwrap_or_default());
        self.login = Some(Login {
            user: login,
            master,
            _slot: slot,
        });
        let caps = self.capabilities();
        Done::ok_with(Code::Capability(caps), "Logged in")
    }

    /// `alice*root` with the master password, or `alice*<migration user>` with its secret.
    async fn verify_master(&self, target: &str, master: &str, password: String) -> Option<String> {
        let dir = self.ctx.shared.directory.snapshot();
        let user = dir.users.get(target)?;
        if !user.mail_access {
            return None;
        }
        let imap = &dir.settings.imap;
        let hash = if master == "root" {
            imap.master_password_hash.clone()?
        } else if imap.migration_user.as_deref() == Some(master) {
            imap.migration_password_hash.clone()?
        } else {
            return None;
        };
        let ok = crate::login::check_password(password, hash).await;
        ok.then(|| target.to_string())
    }

    /// Creates INBOX and the special-use folders the first time a user logs in, subscribed.
    fn ensure_folders(&self, user: &str) -> anyhow::Result<()> {
        let idx = &self.ctx.shared.mailboxes;
        if idx.get(user, "INBOX")?.is_some() {
            return Ok(());
        }
        let root = self.user_root(user);
        idx.create(user, "INBOX", &root, None)?;
        idx.set_subscribed(user, "INBOX", true)?;
        for (name, special) in SPECIAL_FOLDERS {
            if idx.get(user, name)?.is_none() {
                let path = postcore_storage::mailbox::folder_path(&root, name);
                idx.create(user, name, &path, Some(special.to_string()))?;
            }
            // Subscribed from the start, as Dovecot's `auto = subscribe`: clients that show
            // subscribed folders only must see them.
            idx.set_subscribed(user, name, true)?;
        }
        Ok(())
    }

    pub(super) fn enable(&mut self, caps: Vec<String>) -> super::Done {
        let mut on = Vec::new();
        for c in caps {
            match c.as_str() {
                "CONDSTORE" => {
                    self.condstore = true;
                    on.push(c);
                }
                "QRESYNC" => {
                    self.condstore = true;
                    self.qresync = true;
                    on.push(c);
                }
                "IMAP4REV2" => {
                    self.rev2 = true;
                    on.push("IMAP4rev2".into());
                }
                "UTF8=ACCEPT" => {
                    self.utf8 = true;
                    on.push(c);
                }
                _ => {}
            }
        }
        self.line(format!("* ENABLED {}", on.join(" ")).trim_end());
        Done::ok("ENABLE completed")
    }

    pub(super) fn id(&mut self, fields: Vec<(String, Option<String>)>) -> Done {
        if !fields.is_empty() {
            let s: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or("NIL")))
                .collect();
            tracing::info!(client = %self.peer, "imap client id: {}", s.join(", "));
        }
        self.line("* ID (\"name\" \"postcore\" \"vendor\" \"postcore\")");
        Done::ok("ID completed")
    }

    /// The personal Maildir of `user`.
    pub(super) fn user_root(&self, user: &str) -> std::path::PathBuf {
        crate::usage::mailbox_path(
            &self.ctx.shared.mail_root,
            &postcore_storage::directory::Mailbox::User(user.to_string()),
        )
    }
}
