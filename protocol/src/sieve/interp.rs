//! Runs a compiled script over one message and gives back what it decided: the actions in
//! order (RFC 5228 §4), whether the implicit keep stands (§2.10.2) and with which flags
//! (RFC 5232 §5), the edited header (RFC 5293) and the duplicate ids to record (RFC 7352).
//! Nothing here sends, stores or remembers: the caller carries the outcome out.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::dates::{self, Moment};
use super::mail::{self, AddressParts, Mail};
use super::matching;
use super::program::*;

/// Limits that stop a runaway or hostile script (its actions dropped, the implicit keep
/// done, the error logged).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Actions a script may take (Pigeonhole's `sieve_max_actions`: 32).
    pub max_actions: usize,
    /// Redirects (Pigeonhole's `sieve_max_redirects`: 4).
    pub max_redirects: usize,
    /// Work units: each command and test one, each comparison its value's length / 64.
    pub max_steps: u64,
    /// Longest variable value, in octets (RFC 5229 §6 asks for at least 4000).
    pub max_variable_size: usize,
    /// Include nesting (RFC 6609 §3.2).
    pub max_include_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_actions: 32,
            max_redirects: 4,
            max_steps: 2_000_000,
            max_variable_size: 4096,
            max_include_depth: 10,
        }
    }
}

/// The envelope of the delivery (RFC 5228 §5.4).
#[derive(Debug, Clone, Default)]
pub struct Envelope {
    /// MAIL FROM, empty for the null reverse-path.
    pub from: String,
    /// The RCPT TO address this delivery is for.
    pub to: String,
}

/// What the script may ask of the world around it.
pub trait Host {
    /// Whether a mailbox exists (RFC 5490 §3.1).
    fn mailbox_exists(&self, _name: &str) -> bool {
        false
    }
    /// Whether a duplicate id was recorded and has not expired (RFC 7352 §3).
    fn duplicate_seen(&self, _id: &str) -> bool {
        false
    }
    /// spamtest's value (RFC 5235 §3.2): "0" untested, else "1".."10" or with `percent`
    /// "0".."100".
    fn spam_test(&self, _percent: bool) -> String {
        "0".into()
    }
    /// virustest's value (RFC 5235 §3.3): "0" untested, "1" clean … "5" infected.
    fn virus_test(&self) -> String {
        "0".into()
    }
    /// Now, in the server's zone.
    fn now(&self) -> Moment;
    /// A script for `include` (RFC 6609): `Ok(None)` when there is none by that name.
    fn include(&self, _name: &str, _global: bool) -> Result<Option<Arc<Script>>, String> {
        Ok(None)
    }
}

/// A vacation response as the script asked for it (RFC 5230 §4); whether it is sent is
/// decided when it is carried out (`vacation::eligible` and the once-per-period record).
#[derive(Debug, Clone, PartialEq)]
pub struct VacationAction {
    /// Seconds between replies to one sender.
    pub period: u64,
    /// `:subject`, or `None` for "Auto: " and the original subject.
    pub subject: Option<String>,
    /// `:from`.
    pub from: Option<String>,
    /// `:addresses`: the user's other addresses.
    pub addresses: Vec<String>,
    /// `:mime`.
    pub mime: bool,
    /// The handle that keys the once-per-period record.
    pub handle: String,
    /// The reply's body.
    pub reason: String,
}

/// One action, in the order the script took it.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Deliver into a mailbox (`keep` is INBOX).
    Store {
        /// Mailbox name ("INBOX" for keep).
        mailbox: String,
        /// IMAP flags to set.
        flags: Vec<String>,
        /// `:create`.
        create: bool,
        /// Taken by `keep` (not `fileinto`).
        keep: bool,
    },
    /// Forward (RFC 5228 §4.2).
    Redirect {
        /// Target.
        address: String,
        /// `:copy`.
        copy: bool,
    },
    /// Refuse with a reason (RFC 5429).
    Reject {
        /// Reason.
        reason: String,
        /// ereject.
        extended: bool,
    },
    /// discard.
    Discard,
    /// vacation.
    Vacation(Box<VacationAction>),
    /// Record a duplicate id once the message is delivered (RFC 7352 §3.1).
    TrackDuplicate(DuplicateMark),
}

/// A duplicate id to record once the message is delivered (RFC 7352 §3.1).
#[derive(Debug, Clone, PartialEq)]
pub struct DuplicateMark {
    /// The id (handle and value combined).
    pub id: String,
    /// `:handle`, if given.
    pub handle: Option<String>,
    /// How long it is remembered.
    pub seconds: u64,
    /// `:last`: the period restarts at each sighting.
    pub last: bool,
}

/// What a run decided.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Outcome {
    /// Actions in order.
    pub actions: Vec<Action>,
    /// Whether the implicit keep stands.
    pub implicit_keep: bool,
    /// Flags for the implicit keep (the internal variable at the end, RFC 5232 §3).
    pub keep_flags: Vec<String>,
    /// The header section after editheader, if it changed.
    pub header: Option<Vec<u8>>,
    /// A run-time error: the actions were dropped and the implicit keep stands.
    pub error: Option<String>,
    /// The script ended with `stop` (RFC 5228 §3.3): scripts chained after it do not run.
    pub stopped: bool,
}

/// The longest vacation period (Pigeonhole's `sieve_vacation_max_period`: 60 days).
pub const VACATION_MAX_SECONDS: u64 = 60 * 86400;
/// The shortest (Pigeonhole's `sieve_vacation_min_period`: 1 day).
pub const VACATION_MIN_SECONDS: u64 = 86400;
/// The default (RFC 5230 §4.1: 7 days).
pub const VACATION_DEFAULT_SECONDS: u64 = 7 * 86400;
/// The default duplicate period (RFC 7352 §3.4 leaves it to the site; Pigeonhole: 12 h).
pub const DUPLICATE_DEFAULT_SECONDS: u64 = 12 * 3600;

/// Runs `script` over `message` for one recipient.
pub fn run(
    script: &Script,
    message: &[u8],
    envelope: &Envelope,
    host: &dyn Host,
    limits: Limits,
) -> Outcome {
    let mut r = Run {
        host,
        limits,
        mail: Mail::new(message),
        env: envelope,
        globals: HashMap::new(),
        matchvars: Vec::new(),
        flags: Vec::new(),
        actions: Vec::new(),
        implicit_keep: true,
        steps: 0,
        regexes: HashMap::new(),
        included: HashSet::new(),
        redirects: 0,
    };
    let mut frame = Frame {
        script,
        locals: HashMap::new(),
        globals: HashSet::new(),
    };
    let result = r
        .block(&script.commands, &mut frame, 0)
        .and_then(|flow| r.check_conflicts().map(|()| flow));
    match result {
        Ok(flow) => Outcome {
            implicit_keep: r.implicit_keep,
            keep_flags: r.flags.clone(),
            header: r.mail.edited.then(|| r.mail.header_section()),
            actions: r.actions,
            error: None,
            stopped: matches!(flow, Flow::Stop),
        },
        // RFC 5228 §2.10.6: on a run-time error the implicit keep is done.
        Err(e) => Outcome {
            implicit_keep: true,
            error: Some(e),
            ..Outcome::default()
        },
    }
}

enum Flow {
    Next,
    Stop,
    Return,
}

struct Frame<'s> {
    script: &'s Script,
    locals: HashMap<String, String>,
    globals: HashSet<String>,
}

struct Run<'a> {
    host: &'a dyn Host,
    limits: Limits,
    mail: Mail<'a>,
    env: &'a Envelope,
    globals: HashMap<String, String>,
    matchvars: Vec<String>,
    flags: Vec<String>,
    actions: Vec<Action>,
    implicit_keep: bool,
    steps: u64,
    regexes: HashMap<(String, Comparator), Option<regex::Regex>>,
    included: HashSet<(bool, String)>,
    redirects: usize,
}

type R<T> = Result<T, String>;

impl<'a> Run<'a> {
    fn tick(&mut self, n: u64) -> R<()> {
        self.steps += n;
        if self.steps > self.limits.max_steps {
            Err("the script ran too long (step limit)".into())
        } else {
            Ok(())
        }
    }

    fn block(&mut self, cmds: &[Command], f: &mut Frame<'_>, depth: usize) -> R<Flow> {
        for c in cmds {
            match self.command(c, f, depth)? {
                Flow::Next => {}
                other => return Ok(other),
            }
        }
        Ok(Flow::Next)
    }

    fn command(&mut self, c: &Command, f: &mut Frame<'_>, depth: usize) -> R<Flow> {
        self.tick(1)?;
        match c {
            Command::If {
                branches,
                otherwise,
            } => {
                for (t, body) in branches {
                    if self.test(t, f)? {
                        return self.block(body, f, depth);
                    }
                }
                if let Some(body) = otherwise {
                    return self.block(body, f, depth);
                }
            }
            Command::Stop => return Ok(Flow::Stop),
            Command::Return => return Ok(Flow::Return),
            Command::Keep { flags } => {
                let flags = self.flag_arg(flags.as_deref(), f);
                self.store("INBOX".into(), flags, false, true)?;
                self.implicit_keep = false;
            }
            Command::Discard => {
                self.push(Action::Discard)?;
                self.implicit_keep = false;
            }
            Command::FileInto {
                mailbox,
                copy,
                create,
                flags,
            } => {
                let mailbox = self.expand(mailbox, f);
                let flags = self.flag_arg(flags.as_deref(), f);
                self.store(mailbox, flags, *create, false)?;
                if !copy {
                    self.implicit_keep = false;
                }
            }
            Command::Redirect { address, copy } => {
                let address = self.expand(address, f);
                if !super::compile::plausible_address(&address) {
                    return Err(format!("invalid redirect address \"{address}\""));
                }
                let address = canonical_address(&bare_address(&address));
                let dup = self.actions.iter().any(|a| matches!(a, Action::Redirect { address: o, .. } if same_address(o, &address)));
                if !dup {
                    self.redirects += 1;
                    if self.redirects > self.limits.max_redirects {
                        return Err("too many redirects".into());
                    }
                    self.push(Action::Redirect {
                        address,
                        copy: *copy,
                    })?;
                }
                if !copy {
                    self.implicit_keep = false;
                }
            }
            Command::Reject { reason, extended } => {
                let reason = self.expand(reason, f);
                if self
                    .actions
                    .iter()
                    .any(|a| matches!(a, Action::Reject { .. }))
                {
                    return Err("more than one reject".into());
                }
                self.push(Action::Reject {
                    reason,
                    extended: *extended,
                })?;
                self.implicit_keep = false;
            }
            Command::Flags {
                op,
                variable,
                flags,
            } => self.flag_command(*op, variable.as_ref(), flags, f)?,
            Command::Set {
                name,
                value,
                modifiers,
            } => {
                let v = self.expand(value, f);
                let v = apply_modifiers(v, modifiers);
                self.set_var(name, v, f);
            }
            Command::Vacation(v) => self.vacation(v, f)?,
            Command::AddHeader { last, name, value } => {
                let name = self.expand(name, f);
                let value = self.expand(value, f);
                if !crate::message::valid_field_name(&name) {
                    return Err(format!("addheader: invalid field name \"{name}\""));
                }
                if !protected(&name) {
                    let field = mail::Field {
                        name,
                        raw: format!(" {}", fold_value(&value)),
                    };
                    if *last {
                        self.mail.fields.push(field);
                    } else {
                        self.mail.fields.insert(0, field);
                    }
                    self.mail.edited = true;
                }
            }
            Command::DeleteHeader {
                index,
                matcher,
                name,
                patterns,
            } => {
                let name = self.expand(name, f);
                if !protected(&name) {
                    self.delete_header(&name, *index, *matcher, patterns.as_deref(), f)?;
                }
            }
            Command::Include {
                global,
                once,
                optional,
                name,
            } => {
                let name = self.expand(name, f);
                return self.include(&name, *global, *once, *optional, depth);
            }
            Command::Global(names) => {
                for n in names {
                    f.globals.insert(n.clone());
                }
            }
        }
        Ok(Flow::Next)
    }

    fn include(
        &mut self,
        name: &str,
        global: bool,
        once: bool,
        optional: bool,
        depth: usize,
    ) -> R<Flow> {
        let key = (global, name.to_string());
        if once && self.included.contains(&key) {
            return Ok(Flow::Next);
        }
        if depth + 1 > self.limits.max_include_depth {
            return Err(format!("include nested too deeply at \"{name}\""));
        }
        let script = match self.host.include(name, global) {
            Ok(Some(s)) => s,
            Ok(None) if optional => return Ok(Flow::Next),
            Ok(None) => return Err(format!("included script \"{name}\" does not exist")),
            Err(e) => return Err(format!("included script \"{name}\": {e}")),
        };
        self.included.insert(key);
        let mut frame = Frame {
            script: &script,
            locals: HashMap::new(),
            globals: HashSet::new(),
        };
        match self.block(&script.commands, &mut frame, depth + 1)? {
            Flow::Stop => Ok(Flow::Stop),
            _ => Ok(Flow::Next),
        }
    }

    fn push(&mut self, a: Action) -> R<()> {
        if self.actions.len() >= self.limits.max_actions {
            return Err("too many actions".into());
        }
        self.actions.push(a);
        Ok(())
    }

    /// RFC 5228 §4.1 / §2.10.3: storing twice into one mailbox stores once.
    fn store(&mut self, mailbox: String, flags: Vec<String>, create: bool, keep: bool) -> R<()> {
        let same = |a: &str, b: &str| {
            a == b || (a.eq_ignore_ascii_case("inbox") && b.eq_ignore_ascii_case("inbox"))
        };
        for a in &mut self.actions {
            if let Action::Store {
                mailbox: m,
                flags: fl,
                ..
            } = a
                && same(m, &mailbox)
            {
                // The later action's flags win (Pigeonhole does the same).
                *fl = flags;
                return Ok(());
            }
        }
        self.push(Action::Store {
            mailbox,
            flags,
            create,
            keep,
        })
    }

    /// RFC 5429 §2.1/§2.2: reject goes with neither a delivery nor another response.
    fn check_conflicts(&self) -> R<()> {
        if !self
            .actions
            .iter()
            .any(|a| matches!(a, Action::Reject { .. }))
        {
            return Ok(());
        }
        for a in &self.actions {
            match a {
                Action::Store { .. } => return Err("reject conflicts with a store action".into()),
                Action::Redirect { .. } => return Err("reject conflicts with a redirect".into()),
                Action::Vacation(_) => return Err("reject conflicts with vacation".into()),
                _ => {}
            }
        }
        Ok(())
    }

    fn vacation(&mut self, v: &Vacation, f: &Frame<'_>) -> R<()> {
        if self
            .actions
            .iter()
            .any(|a| matches!(a, Action::Vacation(_)))
        {
            return Err("more than one vacation action".into());
        }
        let subject = v.subject.as_ref().map(|s| self.expand(s, f));
        let from = v.from.as_ref().map(|s| self.expand(s, f));
        let reason = self.expand(&v.reason, f);
        let handle = match &v.handle {
            Some(h) => self.expand(h, f),
            // RFC 5230 §4.2: without :handle, the reply's arguments identify it.
            None => format!(
                "{reason}{}{}{}",
                subject.as_deref().unwrap_or("<default-subject>"),
                from.as_deref().unwrap_or("<default-from>"),
                if v.mime { "<MIME>" } else { "<NO-MIME>" }
            ),
        };
        let period = v
            .period
            .unwrap_or(VACATION_DEFAULT_SECONDS)
            .clamp(VACATION_MIN_SECONDS, VACATION_MAX_SECONDS);
        let addresses = v.addresses.iter().map(|a| self.expand(a, f)).collect();
        self.push(Action::Vacation(Box::new(VacationAction {
            period,
            subject,
            from,
            addresses,
            mime: v.mime,
            handle,
            reason,
        })))
    }

    fn delete_header(
        &mut self,
        name: &str,
        index: Option<Index>,
        matcher: Matcher,
        patterns: Option<&[Value]>,
        f: &Frame<'_>,
    ) -> R<()> {
        let positions: Vec<usize> = (0..self.mail.fields.len())
            .filter(|&i| self.mail.fields[i].name.eq_ignore_ascii_case(name))
            .collect();
        let chosen: Vec<usize> = match index {
            Some(ix) => pick(&positions, ix).into_iter().collect(),
            None => positions,
        };
        let keys: Option<Vec<String>> =
            patterns.map(|p| p.iter().map(|k| self.expand(k, f)).collect());
        let mut remove = Vec::new();
        for i in chosen {
            let hit = match &keys {
                None => true,
                Some(keys) => {
                    let value = self.mail.fields[i].value();
                    self.any_match(matcher, std::slice::from_ref(&value), keys, f)?
                }
            };
            if hit {
                remove.push(i);
            }
        }
        for i in remove.into_iter().rev() {
            self.mail.fields.remove(i);
            self.mail.edited = true;
        }
        Ok(())
    }

    fn flag_arg(&self, flags: Option<&[Value]>, f: &Frame<'_>) -> Vec<String> {
        match flags {
            Some(list) => flag_set(list.iter().map(|v| self.expand(v, f))),
            None => self.flags.clone(),
        }
    }

    fn flag_command(
        &mut self,
        op: FlagOp,
        variable: Option<&Value>,
        flags: &[Value],
        f: &mut Frame<'_>,
    ) -> R<()> {
        let given = flag_set(flags.iter().map(|v| self.expand(v, f)));
        let current = match variable {
            None => self.flags.clone(),
            Some(v) => {
                let name = self.expand(v, f).to_ascii_lowercase();
                flag_set(std::iter::once(self.get_var(&name, f)))
            }
        };
        let next = match op {
            FlagOp::Set => given,
            FlagOp::Add => flag_set(current.into_iter().chain(given)),
            FlagOp::Remove => current
                .into_iter()
                .filter(|c| !given.iter().any(|g| g.eq_ignore_ascii_case(c)))
                .collect(),
        };
        match variable {
            None => self.flags = next,
            Some(v) => {
                let name = self.expand(v, f).to_ascii_lowercase();
                self.set_var(&name, next.join(" "), f);
            }
        }
        Ok(())
    }

    fn get_var(&self, name: &str, f: &Frame<'_>) -> String {
        if f.globals.contains(name) {
            self.globals.get(name).cloned().unwrap_or_default()
        } else {
            f.locals.get(name).cloned().unwrap_or_default()
        }
    }

    fn set_var(&mut self, name: &str, mut v: String, f: &mut Frame<'_>) {
        truncate(&mut v, self.limits.max_variable_size);
        if f.globals.contains(name) {
            self.globals.insert(name.to_string(), v);
        } else {
            f.locals.insert(name.to_string(), v);
        }
    }

    /// RFC 5229 §3: `${name}` and `${n}` replaced; anything else left as written.
    fn expand(&self, v: &Value, f: &Frame<'_>) -> String {
        if !f.script.variables || !v.0.contains("${") {
            return v.0.clone();
        }
        let s = &v.0;
        let mut out = String::with_capacity(s.len());
        let mut rest = s.as_str();
        while let Some(at) = rest.find("${") {
            out.push_str(&rest[..at]);
            let tail = &rest[at + 2..];
            let name_len = tail
                .bytes()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'.')
                .count();
            let name = &tail[..name_len];
            if name_len > 0 && tail[name_len..].starts_with('}') && valid_reference(name) {
                if name.bytes().all(|c| c.is_ascii_digit()) {
                    let n: usize = name.parse().unwrap_or(usize::MAX);
                    out.push_str(self.matchvars.get(n).map_or("", String::as_str));
                } else {
                    out.push_str(&self.get_var(&name.to_ascii_lowercase(), f));
                }
                rest = &tail[name_len + 1..];
            } else {
                out.push_str("${");
                rest = tail;
            }
        }
        out.push_str(rest);
        truncate(&mut out, self.limits.max_variable_size.max(s.len()));
        out
    }

    fn test(&mut self, t: &Test, f: &mut Frame<'_>) -> R<bool> {
        self.tick(1)?;
        Ok(match t {
            Test::True => true,
            Test::False => false,
            Test::Not(t) => !self.test(t, f)?,
            Test::AllOf(ts) => {
                for t in ts {
                    if !self.test(t, f)? {
                        return Ok(false);
                    }
                }
                true
            }
            Test::AnyOf(ts) => {
                for t in ts {
                    if self.test(t, f)? {
                        return Ok(true);
                    }
                }
                false
            }
            Test::Exists(names) => names.iter().all(|n| {
                let n = self.expand(n, f);
                self.mail.named(&n).next().is_some()
            }),
            Test::Size { over, limit } => {
                let size = self.mail.raw.len() as u64;
                if *over { size > *limit } else { size < *limit }
            }
            Test::Header {
                matcher,
                index,
                headers,
                keys,
            } => {
                let values: Vec<String> = self
                    .fields_of(headers, *index, f)
                    .iter()
                    .map(|x| x.value())
                    .collect();
                self.match_values(*matcher, &values, keys, f)?
            }
            Test::Address {
                matcher,
                part,
                index,
                headers,
                keys,
            } => {
                let mut values = Vec::new();
                for field in self.fields_of(headers, *index, f) {
                    values.extend(
                        mail::addresses(&field.raw)
                            .iter()
                            .filter_map(|a| a.part(*part)),
                    );
                }
                self.match_values(*matcher, &values, keys, f)?
            }
            Test::Envelope {
                matcher,
                part,
                fields,
                keys,
            } => {
                let mut values = Vec::new();
                for field in fields {
                    let addr = match self.expand(field, f).to_ascii_lowercase().as_str() {
                        "from" => &self.env.from,
                        "to" => &self.env.to,
                        _ => continue,
                    };
                    if addr.is_empty() {
                        // RFC 5228 §5.4: the null reverse-path is the empty string.
                        if *part == AddressPart::All {
                            values.push(String::new());
                        }
                    } else if let Some(v) = AddressParts::of(addr).part(*part) {
                        values.push(v);
                    }
                }
                self.match_values(*matcher, &values, keys, f)?
            }
            Test::Body {
                matcher,
                transform,
                keys,
            } => {
                let values = match transform {
                    BodyTransform::Raw => self.mail.body_texts(None),
                    BodyTransform::Text => self.mail.body_texts(Some(&["text".to_string()])),
                    BodyTransform::Content(types) => {
                        let types: Vec<String> = types.iter().map(|t| self.expand(t, f)).collect();
                        self.mail.body_texts(Some(&types))
                    }
                };
                self.match_values(*matcher, &values, keys, f)?
            }
            Test::String {
                matcher,
                sources,
                keys,
            } => {
                let values: Vec<String> = sources.iter().map(|s| self.expand(s, f)).collect();
                // RFC 5229 §5: for :count, empty strings are not counted.
                let values = if matches!(matcher.kind, MatchKind::Count(_)) {
                    values.into_iter().filter(|v| !v.is_empty()).collect()
                } else {
                    values
                };
                self.match_values(*matcher, &values, keys, f)?
            }
            Test::HasFlag {
                matcher,
                variables,
                keys,
            } => {
                let flags = match variables {
                    None => self.flags.clone(),
                    Some(vars) => {
                        let names: Vec<String> = vars
                            .iter()
                            .map(|v| self.expand(v, f).to_ascii_lowercase())
                            .collect();
                        flag_set(names.iter().map(|n| self.get_var(n, f)))
                    }
                };
                let keys: Vec<Value> = flag_set(keys.iter().map(|k| self.expand(k, f)))
                    .into_iter()
                    .map(Value)
                    .collect();
                self.match_values(*matcher, &flags, &keys, f)?
            }
            Test::Date {
                matcher,
                index,
                zone,
                header,
                part,
                keys,
            } => {
                let fields = self.fields_of(std::slice::from_ref(header), *index, f);
                let header = self.expand(header, f);
                let part = self.expand(part, f);
                let mut values = Vec::new();
                for field in fields {
                    // RFC 5260 §4: a field without a valid date does not match.
                    // RFC 5260 §4.1: in Received, the date follows the last semicolon.
                    let raw = mail::unfold(&field.raw);
                    let text = if header.eq_ignore_ascii_case("received") {
                        raw.rsplit_once(';').map_or(raw.as_str(), |(_, d)| d)
                    } else {
                        raw.as_str()
                    };
                    let Some(m) = dates::parse(text.as_bytes()) else {
                        continue;
                    };
                    let m = match self.zone_of(zone, f)? {
                        Some(off) => Moment {
                            utc: m.utc,
                            offset: off,
                        },
                        None => m,
                    };
                    values.extend(dates::part(m, &part));
                }
                self.match_values(*matcher, &values, keys, f)?
            }
            Test::CurrentDate {
                matcher,
                zone,
                part,
                keys,
            } => {
                let part = self.expand(part, f);
                let now = self.host.now();
                let m = match self.zone_of(zone, f)? {
                    Some(off) => Moment {
                        utc: now.utc,
                        offset: off,
                    },
                    None => now,
                };
                let values: Vec<String> = dates::part(m, &part).into_iter().collect();
                self.match_values(*matcher, &values, keys, f)?
            }
            Test::MailboxExists(names) => names
                .iter()
                .all(|n| self.host.mailbox_exists(&self.expand(n, f))),
            Test::Duplicate {
                handle,
                key,
                seconds,
                last,
            } => {
                let value = match key {
                    DuplicateKey::MessageId => {
                        self.mail.named("message-id").next().map(|x| x.value())
                    }
                    DuplicateKey::Header(h) => {
                        let h = self.expand(h, f);
                        self.mail.named(&h).next().map(|x| x.value())
                    }
                    DuplicateKey::UniqueId(v) => Some(self.expand(v, f)),
                };
                // RFC 7352 §3.2: a header that is absent (or empty) is no duplicate and is not
                // tracked; a :uniqueid is used as it is, empty or not.
                let keyed_by_id = matches!(key, DuplicateKey::UniqueId(_));
                let Some(value) = value.filter(|v| keyed_by_id || !v.is_empty()) else {
                    return Ok(false);
                };
                let handle = handle.as_ref().map(|h| self.expand(h, f));
                let id = format!("{}\u{0}{value}", handle.as_deref().unwrap_or(""));
                let seen = self.host.duplicate_seen(&id);
                self.push(Action::TrackDuplicate(DuplicateMark {
                    id,
                    handle,
                    seconds: seconds.unwrap_or(DUPLICATE_DEFAULT_SECONDS),
                    last: *last,
                }))?;
                seen
            }
            Test::SpamTest {
                matcher,
                percent,
                value,
            } => {
                let v = self.host.spam_test(*percent);
                self.match_values(*matcher, &[v], std::slice::from_ref(value), f)?
            }
            Test::VirusTest { matcher, value } => {
                let v = self.host.virus_test();
                self.match_values(*matcher, &[v], std::slice::from_ref(value), f)?
            }
        })
    }

    /// The fields of each named header, or the `:index`ed one of each (RFC 5260 §6).
    fn fields_of(
        &self,
        headers: &[Value],
        index: Option<Index>,
        f: &Frame<'_>,
    ) -> Vec<mail::Field> {
        let mut out = Vec::new();
        for h in headers {
            let h = self.expand(h, f);
            let fields: Vec<&mail::Field> = self.mail.named(&h).collect();
            out.extend(select(&fields, index).into_iter().cloned());
        }
        out
    }

    fn zone_of(&self, zone: &Zone, f: &Frame<'_>) -> R<Option<i64>> {
        Ok(match zone {
            Zone::Original => None,
            Zone::Local => Some(self.host.now().offset),
            Zone::Fixed(z) => {
                let z = self.expand(z, f);
                Some(
                    super::compile::parse_zone(&z)
                        .ok_or_else(|| format!("invalid time zone \"{z}\""))?,
                )
            }
        })
    }

    /// Compares values with keys; a successful `:matches`/`:regex` sets the match variables.
    fn match_values(
        &mut self,
        m: Matcher,
        values: &[String],
        keys: &[Value],
        f: &Frame<'_>,
    ) -> R<bool> {
        let keys: Vec<String> = keys.iter().map(|k| self.expand(k, f)).collect();
        if let MatchKind::Count(_) = m.kind {
            return Ok(matching::count_matches(m, values.len(), &keys));
        }
        self.any_match(m, values, &keys, f)
    }

    fn any_match(
        &mut self,
        m: Matcher,
        values: &[String],
        keys: &[String],
        f: &Frame<'_>,
    ) -> R<bool> {
        let capture = f.script.variables && matches!(m.kind, MatchKind::Matches | MatchKind::Regex);
        for v in values {
            for k in keys {
                // :matches fills a value × pattern table; the rest are about linear.
                let work = if m.kind == MatchKind::Matches {
                    v.len() * k.len()
                } else {
                    v.len() + k.len()
                };
                self.tick(1 + work as u64 / 64)?;
                let mut caps = Vec::new();
                let regexes = &mut self.regexes;
                let compiled = &f.script.regexes.0;
                let mut get = |p: &str| {
                    let key = (p.to_string(), m.comparator);
                    if let Some(re) = compiled.get(&key) {
                        return Some(re.clone());
                    }
                    regexes
                        .entry(key)
                        .or_insert_with(|| matching::regex_for(p, m.comparator).ok())
                        .clone()
                };
                if matching::matches(m, v, k, capture.then_some(&mut caps), &mut get) {
                    if capture {
                        self.matchvars = caps;
                    }
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }
}

/// The `:index`ed field, or all of them.
fn select<'f>(fields: &[&'f mail::Field], index: Option<Index>) -> Vec<&'f mail::Field> {
    match index {
        None => fields.to_vec(),
        Some(ix) => {
            let positions: Vec<usize> = (0..fields.len()).collect();
            pick(&positions, ix)
                .map(|i| fields[i])
                .into_iter()
                .collect()
        }
    }
}

/// RFC 5260 §6: the n-th (from 1), from the end with `:last`.
fn pick(items: &[usize], ix: Index) -> Option<usize> {
    let n = usize::try_from(ix.n).ok()?.checked_sub(1)?;
    if ix.last {
        items.len().checked_sub(n + 1).map(|i| items[i])
    } else {
        items.get(n).copied()
    }
}

/// RFC 5293 §6 lets a site protect fields; Received and Auto-Submitted are (as in Pigeonhole).
fn protected(name: &str) -> bool {
    name.eq_ignore_ascii_case("received") || name.eq_ignore_ascii_case("auto-submitted")
}

/// An added field's value on one line per source line, continuation lines indented.
fn fold_value(v: &str) -> String {
    v.lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\r\n\t")
}

/// RFC 5321 §2.4: local parts are case-sensitive, domains are not.
fn same_address(a: &str, b: &str) -> bool {
    match (a.rsplit_once('@'), b.rsplit_once('@')) {
        (Some((la, da)), Some((lb, db))) => la == lb && da.eq_ignore_ascii_case(db),
        _ => a == b,
    }
}

/// A local part that is not a dot-atom is written quoted (RFC 5322 §3.4.1).
fn canonical_address(a: &str) -> String {
    let Some((local, domain)) = a.rsplit_once('@') else {
        return a.to_string();
    };
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
    let dot_atom = !local.is_empty()
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.chars().all(|c| c == '.' || atext(c));
    if dot_atom || (local.starts_with('"') && local.ends_with('"') && local.len() > 1) {
        a.to_string()
    } else {
        format!(
            "\"{}\"@{domain}",
            local.replace('\\', "\\\\").replace('"', "\\\"")
        )
    }
}

/// `Name <a@b>` or `<a@b>` → `a@b`.
fn bare_address(a: &str) -> String {
    let a = a.trim();
    match (a.rfind('<'), a.rfind('>')) {
        (Some(s), Some(e)) if s < e => a[s + 1..e].to_string(),
        _ => a.to_string(),
    }
}

/// Flags from space-separated lists, duplicates dropped (RFC 5232 §3).
fn flag_set(lists: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for list in lists {
        for flag in list.split(' ').filter(|x| !x.is_empty()) {
            if !out.iter().any(|o| o.eq_ignore_ascii_case(flag)) {
                out.push(flag.to_string());
            }
        }
    }
    out
}

/// RFC 5229 §3: `${…}` names a variable when it is an identifier or a number.
fn valid_reference(name: &str) -> bool {
    name.bytes().all(|c| c.is_ascii_digit())
        || (name
            .bytes()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
            && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_'))
}

fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

/// RFC 5229 §4.1: modifiers in precedence order (already sorted).
fn apply_modifiers(mut v: String, modifiers: &[Modifier]) -> String {
    for m in modifiers {
        v = match m {
            Modifier::Lower => v.to_lowercase(),
            Modifier::Upper => v.to_uppercase(),
            Modifier::LowerFirst | Modifier::UpperFirst => {
                let mut c = v.chars();
                match c.next() {
                    Some(first) => {
                        let head: String = if *m == Modifier::LowerFirst {
                            first.to_lowercase().collect()
                        } else {
                            first.to_uppercase().collect()
                        };
                        head + c.as_str()
                    }
                    None => v,
                }
            }
            Modifier::QuoteWildcard => {
                let mut o = String::with_capacity(v.len());
                for c in v.chars() {
                    if matches!(c, '*' | '?' | '\\') {
                        o.push('\\');
                    }
                    o.push(c);
                }
                o
            }
            Modifier::Length => v.chars().count().to_string(),
        };
    }
    v
}

/// RFC 5235 §3.2: a spam score on a scale up to `max` as spamtest's value, "1" (not spam) to
/// "10" (spam), or with `:percent` "0" to "100"; the ratio is clamped to [0, 1].
pub fn spamtest_value(score: f64, max: f64, percent: bool) -> String {
    let ratio = if max <= 0.0 {
        1.0
    } else {
        (score / max).clamp(0.0, 1.0)
    };
    let v = if percent {
        ratio * 100.0 + 0.001
    } else {
        ratio * 9.0 + 1.001
    };
    (v.floor() as i64).to_string()
}
