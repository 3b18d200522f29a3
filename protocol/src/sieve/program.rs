//! A compiled Sieve script: typed commands and tests, every argument checked, ready to run.
//! It serializes (see [`super::stored`]) so a script is compiled once, at upload.

use serde::{Deserialize, Serialize};

/// A string argument as written; expanded at run time when the script uses `variables`
/// (RFC 5229 §3), otherwise used as it is.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Value(pub String);

/// A compiled script.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Script {
    /// The commands at top level.
    pub commands: Vec<Command>,
    /// The capabilities named by `require`.
    pub requires: Vec<String>,
    /// Whether `${…}` in strings is expanded (RFC 5229 requires it).
    pub variables: bool,
    /// The `:regex` keys known at compile time, compiled once.
    pub regexes: Regexes,
}

/// Compiled regular expressions by pattern and comparator (two scripts are equal when they
/// hold the same patterns).
#[derive(Debug, Clone, Default)]
pub struct Regexes(pub std::collections::HashMap<(String, Comparator), regex::Regex>);

impl PartialEq for Regexes {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len() && self.0.keys().all(|k| other.0.contains_key(k))
    }
}

impl Script {
    /// Whether the script named `capability` in a `require`.
    pub fn requires(&self, capability: &str) -> bool {
        self.requires.iter().any(|r| r == capability)
    }
}

/// Which flag operation (RFC 5232 §3).
#[derive(Debug, Clone, Serialize, Deserialize, Copy, PartialEq, Eq)]
pub enum FlagOp {
    /// setflag: replace.
    Set,
    /// addflag: add.
    Add,
    /// removeflag: remove.
    Remove,
}

/// A `set` modifier (RFC 5229 §4.1), applied in order of precedence.
#[derive(Debug, Clone, Serialize, Deserialize, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Modifier {
    /// `:lower` / `:upper` (precedence 40).
    Lower,
    /// `:upper`.
    Upper,
    /// `:lowerfirst` (30).
    LowerFirst,
    /// `:upperfirst` (30).
    UpperFirst,
    /// `:quotewildcard` (20).
    QuoteWildcard,
    /// `:length` (10).
    Length,
}

impl Modifier {
    /// RFC 5229 §4.1: higher precedence applies first.
    pub fn precedence(self) -> u8 {
        match self {
            Modifier::Lower | Modifier::Upper => 40,
            Modifier::LowerFirst | Modifier::UpperFirst => 30,
            Modifier::QuoteWildcard => 20,
            Modifier::Length => 10,
        }
    }
}

/// The `vacation` command's arguments (RFC 5230 §4, RFC 6131).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Vacation {
    /// `:days` in seconds or `:seconds`; `None` for the default.
    pub period: Option<u64>,
    /// `:subject`.
    pub subject: Option<Value>,
    /// `:from`.
    pub from: Option<Value>,
    /// `:addresses`.
    pub addresses: Vec<Value>,
    /// `:mime`: the reason is a MIME entity.
    pub mime: bool,
    /// `:handle`.
    pub handle: Option<Value>,
    /// The reason (the reply's body).
    pub reason: Value,
}

/// A command.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum Command {
    /// if / elsif / else: the first branch whose test holds runs; else the last block.
    If {
        /// Tests and blocks in order.
        branches: Vec<(Test, Vec<Command>)>,
        /// The `else` block.
        otherwise: Option<Vec<Command>>,
    },
    /// stop (RFC 5228 §3.3).
    Stop,
    /// keep, with imap4flags' `:flags`.
    Keep {
        /// `:flags`.
        flags: Option<Vec<Value>>,
    },
    /// discard.
    Discard,
    /// fileinto (RFC 5228 §4.1; `:copy` RFC 3894, `:create` RFC 5490, `:flags` RFC 5232).
    FileInto {
        /// Target mailbox.
        mailbox: Value,
        /// `:copy`: the implicit keep stays.
        copy: bool,
        /// `:create`.
        create: bool,
        /// `:flags`.
        flags: Option<Vec<Value>>,
    },
    /// redirect (RFC 5228 §4.2).
    Redirect {
        /// Target address.
        address: Value,
        /// `:copy`.
        copy: bool,
    },
    /// reject / ereject (RFC 5429).
    Reject {
        /// The reason given to the sender.
        reason: Value,
        /// ereject: refuse in the protocol where possible.
        extended: bool,
    },
    /// setflag / addflag / removeflag (RFC 5232).
    Flags {
        /// Which.
        op: FlagOp,
        /// The variable, or the internal one.
        variable: Option<Value>,
        /// Flags (space-separated lists allowed).
        flags: Vec<Value>,
    },
    /// set (RFC 5229 §4).
    Set {
        /// Variable name, lower case.
        name: String,
        /// Value.
        value: Value,
        /// Modifiers, sorted by precedence (highest first).
        modifiers: Vec<Modifier>,
    },
    /// vacation.
    Vacation(Box<Vacation>),
    /// addheader (RFC 5293 §4).
    AddHeader {
        /// `:last`: append instead of prepend.
        last: bool,
        /// Field name.
        name: Value,
        /// Field value.
        value: Value,
    },
    /// deleteheader (RFC 5293 §5).
    DeleteHeader {
        /// `:index`.
        index: Option<Index>,
        /// Comparator and match type.
        matcher: Matcher,
        /// Field name.
        name: Value,
        /// Value patterns; all occurrences when absent.
        patterns: Option<Vec<Value>>,
    },
    /// include (RFC 6609 §3.2).
    Include {
        /// `:global` (else `:personal`).
        global: bool,
        /// `:once`.
        once: bool,
        /// `:optional`.
        optional: bool,
        /// Script name.
        name: Value,
    },
    /// return (RFC 6609 §3.3).
    Return,
    /// global (RFC 6609 §3.4): variables shared with included scripts.
    Global(Vec<String>),
}

/// A comparator (RFC 4790; Sieve's three, RFC 5228 §2.7.3).
#[derive(Debug, Clone, Serialize, Deserialize, Copy, PartialEq, Eq, Hash)]
pub enum Comparator {
    /// i;octet.
    Octet,
    /// i;ascii-casemap (the default).
    AsciiCasemap,
    /// i;ascii-numeric (RFC 4790 §9.1).
    AsciiNumeric,
}

/// A relation of the relational extension (RFC 5231 §4).
#[derive(Debug, Clone, Serialize, Deserialize, Copy, PartialEq, Eq)]
pub enum Relation {
    /// gt.
    Gt,
    /// ge.
    Ge,
    /// lt.
    Lt,
    /// le.
    Le,
    /// eq.
    Eq,
    /// ne.
    Ne,
}

/// A match type (RFC 5228 §2.7.1, RFC 5231, regex draft).
#[derive(Debug, Clone, Serialize, Deserialize, Copy, PartialEq, Eq)]
pub enum MatchKind {
    /// :is.
    Is,
    /// :contains.
    Contains,
    /// :matches (`*` and `?`, `\` escapes).
    Matches,
    /// :regex (POSIX extended).
    Regex,
    /// :count with a relation.
    Count(Relation),
    /// :value with a relation.
    Value(Relation),
}

/// How values are compared with the keys.
#[derive(Debug, Clone, Serialize, Deserialize, Copy, PartialEq, Eq)]
pub struct Matcher {
    /// Comparator.
    pub comparator: Comparator,
    /// Match type.
    pub kind: MatchKind,
}

impl Default for Matcher {
    fn default() -> Self {
        Matcher {
            comparator: Comparator::AsciiCasemap,
            kind: MatchKind::Is,
        }
    }
}

/// Which part of an address is compared (RFC 5228 §2.7.4, RFC 5233).
#[derive(Debug, Clone, Serialize, Deserialize, Copy, PartialEq, Eq, Default)]
pub enum AddressPart {
    /// :all.
    #[default]
    All,
    /// :localpart.
    LocalPart,
    /// :domain.
    Domain,
    /// :user (before the separator).
    User,
    /// :detail (after the separator).
    Detail,
}

/// `:index n [:last]` (RFC 5260 §6).
#[derive(Debug, Clone, Serialize, Deserialize, Copy, PartialEq, Eq)]
pub struct Index {
    /// From 1.
    pub n: u64,
    /// Count from the end.
    pub last: bool,
}

/// The body test's transform (RFC 5173 §5).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum BodyTransform {
    /// :raw: the undecoded body.
    Raw,
    /// :content types: the decoded parts of these types.
    Content(Vec<Value>),
    /// :text (the default): the text parts, decoded.
    Text,
}

/// Time zone of a date test (RFC 5260 §4.1).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum Zone {
    /// Unspecified: the local zone (the server's: UTC here).
    Local,
    /// `:zone "+0100"`.
    Fixed(Value),
    /// `:originalzone`: as written in the header.
    Original,
}

/// What the duplicate test keys on (RFC 7352 §3).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum DuplicateKey {
    /// Message-ID.
    MessageId,
    /// `:header name`.
    Header(Value),
    /// `:uniqueid value`.
    UniqueId(Value),
}

/// A test.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum Test {
    /// true.
    True,
    /// false.
    False,
    /// not.
    Not(Box<Test>),
    /// allof.
    AllOf(Vec<Test>),
    /// anyof.
    AnyOf(Vec<Test>),
    /// address (RFC 5228 §5.1).
    Address {
        /// Comparison.
        matcher: Matcher,
        /// Part.
        part: AddressPart,
        /// `:index`.
        index: Option<Index>,
        /// Header names.
        headers: Vec<Value>,
        /// Keys.
        keys: Vec<Value>,
    },
    /// envelope (RFC 5228 §5.4).
    Envelope {
        /// Comparison.
        matcher: Matcher,
        /// Part.
        part: AddressPart,
        /// "from" / "to".
        fields: Vec<Value>,
        /// Keys.
        keys: Vec<Value>,
    },
    /// header (RFC 5228 §5.7).
    Header {
        /// Comparison.
        matcher: Matcher,
        /// `:index`.
        index: Option<Index>,
        /// Header names.
        headers: Vec<Value>,
        /// Keys.
        keys: Vec<Value>,
    },
    /// exists (RFC 5228 §5.5).
    Exists(Vec<Value>),
    /// size (RFC 5228 §5.9): `:over` when true, else `:under`.
    Size {
        /// :over.
        over: bool,
        /// Limit in octets.
        limit: u64,
    },
    /// body (RFC 5173).
    Body {
        /// Comparison.
        matcher: Matcher,
        /// Transform.
        transform: BodyTransform,
        /// Keys.
        keys: Vec<Value>,
    },
    /// string (RFC 5229 §5).
    String {
        /// Comparison.
        matcher: Matcher,
        /// Sources.
        sources: Vec<Value>,
        /// Keys.
        keys: Vec<Value>,
    },
    /// hasflag (RFC 5232 §4).
    HasFlag {
        /// Comparison.
        matcher: Matcher,
        /// Variables, or the internal one.
        variables: Option<Vec<Value>>,
        /// Keys.
        keys: Vec<Value>,
    },
    /// date (RFC 5260 §4).
    Date {
        /// Comparison.
        matcher: Matcher,
        /// `:index`.
        index: Option<Index>,
        /// Zone.
        zone: Zone,
        /// Header holding the date.
        header: Value,
        /// Date part.
        part: Value,
        /// Keys.
        keys: Vec<Value>,
    },
    /// currentdate (RFC 5260 §5).
    CurrentDate {
        /// Comparison.
        matcher: Matcher,
        /// Zone.
        zone: Zone,
        /// Date part.
        part: Value,
        /// Keys.
        keys: Vec<Value>,
    },
    /// mailboxexists (RFC 5490 §3.1).
    MailboxExists(Vec<Value>),
    /// duplicate (RFC 7352).
    Duplicate {
        /// `:handle`.
        handle: Option<Value>,
        /// What identifies the message.
        key: DuplicateKey,
        /// `:seconds`.
        seconds: Option<u64>,
        /// `:last`.
        last: bool,
    },
    /// spamtest (RFC 5235 §3.2); `percent` for `:percent` (spamtestplus).
    SpamTest {
        /// Comparison.
        matcher: Matcher,
        /// `:percent`.
        percent: bool,
        /// Value to compare with.
        value: Value,
    },
    /// virustest (RFC 5235 §3.3).
    VirusTest {
        /// Comparison.
        matcher: Matcher,
        /// Value to compare with.
        value: Value,
    },
}
