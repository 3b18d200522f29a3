//! SpamAssassin rule files (`Mail::SpamAssassin::Conf`): `header`, `body`, `rawbody`, `full`,
//! `uri`, `mimeheader`, `meta`, `score`, `describe`, `tflags`, `ifplugin`/`if`/`else`/`endif`,
//! `include`, and the ReplaceTags plugin's `replace_tag`/`replace_pre`/`replace_inter`/
//! `replace_post`/`replace_rules`. Every rule line is accounted for: loaded, or skipped with
//! a reason (an unknown plugin's block, an `eval:` without a built-in check, …).

use super::perl_re::{self, PerlRegex};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Which part of the message a rule looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A header field (or a pseudo-header such as `ALL`).
    Header,
    /// The decoded, rendered text, paragraph by paragraph, Subject first.
    Body,
    /// The decoded text parts, HTML tags kept, line by line.
    RawBody,
    /// The whole message as received.
    Full,
    /// Each link found in the body.
    Uri,
    /// A header field of each MIME part.
    MimeHeader,
    /// A boolean or arithmetic expression over other rules.
    Meta,
}

impl Kind {
    fn from_keyword(k: &str) -> Option<Kind> {
        Some(match k {
            "header" => Kind::Header,
            "body" => Kind::Body,
            "rawbody" => Kind::RawBody,
            "full" => Kind::Full,
            "uri" => Kind::Uri,
            "mimeheader" => Kind::MimeHeader,
            "meta" => Kind::Meta,
            _ => return None,
        })
    }

    /// The keyword, for reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Header => "header",
            Kind::Body => "body",
            Kind::RawBody => "rawbody",
            Kind::Full => "full",
            Kind::Uri => "uri",
            Kind::MimeHeader => "mimeheader",
            Kind::Meta => "meta",
        }
    }
}

/// How a header's value is presented to a header rule (`Name:raw`, `Name:addr`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HeaderForm {
    /// RFC 2047 words decoded, unfolded (the default).
    Decoded,
    /// As written, folding kept (`:raw`).
    Raw,
    /// The first address (`:addr`).
    Addr,
    /// The first display name (`:name`).
    Name,
}

/// The header a header or mimeheader rule reads.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HeaderTarget {
    /// Lower-case field name, or a pseudo-header (`all`, `tocc`, `messageid`, `envelopefrom`).
    pub name: String,
    /// Presentation.
    pub form: HeaderForm,
    /// Value used when the header is absent (`[if-unset: …]`).
    pub if_unset: Option<String>,
}

/// What a rule tests.
#[derive(Debug, Clone)]
pub enum Test {
    /// A regular expression (`=~`, or `!~` when `negate`).
    Regex {
        /// The pattern.
        re: PerlRegex,
        /// `!~`: the rule hits when the pattern does not match.
        negate: bool,
        /// The pattern as it reads plain text (ASCII octets, no `&#`), when ReplaceTags put in
        /// look-alikes that such text cannot hold ([`crate::spam::ascii_tags`]): the same
        /// matches there, far cheaper for Hyperscan.
        ascii: Option<String>,
    },
    /// `exists:Name`.
    Exists(String),
    /// `eval:function(args)`, run by a built-in check.
    Eval {
        /// Function name.
        func: String,
        /// Arguments, unquoted.
        args: Vec<String>,
    },
    /// A meta expression (source text, parsed when the rule set is compiled).
    Meta(String),
}

/// One rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Name (`__` prefix: a sub-rule, never scored or shown).
    pub name: String,
    /// What it looks at.
    pub kind: Kind,
    /// The header, for header and mimeheader rules.
    pub target: Option<HeaderTarget>,
    /// The test.
    pub test: Test,
    /// `tflags multiple`: count every match (up to `maxhits`).
    pub multiple: bool,
    /// `tflags maxhits=N`.
    pub maxhits: u32,
    /// `tflags net`: needs network tests.
    pub net: bool,
    /// Where it was defined, for messages.
    pub origin: String,
}

/// A rule file set, read and resolved: rules, their scores and descriptions.
#[derive(Debug, Default, Clone)]
pub struct RuleSet {
    /// Rules by name (a later definition replaces an earlier one, as in SpamAssassin).
    pub rules: BTreeMap<String, Rule>,
    /// `score NAME s0 [s1 s2 s3]`: the four score sets (no Bayes/no net, net, Bayes, both).
    pub scores: HashMap<String, [f64; 4]>,
    /// `describe NAME text`.
    pub describe: HashMap<String, String>,
    /// Lines not loaded, by reason.
    pub skipped: BTreeMap<String, usize>,
    /// `required_score`, when a file sets it.
    pub required_score: Option<f64>,
    replace: ReplaceTags,
    replace_rules: Vec<String>,
    tflags: HashMap<String, String>,
}

/// The ReplaceTags plugin's definitions.
#[derive(Debug, Default, Clone)]
struct ReplaceTags {
    tag: HashMap<String, String>,
    pre: HashMap<String, String>,
    inter: HashMap<String, String>,
    post: HashMap<String, String>,
}

/// A rule file that could not be read.
#[derive(Debug)]
pub struct LoadError(pub String);

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The plugins whose rules postcore runs: rule types and `eval:` checks it implements. An
/// `ifplugin` of any other plugin skips its block (counted).
const PLUGINS: &[&str] = &[
    "Mail::SpamAssassin::Plugin::ReplaceTags",
    "Mail::SpamAssassin::Plugin::MIMEHeader",
    "Mail::SpamAssassin::Plugin::HeaderEval",
    "Mail::SpamAssassin::Plugin::BodyEval",
    "Mail::SpamAssassin::Plugin::MIMEEval",
    "Mail::SpamAssassin::Plugin::HTMLEval",
];

/// `can(...)` features postcore has (SpamAssassin 4.0's configuration language).
const FEATURES: &[&str] = &[
    "Mail::SpamAssassin::Conf::feature_bug6558_free",
    "Mail::SpamAssassin::Conf::feature_welcomelist_blocklist",
    "Mail::SpamAssassin::Conf::perl_min_version_5010000",
    "Mail::SpamAssassin::Plugin::BodyEval::has_check_body_length",
];

/// The SpamAssassin version postcore's rule language stands for (`if (version >= …)`).
const VERSION: f64 = 4.000001;

/// Conditional blocks: whether each open level is taken.
#[derive(Default)]
struct Conditions(Vec<bool>);

impl Conditions {
    fn active(&self) -> bool {
        self.0.iter().all(|b| *b)
    }
}

impl RuleSet {
    /// Reads every `*.cf` file of `dir` in name order (as SpamAssassin does).
    pub fn load_dir(&mut self, dir: &Path) -> Result<(), LoadError> {
        let rd = std::fs::read_dir(dir)
            .map_err(|e| LoadError(format!("cannot read {}: {e}", dir.display())))?;
        let mut files: Vec<PathBuf> = rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "cf"))
            .collect();
        files.sort();
        for f in files {
            self.load_file(&f)?;
        }
        Ok(())
    }

    /// Reads one rule file (and what it `include`s).
    pub fn load_file(&mut self, path: &Path) -> Result<(), LoadError> {
        let bytes = std::fs::read(path)
            .map_err(|e| LoadError(format!("cannot read {}: {e}", path.display())))?;
        // Rule files are byte strings (patterns hold raw octets such as `\xc3`); read them as
        // Latin-1 so that no byte is lost.
        let text = super::perl_re::latin1(&bytes);
        self.add_text(&path.display().to_string(), &text, path.parent())
    }

    /// Adds rules from `text` (named `origin` in messages); `include` is resolved against
    /// `base`.
    pub fn add_text(
        &mut self,
        origin: &str,
        text: &str,
        base: Option<&Path>,
    ) -> Result<(), LoadError> {
        let mut cond = Conditions::default();
        for (n, line) in text.lines().enumerate() {
            let line = strip_comment(line);
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let at = format!("{origin}:{}", n + 1);
            let (key, rest) = split_word(line);
            match key {
                "ifplugin" => cond.0.push(PLUGINS.contains(&rest.trim())),
                "if" => cond.0.push(eval_condition(rest)),
                "else" => {
                    if let Some(last) = cond.0.last_mut() {
                        *last = !*last;
                    }
                }
                "endif" => {
                    cond.0.pop();
                }
                _ if !cond.active() => {
                    if Kind::from_keyword(key).is_some() {
                        self.skip("in a block for a plugin or feature postcore lacks");
                    }
                }
                "include" => {
                    let p = base.map_or_else(|| PathBuf::from(rest), |b| b.join(rest.trim()));
                    self.load_file(&p)?;
                }
                _ => self.directive(key, rest, &at)?,
            }
        }
        Ok(())
    }

    fn skip(&mut self, why: &str) {
        *self.skipped.entry(why.to_string()).or_default() += 1;
    }

    fn directive(&mut self, key: &str, rest: &str, at: &str) -> Result<(), LoadError> {
        let (name, arg) = split_word(rest);
        match key {
            "score" => {
                let v: Vec<f64> = arg
                    .split_whitespace()
                    .map_while(|s| s.parse().ok())
                    .collect();
                let s = match v.as_slice() {
                    [a] => [*a; 4],
                    [a, b, c, d, ..] => [*a, *b, *c, *d],
                    _ => return Err(LoadError(format!("{at}: bad score line"))),
                };
                self.scores.insert(name.to_string(), s);
            }
            "describe" => {
                self.describe.insert(name.to_string(), arg.to_string());
            }
            "tflags" => {
                self.tflags.insert(name.to_string(), arg.to_string());
            }
            "required_score" => self.required_score = name.parse().ok(),
            "replace_tag" => self
                .replace
                .tag
                .insert(name.into(), arg.into())
                .map_or((), drop),
            "replace_pre" => self
                .replace
                .pre
                .insert(name.into(), arg.into())
                .map_or((), drop),
            "replace_inter" => self
                .replace
                .inter
                .insert(name.into(), arg.into())
                .map_or((), drop),
            "replace_post" => self
                .replace
                .post
                .insert(name.into(), arg.into())
                .map_or((), drop),
            "replace_rules" => self
                .replace_rules
                .extend(rest.split_whitespace().map(String::from)),
            _ => match Kind::from_keyword(key) {
                Some(kind) => self.rule(kind, name, arg, at)?,
                None => self.skip("other directives (settings, lists, plugin options)"),
            },
        }
        Ok(())
    }

    fn rule(&mut self, kind: Kind, name: &str, arg: &str, at: &str) -> Result<(), LoadError> {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(LoadError(format!("{at}: bad rule name {name:?}")));
        }
        let parsed = match kind {
            Kind::Meta => Ok((None, Test::Meta(arg.to_string()))),
            Kind::Header | Kind::MimeHeader => parse_header_test(arg),
            _ => parse_plain_test(arg),
        };
        match parsed {
            Ok((target, test)) => {
                let rule = Rule {
                    name: name.to_string(),
                    kind,
                    target,
                    test,
                    multiple: false,
                    maxhits: 0,
                    net: false,
                    origin: at.to_string(),
                };
                self.rules.insert(name.to_string(), rule);
            }
            Err(why) => {
                self.rules.remove(name);
                self.skip(&why);
            }
        }
        Ok(())
    }

    /// Applies what can only be applied once every file is read: tflags, ReplaceTags.
    pub fn finish(&mut self) {
        for (name, flags) in &self.tflags {
            if let Some(r) = self.rules.get_mut(name) {
                for f in flags.split_whitespace() {
                    match f.split_once('=') {
                        Some(("maxhits", n)) => {
                            r.multiple = true;
                            r.maxhits = n.parse().unwrap_or(0);
                        }
                        _ if f == "multiple" => r.multiple = true,
                        _ if f == "net" => r.net = true,
                        _ => {}
                    }
                }
            }
        }
        let ascii_tags = self.replace.ascii_only();
        for name in std::mem::take(&mut self.replace_rules) {
            if let Some(Rule {
                test: Test::Regex { re, ascii, .. },
                ..
            }) = self.rules.get_mut(&name)
            {
                let whole = self.replace.apply(&re.source);
                let narrowed = ascii_tags.apply(&re.source);
                *ascii = (narrowed != whole).then_some(narrowed);
                re.source = whole;
            }
        }
    }

    /// The score of rule `name` in score set `set` (0–3). SpamAssassin's defaults: 0 for a
    /// sub-rule (`__`), 0.01 for a test rule (`T_`), 1 otherwise.
    pub fn score(&self, name: &str, set: usize) -> f64 {
        if let Some(s) = self.scores.get(name) {
            return s[set.min(3)];
        }
        if name.starts_with("__") {
            0.0
        } else if name.starts_with("T_") {
            0.01
        } else {
            1.0
        }
    }
}

impl ReplaceTags {
    /// The same definitions with every tag as it reads plain text
    /// ([`crate::spam::ascii_tags::ascii_tag`]).
    fn ascii_only(&self) -> ReplaceTags {
        let mut out = self.clone();
        for v in out.tag.values_mut() {
            if let Some(a) = crate::spam::ascii_tags::ascii_tag(v) {
                *v = a;
            }
        }
        out
    }

    /// Replaces `<TAG>` in `src` with its value; `<pre X>`, `<inter X>` and `<post X>`
    /// markers put X before, between and after the tags that follow them.
    fn apply(&self, src: &str) -> String {
        let (mut pre, mut inter, mut post) = (None, None, None);
        let mut out = String::with_capacity(src.len() * 4);
        let mut rest = src;
        let mut last_was_tag = false;
        while let Some(i) = rest.find('<') {
            let Some(j) = rest[i..].find('>').map(|j| i + j) else {
                break;
            };
            let inner = &rest[i + 1..j];
            out.push_str(&rest[..i]);
            let adjacent = last_was_tag && i == 0;
            let (word, name) = split_word(inner);
            let marker = match word {
                "pre" => Some((&mut pre, &self.pre)),
                "inter" => Some((&mut inter, &self.inter)),
                "post" => Some((&mut post, &self.post)),
                _ => None,
            };
            if let Some((slot, map)) = marker.filter(|_| !name.is_empty()) {
                *slot = map.get(name).cloned();
                last_was_tag = adjacent;
            } else if let Some(v) = self.tag.get(inner) {
                if adjacent {
                    out.push_str(inter.as_deref().unwrap_or(""));
                }
                out.push_str(pre.as_deref().unwrap_or(""));
                out.push_str(v);
                out.push_str(post.as_deref().unwrap_or(""));
                last_was_tag = true;
            } else {
                out.push_str(&rest[i..=j]);
                last_was_tag = false;
            }
            rest = &rest[j + 1..];
        }
        out.push_str(rest);
        out
    }
}

/// Cuts a `#` comment (not `\#`) and turns `\#` into `#`, as SpamAssassin's reader does.
fn strip_comment(line: &str) -> String {
    let b = line.as_bytes();
    let mut end = b.len();
    for i in 0..b.len() {
        if b[i] == b'#' && (i == 0 || b[i - 1] != b'\\') {
            end = i;
            break;
        }
    }
    line[..end].replace("\\#", "#")
}

/// The first word of `s` and the rest, trimmed.
fn split_word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], s[i..].trim()),
        None => (s, ""),
    }
}

/// `if` conditions: `version >= X`, `can(feature)`, `plugin(name)`, `!`, parentheses, `&&`,
/// `||` (what SpamAssassin's own rule files use).
fn eval_condition(expr: &str) -> bool {
    let mut p = CondParser {
        s: expr.as_bytes(),
        i: 0,
    };
    p.or().unwrap_or(false)
}

struct CondParser<'a> {
    s: &'a [u8],
    i: usize,
}

impl CondParser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn eat(&mut self, t: &str) -> bool {
        self.ws();
        if self.s[self.i..].starts_with(t.as_bytes()) {
            self.i += t.len();
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Option<bool> {
        let mut v = self.and()?;
        while self.eat("||") {
            v |= self.and()?;
        }
        Some(v)
    }

    fn and(&mut self) -> Option<bool> {
        let mut v = self.unary()?;
        while self.eat("&&") {
            v &= self.unary()?;
        }
        Some(v)
    }

    fn unary(&mut self) -> Option<bool> {
        if self.eat("!") {
            return self.unary().map(|v| !v);
        }
        if self.eat("(") {
            let v = self.or()?;
            return self.eat(")").then_some(v);
        }
        if self.eat("version") {
            let op = ["<=", ">=", "==", "<", ">"]
                .into_iter()
                .find(|o| self.eat(o))?;
            self.ws();
            let start = self.i;
            while self.i < self.s.len()
                && (self.s[self.i].is_ascii_digit() || self.s[self.i] == b'.')
            {
                self.i += 1;
            }
            let n: f64 = std::str::from_utf8(&self.s[start..self.i])
                .ok()?
                .parse()
                .ok()?;
            return Some(match op {
                "<=" => VERSION <= n,
                ">=" => VERSION >= n,
                "==" => (VERSION - n).abs() < 1e-9,
                "<" => VERSION < n,
                _ => VERSION > n,
            });
        }
        for (word, list) in [("can(", FEATURES), ("plugin(", PLUGINS)] {
            if self.eat(word) {
                let start = self.i;
                let end = start + self.s[start..].iter().position(|&b| b == b')')?;
                self.i = end + 1;
                let name = std::str::from_utf8(&self.s[start..end]).ok()?.trim();
                return Some(list.contains(&name));
            }
        }
        None
    }
}

/// `Name[:form] =~ /re/ [if-unset: X]`, `Name !~ …`, `exists:Name`, `eval:f(…)`.
fn parse_header_test(arg: &str) -> Result<(Option<HeaderTarget>, Test), String> {
    if let Some(h) = arg.strip_prefix("exists:") {
        return Ok((None, Test::Exists(header_name(h.trim()))));
    }
    if arg.starts_with("eval:") {
        return parse_plain_test(arg);
    }
    let (field, rest) = split_word(arg);
    let (op, pattern) = split_word(rest);
    let negate = match op {
        "=~" => false,
        "!~" => true,
        _ => return Err("header rules without =~ or !~".into()),
    };
    let (name, form) = match field.split_once(':') {
        Some((n, "raw")) => (n, HeaderForm::Raw),
        Some((n, "addr")) => (n, HeaderForm::Addr),
        Some((n, "name")) => (n, HeaderForm::Name),
        Some(_) => return Err("header rules with an unknown :modifier".into()),
        None => (field, HeaderForm::Decoded),
    };
    let (re, tail) = perl_re::parse_literal(pattern).map_err(|e| format!("bad regex: {e}"))?;
    let if_unset = tail
        .trim()
        .strip_prefix("[if-unset:")
        .and_then(|t| t.strip_suffix(']'))
        .map(|t| t.trim().to_string());
    let target = HeaderTarget {
        name: header_name(name),
        form,
        if_unset,
    };
    Ok((
        Some(target),
        Test::Regex {
            re,
            negate,
            ascii: None,
        },
    ))
}

/// The name a header rule reads: SpamAssassin's pseudo-headers by their exact spelling
/// (`ALL`, `ToCc`, `MESSAGEID`, `EnvelopeFrom`: `MessageID` is an ordinary field name) as
/// `:all`, `:tocc`, `:messageid`, `:envelopefrom`; any other name in lower case.
fn header_name(name: &str) -> String {
    match name {
        "ALL" => ":all".into(),
        "ToCc" => ":tocc".into(),
        "MESSAGEID" => ":messageid".into(),
        "EnvelopeFrom" => ":envelopefrom".into(),
        n => n.to_ascii_lowercase(),
    }
}

/// `/re/flags` or `eval:f(args)`.
fn parse_plain_test(arg: &str) -> Result<(Option<HeaderTarget>, Test), String> {
    if let Some(call) = arg.strip_prefix("eval:") {
        let (func, args) = call
            .split_once('(')
            .ok_or_else(|| "eval: without arguments".to_string())?;
        let args = args.trim_end().trim_end_matches(')');
        let args = args
            .split(',')
            .map(|a| a.trim().trim_matches(|c| c == '\'' || c == '"').to_string())
            .filter(|a| !a.is_empty())
            .collect();
        return Ok((
            None,
            Test::Eval {
                func: func.trim().to_string(),
                args,
            },
        ));
    }
    let (re, _) = perl_re::parse_literal(arg).map_err(|e| format!("bad regex: {e}"))?;
    Ok((
        None,
        Test::Regex {
            re,
            negate: false,
            ascii: None,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(text: &str) -> RuleSet {
        let mut s = RuleSet::default();
        s.add_text("t.cf", text, None).expect("loads");
        s.finish();
        s
    }

    #[test]
    fn reads_each_rule_type_scores_and_flags() {
        let s = set("header SUBJ_BUY Subject =~ /buy now/i\n\
             header FROM_RAW From:raw !~ /\\@/ [if-unset: none]\n\
             header HAS_XM exists:X-Mailer\n\
             body BODY_X /cheap \\# pills/ # comment\n\
             rawbody RAW_X m{<font}i\n\
             full FULL_X /^From /m\n\
             uri URI_X /\\.ru\\b/\n\
             meta META_X (SUBJ_BUY && BODY_X) || URI_X > 1\n\
             score SUBJ_BUY 2.5\n\
             score BODY_X 1 2 3 4\n\
             tflags URI_X multiple maxhits=3\n");
        assert_eq!(s.rules.len(), 8);
        let subj = &s.rules["SUBJ_BUY"];
        assert_eq!(subj.kind, Kind::Header);
        assert_eq!(
            subj.target.as_ref().map(|t| t.name.as_str()),
            Some("subject")
        );
        let raw = s.rules["FROM_RAW"].target.clone().expect("target");
        assert_eq!(raw.form, HeaderForm::Raw);
        assert_eq!(raw.if_unset.as_deref(), Some("none"));
        assert!(matches!(
            s.rules["FROM_RAW"].test,
            Test::Regex { negate: true, .. }
        ));
        assert!(matches!(&s.rules["HAS_XM"].test, Test::Exists(h) if h == "x-mailer"));
        match &s.rules["BODY_X"].test {
            Test::Regex { re, .. } => assert_eq!(re.source, "cheap # pills"),
            t => panic!("{t:?}"),
        }
        assert!(s.rules["URI_X"].multiple);
        assert_eq!(s.rules["URI_X"].maxhits, 3);
        assert_eq!(s.score("SUBJ_BUY", 0), 2.5);
        assert_eq!(s.score("BODY_X", 2), 3.0);
        assert_eq!(s.score("META_X", 0), 1.0);
        assert_eq!(s.score("__SUB", 0), 0.0);
        assert_eq!(s.score("T_TEST", 0), 0.01);
    }

    #[test]
    fn conditionals_follow_plugins_features_and_version() {
        let s = set(
            "ifplugin Mail::SpamAssassin::Plugin::DCC\nbody IN_DCC /x/\nendif\n\
             ifplugin Mail::SpamAssassin::Plugin::MIMEHeader\nbody IN_MIME /x/\nendif\n\
             if (version >= 3.004000)\nbody NEW /x/\nendif\n\
             if (version >= 9.000000)\nbody FUTURE /x/\nelse\nbody PAST /x/\nendif\n\
             if !plugin(Mail::SpamAssassin::Plugin::MIMEHeader)\nbody NOMIME /x/\nendif\n\
             if can(Mail::SpamAssassin::Conf::feature_welcomelist_blocklist)\nbody WL /x/\nendif\n",
        );
        let names: Vec<&str> = s.rules.keys().map(String::as_str).collect();
        assert_eq!(names, ["IN_MIME", "NEW", "PAST", "WL"]);
        assert_eq!(s.skipped.values().sum::<usize>(), 3);
    }

    #[test]
    fn replace_tags_expand_with_inter_and_post() {
        let s = set(
            "replace_tag V (?:v|\\\\/)\nreplace_tag I [i1]\nreplace_inter W2 \\W{0,2}\n\
             replace_post P3 {1,3}\nbody FUZZY /<inter W2><post P3><V><I>x<V>/i\n\
             replace_rules FUZZY\n",
        );
        match &s.rules["FUZZY"].test {
            Test::Regex { re, .. } => {
                assert_eq!(
                    re.source,
                    "(?:v|\\\\/){1,3}\\W{0,2}[i1]{1,3}x(?:v|\\\\/){1,3}"
                )
            }
            t => panic!("{t:?}"),
        }
    }

    #[test]
    fn eval_rules_keep_their_arguments() {
        let s = set("body LEN eval:check_body_length('500')\nheader E eval:f(1, \"a\")\n");
        match &s.rules["LEN"].test {
            Test::Eval { func, args } => {
                assert_eq!(func, "check_body_length");
                assert_eq!(args, &["500"]);
            }
            t => panic!("{t:?}"),
        }
    }
}
