//! Values that appear inside IMAP commands: sequence sets, flags, dates, search keys, FETCH
//! items (RFC 9051 §9 formal syntax, plus the extensions postcore announces).

/// One end of a sequence range: a number or `*` (the largest in use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqNum {
    /// A message sequence number or UID.
    Value(u32),
    /// `*`.
    Star,
    /// `$`, the saved search result (RFC 5182 §2.1); a session replaces it with the saved
    /// messages before using the set (unexpanded, it matches nothing).
    Saved,
}

/// RFC 9051 §9 `sequence-set`: ranges in the order given; `a:b` means the same as `b:a`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeqSet(pub Vec<(SeqNum, SeqNum)>);

impl SeqSet {
    /// `$`: the saved search result (RFC 5182).
    pub fn saved() -> SeqSet {
        SeqSet(vec![(SeqNum::Saved, SeqNum::Saved)])
    }

    /// True for `$`.
    pub fn is_saved(&self) -> bool {
        self.0
            .iter()
            .any(|(a, b)| *a == SeqNum::Saved || *b == SeqNum::Saved)
    }

    /// The set of exactly these numbers (ascending, runs joined into ranges).
    pub fn of(numbers: &[u32]) -> SeqSet {
        let mut v: Vec<(SeqNum, SeqNum)> = Vec::new();
        for &n in numbers {
            match v.last_mut() {
                Some((_, SeqNum::Value(hi))) if hi.checked_add(1) == Some(n) => *hi = n,
                _ => v.push((SeqNum::Value(n), SeqNum::Value(n))),
            }
        }
        SeqSet(v)
    }

    /// True if `n` is in the set, `star` being the value of `*`.
    pub fn contains(&self, n: u32, star: u32) -> bool {
        self.0.iter().any(|(a, b)| {
            let a = a.resolve(star);
            let b = b.resolve(star);
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            (lo..=hi).contains(&n)
        })
    }

    /// Every number of the set in ascending order, limited to `1..=max`
    /// (for message sequence numbers).
    pub fn resolve_seq(&self, max: u32) -> Vec<u32> {
        let mut out = Vec::new();
        for (a, b) in &self.0 {
            let a = a.resolve(max);
            let b = b.resolve(max);
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            let hi = hi.min(max);
            if lo >= 1 && lo <= hi {
                out.extend(lo..=hi);
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// True if a number in the set is beyond `max` or zero (invalid for sequence numbers).
    pub fn out_of_range(&self, max: u32) -> bool {
        self.0.iter().any(|(a, b)| {
            [a, b].iter().any(|x| match x {
                SeqNum::Value(v) => *v == 0 || *v > max,
                SeqNum::Star => max == 0,
                SeqNum::Saved => false,
            })
        })
    }
}

impl SeqNum {
    /// The number, with `*` standing for `star`.
    pub fn resolve(self, star: u32) -> u32 {
        match self {
            SeqNum::Value(v) => v,
            SeqNum::Star => star,
            SeqNum::Saved => 0,
        }
    }
}

/// A calendar date as days since 1970-01-01 (SEARCH dates have no time or zone).
pub type Day = i64;

/// Days since the epoch for a proleptic Gregorian date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> Day {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// RFC 9051 §6.4.4 search criteria.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    /// ALL.
    All,
    /// Messages in the sequence set.
    Seq(SeqSet),
    /// UID set.
    Uid(SeqSet),
    /// A system flag or keyword is set (`ANSWERED`, `KEYWORD x`, ...).
    Flag(String),
    /// A system flag or keyword is not set.
    NoFlag(String),
    /// NEW = RECENT UNSEEN (RFC 3501).
    New,
    /// OLD = NOT RECENT.
    Old,
    /// RECENT.
    Recent,
    /// Header field contains the string (FROM, TO, CC, BCC, SUBJECT, HEADER name value).
    Header(String, String),
    /// Body text contains the string.
    Body(String),
    /// Header or body contains the string.
    Text(String),
    /// Internal date before / on / since the day.
    Before(Day),
    /// INTERNALDATE on the day.
    On(Day),
    /// INTERNALDATE on or after the day.
    Since(Day),
    /// Date: header before the day.
    SentBefore(Day),
    /// Date: header on the day.
    SentOn(Day),
    /// Date: header on or after the day.
    SentSince(Day),
    /// Save date before the day (RFC 8514 SAVEDBEFORE).
    SavedBefore(Day),
    /// Save date on the day (SAVEDON).
    SavedOn(Day),
    /// Save date on or after the day (SAVEDSINCE).
    SavedSince(Day),
    /// The mailbox keeps save dates (SAVEDATESUPPORTED): every message, or none.
    SaveDateSupported,
    /// RFC822.SIZE larger than.
    Larger(u64),
    /// RFC822.SIZE smaller than.
    Smaller(u64),
    /// RFC 7162 MODSEQ: modseq at least this.
    ModSeq(u64),
    /// RFC 5032 OLDER (seconds).
    Older(u64),
    /// RFC 5032 YOUNGER (seconds).
    Younger(u64),
    /// NOT key.
    Not(Box<SearchKey>),
    /// OR key key.
    Or(Box<SearchKey>, Box<SearchKey>),
    /// A parenthesised list (all must match).
    And(Vec<SearchKey>),
}

/// What part of a message a BODY[...] item names (RFC 9051 §6.4.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionText {
    /// The whole part (`BODY[]`, `BODY[1.2]`).
    Full,
    /// HEADER.
    Header,
    /// HEADER.FIELDS (names).
    HeaderFields(Vec<String>),
    /// HEADER.FIELDS.NOT (names).
    HeaderFieldsNot(Vec<String>),
    /// TEXT.
    Text,
    /// MIME (only after a part number).
    Mime,
}

/// A body section: part path (`1.2`) and what to return from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Part numbers, outermost first; empty for the whole message.
    pub part: Vec<u32>,
    /// What of the part.
    pub text: SectionText,
}

/// One FETCH data item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchAtt {
    /// UID.
    Uid,
    /// FLAGS.
    Flags,
    /// INTERNALDATE.
    InternalDate,
    /// SAVEDATE (RFC 8514).
    SaveDate,
    /// RFC822.SIZE.
    Size,
    /// ENVELOPE.
    Envelope,
    /// BODY (structure without extension data).
    Body,
    /// BODYSTRUCTURE.
    BodyStructure,
    /// MODSEQ (RFC 7162).
    ModSeq,
    /// PREVIEW, with or without the LAZY modifier (RFC 8970).
    Preview,
    /// The same text in the older draft's form, as Dovecot offers it: `SNIPPET (FUZZY)`
    /// (`true`) or `PREVIEW (FUZZY)` / `PREVIEW (LAZY=FUZZY)` (`false`), answered as
    /// `SNIPPET (FUZZY "…")` / `PREVIEW (FUZZY "…")`.
    PreviewFuzzy(bool),
    /// RFC822 (= BODY[], sets \Seen).
    Rfc822,
    /// RFC822.HEADER (= BODY.PEEK[HEADER]).
    Rfc822Header,
    /// RFC822.TEXT (= BODY[TEXT]).
    Rfc822Text,
    /// BODY[section]<partial> / BODY.PEEK / BINARY[...] / BINARY.SIZE.
    Section {
        /// The section.
        section: Section,
        /// `<offset.count>`.
        partial: Option<(u32, u32)>,
        /// BODY.PEEK / BINARY.PEEK: do not set \Seen.
        peek: bool,
        /// BINARY (RFC 3516): content transfer decoding applied.
        binary: bool,
        /// BINARY.SIZE.
        size_only: bool,
    },
}

/// STORE mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    /// FLAGS: replace.
    Replace,
    /// +FLAGS: add.
    Add,
    /// -FLAGS: remove.
    Remove,
}

/// STATUS data items (RFC 9051 §6.3.11, RFC 7162, RFC 8438 SIZE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusItem {
    /// MESSAGES.
    Messages,
    /// UIDNEXT.
    UidNext,
    /// UIDVALIDITY.
    UidValidity,
    /// UNSEEN.
    Unseen,
    /// DELETED.
    Deleted,
    /// SIZE.
    Size,
    /// RECENT (IMAP4rev1).
    Recent,
    /// HIGHESTMODSEQ.
    HighestModSeq,
}

impl StatusItem {
    /// The item's name as sent in the response.
    pub fn name(self) -> &'static str {
        match self {
            StatusItem::Messages => "MESSAGES",
            StatusItem::UidNext => "UIDNEXT",
            StatusItem::UidValidity => "UIDVALIDITY",
            StatusItem::Unseen => "UNSEEN",
            StatusItem::Deleted => "DELETED",
            StatusItem::Size => "SIZE",
            StatusItem::Recent => "RECENT",
            StatusItem::HighestModSeq => "HIGHESTMODSEQ",
        }
    }
}

/// SORT criteria keys (RFC 5256 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// ARRIVAL (internal date).
    Arrival,
    /// CC.
    Cc,
    /// DATE (Date: header).
    Date,
    /// FROM.
    From,
    /// SIZE.
    Size,
    /// SUBJECT (base subject).
    Subject,
    /// TO.
    To,
    /// DISPLAYFROM (RFC 5957): the first From address's display name.
    DisplayFrom,
    /// DISPLAYTO (RFC 5957): the first To address's display name.
    DisplayTo,
}

/// Search return options (RFC 4731 ESEARCH).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchReturn {
    /// RETURN was given (answer with ESEARCH).
    pub extended: bool,
    /// MIN.
    pub min: bool,
    /// MAX.
    pub max: bool,
    /// ALL.
    pub all: bool,
    /// COUNT.
    pub count: bool,
    /// SAVE (RFC 5182): keep the result for `$`.
    pub save: bool,
    /// CONTEXT (RFC 5267 §4.2): a hint that the search will be used again; no effect.
    pub context: bool,
    /// UPDATE (RFC 5267 §4.3): keep the search alive and report changes to its result.
    pub update: bool,
    /// `UPDATE (fetch-att…)` (RFC 5465 §7): FETCH these for each new message that joins
    /// the result, before the ADDTO that reports it.
    pub update_fetch: Vec<FetchAtt>,
    /// PARTIAL low:high (RFC 5267 §4.4): only the results at these 1-based positions.
    pub partial: Option<(u32, u32)>,
}

/// LIST return options (RFC 5258, RFC 5819, RFC 6154).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// SUBSCRIBED selection (LIST (SUBSCRIBED)) or LSUB.
    pub subscribed: bool,
    /// RECURSIVEMATCH selection option.
    pub recursive_match: bool,
    /// SPECIAL-USE selection option.
    pub special_use_only: bool,
    /// RETURN (CHILDREN).
    pub return_children: bool,
    /// RETURN (SUBSCRIBED).
    pub return_subscribed: bool,
    /// RETURN (SPECIAL-USE).
    pub return_special_use: bool,
    /// RETURN (STATUS (...)).
    pub status: Vec<StatusItem>,
    /// LSUB command (answer with LSUB lines).
    pub lsub: bool,
}
