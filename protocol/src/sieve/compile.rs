//! From the generic grammar to a typed [`Script`]: every command, test and tag checked against
//! the RFC that defines it and against the script's `require` (RFC 5228 §3.2: an extension not
//! required is an error), strings' encoded characters decoded (RFC 5228 §2.4.2.4).

use super::error::{CompileError, Pos};
use super::grammar::{Arg, Node};
use super::program::*;

/// Every capability the interpreter implements, as `require` and ManageSieve's SIEVE
/// capability name them.
pub const CAPABILITIES: &[&str] = &[
    "fileinto",
    "reject",
    "ereject",
    "envelope",
    "encoded-character",
    "imap4flags",
    "copy",
    "body",
    "variables",
    "vacation",
    "vacation-seconds",
    "relational",
    "comparator-i;ascii-numeric",
    "subaddress",
    "date",
    "index",
    "mailbox",
    "include",
    "duplicate",
    "editheader",
    "spamtest",
    "spamtestplus",
    "virustest",
    "regex",
];

/// Capabilities that are always there and may be required anyway (RFC 5228 §2.7.3).
const IMPLICIT: &[&str] = &["comparator-i;octet", "comparator-i;ascii-casemap"];

/// The longest vacation period a script may ask for (RFC 5230 §4.1 leaves the bound to the
/// site; 90 days like Pigeonhole).
pub const MAX_VACATION_SECONDS: u64 = 90 * 86400;

/// Compiles a script's source.
pub fn compile(src: &str) -> Result<Script, CompileError> {
    let tokens = super::lexer::tokens(src)?;
    let nodes = super::grammar::commands(&tokens)?;
    let mut cx = Cx {
        requires: Vec::new(),
        encoded: false,
        regexes: Default::default(),
    };
    let mut commands = Vec::new();
    let mut past_require = false;
    let mut i = 0;
    while i < nodes.len() {
        let node = &nodes[i];
        if node.name == "require" {
            if past_require {
                return Err(CompileError::at(
                    node.pos,
                    "require must come before any other command",
                ));
            }
            cx.require(node)?;
            i += 1;
            continue;
        }
        past_require = true;
        let (cmd, used) = cx.command(&nodes[i..])?;
        commands.push(cmd);
        i += used;
    }
    let variables = cx.has("variables");
    Ok(Script {
        commands,
        requires: cx.requires,
        variables,
        regexes: cx.regexes.into_inner(),
    })
}

struct Cx {
    requires: Vec<String>,
    encoded: bool,
    regexes: std::cell::RefCell<Regexes>,
}

impl Cx {
    fn has(&self, cap: &str) -> bool {
        self.requires.iter().any(|r| r == cap)
    }

    fn need(&self, cap: &str, pos: Pos, what: &str) -> Result<(), CompileError> {
        if self.has(cap) {
            Ok(())
        } else {
            Err(CompileError::at(
                pos,
                format!("{what} needs require \"{cap}\""),
            ))
        }
    }

    fn require(&mut self, node: &Node) -> Result<(), CompileError> {
        let mut r = Reader::new(node, false);
        let caps = r.strings("capabilities")?;
        r.end()?;
        no_tests(node)?;
        for c in caps {
            let c = c.0;
            if !CAPABILITIES.contains(&c.as_str()) && !IMPLICIT.contains(&c.as_str()) {
                return Err(CompileError::at(
                    node.pos,
                    format!("unknown capability \"{c}\""),
                ));
            }
            if c == "encoded-character" {
                self.encoded = true;
            }
            if !self.requires.contains(&c) {
                self.requires.push(c);
            }
        }
        Ok(())
    }

    fn block(&self, nodes: &[Node]) -> Result<Vec<Command>, CompileError> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < nodes.len() {
            if nodes[i].name == "require" {
                return Err(CompileError::at(
                    nodes[i].pos,
                    "require is allowed only at the top",
                ));
            }
            let (cmd, used) = self.command(&nodes[i..])?;
            out.push(cmd);
            i += used;
        }
        Ok(out)
    }

    /// Compiles `nodes[0]` (with its `elsif`/`else` followers for `if`); returns how many
    /// nodes it took.
    fn command(&self, nodes: &[Node]) -> Result<(Command, usize), CompileError> {
        let node = &nodes[0];
        if node.block.is_some() && !matches!(node.name.as_str(), "if" | "elsif" | "else") {
            return Err(CompileError::at(
                node.pos,
                format!("command '{}' takes no block", node.name),
            ));
        }
        if node.name == "if" {
            return self.if_chain(nodes);
        }
        if matches!(node.name.as_str(), "elsif" | "else") {
            return Err(CompileError::at(
                node.pos,
                format!("'{}' without 'if'", node.name),
            ));
        }
        if !matches!(node.name.as_str(), "deleteheader") {
            no_tests(node)?;
        }
        let cmd = match node.name.as_str() {
            "stop" => simple(node, Command::Stop)?,
            "discard" => simple(node, Command::Discard)?,
            "keep" => {
                let mut r = Reader::new(node, self.encoded);
                let mut flags = None;
                while let Some((tag, pos)) = r.tag() {
                    match tag.as_str() {
                        "flags" => {
                            self.need("imap4flags", pos, ":flags")?;
                            flags = Some(r.strings("flags")?);
                        }
                        _ => return Err(unknown_tag(&tag, pos, node)),
                    }
                }
                r.end()?;
                Command::Keep { flags }
            }
            "fileinto" => {
                self.need("fileinto", node.pos, "fileinto")?;
                let mut r = Reader::new(node, self.encoded);
                let (mut copy, mut create, mut flags) = (false, false, None);
                while let Some((tag, pos)) = r.tag() {
                    match tag.as_str() {
                        "copy" => {
                            self.need("copy", pos, ":copy")?;
                            copy = true;
                        }
                        "create" => {
                            self.need("mailbox", pos, ":create")?;
                            create = true;
                        }
                        "flags" => {
                            self.need("imap4flags", pos, ":flags")?;
                            flags = Some(r.strings("flags")?);
                        }
                        _ => return Err(unknown_tag(&tag, pos, node)),
                    }
                }
                let mailbox = r.string("mailbox")?;
                r.end()?;
                Command::FileInto {
                    mailbox,
                    copy,
                    create,
                    flags,
                }
            }
            "redirect" => {
                let mut r = Reader::new(node, self.encoded);
                let mut copy = false;
                while let Some((tag, pos)) = r.tag() {
                    match tag.as_str() {
                        "copy" => {
                            self.need("copy", pos, ":copy")?;
                            copy = true;
                        }
                        _ => return Err(unknown_tag(&tag, pos, node)),
                    }
                }
                let address = r.string("address")?;
                r.end()?;
                if !self.has("variables") && !plausible_address(&address.0) {
                    return Err(CompileError::at(
                        node.pos,
                        format!("invalid redirect address \"{}\"", address.0),
                    ));
                }
                Command::Redirect { address, copy }
            }
            "reject" | "ereject" => {
                self.need(&node.name, node.pos, &node.name)?;
                let mut r = Reader::new(node, self.encoded);
                let reason = r.string("reason")?;
                r.end()?;
                Command::Reject {
                    reason,
                    extended: node.name == "ereject",
                }
            }
            "setflag" | "addflag" | "removeflag" => {
                self.need("imap4flags", node.pos, &node.name)?;
                let mut r = Reader::new(node, self.encoded);
                let first = r.strings("flags")?;
                let (variable, flags) = if r.more() {
                    let flags = r.strings("flags")?;
                    let var = single(first, node.pos, "variable name")?;
                    check_variable_name(&var.0, node.pos)?;
                    (Some(var), flags)
                } else {
                    (None, first)
                };
                r.end()?;
                let op = match node.name.as_str() {
                    "setflag" => FlagOp::Set,
                    "addflag" => FlagOp::Add,
                    _ => FlagOp::Remove,
                };
                Command::Flags {
                    op,
                    variable,
                    flags,
                }
            }
            "set" => self.set(node)?,
            "vacation" => self.vacation(node)?,
            "addheader" => {
                self.need("editheader", node.pos, "addheader")?;
                let mut r = Reader::new(node, self.encoded);
                let mut last = false;
                while let Some((tag, pos)) = r.tag() {
                    match tag.as_str() {
                        "last" => last = true,
                        _ => return Err(unknown_tag(&tag, pos, node)),
                    }
                }
                let name = r.string("field name")?;
                let value = r.string("value")?;
                r.end()?;
                if !self.has("variables") && !super::super::message::valid_field_name(&name.0) {
                    return Err(CompileError::at(
                        node.pos,
                        format!("invalid header field name \"{}\"", name.0),
                    ));
                }
                Command::AddHeader { last, name, value }
            }
            "deleteheader" => {
                self.need("editheader", node.pos, "deleteheader")?;
                no_tests(node)?;
                let mut r = Reader::new(node, self.encoded);
                let mut spec = MatchSpec::default();
                while let Some((tag, pos)) = r.tag() {
                    if !spec.take(&tag, pos, &mut r, self, Some("editheader"))? {
                        return Err(unknown_tag(&tag, pos, node));
                    }
                }
                let name = r.string("field name")?;
                let patterns = if r.more() {
                    Some(r.strings("value patterns")?)
                } else {
                    None
                };
                r.end()?;
                let (matcher, _, index) =
                    spec.finish(node.pos, Some(self), patterns.as_deref().unwrap_or(&[]))?;
                Command::DeleteHeader {
                    index,
                    matcher,
                    name,
                    patterns,
                }
            }
            "include" => {
                self.need("include", node.pos, "include")?;
                let mut r = Reader::new(node, self.encoded);
                let (mut global, mut once, mut optional, mut location) =
                    (false, false, false, false);
                while let Some((tag, pos)) = r.tag() {
                    match tag.as_str() {
                        "global" | "personal" if location => {
                            return Err(CompileError::at(pos, "include takes one location"));
                        }
                        "global" => (global, location) = (true, true),
                        "personal" => location = true,
                        "once" => once = true,
                        "optional" => optional = true,
                        _ => return Err(unknown_tag(&tag, pos, node)),
                    }
                }
                let name = r.string("script name")?;
                r.end()?;
                if name.0.is_empty() || name.0.contains('/') {
                    return Err(CompileError::at(
                        node.pos,
                        format!("invalid script name \"{}\"", name.0),
                    ));
                }
                Command::Include {
                    global,
                    once,
                    optional,
                    name,
                }
            }
            "return" => {
                self.need("include", node.pos, "return")?;
                simple(node, Command::Return)?
            }
            "global" => {
                self.need("include", node.pos, "global")?;
                self.need("variables", node.pos, "global")?;
                let mut r = Reader::new(node, self.encoded);
                let names = r.strings("variable names")?;
                r.end()?;
                let mut out = Vec::new();
                for n in names {
                    check_variable_name(&n.0, node.pos)?;
                    out.push(n.0.to_ascii_lowercase());
                }
                Command::Global(out)
            }
            other => {
                return Err(CompileError::at(
                    node.pos,
                    format!("unknown command '{other}'"),
                ));
            }
        };
        Ok((cmd, 1))
    }

    fn if_chain(&self, nodes: &[Node]) -> Result<(Command, usize), CompileError> {
        let mut branches = Vec::new();
        let mut otherwise = None;
        let mut used = 0;
        for (k, node) in nodes.iter().enumerate() {
            let wanted = if k == 0 { "if" } else { "elsif" };
            if node.name == wanted {
                let block = branch_block(node)?;
                if !node.args.is_empty() || node.tests.len() != 1 || node.test_list {
                    return Err(CompileError::at(
                        node.pos,
                        format!("'{}' takes one test", node.name),
                    ));
                }
                branches.push((self.test(&node.tests[0])?, self.block(block)?));
                used += 1;
            } else if k > 0 && node.name == "else" {
                let block = branch_block(node)?;
                if !node.args.is_empty() || !node.tests.is_empty() {
                    return Err(CompileError::at(node.pos, "'else' takes no arguments"));
                }
                otherwise = Some(self.block(block)?);
                used += 1;
                break;
            } else {
                break;
            }
        }
        Ok((
            Command::If {
                branches,
                otherwise,
            },
            used,
        ))
    }

    fn set(&self, node: &Node) -> Result<Command, CompileError> {
        self.need("variables", node.pos, "set")?;
        let mut r = Reader::new(node, self.encoded);
        let mut modifiers: Vec<Modifier> = Vec::new();
        while let Some((tag, pos)) = r.tag() {
            let m = match tag.as_str() {
                "lower" => Modifier::Lower,
                "upper" => Modifier::Upper,
                "lowerfirst" => Modifier::LowerFirst,
                "upperfirst" => Modifier::UpperFirst,
                "quotewildcard" => Modifier::QuoteWildcard,
                "length" => Modifier::Length,
                _ => return Err(unknown_tag(&tag, pos, node)),
            };
            // RFC 5229 §4.1: two modifiers of the same precedence are an error.
            if modifiers.iter().any(|o| o.precedence() == m.precedence()) {
                return Err(CompileError::at(
                    pos,
                    "two modifiers of the same precedence",
                ));
            }
            modifiers.push(m);
        }
        let name = r.string("variable name")?;
        let value = r.string("value")?;
        r.end()?;
        check_variable_name(&name.0, node.pos)?;
        modifiers.sort_by_key(|m| std::cmp::Reverse(m.precedence()));
        Ok(Command::Set {
            name: name.0.to_ascii_lowercase(),
            value,
            modifiers,
        })
    }

    fn vacation(&self, node: &Node) -> Result<Command, CompileError> {
        self.need("vacation", node.pos, "vacation")?;
        let mut r = Reader::new(node, self.encoded);
        let mut v = Vacation {
            period: None,
            subject: None,
            from: None,
            addresses: Vec::new(),
            mime: false,
            handle: None,
            reason: Value(String::new()),
        };
        while let Some((tag, pos)) = r.tag() {
            match tag.as_str() {
                "days" | "seconds" if v.period.is_some() => {
                    return Err(CompileError::at(
                        pos,
                        ":days and :seconds exclude each other",
                    ));
                }
                "days" => v.period = Some(r.number(":days")?.saturating_mul(86400)),
                "seconds" => {
                    self.need("vacation-seconds", pos, ":seconds")?;
                    v.period = Some(r.number(":seconds")?);
                }
                "subject" => v.subject = Some(r.string(":subject")?),
                "from" => v.from = Some(r.string(":from")?),
                "addresses" => v.addresses = r.strings(":addresses")?,
                "mime" => v.mime = true,
                "handle" => v.handle = Some(r.string(":handle")?),
                _ => return Err(unknown_tag(&tag, pos, node)),
            }
        }
        v.reason = r.string("reason")?;
        r.end()?;
        Ok(Command::Vacation(Box::new(v)))
    }

    fn test(&self, node: &Node) -> Result<Test, CompileError> {
        match node.name.as_str() {
            "true" | "false" => {
                no_tests(node)?;
                Reader::new(node, false).end()?;
                Ok(if node.name == "true" {
                    Test::True
                } else {
                    Test::False
                })
            }
            "not" => {
                if !node.args.is_empty() || node.tests.len() != 1 || node.test_list {
                    return Err(CompileError::at(node.pos, "'not' takes one test"));
                }
                Ok(Test::Not(Box::new(self.test(&node.tests[0])?)))
            }
            "allof" | "anyof" => {
                if !node.args.is_empty() || !node.test_list {
                    return Err(CompileError::at(
                        node.pos,
                        format!("'{}' takes a test list", node.name),
                    ));
                }
                let tests = node
                    .tests
                    .iter()
                    .map(|t| self.test(t))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(if node.name == "allof" {
                    Test::AllOf(tests)
                } else {
                    Test::AnyOf(tests)
                })
            }
            "exists" => {
                no_tests(node)?;
                let mut r = Reader::new(node, self.encoded);
                if let Some((tag, pos)) = r.tag() {
                    return Err(unknown_tag(&tag, pos, node));
                }
                let headers = r.strings("header names")?;
                r.end()?;
                Ok(Test::Exists(headers))
            }
            "size" => {
                no_tests(node)?;
                let mut r = Reader::new(node, self.encoded);
                let over = match r.tag() {
                    Some((t, _)) if t == "over" => true,
                    Some((t, _)) if t == "under" => false,
                    Some((t, pos)) => return Err(unknown_tag(&t, pos, node)),
                    None => return Err(CompileError::at(node.pos, "size needs :over or :under")),
                };
                let limit = r.number("limit")?;
                r.end()?;
                Ok(Test::Size { over, limit })
            }
            "address" | "envelope" | "header" | "string" | "hasflag" | "body" | "date"
            | "currentdate" | "spamtest" | "virustest" => self.match_test(node),
            "mailboxexists" => {
                self.need("mailbox", node.pos, "mailboxexists")?;
                no_tests(node)?;
                let mut r = Reader::new(node, self.encoded);
                let names = r.strings("mailbox names")?;
                r.end()?;
                Ok(Test::MailboxExists(names))
            }
            "duplicate" => {
                self.need("duplicate", node.pos, "duplicate")?;
                no_tests(node)?;
                let mut r = Reader::new(node, self.encoded);
                let (mut handle, mut key, mut seconds, mut last) =
                    (None, DuplicateKey::MessageId, None, false);
                while let Some((tag, pos)) = r.tag() {
                    match tag.as_str() {
                        "handle" => handle = Some(r.string(":handle")?),
                        "header" | "uniqueid" if key != DuplicateKey::MessageId => {
                            return Err(CompileError::at(
                                pos,
                                ":header and :uniqueid exclude each other",
                            ));
                        }
                        "header" => key = DuplicateKey::Header(r.string(":header")?),
                        "uniqueid" => key = DuplicateKey::UniqueId(r.string(":uniqueid")?),
                        "seconds" => seconds = Some(r.number(":seconds")?),
                        "last" => last = true,
                        _ => return Err(unknown_tag(&tag, pos, node)),
                    }
                }
                r.end()?;
                Ok(Test::Duplicate {
                    handle,
                    key,
                    seconds,
                    last,
                })
            }
            other => Err(CompileError::at(
                node.pos,
                format!("unknown test '{other}'"),
            )),
        }
    }

    /// The tests that take a comparator and a match type.
    fn match_test(&self, node: &Node) -> Result<Test, CompileError> {
        no_tests(node)?;
        let name = node.name.as_str();
        let cap = match name {
            "envelope" => Some("envelope"),
            "string" => Some("variables"),
            "hasflag" => Some("imap4flags"),
            "body" => Some("body"),
            "date" | "currentdate" => Some("date"),
            "virustest" => Some("virustest"),
            _ => None,
        };
        if let Some(cap) = cap {
            self.need(cap, node.pos, name)?;
        }
        if name == "spamtest" && !self.has("spamtest") && !self.has("spamtestplus") {
            return Err(CompileError::at(
                node.pos,
                "spamtest needs require \"spamtest\"",
            ));
        }
        let mut r = Reader::new(node, self.encoded);
        let mut spec = MatchSpec::default();
        let mut transform = None;
        let mut zone = Zone::Local;
        let mut percent = false;
        let addressy = matches!(name, "address" | "envelope");
        while let Some((tag, pos)) = r.tag() {
            match (name, tag.as_str()) {
                ("body", "raw") | ("body", "text") | ("body", "content") if transform.is_some() => {
                    return Err(CompileError::at(pos, "one body transform only"));
                }
                ("body", "raw") => transform = Some(BodyTransform::Raw),
                ("body", "text") => transform = Some(BodyTransform::Text),
                ("body", "content") => {
                    transform = Some(BodyTransform::Content(r.strings(":content")?))
                }
                ("date" | "currentdate", "zone") if zone != Zone::Local => {
                    return Err(CompileError::at(pos, "one zone only"));
                }
                ("date" | "currentdate", "zone") => {
                    let z = r.string(":zone")?;
                    if !self.has("variables") && parse_zone(&z.0).is_none() {
                        return Err(CompileError::at(
                            pos,
                            format!("invalid time zone \"{}\"", z.0),
                        ));
                    }
                    zone = Zone::Fixed(z);
                }
                ("date", "originalzone") if zone != Zone::Local => {
                    return Err(CompileError::at(pos, "one zone only"));
                }
                ("date", "originalzone") => zone = Zone::Original,
                ("spamtest", "percent") => {
                    self.need("spamtestplus", pos, ":percent")?;
                    percent = true;
                }
                _ => {
                    let index_ok = matches!(name, "address" | "header" | "date").then_some("index");
                    if !spec.take(&tag, pos, &mut r, self, index_ok)?
                        || (!addressy && spec.part.is_some())
                    {
                        return Err(unknown_tag(&tag, pos, node));
                    }
                }
            }
        }
        let test = match name {
            "address" | "envelope" | "header" => {
                let headers = r.strings("header names")?;
                let keys = r.strings("keys")?;
                r.end()?;
                let (matcher, part, index) = spec.finish(node.pos, Some(self), &keys)?;
                match name {
                    "address" => Test::Address {
                        matcher,
                        part,
                        index,
                        headers,
                        keys,
                    },
                    "header" => Test::Header {
                        matcher,
                        index,
                        headers,
                        keys,
                    },
                    _ => {
                        for f in &headers {
                            let f = f.0.to_ascii_lowercase();
                            if !self.has("variables") && f != "from" && f != "to" {
                                return Err(CompileError::at(
                                    node.pos,
                                    format!("envelope part \"{f}\" is not supported"),
                                ));
                            }
                        }
                        Test::Envelope {
                            matcher,
                            part,
                            fields: headers,
                            keys,
                        }
                    }
                }
            }
            "string" => {
                let sources = r.strings("sources")?;
                let keys = r.strings("keys")?;
                r.end()?;
                let (matcher, _, _) = spec.finish(node.pos, Some(self), &keys)?;
                Test::String {
                    matcher,
                    sources,
                    keys,
                }
            }
            "hasflag" => {
                let first = r.strings("flags")?;
                let (variables, keys) = if r.more() {
                    (Some(first), r.strings("flags")?)
                } else {
                    (None, first)
                };
                r.end()?;
                if let Some(vars) = &variables {
                    for v in vars {
                        check_variable_name(&v.0, node.pos)?;
                    }
                }
                let (matcher, _, _) = spec.finish(node.pos, Some(self), &keys)?;
                Test::HasFlag {
                    matcher,
                    variables,
                    keys,
                }
            }
            "body" => {
                let keys = r.strings("keys")?;
                r.end()?;
                let (matcher, _, _) = spec.finish(node.pos, Some(self), &keys)?;
                Test::Body {
                    matcher,
                    transform: transform.unwrap_or(BodyTransform::Text),
                    keys,
                }
            }
            "date" => {
                let header = r.string("header name")?;
                let part = r.string("date part")?;
                let keys = r.strings("keys")?;
                r.end()?;
                check_date_part(&part, node.pos, self)?;
                let (matcher, _, index) = spec.finish(node.pos, Some(self), &keys)?;
                Test::Date {
                    matcher,
                    index,
                    zone,
                    header,
                    part,
                    keys,
                }
            }
            "currentdate" => {
                let part = r.string("date part")?;
                let keys = r.strings("keys")?;
                r.end()?;
                check_date_part(&part, node.pos, self)?;
                let (matcher, _, _) = spec.finish(node.pos, Some(self), &keys)?;
                Test::CurrentDate {
                    matcher,
                    zone,
                    part,
                    keys,
                }
            }
            "spamtest" => {
                let value = r.string("value")?;
                r.end()?;
                let (matcher, _, _) =
                    spec.finish(node.pos, Some(self), std::slice::from_ref(&value))?;
                Test::SpamTest {
                    matcher,
                    percent,
                    value,
                }
            }
            _ => {
                let value = r.string("value")?;
                r.end()?;
                let (matcher, _, _) =
                    spec.finish(node.pos, Some(self), std::slice::from_ref(&value))?;
                Test::VirusTest { matcher, value }
            }
        };
        Ok(test)
    }
}

/// Comparator, match type, address part and index tags as they are read.
#[derive(Default)]
struct MatchSpec {
    comparator: Option<Comparator>,
    kind: Option<MatchKind>,
    part: Option<AddressPart>,
    index: Option<u64>,
    last: bool,
}

impl MatchSpec {
    /// Takes `tag` if it is one of these; false when it is not.
    /// `index_ok`: `:index`/`:last` allowed, `Some(cap)` naming the extension they need
    /// (deleteheader has them from editheader itself, RFC 5293 §5).
    fn take(
        &mut self,
        tag: &str,
        pos: Pos,
        r: &mut Reader<'_>,
        cx: &Cx,
        index_ok: Option<&str>,
    ) -> Result<bool, CompileError> {
        let kind = match tag {
            "comparator" => {
                if self.comparator.is_some() {
                    return Err(CompileError::at(pos, "more than one comparator"));
                }
                let name = r.string(":comparator")?;
                self.comparator = Some(match name.0.to_ascii_lowercase().as_str() {
                    "i;octet" => Comparator::Octet,
                    "i;ascii-casemap" => Comparator::AsciiCasemap,
                    "i;ascii-numeric" => {
                        cx.need(
                            "comparator-i;ascii-numeric",
                            pos,
                            "comparator i;ascii-numeric",
                        )?;
                        Comparator::AsciiNumeric
                    }
                    other => {
                        return Err(CompileError::at(
                            pos,
                            format!("unknown comparator \"{other}\""),
                        ));
                    }
                });
                return Ok(true);
            }
            "is" => MatchKind::Is,
            "contains" => MatchKind::Contains,
            "matches" => MatchKind::Matches,
            "regex" => {
                cx.need("regex", pos, ":regex")?;
                MatchKind::Regex
            }
            "count" | "value" => {
                cx.need("relational", pos, &format!(":{tag}"))?;
                let rel = r.string("relation")?;
                let rel = match rel.0.to_ascii_lowercase().as_str() {
                    "gt" => Relation::Gt,
                    "ge" => Relation::Ge,
                    "lt" => Relation::Lt,
                    "le" => Relation::Le,
                    "eq" => Relation::Eq,
                    "ne" => Relation::Ne,
                    other => {
                        return Err(CompileError::at(
                            pos,
                            format!("unknown relation \"{other}\""),
                        ));
                    }
                };
                if tag == "count" {
                    MatchKind::Count(rel)
                } else {
                    MatchKind::Value(rel)
                }
            }
            "all" | "localpart" | "domain" | "user" | "detail" => {
                if self.part.is_some() {
                    return Err(CompileError::at(pos, "more than one address part"));
                }
                if matches!(tag, "user" | "detail") {
                    cx.need("subaddress", pos, &format!(":{tag}"))?;
                }
                self.part = Some(match tag {
                    "all" => AddressPart::All,
                    "localpart" => AddressPart::LocalPart,
                    "domain" => AddressPart::Domain,
                    "user" => AddressPart::User,
                    _ => AddressPart::Detail,
                });
                return Ok(true);
            }
            "index" if index_ok.is_some() => {
                cx.need(index_ok.unwrap_or("index"), pos, ":index")?;
                let n = r.number(":index")?;
                if n == 0 {
                    return Err(CompileError::at(pos, ":index counts from 1"));
                }
                self.index = Some(n);
                return Ok(true);
            }
            "last" if index_ok.is_some() => {
                cx.need(index_ok.unwrap_or("index"), pos, ":last")?;
                self.last = true;
                return Ok(true);
            }
            _ => return Ok(false),
        };
        if self.kind.is_some() {
            return Err(CompileError::at(pos, "more than one match type"));
        }
        self.kind = Some(kind);
        Ok(true)
    }

    fn finish(
        self,
        pos: Pos,
        cx: Option<&Cx>,
        keys: &[Value],
    ) -> Result<(Matcher, AddressPart, Option<Index>), CompileError> {
        let matcher = Matcher {
            comparator: self.comparator.unwrap_or(Comparator::AsciiCasemap),
            kind: self.kind.unwrap_or(MatchKind::Is),
        };
        if matcher.comparator == Comparator::AsciiNumeric
            && matches!(
                matcher.kind,
                MatchKind::Contains | MatchKind::Matches | MatchKind::Regex
            )
        {
            return Err(CompileError::at(
                pos,
                "comparator i;ascii-numeric does not support this match type",
            ));
        }
        if matcher.kind == MatchKind::Regex
            && let Some(cx) = cx
        {
            // Keys without variable references are compiled once, here.
            for k in keys
                .iter()
                .filter(|k| !cx.has("variables") || !k.0.contains("${"))
            {
                match super::matching::regex_for(&k.0, matcher.comparator) {
                    Ok(re) => {
                        cx.regexes
                            .borrow_mut()
                            .0
                            .insert((k.0.clone(), matcher.comparator), re);
                    }
                    Err(e) => {
                        return Err(CompileError::at(
                            pos,
                            format!("invalid regular expression \"{}\": {e}", k.0),
                        ));
                    }
                }
            }
        }
        if self.last && self.index.is_none() {
            return Err(CompileError::at(pos, ":last needs :index"));
        }
        let index = self.index.map(|n| Index { n, last: self.last });
        Ok((matcher, self.part.unwrap_or_default(), index))
    }
}

/// Reads a node's arguments: tags first, then positional ones (RFC 5228 §2.6.2).
struct Reader<'a> {
    node: &'a Node,
    i: usize,
    encoded: bool,
}

impl<'a> Reader<'a> {
    fn new(node: &'a Node, encoded: bool) -> Self {
        Reader {
            node,
            i: 0,
            encoded,
        }
    }

    fn tag(&mut self) -> Option<(String, Pos)> {
        match self.node.args.get(self.i) {
            Some(Arg::Tag(t, p)) => {
                self.i += 1;
                Some((t.clone(), *p))
            }
            _ => None,
        }
    }

    fn more(&self) -> bool {
        self.i < self.node.args.len()
    }

    fn missing(&self, what: &str) -> CompileError {
        CompileError::at(
            self.node.pos,
            format!("'{}' is missing its {what}", self.node.name),
        )
    }

    fn number(&mut self, what: &str) -> Result<u64, CompileError> {
        match self.node.args.get(self.i) {
            Some(Arg::Number(n, _)) => {
                self.i += 1;
                Ok(*n)
            }
            Some(a) => Err(CompileError::at(
                a.pos(),
                format!("expected a number ({what})"),
            )),
            None => Err(self.missing(what)),
        }
    }

    fn strings(&mut self, what: &str) -> Result<Vec<Value>, CompileError> {
        match self.node.args.get(self.i) {
            Some(Arg::Strings { list, pos, .. }) => {
                self.i += 1;
                list.iter().map(|s| self.value(s, *pos)).collect()
            }
            Some(a) => Err(CompileError::at(
                a.pos(),
                format!("expected a string list ({what})"),
            )),
            None => Err(self.missing(what)),
        }
    }

    fn string(&mut self, what: &str) -> Result<Value, CompileError> {
        match self.node.args.get(self.i) {
            Some(Arg::Strings {
                list,
                bracketed: false,
                pos,
            }) => {
                self.i += 1;
                self.value(&list[0], *pos)
            }
            Some(a) => Err(CompileError::at(
                a.pos(),
                format!("expected a string ({what})"),
            )),
            None => Err(self.missing(what)),
        }
    }

    fn value(&self, s: &str, pos: Pos) -> Result<Value, CompileError> {
        if self.encoded && s.contains("${") {
            decode_encoded(s)
                .map(Value)
                .map_err(|m| CompileError::at(pos, m))
        } else {
            Ok(Value(s.to_string()))
        }
    }

    fn end(&self) -> Result<(), CompileError> {
        match self.node.args.get(self.i) {
            None => Ok(()),
            Some(Arg::Tag(t, p)) => Err(unknown_tag(t, *p, self.node)),
            Some(a) => Err(CompileError::at(
                a.pos(),
                format!("too many arguments for '{}'", self.node.name),
            )),
        }
    }
}

fn no_tests(node: &Node) -> Result<(), CompileError> {
    if node.tests.is_empty() {
        Ok(())
    } else {
        Err(CompileError::at(
            node.tests[0].pos,
            format!("'{}' takes no test", node.name),
        ))
    }
}

fn simple(node: &Node, cmd: Command) -> Result<Command, CompileError> {
    Reader::new(node, false).end()?;
    Ok(cmd)
}

fn branch_block(node: &Node) -> Result<&[Node], CompileError> {
    node.block
        .as_deref()
        .ok_or_else(|| CompileError::at(node.pos, format!("'{}' needs a block", node.name)))
}

fn unknown_tag(tag: &str, pos: Pos, node: &Node) -> CompileError {
    CompileError::at(pos, format!("unknown tag ':{tag}' for '{}'", node.name))
}

fn single(list: Vec<Value>, pos: Pos, what: &str) -> Result<Value, CompileError> {
    let mut it = list.into_iter();
    match (it.next(), it.next()) {
        (Some(v), None) => Ok(v),
        _ => Err(CompileError::at(
            pos,
            format!("expected one string ({what})"),
        )),
    }
}

/// RFC 5229 §3: variable-name = identifier (namespaces are not supported).
fn check_variable_name(name: &str, pos: Pos) -> Result<(), CompileError> {
    let ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(CompileError::at(
            pos,
            format!("invalid variable name \"{name}\""),
        ))
    }
}

fn check_date_part(part: &Value, pos: Pos, cx: &Cx) -> Result<(), CompileError> {
    const PARTS: &[&str] = &[
        "year", "month", "day", "date", "julian", "hour", "minute", "second", "time", "iso8601",
        "std11", "zone", "weekday",
    ];
    if cx.has("variables") || PARTS.contains(&part.0.to_ascii_lowercase().as_str()) {
        Ok(())
    } else {
        Err(CompileError::at(
            pos,
            format!("unknown date part \"{}\"", part.0),
        ))
    }
}

/// A `:zone` value `+hhmm` / `-hhmm` as seconds east of UTC (RFC 5260 §4.1).
pub fn parse_zone(z: &str) -> Option<i64> {
    let b = z.as_bytes();
    if b.len() != 5 || !matches!(b[0], b'+' | b'-') || !b[1..].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let h: i64 = z[1..3].parse().ok()?;
    let m: i64 = z[3..5].parse().ok()?;
    if m > 59 {
        return None;
    }
    let s = h * 3600 + m * 60;
    Some(if b[0] == b'-' { -s } else { s })
}

/// A redirect target must at least look like an address (RFC 5228 §4.2: the argument is an
/// RFC 5322 address; checked at run time again).
pub fn plausible_address(a: &str) -> bool {
    let a = a.trim();
    let inner = match (a.rfind('<'), a.strip_suffix('>')) {
        (Some(open), Some(_)) => &a[open + 1..a.len() - 1],
        (None, None) if !a.contains('>') => a,
        _ => return false,
    };
    match inner.rsplit_once('@') {
        Some((l, d)) => {
            !l.is_empty() && !d.is_empty() && !d.contains(['@', ' ', ',']) && !l.contains(' ')
        }
        None => false,
    }
}

/// RFC 5228 §2.4.2.4: `${hex:…}` and `${unicode:…}` replaced by what they encode; malformed
/// sequences are left as written; a code point outside Unicode is an error.
pub fn decode_encoded(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let tail = &rest[at + 2..];
        let Some(close) = tail.find('}') else {
            out.push_str(&rest[at..]);
            return Ok(out);
        };
        let inner = &tail[..close];
        let decoded = match inner.split_once(':') {
            Some((kind, body)) if kind.eq_ignore_ascii_case("hex") => hex_bytes(body),
            Some((kind, body)) if kind.eq_ignore_ascii_case("unicode") => unicode_chars(body)?,
            _ => None,
        };
        match decoded {
            Some(d) => {
                out.push_str(&d);
                rest = &tail[close + 1..];
            }
            None => {
                out.push_str("${");
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn hex_bytes(body: &str) -> Option<String> {
    let mut bytes = Vec::new();
    for word in body
        .split([' ', '\t', '\r', '\n'])
        .filter(|w| !w.is_empty())
    {
        if word.len() % 2 != 0 {
            return None;
        }
        for pair in word.as_bytes().chunks(2) {
            bytes.push(u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?);
        }
    }
    String::from_utf8(bytes).ok()
}

fn unicode_chars(body: &str) -> Result<Option<String>, String> {
    let mut out = String::new();
    for word in body
        .split([' ', '\t', '\r', '\n'])
        .filter(|w| !w.is_empty())
    {
        let Ok(cp) = u32::from_str_radix(word, 16) else {
            return Ok(None);
        };
        match char::from_u32(cp) {
            Some(c) => out.push(c),
            None => return Err(format!("invalid Unicode code point {word}")),
        }
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &str) -> CompileError {
        compile(s).expect_err(s)
    }

    #[test]
    fn require_rules() {
        assert!(compile("require \"fileinto\"; fileinto \"x\";").is_ok());
        assert!(
            err("fileinto \"x\";")
                .message
                .contains("require \"fileinto\"")
        );
        assert!(
            err("require \"nosuch\";")
                .message
                .contains("unknown capability")
        );
        assert!(
            err("keep; require \"fileinto\";")
                .message
                .contains("before")
        );
        assert!(compile("require [\"comparator-i;octet\"]; keep;").is_ok());
        let e = err("require \"fileinto\";\nif true {\n  fileinto :copy \"x\";\n}");
        assert_eq!((e.pos.line, e.pos.col), (3, 12), "{e}");
    }

    #[test]
    fn if_chains() {
        let s = compile("if false { keep; } elsif true { discard; } else { stop; } keep;").unwrap();
        assert_eq!(s.commands.len(), 2);
        match &s.commands[0] {
            Command::If {
                branches,
                otherwise,
            } => {
                assert_eq!(branches.len(), 2);
                assert_eq!(otherwise.as_deref(), Some(&[Command::Stop][..]));
            }
            c => panic!("{c:?}"),
        }
        assert!(err("else { keep; }").message.contains("without"));
        assert!(
            err("if true keep;").message.contains("block")
                || err("if true keep;").message.contains("';'")
        );
        assert!(err("keep { stop; }").message.contains("no block"));
    }

    #[test]
    fn tests_and_tags() {
        assert!(
            compile("if header :contains :comparator \"i;octet\" \"subject\" \"x\" { keep; }")
                .is_ok()
        );
        assert!(
            err("if header :is :contains \"a\" \"b\" {}")
                .message
                .contains("more than one match")
        );
        assert!(
            err("if header :count \"gt\" \"a\" \"1\" {}")
                .message
                .contains("relational")
        );
        assert!(
            err("if header :over \"a\" \"b\" {}")
                .message
                .contains("unknown tag")
        );
        assert!(err("if size 100 {}").message.contains(":over"));
        assert!(
            err("if address :user \"to\" \"a\" {}")
                .message
                .contains("subaddress")
        );
        assert!(
            err("if header :localpart \"to\" \"a\" {}")
                .message
                .contains("unknown tag")
        );
        assert!(
            err("require \"regex\"; if header :regex \"s\" \"(\" {}")
                .message
                .contains("regular expression")
        );
        assert!(
            err("require \"comparator-i;ascii-numeric\"; if header :contains :comparator \"i;ascii-numeric\" \"s\" \"1\" {}")
                .message
                .contains("does not support")
        );
        assert!(err("if nosuch {}").message.contains("unknown test"));
    }

    #[test]
    fn encoded_characters() {
        assert_eq!(
            decode_encoded("a${hex:42 43}d${unicode:263a}").unwrap(),
            "aBCd\u{263a}"
        );
        assert_eq!(
            decode_encoded("${hex:4}x${foo}").unwrap(),
            "${hex:4}x${foo}"
        );
        assert!(decode_encoded("${unicode:110000}").is_err());
        let s = compile("require [\"encoded-character\", \"fileinto\"]; fileinto \"${hex:41}\";")
            .unwrap();
        assert_eq!(
            s.commands[0],
            Command::FileInto {
                mailbox: Value("A".into()),
                copy: false,
                create: false,
                flags: None
            }
        );
        let s = compile("require \"fileinto\"; fileinto \"${hex:41}\";").unwrap();
        assert!(
            matches!(&s.commands[0], Command::FileInto { mailbox, .. } if mailbox.0 == "${hex:41}")
        );
    }

    #[test]
    fn set_and_vacation() {
        let s = compile("require \"variables\"; set :upperfirst :lower \"A\" \"x\";").unwrap();
        assert_eq!(
            s.commands[0],
            Command::Set {
                name: "a".into(),
                value: Value("x".into()),
                modifiers: vec![Modifier::Lower, Modifier::UpperFirst]
            }
        );
        assert!(
            err("require \"variables\"; set :lower :upper \"a\" \"b\";")
                .message
                .contains("precedence")
        );
        assert!(
            err("require \"variables\"; set \"1\" \"b\";")
                .message
                .contains("variable name")
        );
        assert!(
            err("require \"vacation\"; vacation :seconds 5 \"x\";")
                .message
                .contains("vacation-seconds")
        );
        assert!(
            err("require [\"vacation\",\"vacation-seconds\"]; vacation :days 1 :seconds 5 \"x\";")
                .message
                .contains("exclude")
        );
        assert!(
            err("redirect \"not an address\";")
                .message
                .contains("invalid redirect")
        );
    }
}
