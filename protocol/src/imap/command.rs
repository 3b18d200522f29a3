//! IMAP command parser (RFC 9051 §6 and §9, RFC 3501, and the extensions postcore announces).
//!
//! Input is one whole command as assembled by [`super::reader::CommandReader`]: literals are
//! inline as `{N}` CRLF followed by N octets. Nesting (search keys, parenthesised lists) is
//! bounded, so hostile input costs bounded stack.

use super::types::*;

/// Deepest nesting of parentheses accepted in a command.
pub const MAX_DEPTH: usize = 32;

/// One parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The client's tag.
    pub tag: String,
    /// What to do.
    pub body: CommandBody,
}

/// A message given to APPEND.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendMessage {
    /// Flags to set.
    pub flags: Vec<String>,
    /// INTERNALDATE as Unix seconds, if given.
    pub date: Option<i64>,
    /// The message.
    pub data: Vec<u8>,
}

/// QRESYNC parameters of SELECT (RFC 7162 §3.2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QResync {
    /// The client's last known UIDVALIDITY.
    pub uidvalidity: u32,
    /// The client's last known HIGHESTMODSEQ.
    pub modseq: u64,
    /// UIDs the client knows (optional).
    pub known_uids: Option<SeqSet>,
}

/// The commands postcore understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandBody {
    /// CAPABILITY.
    Capability,
    /// NOOP.
    Noop,
    /// LOGOUT.
    Logout,
    /// STARTTLS.
    StartTls,
    /// AUTHENTICATE mechanism [initial-response] (SASL-IR, RFC 4959).
    Authenticate {
        /// Mechanism name, upper case.
        mechanism: String,
        /// Initial response (base64, or `=` for empty).
        initial: Option<String>,
    },
    /// LOGIN user password.
    Login {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
    /// ENABLE capabilities (RFC 5161).
    Enable(Vec<String>),
    /// SELECT / EXAMINE.
    Select {
        /// Mailbox name.
        mailbox: String,
        /// EXAMINE.
        read_only: bool,
        /// (CONDSTORE) parameter.
        condstore: bool,
        /// (QRESYNC (...)) parameter.
        qresync: Option<QResync>,
    },
    /// CREATE mailbox [(USE (\Special))].
    Create {
        /// Mailbox name.
        mailbox: String,
        /// RFC 6154 §3 special-use attributes.
        special_use: Vec<String>,
    },
    /// DELETE.
    Delete(String),
    /// RENAME.
    Rename {
        /// Old name.
        from: String,
        /// New name.
        to: String,
    },
    /// SUBSCRIBE.
    Subscribe(String),
    /// UNSUBSCRIBE.
    Unsubscribe(String),
    /// LIST / LSUB (with LIST-EXTENDED options).
    List {
        /// Reference name.
        reference: String,
        /// Patterns.
        patterns: Vec<String>,
        /// Selection and return options.
        options: ListOptions,
    },
    /// NAMESPACE (RFC 2342).
    Namespace,
    /// STATUS mailbox (items).
    Status {
        /// Mailbox name.
        mailbox: String,
        /// Items asked for.
        items: Vec<StatusItem>,
    },
    /// APPEND (one message).
    Append {
        /// Target mailbox.
        mailbox: String,
        /// The message.
        message: AppendMessage,
    },
    /// IDLE (RFC 2177).
    Idle,
    /// CHECK.
    Check,
    /// CLOSE.
    Close,
    /// UNSELECT (RFC 3691).
    Unselect,
    /// EXPUNGE, or UID EXPUNGE set (UIDPLUS).
    Expunge(Option<SeqSet>),
    /// SEARCH / UID SEARCH.
    Search {
        /// UID SEARCH.
        uid: bool,
        /// RETURN options (ESEARCH).
        ret: SearchReturn,
        /// Criteria (all must match).
        key: SearchKey,
    },
    /// SORT / UID SORT (RFC 5256).
    Sort {
        /// UID SORT.
        uid: bool,
        /// Criteria: (reverse, key).
        criteria: Vec<(bool, SortKey)>,
        /// Search criteria.
        key: SearchKey,
    },
    /// FETCH / UID FETCH.
    Fetch {
        /// UID FETCH.
        uid: bool,
        /// Messages.
        set: SeqSet,
        /// Items.
        atts: Vec<FetchAtt>,
        /// CHANGEDSINCE modifier (RFC 7162).
        changed_since: Option<u64>,
        /// VANISHED modifier (RFC 7162 §3.2.6).
        vanished: bool,
    },
    /// STORE / UID STORE.
    Store {
        /// UID STORE.
        uid: bool,
        /// Messages.
        set: SeqSet,
        /// UNCHANGEDSINCE modifier.
        unchanged_since: Option<u64>,
        /// Replace / add / remove.
        mode: StoreMode,
        /// .SILENT.
        silent: bool,
        /// Flags.
        flags: Vec<String>,
    },
    /// COPY / UID COPY.
    Copy {
        /// UID COPY.
        uid: bool,
        /// Messages.
        set: SeqSet,
        /// Target.
        mailbox: String,
    },
    /// MOVE / UID MOVE (RFC 6851).
    Move {
        /// UID MOVE.
        uid: bool,
        /// Messages.
        set: SeqSet,
        /// Target.
        mailbox: String,
    },
    /// ID (RFC 2971).
    Id(Vec<(String, Option<String>)>),
    /// GETQUOTA root (RFC 9208).
    GetQuota(String),
    /// GETQUOTAROOT mailbox.
    GetQuotaRoot(String),
    /// SETQUOTA root (...) — only administrators set quotas.
    SetQuota(String),
    /// GETACL mailbox (RFC 4314).
    GetAcl(String),
    /// SETACL mailbox identifier rights.
    SetAcl {
        /// Mailbox.
        mailbox: String,
        /// User the rights are for.
        identifier: String,
        /// Rights, with an optional leading `+` or `-`.
        rights: String,
    },
    /// DELETEACL mailbox identifier.
    DeleteAcl {
        /// Mailbox.
        mailbox: String,
        /// User.
        identifier: String,
    },
    /// LISTRIGHTS mailbox identifier.
    ListRights {
        /// Mailbox.
        mailbox: String,
        /// User.
        identifier: String,
    },
    /// MYRIGHTS mailbox.
    MyRights(String),
}

/// Why a command could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The tag, if one was read (`*` otherwise).
    pub tag: String,
    /// What was wrong.
    pub message: String,
}

type R<T> = Result<T, String>;

struct Cur<'a> {
    d: &'a [u8],
    p: usize,
}

fn is_atom_char(b: u8) -> bool {
    // RFC 9051 §9 ATOM-CHAR: any CHAR except atom-specials.
    b > 0x20 && b < 0x7f && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

fn is_astring_char(b: u8) -> bool {
    // Lenient like deployed servers: `*` and `%` are accepted inside astring atoms, so
    // `LOGIN alice*root secret` (master login, RFC-wise a quoted string) works unquoted.
    is_atom_char(b) || matches!(b, b']' | b'*' | b'%')
}

fn is_list_char(b: u8) -> bool {
    is_atom_char(b) || matches!(b, b'%' | b'*' | b']')
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];

impl<'a> Cur<'a> {
    fn peek(&self) -> Option<u8> {
        self.d.get(self.p).copied()
    }
    fn done(&self) -> bool {
        self.p >= self.d.len()
    }
    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.p += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, b: u8) -> R<()> {
        if self.eat(b) {
            Ok(())
        } else {
            Err(format!("expected '{}'", b as char))
        }
    }
    fn sp(&mut self) -> R<()> {
        self.expect(b' ')
    }
    fn end(&self) -> R<()> {
        if self.done() {
            Ok(())
        } else {
            Err("unexpected characters at end of command".into())
        }
    }
    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let s = self.p;
        while self.p < self.d.len() && f(self.d[self.p]) {
            self.p += 1;
        }
        &self.d[s..self.p]
    }
    fn atom(&mut self) -> R<String> {
        let a = self.take_while(is_atom_char);
        if a.is_empty() {
            return Err("expected an atom".into());
        }
        Ok(String::from_utf8_lossy(a).into_owned())
    }
    fn keyword(&mut self) -> R<String> {
        Ok(self.atom()?.to_ascii_uppercase())
    }
    fn number(&mut self) -> R<u64> {
        let n = self.take_while(|b| b.is_ascii_digit());
        if n.is_empty() || n.len() > 19 {
            return Err("expected a number".into());
        }
        std::str::from_utf8(n)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| "bad number".into())
    }
    fn nz_number(&mut self) -> R<u32> {
        let n = self.number()?;
        if n == 0 || n > u32::MAX as u64 {
            return Err("number out of range".into());
        }
        Ok(n as u32)
    }
    fn quoted(&mut self) -> R<Vec<u8>> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None | Some(b'\r') | Some(b'\n') => return Err("unterminated quoted string".into()),
                Some(b'"') => {
                    self.p += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.p += 1;
                    match self.peek() {
                        Some(c @ (b'"' | b'\\')) => {
                            out.push(c);
                            self.p += 1;
                        }
                        _ => return Err("bad escape in quoted string".into()),
                    }
                }
                Some(c) => {
                    out.push(c);
                    self.p += 1;
                }
            }
        }
    }
    fn literal(&mut self) -> R<Vec<u8>> {
        self.expect(b'{')?;
        let n = self.number()? as usize;
        let _ = self.eat(b'+') || self.eat(b'-');
        self.expect(b'}')?;
        self.expect(b'\r')?;
        self.expect(b'\n')?;
        if self.d.len() - self.p < n {
            return Err("literal shorter than announced".into());
        }
        let v = self.d[self.p..self.p + n].to_vec();
        self.p += n;
        Ok(v)
    }
    fn string_bytes(&mut self) -> R<Vec<u8>> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') => self.literal(),
            _ => Err("expected a string".into()),
        }
    }
    fn string(&mut self) -> R<String> {
        Ok(String::from_utf8_lossy(&self.string_bytes()?).into_owned())
    }
    fn astring(&mut self) -> R<String> {
        match self.peek() {
            Some(b'"') | Some(b'{') => self.string(),
            _ => {
                let a = self.take_while(is_astring_char);
                if a.is_empty() {
                    return Err("expected a string or atom".into());
                }
                Ok(String::from_utf8_lossy(a).into_owned())
            }
        }
    }
    fn mailbox(&mut self) -> R<String> {
        let m = self.astring()?;
        Ok(if m.eq_ignore_ascii_case("INBOX") {
            "INBOX".into()
        } else {
            m
        })
    }
    fn list_mailbox(&mut self) -> R<String> {
        match self.peek() {
            Some(b'"') | Some(b'{') => self.string(),
            _ => {
                let a = self.take_while(is_list_char);
                if a.is_empty() {
                    return Err("expected a mailbox pattern".into());
                }
                Ok(String::from_utf8_lossy(a).into_owned())
            }
        }
    }
    fn seq_num(&mut self) -> R<SeqNum> {
        if self.eat(b'*') {
            Ok(SeqNum::Star)
        } else {
            Ok(SeqNum::Value(self.nz_number()?))
        }
    }
    /// RFC 9051 §9 sequence-set.
    fn seq_set(&mut self) -> R<SeqSet> {
        let mut v = Vec::new();
        loop {
            let a = self
                .seq_num()
                .map_err(|_| "invalid sequence set".to_string())?;
            let b = if self.eat(b':') {
                self.seq_num()
                    .map_err(|_| "invalid sequence set".to_string())?
            } else {
                a
            };
            v.push((a, b));
            if v.len() > 100_000 {
                return Err("sequence set too long".into());
            }
            if !self.eat(b',') {
                return Ok(SeqSet(v));
            }
        }
    }
    fn flag(&mut self) -> R<String> {
        if self.eat(b'\\') {
            let a = self.atom()?;
            let canon = match a.to_ascii_lowercase().as_str() {
                "seen" => "\\Seen",
                "answered" => "\\Answered",
                "flagged" => "\\Flagged",
                "deleted" => "\\Deleted",
                "draft" => "\\Draft",
                "recent" => return Err("\\Recent cannot be set".into()),
                _ => return Ok(format!("\\{a}")),
            };
            Ok(canon.into())
        } else {
            self.atom()
        }
    }
    fn flag_list(&mut self) -> R<Vec<String>> {
        self.expect(b'(')?;
        let mut out = Vec::new();
        if self.eat(b')') {
            return Ok(out);
        }
        loop {
            out.push(self.flag()?);
            if self.eat(b')') {
                return Ok(out);
            }
            self.sp()?;
        }
    }
    fn flags_maybe_list(&mut self) -> R<Vec<String>> {
        if self.peek() == Some(b'(') {
            self.flag_list()
        } else {
            let mut out = vec![self.flag()?];
            while self.eat(b' ') {
                out.push(self.flag()?);
            }
            Ok(out)
        }
    }
    /// RFC 9051 §9 date: `d-Mon-yyyy`, optionally quoted.
    fn date(&mut self) -> R<Day> {
        let quoted = self.eat(b'"');
        let d = self.number()?;
        self.expect(b'-')?;
        let m = self.take_while(|b| b.is_ascii_alphabetic());
        let m = String::from_utf8_lossy(m).to_ascii_uppercase();
        let mi = MONTHS
            .iter()
            .position(|x| *x == m)
            .ok_or("bad month name")? as u32
            + 1;
        self.expect(b'-')?;
        let y = self.number()?;
        if quoted {
            self.expect(b'"')?;
        }
        if !(1..=31).contains(&d) || !(1..=9999).contains(&y) {
            return Err("bad date".into());
        }
        Ok(days_from_civil(y as i64, mi, d as u32))
    }
    /// RFC 9051 §9 date-time: `"dd-Mon-yyyy hh:mm:ss +zzzz"` → Unix seconds.
    fn date_time(&mut self) -> R<i64> {
        let s = self.quoted()?;
        let s = String::from_utf8_lossy(&s).into_owned();
        let s = s.trim_start();
        let (date, rest) = s.split_once(' ').ok_or("bad date-time")?;
        let mut c = Cur {
            d: date.as_bytes(),
            p: 0,
        };
        let day = c.date()?;
        let (time, zone) = rest.split_once(' ').ok_or("bad date-time")?;
        let t: Vec<i64> = time
            .split(':')
            .map(|x| x.parse::<i64>().map_err(|_| "bad time"))
            .collect::<Result<_, _>>()?;
        if t.len() != 3 || t[0] > 23 || t[1] > 59 || t[2] > 60 {
            return Err("bad time".into());
        }
        let zb = zone.as_bytes();
        if zb.len() != 5 || !matches!(zb[0], b'+' | b'-') {
            return Err("bad zone".into());
        }
        let zn: i64 = zone[1..].parse().map_err(|_| "bad zone")?;
        let off = (zn / 100) * 3600 + (zn % 100) * 60;
        let off = if zb[0] == b'-' { -off } else { off };
        Ok(day * 86400 + t[0] * 3600 + t[1] * 60 + t[2] - off)
    }

    fn search_key(&mut self, depth: usize) -> R<SearchKey> {
        if depth > MAX_DEPTH {
            return Err("search criteria nested too deeply".into());
        }
        if self.eat(b'(') {
            let mut v = vec![self.search_key(depth + 1)?];
            while self.eat(b' ') {
                v.push(self.search_key(depth + 1)?);
            }
            self.expect(b')')?;
            return Ok(SearchKey::And(v));
        }
        if matches!(self.peek(), Some(b'0'..=b'9') | Some(b'*')) {
            return Ok(SearchKey::Seq(self.seq_set()?));
        }
        let k = self.keyword()?;
        let flag = |f: &str| Ok(SearchKey::Flag(f.into()));
        let noflag = |f: &str| Ok(SearchKey::NoFlag(f.into()));
        match k.as_str() {
            "ALL" => Ok(SearchKey::All),
            "ANSWERED" => flag("\\Answered"),
            "DELETED" => flag("\\Deleted"),
            "DRAFT" => flag("\\Draft"),
            "FLAGGED" => flag("\\Flagged"),
            "SEEN" => flag("\\Seen"),
            "UNANSWERED" => noflag("\\Answered"),
            "UNDELETED" => noflag("\\Deleted"),
            "UNDRAFT" => noflag("\\Draft"),
            "UNFLAGGED" => noflag("\\Flagged"),
            "UNSEEN" => noflag("\\Seen"),
            "NEW" => Ok(SearchKey::New),
            "OLD" => Ok(SearchKey::Old),
            "RECENT" => Ok(SearchKey::Recent),
            "KEYWORD" | "UNKEYWORD" => {
                self.sp()?;
                let f = self.flag()?;
                Ok(if k == "KEYWORD" {
                    SearchKey::Flag(f)
                } else {
                    SearchKey::NoFlag(f)
                })
            }
            "FROM" | "TO" | "CC" | "BCC" | "SUBJECT" => {
                self.sp()?;
                let v = self.astring()?;
                let name = match k.as_str() {
                    "FROM" => "From",
                    "TO" => "To",
                    "CC" => "Cc",
                    "BCC" => "Bcc",
                    _ => "Subject",
                };
                Ok(SearchKey::Header(name.into(), v))
            }
            "HEADER" => {
                self.sp()?;
                let h = self.astring()?;
                self.sp()?;
                Ok(SearchKey::Header(h, self.astring()?))
            }
            "BODY" => {
                self.sp()?;
                Ok(SearchKey::Body(self.astring()?))
            }
            "TEXT" => {
                self.sp()?;
                Ok(SearchKey::Text(self.astring()?))
            }
            "BEFORE" | "ON" | "SINCE" | "SENTBEFORE" | "SENTON" | "SENTSINCE" => {
                self.sp()?;
                let d = self.date()?;
                Ok(match k.as_str() {
                    "BEFORE" => SearchKey::Before(d),
                    "ON" => SearchKey::On(d),
                    "SINCE" => SearchKey::Since(d),
                    "SENTBEFORE" => SearchKey::SentBefore(d),
                    "SENTON" => SearchKey::SentOn(d),
                    _ => SearchKey::SentSince(d),
                })
            }
            "LARGER" | "SMALLER" | "OLDER" | "YOUNGER" => {
                self.sp()?;
                let n = self.number()?;
                Ok(match k.as_str() {
                    "LARGER" => SearchKey::Larger(n),
                    "SMALLER" => SearchKey::Smaller(n),
                    "OLDER" => SearchKey::Older(n),
                    _ => SearchKey::Younger(n),
                })
            }
            "MODSEQ" => {
                // RFC 7162 §3.1.5: MODSEQ [entry-name entry-type] mod-sequence-valzer
                self.sp()?;
                if self.peek() == Some(b'"') {
                    self.quoted()?;
                    self.sp()?;
                    self.keyword()?;
                    self.sp()?;
                }
                Ok(SearchKey::ModSeq(self.number()?))
            }
            "UID" => {
                self.sp()?;
                Ok(SearchKey::Uid(self.seq_set()?))
            }
            "NOT" => {
                self.sp()?;
                Ok(SearchKey::Not(Box::new(self.search_key(depth + 1)?)))
            }
            "OR" => {
                self.sp()?;
                let a = self.search_key(depth + 1)?;
                self.sp()?;
                let b = self.search_key(depth + 1)?;
                Ok(SearchKey::Or(Box::new(a), Box::new(b)))
            }
            _ => Err(format!("unknown search criterion {k}")),
        }
    }

    /// The criteria of SEARCH/SORT after the optional CHARSET: one or more keys.
    fn search_program(&mut self) -> R<SearchKey> {
        let mut v = vec![self.search_key(0)?];
        while self.eat(b' ') {
            v.push(self.search_key(0)?);
        }
        self.end()?;
        Ok(if v.len() == 1 {
            v.remove(0)
        } else {
            SearchKey::And(v)
        })
    }

    fn charset(&mut self) -> R<()> {
        let save = self.p;
        if let Ok(k) = self.keyword()
            && k == "CHARSET"
        {
            self.sp()?;
            let cs = self.astring()?.to_ascii_uppercase();
            if cs != "UTF-8" && cs != "US-ASCII" {
                return Err("[BADCHARSET (UTF-8 US-ASCII)] unsupported charset".into());
            }
            self.sp()?;
            return Ok(());
        }
        self.p = save;
        Ok(())
    }

    fn header_list(&mut self) -> R<Vec<String>> {
        self.expect(b'(')?;
        let mut v = vec![self.astring()?];
        while self.eat(b' ') {
            v.push(self.astring()?);
        }
        self.expect(b')')?;
        Ok(v)
    }

    /// RFC 9051 §9 section: `[` section-spec `]`.
    fn section(&mut self) -> R<Section> {
        self.expect(b'[')?;
        let mut part = Vec::new();
        let mut text = SectionText::Full;
        while matches!(self.peek(), Some(b'1'..=b'9')) {
            part.push(self.nz_number()?);
            if part.len() > MAX_DEPTH {
                return Err("section nested too deeply".into());
            }
            if !self.eat(b'.') {
                break;
            }
        }
        if self.peek() != Some(b']') {
            let k = self
                .take_while(|b| b.is_ascii_alphanumeric() || b == b'.')
                .to_ascii_uppercase();
            text = match k.as_slice() {
                b"HEADER" => SectionText::Header,
                b"TEXT" => SectionText::Text,
                b"MIME" if !part.is_empty() => SectionText::Mime,
                b"HEADER.FIELDS" => {
                    self.sp()?;
                    SectionText::HeaderFields(self.header_list()?)
                }
                b"HEADER.FIELDS.NOT" => {
                    self.sp()?;
                    SectionText::HeaderFieldsNot(self.header_list()?)
                }
                _ => return Err("bad section".into()),
            };
        }
        self.expect(b']')?;
        Ok(Section { part, text })
    }

    fn partial(&mut self) -> R<Option<(u32, u32)>> {
        if !self.eat(b'<') {
            return Ok(None);
        }
        let o = self.number()?;
        self.expect(b'.')?;
        let n = self.number()?;
        self.expect(b'>')?;
        if o > u32::MAX as u64 || n == 0 || n > u32::MAX as u64 {
            return Err("bad partial range".into());
        }
        Ok(Some((o as u32, n as u32)))
    }

    fn fetch_att(&mut self) -> R<FetchAtt> {
        let name = self
            .take_while(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'8')
            .to_ascii_uppercase();
        let section = |c: &mut Self, peek: bool, binary: bool, size_only: bool| -> R<FetchAtt> {
            let section = c.section()?;
            let partial = if size_only { None } else { c.partial()? };
            Ok(FetchAtt::Section {
                section,
                partial,
                peek,
                binary,
                size_only,
            })
        };
        Ok(match name.as_slice() {
            b"UID" => FetchAtt::Uid,
            b"FLAGS" => FetchAtt::Flags,
            b"INTERNALDATE" => FetchAtt::InternalDate,
            b"RFC822.SIZE" => FetchAtt::Size,
            b"ENVELOPE" => FetchAtt::Envelope,
            b"BODYSTRUCTURE" => FetchAtt::BodyStructure,
            b"MODSEQ" => FetchAtt::ModSeq,
            b"RFC822" => FetchAtt::Rfc822,
            b"RFC822.HEADER" => FetchAtt::Rfc822Header,
            b"RFC822.TEXT" => FetchAtt::Rfc822Text,
            b"BODY" if self.peek() == Some(b'[') => section(self, false, false, false)?,
            b"BODY" => FetchAtt::Body,
            b"BODY.PEEK" => section(self, true, false, false)?,
            b"BINARY" => section(self, false, true, false)?,
            b"BINARY.PEEK" => section(self, true, true, false)?,
            b"BINARY.SIZE" => section(self, true, true, true)?,
            _ => return Err("unknown FETCH item".into()),
        })
    }

    fn fetch_atts(&mut self) -> R<Vec<FetchAtt>> {
        if self.eat(b'(') {
            let mut v = vec![self.fetch_att()?];
            while self.eat(b' ') {
                v.push(self.fetch_att()?);
            }
            self.expect(b')')?;
            return Ok(v);
        }
        let save = self.p;
        let k = self.keyword().unwrap_or_default();
        use FetchAtt::*;
        Ok(match k.as_str() {
            "ALL" => vec![Flags, InternalDate, Size, Envelope],
            "FAST" => vec![Flags, InternalDate, Size],
            "FULL" => vec![Flags, InternalDate, Size, Envelope, Body],
            _ => {
                self.p = save;
                vec![self.fetch_att()?]
            }
        })
    }

    fn status_items(&mut self) -> R<Vec<StatusItem>> {
        self.expect(b'(')?;
        let mut v = Vec::new();
        loop {
            let k = self.keyword()?;
            v.push(match k.as_str() {
                "MESSAGES" => StatusItem::Messages,
                "UIDNEXT" => StatusItem::UidNext,
                "UIDVALIDITY" => StatusItem::UidValidity,
                "UNSEEN" => StatusItem::Unseen,
                "DELETED" => StatusItem::Deleted,
                "SIZE" => StatusItem::Size,
                "RECENT" => StatusItem::Recent,
                "HIGHESTMODSEQ" => StatusItem::HighestModSeq,
                _ => return Err(format!("unknown STATUS item {k}")),
            });
            if self.eat(b')') {
                return Ok(v);
            }
            self.sp()?;
        }
    }

    fn list(&mut self, lsub: bool) -> R<CommandBody> {
        let mut options = ListOptions {
            lsub,
            subscribed: lsub,
            ..Default::default()
        };
        self.sp()?;
        if !lsub && self.eat(b'(') {
            // RFC 5258 §3: list-select-opts.
            while !self.eat(b')') {
                match self.keyword()?.as_str() {
                    "SUBSCRIBED" => options.subscribed = true,
                    "RECURSIVEMATCH" => options.recursive_match = true,
                    "SPECIAL-USE" => options.special_use_only = true,
                    "REMOTE" => {}
                    o => return Err(format!("unknown LIST selection option {o}")),
                }
                let _ = self.eat(b' ');
            }
            if options.recursive_match && !options.subscribed {
                return Err("RECURSIVEMATCH needs another selection option".into());
            }
            self.sp()?;
        }
        let reference = self.mailbox()?;
        self.sp()?;
        let mut patterns = Vec::new();
        if !lsub && self.eat(b'(') {
            patterns.push(self.list_mailbox()?);
            while self.eat(b' ') {
                patterns.push(self.list_mailbox()?);
            }
            self.expect(b')')?;
        } else {
            patterns.push(self.list_mailbox()?);
        }
        if !lsub && self.eat(b' ') {
            if self.keyword()? != "RETURN" {
                return Err("expected RETURN".into());
            }
            self.sp()?;
            self.expect(b'(')?;
            while !self.eat(b')') {
                match self.keyword()?.as_str() {
                    "CHILDREN" => options.return_children = true,
                    "SUBSCRIBED" => options.return_subscribed = true,
                    "SPECIAL-USE" => options.return_special_use = true,
                    "STATUS" => {
                        self.sp()?;
                        options.status = self.status_items()?;
                    }
                    o => return Err(format!("unknown LIST return option {o}")),
                }
                let _ = self.eat(b' ');
            }
        }
        self.end()?;
        Ok(CommandBody::List {
            reference,
            patterns,
            options,
        })
    }

    fn select(&mut self, read_only: bool) -> R<CommandBody> {
        self.sp()?;
        let mailbox = self.mailbox()?;
        let mut condstore = false;
        let mut qresync = None;
        if self.eat(b' ') {
            self.expect(b'(')?;
            while !self.eat(b')') {
                match self.keyword()?.as_str() {
                    "CONDSTORE" => condstore = true,
                    "QRESYNC" => {
                        self.sp()?;
                        self.expect(b'(')?;
                        let uidvalidity = self.nz_number()?;
                        self.sp()?;
                        let modseq = self.number()?;
                        let mut known_uids = None;
                        if self.eat(b' ') {
                            if self.peek() != Some(b'(') {
                                known_uids = Some(self.seq_set()?);
                                let _ = self.eat(b' ');
                            }
                            if self.eat(b'(') {
                                // Sequence match data: accepted, not needed for correctness.
                                self.seq_set()?;
                                self.sp()?;
                                self.seq_set()?;
                                self.expect(b')')?;
                            }
                        }
                        self.expect(b')')?;
                        qresync = Some(QResync {
                            uidvalidity,
                            modseq,
                            known_uids,
                        });
                    }
                    o => return Err(format!("unknown SELECT parameter {o}")),
                }
                let _ = self.eat(b' ');
            }
        }
        self.end()?;
        Ok(CommandBody::Select {
            mailbox,
            read_only,
            condstore,
            qresync,
        })
    }

    fn append(&mut self) -> R<CommandBody> {
        self.sp()?;
        let mailbox = self.mailbox()?;
        self.sp()?;
        let mut flags = Vec::new();
        let mut date = None;
        if self.peek() == Some(b'(') {
            flags = self.flag_list()?;
            self.sp()?;
        }
        if self.peek() == Some(b'"') {
            date = Some(self.date_time()?);
            self.sp()?;
        }
        // RFC 3516 / RFC 9051: literal8 `~{N}` is accepted too.
        let _ = self.eat(b'~');
        let data = self.literal()?;
        if !self.done() {
            return Err("MULTIAPPEND is not supported".into());
        }
        Ok(CommandBody::Append {
            mailbox,
            message: AppendMessage { flags, date, data },
        })
    }

    fn uid_command(&mut self, uid: bool) -> R<CommandBody> {
        let verb = self.keyword()?;
        match verb.as_str() {
            "FETCH" => {
                self.sp()?;
                let set = self.seq_set()?;
                self.sp()?;
                let atts = self.fetch_atts()?;
                let mut changed_since = None;
                let mut vanished = false;
                if self.eat(b' ') {
                    self.expect(b'(')?;
                    while !self.eat(b')') {
                        match self.keyword()?.as_str() {
                            "CHANGEDSINCE" => {
                                self.sp()?;
                                changed_since = Some(self.number()?);
                            }
                            "VANISHED" if uid => vanished = true,
                            o => return Err(format!("unknown FETCH modifier {o}")),
                        }
                        let _ = self.eat(b' ');
                    }
                }
                self.end()?;
                if vanished && changed_since.is_none() {
                    return Err("VANISHED needs CHANGEDSINCE".into());
                }
                Ok(CommandBody::Fetch {
                    uid,
                    set,
                    atts,
                    changed_since,
                    vanished,
                })
            }
            "STORE" => {
                self.sp()?;
                let set = self.seq_set()?;
                self.sp()?;
                let mut unchanged_since = None;
                if self.eat(b'(') {
                    if self.keyword()? != "UNCHANGEDSINCE" {
                        return Err("unknown STORE modifier".into());
                    }
                    self.sp()?;
                    unchanged_since = Some(self.number()?);
                    self.expect(b')')?;
                    self.sp()?;
                }
                let item = self.keyword()?;
                let (mode, rest) = match item.as_bytes().first() {
                    Some(b'+') => (StoreMode::Add, &item[1..]),
                    Some(b'-') => (StoreMode::Remove, &item[1..]),
                    _ => (StoreMode::Replace, item.as_str()),
                };
                let silent = match rest {
                    "FLAGS" => false,
                    "FLAGS.SILENT" => true,
                    _ => return Err("expected FLAGS, +FLAGS or -FLAGS".into()),
                };
                self.sp()?;
                let flags = self.flags_maybe_list()?;
                self.end()?;
                Ok(CommandBody::Store {
                    uid,
                    set,
                    unchanged_since,
                    mode,
                    silent,
                    flags,
                })
            }
            "COPY" | "MOVE" => {
                self.sp()?;
                let set = self.seq_set()?;
                self.sp()?;
                let mailbox = self.mailbox()?;
                self.end()?;
                Ok(if verb == "COPY" {
                    CommandBody::Copy { uid, set, mailbox }
                } else {
                    CommandBody::Move { uid, set, mailbox }
                })
            }
            "SEARCH" => {
                let mut ret = SearchReturn::default();
                self.sp()?;
                let save = self.p;
                if self.keyword().ok().as_deref() == Some("RETURN") {
                    ret.extended = true;
                    self.sp()?;
                    self.expect(b'(')?;
                    while !self.eat(b')') {
                        match self.keyword()?.as_str() {
                            "MIN" => ret.min = true,
                            "MAX" => ret.max = true,
                            "ALL" => ret.all = true,
                            "COUNT" => ret.count = true,
                            "SAVE" => {}
                            o => return Err(format!("unknown RETURN option {o}")),
                        }
                        let _ = self.eat(b' ');
                    }
                    if !(ret.min || ret.max || ret.count) {
                        ret.all = true;
                    }
                    self.sp()?;
                } else {
                    self.p = save;
                }
                self.charset()?;
                let key = self.search_program()?;
                Ok(CommandBody::Search { uid, ret, key })
            }
            "SORT" => {
                self.sp()?;
                self.expect(b'(')?;
                let mut criteria = Vec::new();
                let mut reverse = false;
                loop {
                    let k = self.keyword()?;
                    let key = match k.as_str() {
                        "REVERSE" => {
                            reverse = true;
                            self.sp()?;
                            continue;
                        }
                        "ARRIVAL" => SortKey::Arrival,
                        "CC" => SortKey::Cc,
                        "DATE" => SortKey::Date,
                        "FROM" => SortKey::From,
                        "SIZE" => SortKey::Size,
                        "SUBJECT" => SortKey::Subject,
                        "TO" => SortKey::To,
                        o => return Err(format!("unknown sort key {o}")),
                    };
                    criteria.push((reverse, key));
                    reverse = false;
                    if self.eat(b')') {
                        break;
                    }
                    self.sp()?;
                }
                self.sp()?;
                let cs = self.astring()?.to_ascii_uppercase();
                if cs != "UTF-8" && cs != "US-ASCII" {
                    return Err("[BADCHARSET (UTF-8 US-ASCII)] unsupported charset".into());
                }
                self.sp()?;
                let key = self.search_program()?;
                Ok(CommandBody::Sort { uid, criteria, key })
            }
            "EXPUNGE" if uid => {
                self.sp()?;
                let set = self.seq_set()?;
                self.end()?;
                Ok(CommandBody::Expunge(Some(set)))
            }
            _ => Err(format!("unknown command UID {verb}")),
        }
    }

    fn body(&mut self) -> R<CommandBody> {
        let save = self.p;
        let verb = self.keyword()?;
        use CommandBody as C;
        let simple = |c: &Self, b: C| c.end().map(|_| b);
        let one_mailbox = |c: &mut Self| -> R<String> {
            c.sp()?;
            let m = c.mailbox()?;
            c.end()?;
            Ok(m)
        };
        match verb.as_str() {
            "CAPABILITY" => simple(self, C::Capability),
            "NOOP" => simple(self, C::Noop),
            "LOGOUT" => simple(self, C::Logout),
            "STARTTLS" => simple(self, C::StartTls),
            "NAMESPACE" => simple(self, C::Namespace),
            "IDLE" => simple(self, C::Idle),
            "CHECK" => simple(self, C::Check),
            "CLOSE" => simple(self, C::Close),
            "UNSELECT" => simple(self, C::Unselect),
            "EXPUNGE" => simple(self, C::Expunge(None)),
            "AUTHENTICATE" => {
                self.sp()?;
                let mechanism = self.keyword()?;
                let initial = if self.eat(b' ') {
                    Some(String::from_utf8_lossy(self.take_while(|b| b != b' ')).into_owned())
                } else {
                    None
                };
                self.end()?;
                Ok(C::Authenticate { mechanism, initial })
            }
            "LOGIN" => {
                self.sp()?;
                let user = self.astring()?;
                self.sp()?;
                let password = self.astring()?;
                self.end()?;
                Ok(C::Login { user, password })
            }
            "ENABLE" => {
                let mut v = Vec::new();
                while self.eat(b' ') {
                    v.push(self.keyword()?);
                }
                self.end()?;
                if v.is_empty() {
                    return Err("ENABLE needs a capability".into());
                }
                Ok(C::Enable(v))
            }
            "SELECT" => self.select(false),
            "EXAMINE" => self.select(true),
            "CREATE" => {
                self.sp()?;
                let mailbox = self.mailbox()?;
                let mut special_use = Vec::new();
                if self.eat(b' ') {
                    self.expect(b'(')?;
                    if self.keyword()? != "USE" {
                        return Err("unknown CREATE parameter".into());
                    }
                    self.sp()?;
                    special_use = self.flag_list()?;
                    self.expect(b')')?;
                }
                self.end()?;
                Ok(C::Create {
                    mailbox,
                    special_use,
                })
            }
            "DELETE" => Ok(C::Delete(one_mailbox(self)?)),
            "SUBSCRIBE" => Ok(C::Subscribe(one_mailbox(self)?)),
            "UNSUBSCRIBE" => Ok(C::Unsubscribe(one_mailbox(self)?)),
            "RENAME" => {
                self.sp()?;
                let from = self.mailbox()?;
                self.sp()?;
                let to = self.mailbox()?;
                self.end()?;
                Ok(C::Rename { from, to })
            }
            "LIST" => self.list(false),
            "LSUB" => self.list(true),
            "STATUS" => {
                self.sp()?;
                let mailbox = self.mailbox()?;
                self.sp()?;
                let items = self.status_items()?;
                self.end()?;
                Ok(C::Status { mailbox, items })
            }
            "APPEND" => self.append(),
            "UID" => {
                self.sp()?;
                self.uid_command(true)
            }
            "FETCH" | "STORE" | "COPY" | "MOVE" | "SEARCH" | "SORT" => {
                self.p = save;
                self.uid_command(false)
            }
            "ID" => {
                self.sp()?;
                let mut v = Vec::new();
                if self.eat(b'(') {
                    while !self.eat(b')') {
                        let k = self.string()?;
                        self.sp()?;
                        let val = if self.peek() == Some(b'"') || self.peek() == Some(b'{') {
                            Some(self.string()?)
                        } else if self.keyword()? == "NIL" {
                            None
                        } else {
                            return Err("bad ID value".into());
                        };
                        v.push((k, val));
                        if v.len() > 30 {
                            return Err("too many ID fields".into());
                        }
                        let _ = self.eat(b' ');
                    }
                } else if self.keyword()? != "NIL" {
                    return Err("expected ID parameter list or NIL".into());
                }
                self.end()?;
                Ok(C::Id(v))
            }
            "GETQUOTA" => Ok(C::GetQuota(one_mailbox(self)?)),
            "GETQUOTAROOT" => Ok(C::GetQuotaRoot(one_mailbox(self)?)),
            "SETQUOTA" => {
                self.sp()?;
                let root = self.astring()?;
                Ok(C::SetQuota(root))
            }
            "GETACL" => Ok(C::GetAcl(one_mailbox(self)?)),
            "MYRIGHTS" => Ok(C::MyRights(one_mailbox(self)?)),
            "SETACL" | "DELETEACL" | "LISTRIGHTS" => {
                self.sp()?;
                let mailbox = self.mailbox()?;
                self.sp()?;
                let identifier = self.astring()?;
                let r = match verb.as_str() {
                    "SETACL" => {
                        self.sp()?;
                        let rights = self.astring()?;
                        C::SetAcl {
                            mailbox,
                            identifier,
                            rights,
                        }
                    }
                    "DELETEACL" => C::DeleteAcl {
                        mailbox,
                        identifier,
                    },
                    _ => C::ListRights {
                        mailbox,
                        identifier,
                    },
                };
                self.end()?;
                Ok(r)
            }
            _ => Err(format!("unknown command {verb}")),
        }
    }
}

/// Parses one command (as returned by the reader).
pub fn parse(input: &[u8]) -> Result<Command, ParseError> {
    let mut c = Cur { d: input, p: 0 };
    let tag = c.take_while(|b| (is_atom_char(b) || b == b']') && b != b'+');
    if tag.is_empty() {
        return Err(ParseError {
            tag: "*".into(),
            message: "missing tag".into(),
        });
    }
    let tag = String::from_utf8_lossy(tag).into_owned();
    let body = c.sp().and_then(|_| c.body());
    match body {
        Ok(body) => Ok(Command { tag, body }),
        Err(message) => Err(ParseError { tag, message }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> CommandBody {
        parse(s.as_bytes())
            .unwrap_or_else(|e| panic!("{s}: {e:?}"))
            .body
    }

    fn bad(s: &str) -> String {
        parse(s.as_bytes()).unwrap_err().message
    }

    #[test]
    fn login_forms() {
        assert_eq!(
            p("a LOGIN alice \"p\\\"w\""),
            CommandBody::Login {
                user: "alice".into(),
                password: "p\"w".into()
            }
        );
        assert_eq!(
            p("a LOGIN {5}\r\nalice {2+}\r\npw"),
            CommandBody::Login {
                user: "alice".into(),
                password: "pw".into()
            }
        );
        assert!(bad("a LOGIN alice").contains("expected"));
    }

    #[test]
    fn sequence_sets() {
        let CommandBody::Fetch { set, atts, .. } = p("1 FETCH 1:3,5,7:* (FLAGS UID)") else {
            panic!()
        };
        assert_eq!(set.resolve_seq(8), vec![1, 2, 3, 5, 7, 8]);
        assert_eq!(atts, vec![FetchAtt::Flags, FetchAtt::Uid]);
        let CommandBody::Fetch { set, .. } = p("1 UID FETCH *:4 FLAGS") else {
            panic!()
        };
        assert!(set.contains(9, 9) && set.contains(4, 9) && !set.contains(3, 9));
        assert!(bad("1 FETCH 0 FLAGS").contains("sequence"));
        assert!(bad("1 FETCH 1:x FLAGS").contains("sequence"));
        assert!(bad("1 FETCH , FLAGS").contains("sequence"));
    }

    #[test]
    fn fetch_sections() {
        let CommandBody::Fetch { atts, .. } =
            p("1 FETCH 1 (BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)] BODY[1.2.MIME] BODY[]<0.100>)")
        else {
            panic!()
        };
        assert_eq!(
            atts[0],
            FetchAtt::Section {
                section: Section {
                    part: vec![],
                    text: SectionText::HeaderFields(vec!["FROM".into(), "SUBJECT".into()])
                },
                partial: None,
                peek: true,
                binary: false,
                size_only: false
            }
        );
        assert!(
            matches!(&atts[1], FetchAtt::Section { section, .. } if section.part == vec![1,2] && section.text == SectionText::Mime)
        );
        assert!(matches!(
            &atts[2],
            FetchAtt::Section {
                partial: Some((0, 100)),
                ..
            }
        ));
        assert_eq!(p("1 FETCH 1 FAST"), {
            let CommandBody::Fetch { set, .. } = p("1 FETCH 1 FLAGS") else {
                panic!()
            };
            CommandBody::Fetch {
                uid: false,
                set,
                atts: vec![FetchAtt::Flags, FetchAtt::InternalDate, FetchAtt::Size],
                changed_since: None,
                vanished: false,
            }
        });
        assert!(bad("1 FETCH 1 BODY[MIME]").contains("section"));
    }

    #[test]
    fn search_nesting_is_bounded() {
        let deep = format!("a SEARCH {}ALL{}", "(".repeat(40), ")".repeat(40));
        assert!(bad(&deep).contains("deeply"));
        let CommandBody::Search { key, ret, .. } = p(
            "a UID SEARCH RETURN (MIN COUNT) CHARSET UTF-8 OR FROM x (SUBJECT \"y z\") SINCE 1-Feb-2024",
        ) else {
            panic!()
        };
        assert!(ret.extended && ret.min && ret.count && !ret.all);
        let SearchKey::And(v) = key else { panic!() };
        assert_eq!(v.len(), 2);
        assert_eq!(v[1], SearchKey::Since(days_from_civil(2024, 2, 1)));
    }

    #[test]
    fn store_append_select() {
        assert_eq!(
            p("a UID STORE 1:* (UNCHANGEDSINCE 5) +FLAGS.SILENT (\\Seen foo)"),
            CommandBody::Store {
                uid: true,
                set: SeqSet(vec![(SeqNum::Value(1), SeqNum::Star)]),
                unchanged_since: Some(5),
                mode: StoreMode::Add,
                silent: true,
                flags: vec!["\\Seen".into(), "foo".into()]
            }
        );
        let CommandBody::Append { mailbox, message } =
            p("a APPEND inbox (\\Seen) \"05-Jan-2024 10:00:00 +0100\" {3}\r\nabc")
        else {
            panic!()
        };
        assert_eq!(mailbox, "INBOX");
        assert_eq!(message.data, b"abc");
        assert_eq!(
            message.date,
            Some(days_from_civil(2024, 1, 5) * 86400 + 9 * 3600)
        );
        assert!(matches!(
            p("a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))"),
            CommandBody::Select {
                qresync: Some(QResync {
                    uidvalidity: 67890007,
                    ..
                }),
                ..
            }
        ));
        assert!(bad("a STORE 1 FLAGS (\\Recent)").contains("Recent"));
    }

    #[test]
    fn list_extended() {
        let CommandBody::List {
            patterns, options, ..
        } = p(
            "a LIST (SUBSCRIBED) \"\" (INBOX \"Sent*\") RETURN (CHILDREN STATUS (MESSAGES SIZE))",
        )
        else {
            panic!()
        };
        assert_eq!(patterns, vec!["INBOX", "Sent*"]);
        assert!(options.subscribed && options.return_children);
        assert_eq!(options.status, vec![StatusItem::Messages, StatusItem::Size]);
        assert!(matches!(p("a LSUB \"\" *"), CommandBody::List { options, .. } if options.lsub));
    }
}
