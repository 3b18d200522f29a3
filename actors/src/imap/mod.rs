//! IMAP sessions: IMAP4rev1 (RFC 3501) and IMAP4rev2 (RFC 9051) over the users' Maildirs
//! and the mailbox index (`postcore_storage::mailbox`).
//!
//! One file per group of commands: [`auth`] (CAPABILITY, STARTTLS, LOGIN, AUTHENTICATE,
//! ENABLE, ID), [`folders`] (LIST, CREATE, DELETE, RENAME, SUBSCRIBE, STATUS, NAMESPACE,
//! quota), [`select`] (SELECT/EXAMINE, the message view and its untagged updates, IDLE,
//! EXPUNGE, CLOSE), [`fetch`], [`flags`] (STORE), [`copy`] (COPY, MOVE, APPEND) and
//! [`search`] (SEARCH, SORT, ESEARCH).

mod acl;
mod auth;
mod catenate;
mod compress;
mod context;
mod copy;
mod expunge;
mod fetch;
mod flags;
mod folders;
mod idle;
mod metadata;
mod namespace;
mod notify;
mod quota;
mod search;
mod searchres;
mod seen;
mod select;
pub(crate) mod sort_keys;
mod status;
mod thread;
mod training;
pub(crate) mod urlauth;
pub(crate) mod view;

use crate::conn::{Conn, ReadEnd, Transport};
use crate::context::{ListenerKind, WorkerCtx};
use postcore_protocol::imap::{
    self, Code, CommandBody, CommandReader, ReadEvent, Status, StatusText,
};
use std::borrow::Cow;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Counter: IMAP commands by name.
pub const IMAP_COMMANDS: &str = "postcore_imap_commands_total";

/// Failed logins in one session before it is closed.
const MAX_FAILURES: u32 = 3;
/// Autologout timer for non-IDLE commands (RFC 9051 §5.4: at least 30 minutes once
/// authenticated; shorter before).
const AUTH_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Flush the output buffer once it holds this much.
const FLUSH_AT: usize = 64 * 1024;

/// Where the session is (RFC 9051 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    NotAuthenticated,
    Authenticated,
    Selected,
}

/// Releases the per-user-per-IP connection count when the session ends.
struct UserSlot {
    shared: std::sync::Arc<crate::context::Shared>,
    key: (String, std::net::IpAddr),
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        let mut m = self
            .shared
            .imap_sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.key);
            }
        }
    }
}

/// The logged-in user.
struct Login {
    /// Login name (owner of the personal namespace).
    user: String,
    /// Logged in through a master login (`user*master`).
    master: Option<String>,
    _slot: UserSlot,
}

/// One IMAP connection.
pub(crate) struct Session {
    ctx: Rc<WorkerCtx>,
    peer: SocketAddr,
    conn: Conn,
    reader: CommandReader,
    login: Option<Login>,
    sel: Option<select::Selected>,
    failures: u32,
    /// `BAD` responses so far (`limits.max_errors` of them close the session).
    bad_commands: u32,
    /// End of the AUTHENTICATE exchange in progress: all its steps share one deadline.
    sasl_deadline: Option<Instant>,
    /// ENABLE CONDSTORE (or a CONDSTORE-enabling command) was seen.
    condstore: bool,
    /// ENABLE QRESYNC.
    qresync: bool,
    /// ENABLE IMAP4rev2.
    rev2: bool,
    /// ENABLE UTF8=ACCEPT.
    utf8: bool,
    /// NOTIFY SET in force (RFC 5465).
    notifier: Option<notify::Notifier>,
}

/// Entry point for an accepted IMAP connection (`io`: TCP, or a duplex stream in tests).
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
    let implicit_tls = conn.is_tls();
    let max_msg = shared.directory.snapshot().settings.max_message_size as usize;
    let mut s = Session {
        ctx,
        peer,
        conn,
        reader: CommandReader::new(imap::Limits {
            max_line: 64 * 1024,
            max_append_literal: max_msg.max(1024),
            max_literal: 64 * 1024,
        }),
        login: None,
        sel: None,
        failures: 0,
        bad_commands: 0,
        sasl_deadline: None,
        condstore: false,
        qresync: false,
        rev2: false,
        utf8: false,
        notifier: None,
    };
    tracing::info!(client = %peer, tls = implicit_tls, "imap connect from [{}]", peer.ip());
    s.run().await;
    if let Some(l) = &s.login {
        tracing::info!(client = %peer, user = %l.user, "imap logout: user=<{}>, rip={}", l.user, peer.ip());
    }
    s.conn.shutdown().await;
}

/// The outcome of a command, for the tagged response (RFC 9051 §7.1).
pub(crate) enum Done {
    /// `tag OK …`.
    Ok(StatusText),
    /// `tag NO …`.
    No(StatusText),
    /// `tag BAD …`.
    Bad(StatusText),
    /// `tag OK …`, then close the connection (`BYE` already sent).
    Close(StatusText),
    /// Nothing to send (the command wrote its own ending, e.g. a failed STARTTLS).
    Silent,
}

impl Done {
    /// `OK text`.
    pub(crate) fn ok(text: impl Into<Cow<'static, str>>) -> Done {
        Done::Ok(StatusText::new(text))
    }

    /// `OK [code] text`.
    pub(crate) fn ok_with(code: Code, text: impl Into<Cow<'static, str>>) -> Done {
        Done::Ok(StatusText::with(code, text))
    }

    /// `NO text`.
    pub(crate) fn no(text: impl Into<Cow<'static, str>>) -> Done {
        Done::No(StatusText::new(text))
    }

    /// `NO [code] text`.
    pub(crate) fn no_with(code: Code, text: impl Into<Cow<'static, str>>) -> Done {
        Done::No(StatusText::with(code, text))
    }

    /// `BAD text`.
    pub(crate) fn bad(text: impl Into<Cow<'static, str>>) -> Done {
        Done::Bad(StatusText::new(text))
    }

    /// `OK text`, then the connection closes.
    pub(crate) fn close(text: impl Into<Cow<'static, str>>) -> Done {
        Done::Close(StatusText::new(text))
    }
}

impl Session {
    fn state(&self) -> State {
        match (&self.login, &self.sel) {
            (None, _) => State::NotAuthenticated,
            (Some(_), None) => State::Authenticated,
            (Some(_), Some(_)) => State::Selected,
        }
    }

    fn is_tls(&self) -> bool {
        self.conn.is_tls()
    }

    /// Appends a status response (`tag` `*` for untagged); tagged `BAD`s are counted.
    fn respond(&mut self, tag: &str, status: Status, text: &StatusText) {
        if status == Status::Bad && tag != "*" {
            self.bad_commands += 1;
        }
        imap::response::write_status(&mut self.conn.out, tag, status, text);
    }

    /// Appends `* OK [code] text`.
    fn untagged_ok(&mut self, code: Code, text: &'static str) {
        self.respond("*", Status::Ok, &StatusText::with(code, text));
    }

    /// Appends `* BYE [code] text`.
    fn bye(&mut self, code: Option<Code>, text: &'static str) {
        let t = StatusText {
            code,
            text: text.into(),
        };
        self.respond("*", Status::Bye, &t);
    }

    /// Appends an untagged or continuation line (CRLF added).
    fn line(&mut self, s: &str) {
        self.conn.out.extend_from_slice(s.as_bytes());
        self.conn.out.extend_from_slice(b"\r\n");
    }

    async fn flush(&mut self) -> bool {
        self.conn.flush().await.is_ok()
    }

    async fn flush_if_big(&mut self) -> bool {
        if self.conn.out.len() >= FLUSH_AT {
            self.flush().await
        } else {
            true
        }
    }

    /// Reads more bytes until `deadline` at most; `false` on EOF, error or timeout.
    async fn fill(&mut self, deadline: Instant) -> bool {
        if self.reader.in_command() {
            self.conn.quickack();
        }
        match self.conn.fill_until(deadline).await {
            Ok(_) => true,
            Err(ReadEnd::Closed) => false,
            Err(ReadEnd::Timeout) => {
                self.bye(None, "Autologout; idle for too long");
                let _ = self.flush().await;
                false
            }
        }
    }

    fn timeout(&self) -> Duration {
        if self.login.is_some() {
            AUTH_TIMEOUT
        } else {
            Duration::from_secs(self.ctx.shared.config.limits.command_timeout_secs)
        }
    }

    async fn run(&mut self) {
        let greeting = StatusText::with(
            Code::Capability(self.capabilities()),
            format!(
                "{} IMAP4rev2 server ready (postcore)",
                self.ctx.shared.config.hostname
            ),
        );
        self.respond("*", Status::Ok, &greeting);
        if !self.flush().await {
            return;
        }
        let mut shutdown = self.ctx.shared.shutdown.clone();
        // The timeout is a total for each command, literals included: a client sending one
        // octet at a time cannot stretch it (RFC 9051 §5.4's autologout timer).
        let mut deadline = Instant::now() + self.timeout();
        loop {
            let ev = self.reader.ingest(&mut self.conn.inbuf);
            match ev {
                ReadEvent::NeedMore => {
                    // RFC 5465: with NOTIFY, events are pushed while no command is in progress.
                    let between = !self.reader.in_command();
                    let mut watches = match self.notifier.as_mut() {
                        Some(n) if between => n.take_watches(),
                        _ => Vec::new(),
                    };
                    let mut selected = match (&self.notifier, &self.sel) {
                        (Some(n), Some(s)) if between && n.watches_selected() => {
                            Some(s.watch.clone())
                        }
                        _ => None,
                    };
                    let woke = tokio::select! {
                        ok = self.fill(deadline) => if ok { false } else { return },
                        _ = shutdown.wait_for(|v| *v) => {
                            self.bye(Some(Code::Unavailable), "Server shutting down");
                            let _ = self.flush().await;
                            return;
                        }
                        _ = notify::changed(&mut watches), if !watches.is_empty() => true,
                        _ = async {
                            if let Some(w) = selected.as_mut() {
                                let _ = w.changed().await;
                            }
                        }, if selected.is_some() => true,
                    };
                    if let Some(n) = self.notifier.as_mut() {
                        n.restore_watches(watches);
                    }
                    if woke && !self.notify_pushed().await {
                        return;
                    }
                }
                ReadEvent::Continue => {
                    self.line("+ Ready for literal data");
                    if !self.flush().await {
                        return;
                    }
                }
                ReadEvent::TooBig { tag, fatal } => {
                    let tag = tag.unwrap_or_else(|| "*".into());
                    if fatal {
                        self.bye(Some(Code::TooBig), "Literal too big");
                        let _ = self.flush().await;
                        return;
                    }
                    let t = StatusText::with(Code::TooBig, "Command or literal too long");
                    self.respond(&tag, Status::Bad, &t);
                    if !self.flush().await {
                        return;
                    }
                    deadline = Instant::now() + self.timeout();
                }
                ReadEvent::Command(raw) => {
                    let keep_going = self.handle(&raw).await;
                    if !self.flush().await || !keep_going {
                        return;
                    }
                    deadline = Instant::now() + self.timeout();
                    if self.failures >= MAX_FAILURES {
                        self.bye(None, "Too many failed logins");
                        let _ = self.flush().await;
                        return;
                    }
                    if self.bad_commands >= self.ctx.shared.config.limits.max_errors {
                        tracing::info!(client = %self.peer, bad = self.bad_commands, "imap: too many invalid commands, closing");
                        self.bye(None, "Too many invalid commands");
                        let _ = self.flush().await;
                        return;
                    }
                }
            }
        }
    }

    /// Parses and runs one command; `false` ends the session.
    async fn handle(&mut self, raw: &[u8]) -> bool {
        let cmd = match imap::parse(raw) {
            Ok(c) => c,
            Err(e) => {
                metrics::counter!(IMAP_COMMANDS, "command" => "invalid").increment(1);
                // RFC 9051 §6.4.4, RFC 5256 §BASE.6.4.SORT: an unsupported charset is a
                // tagged NO, not a BAD.
                let status = match e.code {
                    Some(Code::BadCharset(_)) => Status::No,
                    _ => Status::Bad,
                };
                let text = match e.code {
                    Some(code) => StatusText::with(code, e.message),
                    None => StatusText::new(format!("Error in IMAP command: {}", e.message)),
                };
                // RFC 9051 §7.1.5: BAD for syntax errors; the session goes on.
                self.respond(&e.tag, status, &text);
                return true;
            }
        };
        let tag = cmd.tag.clone();
        let name = command_name(&cmd.body);
        metrics::counter!(IMAP_COMMANDS, "command" => name).increment(1);
        self.notify_before_command().await;
        let done = self.dispatch(&tag, cmd.body).await;
        // RFC 5267 §4.3: updating searches report what the command changed.
        self.update_contexts().await;
        self.notify_after_command().await;
        if self.log_actions()
            && !matches!(
                name,
                "noop" | "capability" | "idle" | "login" | "authenticate"
            )
            && let Some(l) = &self.login
        {
            let outcome = match &done {
                Done::Ok(_) => "ok",
                Done::No(_) => "no",
                Done::Bad(_) => "bad",
                _ => "-",
            };
            let mbox = self.sel.as_ref().map(|s| s.name.as_str()).unwrap_or("");
            tracing::info!(user = %l.user, client = %self.peer.ip(), command = name, mailbox = mbox, result = outcome, "imap({}): {name} mailbox={mbox:?} result={outcome}", l.user);
        }
        match done {
            Done::Ok(t) => self.respond(&tag, Status::Ok, &t),
            Done::No(t) => self.respond(&tag, Status::No, &t),
            Done::Bad(t) => self.respond(&tag, Status::Bad, &t),
            Done::Close(t) => {
                self.respond(&tag, Status::Ok, &t);
                return false;
            }
            Done::Silent => {}
        }
        self.conn.is_open()
    }

    /// One value of the IMAP settings as they are now (the admin API changes them at run time).
    pub(super) fn imap_setting<T>(
        &self,
        get: impl FnOnce(&postcore_storage::directory::ImapSettings) -> T,
    ) -> T {
        get(&self.ctx.shared.directory.snapshot().settings.imap)
    }

    fn log_actions(&self) -> bool {
        self.imap_setting(|s| s.log_actions)
    }

    async fn dispatch(&mut self, tag: &str, body: CommandBody) -> Done {
        let state = self.state();
        let body = match self.any_state(body, state).await {
            Ok(done) => return done,
            Err(body) => body,
        };
        if state == State::NotAuthenticated {
            return self.not_authenticated(tag, body).await;
        }
        if let CommandBody::Compress(mechanism) = &body {
            return self.compress(tag, mechanism).await;
        }
        let body = match self.authenticated(body).await {
            Ok(done) => return done,
            Err(body) => body,
        };
        if state != State::Selected {
            return Done::bad("No mailbox selected");
        }
        self.selected(tag, body).await
    }

    /// Commands valid in any state (RFC 9051 §6.1); others are handed back.
    async fn any_state(&mut self, body: CommandBody, state: State) -> Result<Done, CommandBody> {
        use CommandBody as C;
        match body {
            C::Capability => {
                let c = self.capabilities();
                self.line(&format!("* CAPABILITY {c}"));
                Ok(Done::ok("CAPABILITY completed"))
            }
            C::Noop => {
                if state == State::Selected {
                    self.refresh(true).await;
                }
                Ok(Done::ok("NOOP completed"))
            }
            C::Logout => {
                self.bye(None, "Logging out");
                Ok(Done::close("LOGOUT completed"))
            }
            C::Id(fields) => Ok(self.id(fields)),
            other => Err(other),
        }
    }

    /// The not-authenticated state (RFC 9051 §6.2).
    async fn not_authenticated(&mut self, tag: &str, body: CommandBody) -> Done {
        use CommandBody as C;
        match body {
            C::StartTls => self.starttls(tag).await,
            C::Login { user, password } => self.login_command(&user, password).await,
            C::Authenticate { mechanism, initial } => self.authenticate(&mechanism, initial).await,
            _ => Done::bad("Command not valid in this state; log in first"),
        }
    }

    /// The authenticated state (RFC 9051 §6.3; QUOTA, ACL); others are handed back.
    async fn authenticated(&mut self, body: CommandBody) -> Result<Done, CommandBody> {
        use CommandBody as C;
        match body {
            C::StartTls | C::Login { .. } | C::Authenticate { .. } => {
                Ok(Done::bad("Already authenticated"))
            }
            C::Enable(caps) => Ok(self.enable(caps)),
            C::Select {
                mailbox,
                read_only,
                condstore,
                qresync,
            } => Ok(self.select(&mailbox, read_only, condstore, qresync).await),
            C::Create {
                mailbox,
                special_use,
            } => Ok(self.create(&mailbox, special_use)),
            C::Delete(m) => Ok(self.delete(&m)),
            C::Rename { from, to } => Ok(self.rename(&from, &to)),
            C::Subscribe(m) => Ok(self.subscribe(&m, true)),
            C::Unsubscribe(m) => Ok(self.subscribe(&m, false)),
            C::List {
                reference,
                patterns,
                options,
            } => Ok(self.list(&reference, &patterns, &options)),
            C::Namespace => Ok(self.namespace()),
            C::GetMetadata {
                mailbox,
                entries,
                max_size,
                depth,
            } => Ok(self.get_metadata(&mailbox, &entries, max_size, depth)),
            C::SetMetadata { mailbox, entries } => Ok(self.set_metadata(&mailbox, &entries)),
            C::Status { mailbox, items } => Ok(self.status(&mailbox, &items)),
            C::Append { mailbox, messages } => Ok(self.append(&mailbox, messages).await),
            C::Idle => Ok(self.idle().await),
            C::Notify(set) => Ok(self.notify(set).await),
            C::GenUrlAuth(pairs) => Ok(self.genurlauth(&pairs)),
            C::UrlFetch(urls) => Ok(self.urlfetch(&urls)),
            C::ResetKey(arg) => Ok(self.resetkey(arg)),
            C::GetQuota(root) => Ok(self.get_quota(&root)),
            C::GetQuotaRoot(m) => Ok(self.get_quota_root(&m)),
            C::SetQuota(_) => Ok(Done::no_with(
                Code::NoPerm,
                "Quotas are set by the administrator",
            )),
            C::GetAcl(m) => Ok(self.get_acl(&m)),
            C::MyRights(m) => Ok(self.my_rights(&m)),
            C::ListRights {
                mailbox,
                identifier,
            } => Ok(self.list_rights(&mailbox, &identifier)),
            C::SetAcl {
                mailbox,
                identifier,
                rights,
            } => Ok(self.set_acl(&mailbox, &identifier, Some(&rights))),
            C::DeleteAcl {
                mailbox,
                identifier,
            } => Ok(self.set_acl(&mailbox, &identifier, None)),
            other => Err(other),
        }
    }

    /// The selected state (RFC 9051 §6.4).
    async fn selected(&mut self, tag: &str, body: CommandBody) -> Done {
        use CommandBody as C;
        match self.expand_saved(body) {
            C::Check => {
                self.refresh(true).await;
                Done::ok("CHECK completed")
            }
            C::Close => self.close(true).await,
            C::Unselect => self.close(false).await,
            C::Expunge(uids) => self.expunge(uids).await,
            C::Search { uid, ret, key } => self.search(tag, uid, ret, key).await,
            C::Sort {
                uid,
                ret,
                criteria,
                key,
            } => self.sort(tag, uid, ret, criteria, key).await,
            C::Thread {
                uid,
                algorithm,
                key,
            } => self.thread(uid, algorithm, key).await,
            C::Fetch {
                uid,
                set,
                atts,
                changed_since,
                vanished,
            } => self.fetch(uid, set, atts, changed_since, vanished).await,
            C::Store {
                uid,
                set,
                unchanged_since,
                mode,
                silent,
                flags,
            } => {
                self.store(uid, set, unchanged_since, mode, silent, flags)
                    .await
            }
            C::CancelUpdate(tags) => self.cancel_update(&tags),
            C::Copy { uid, set, mailbox } => self.copy(uid, set, &mailbox, false).await,
            C::Move { uid, set, mailbox } => self.copy(uid, set, &mailbox, true).await,
            _ => Done::bad("Command not valid in this state"),
        }
    }
}

fn command_name(c: &CommandBody) -> &'static str {
    use CommandBody as C;
    match c {
        C::Capability => "capability",
        C::Noop => "noop",
        C::Logout => "logout",
        C::StartTls => "starttls",
        C::Authenticate { .. } => "authenticate",
        C::Login { .. } => "login",
        C::Enable(_) => "enable",
        C::Select {
            read_only: false, ..
        } => "select",
        C::Select { .. } => "examine",
        C::Create { .. } => "create",
        C::Delete(_) => "delete",
        C::Rename { .. } => "rename",
        C::Subscribe(_) => "subscribe",
        C::Unsubscribe(_) => "unsubscribe",
        C::List { .. } => "list",
        C::Namespace => "namespace",
        C::Compress(_) => "compress",
        C::GetMetadata { .. } => "getmetadata",
        C::SetMetadata { .. } => "setmetadata",
        C::Status { .. } => "status",
        C::Append { .. } => "append",
        C::Idle => "idle",
        C::Check => "check",
        C::Close => "close",
        C::Unselect => "unselect",
        C::Expunge(_) => "expunge",
        C::Search { .. } => "search",
        C::Sort { .. } => "sort",
        C::Thread { .. } => "thread",
        C::CancelUpdate(_) => "cancelupdate",
        C::Notify(_) => "notify",
        C::GenUrlAuth(_) | C::UrlFetch(_) | C::ResetKey(_) => "urlauth",
        C::Fetch { .. } => "fetch",
        C::Store { .. } => "store",
        C::Copy { .. } => "copy",
        C::Move { .. } => "move",
        C::Id(_) => "id",
        C::GetQuota(_) | C::GetQuotaRoot(_) | C::SetQuota(_) => "quota",
        C::GetAcl(_)
        | C::SetAcl { .. }
        | C::DeleteAcl { .. }
        | C::ListRights { .. }
        | C::MyRights(_) => "acl",
    }
}
