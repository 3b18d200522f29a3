//! What the index stores: mailbox meta, message records (binary), Maildir flag letters,
//! folder paths and cached header blocks.

use super::*;

/// System flag bits kept in the record and in the Maildir info (`:2,` letters).
pub mod flag {
    /// \Seen — Maildir `S`.
    pub const SEEN: u8 = 1;
    /// \Answered — Maildir `R`.
    pub const ANSWERED: u8 = 2;
    /// \Flagged — Maildir `F`.
    pub const FLAGGED: u8 = 4;
    /// \Deleted — Maildir `T`.
    pub const DELETED: u8 = 8;
    /// \Draft — Maildir `D`.
    pub const DRAFT: u8 = 16;
    /// $Forwarded — Maildir `P` (passed).
    pub const FORWARDED: u8 = 32;

    /// IMAP name ↔ bit.
    pub const NAMES: [(&str, u8); 6] = [
        ("\\Seen", SEEN),
        ("\\Answered", ANSWERED),
        ("\\Flagged", FLAGGED),
        ("\\Deleted", DELETED),
        ("\\Draft", DRAFT),
        ("$Forwarded", FORWARDED),
    ];

    /// Maildir info letters in the required ASCII order.
    pub const LETTERS: [(char, u8); 6] = [
        ('D', DRAFT),
        ('F', FLAGGED),
        ('P', FORWARDED),
        ('R', ANSWERED),
        ('S', SEEN),
        ('T', DELETED),
    ];

    /// The bit for an IMAP flag name (case-insensitive), if it is a system flag.
    pub fn bit(name: &str) -> Option<u8> {
        NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, b)| *b)
    }
}

pub(super) fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Per-mailbox state.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MailboxMeta {
    /// Internal id (keys of the message records).
    pub id: u64,
    /// RFC 9051 §2.3.1.1 UIDVALIDITY.
    pub uidvalidity: u32,
    /// Next UID to assign.
    pub uidnext: u32,
    /// RFC 7162 HIGHESTMODSEQ.
    pub highestmodseq: u64,
    /// Written by indexes from before subscriptions were kept apart; read once, to carry
    /// them over (`subscriptions.rs`).
    #[serde(default)]
    pub subscribed: bool,
    /// RFC 6154 special use (`\Sent`, ...), if any.
    #[serde(default)]
    pub special_use: Option<String>,
    /// Every message of this mailbox is in the full-text index.
    #[serde(default)]
    pub fts: bool,
    /// The form of this mailbox's full-text words ([`super::FTS_FORMAT`] when current;
    /// 0 for indexes written before words were kept in their i;unicode-casemap form).
    #[serde(default)]
    pub fts_format: u8,
    /// Messages expunged since the full-text postings were last pruned of them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub fts_dead: u32,
    /// RFC 4314 access control list: identifier (login or `anyone`) → rights letters.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub acl: std::collections::BTreeMap<String, String>,
}

/// One message of a mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRecord {
    /// Maildir base name (without `:2,` info).
    pub name: String,
    /// System flag bits ([`flag`]).
    pub flags: u8,
    /// Keywords (flags that are not system flags).
    pub keywords: Vec<String>,
    /// RFC822.SIZE.
    pub size: u64,
    /// INTERNALDATE, Unix seconds.
    pub internal_date: i64,
    /// Modseq of the last change.
    pub modseq: u64,
    /// The file is in `new/` (not yet moved to `cur/`).
    pub in_new: bool,
    /// When it was saved into this mailbox (RFC 8514 SAVEDATE), Unix seconds; `None` for
    /// records written before save dates were kept.
    pub saved: Option<i64>,
}

impl MessageRecord {
    pub(super) fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(40 + self.name.len());
        v.push(self.flags);
        // Bit 0: in new/; bit 1: a save date follows the modseq.
        v.push(self.in_new as u8 | if self.saved.is_some() { 2 } else { 0 });
        v.extend_from_slice(&self.size.to_be_bytes());
        v.extend_from_slice(&self.internal_date.to_be_bytes());
        v.extend_from_slice(&self.modseq.to_be_bytes());
        if let Some(saved) = self.saved {
            v.extend_from_slice(&saved.to_be_bytes());
        }
        let kws: Vec<&String> = self.keywords.iter().take(255).collect();
        v.push(kws.len() as u8);
        for k in kws {
            let b = &k.as_bytes()[..k.len().min(255)];
            v.push(b.len() as u8);
            v.extend_from_slice(b);
        }
        v.extend_from_slice(self.name.as_bytes());
        v
    }

    pub(super) fn decode(v: &[u8]) -> Option<MessageRecord> {
        let flags = *v.first()?;
        let bits = *v.get(1)?;
        let in_new = bits & 1 != 0;
        let n8 = |o: usize| -> Option<[u8; 8]> { v.get(o..o + 8)?.try_into().ok() };
        let size = u64::from_be_bytes(n8(2)?);
        let internal_date = i64::from_be_bytes(n8(10)?);
        let modseq = u64::from_be_bytes(n8(18)?);
        let (saved, at) = if bits & 2 != 0 {
            (Some(i64::from_be_bytes(n8(26)?)), 34)
        } else {
            (None, 26)
        };
        let nk = *v.get(at)? as usize;
        let mut p = at + 1;
        let mut keywords = Vec::with_capacity(nk);
        for _ in 0..nk {
            let l = *v.get(p)? as usize;
            keywords.push(String::from_utf8_lossy(v.get(p + 1..p + 1 + l)?).into_owned());
            p += 1 + l;
        }
        let name = String::from_utf8_lossy(v.get(p..)?).into_owned();
        Some(MessageRecord {
            name,
            flags,
            keywords,
            size,
            internal_date,
            modseq,
            in_new,
            saved,
        })
    }

    /// The file's current name: `new/<base>` or `cur/<base>:2,<letters>`.
    pub fn relative_path(&self) -> String {
        if self.in_new {
            format!("new/{}", self.name)
        } else {
            format!("cur/{}:2,{}", self.name, info_letters(self.flags))
        }
    }
}

/// The Maildir info letters for `flags`.
pub fn info_letters(flags: u8) -> String {
    flag::LETTERS
        .iter()
        .filter(|(_, b)| flags & b != 0)
        .map(|(c, _)| *c)
        .collect()
}

pub(super) fn parse_info(info: &str) -> u8 {
    info.chars().fold(0, |acc, c| {
        acc | flag::LETTERS
            .iter()
            .find(|(l, _)| *l == c)
            .map(|(_, b)| *b)
            .unwrap_or(0)
    })
}

/// Splits a Maildir file name into base and flag bits.
pub fn split_name(file: &str) -> (&str, u8) {
    match file.split_once(":2,") {
        Some((base, info)) => (base, parse_info(info)),
        None => (file.split(':').next().unwrap_or(file), 0),
    }
}

/// The Maildir++ folder of mailbox `name` under the user's Maildir `root`: INBOX is the root,
/// `a/b` is `.a.b` (dots inside a name part are escaped as `%2E`, `%` as `%25`).
pub fn folder_path(root: &Path, name: &str) -> PathBuf {
    if name == "INBOX" {
        return root.to_path_buf();
    }
    let parts: Vec<String> = name
        .split('/')
        .map(|p| p.replace('%', "%25").replace('.', "%2E"))
        .collect();
    root.join(format!(".{}", parts.join(".")))
}

/// Cached header blocks of several messages, stored back to back in one buffer.
#[derive(Debug, Default)]
pub struct HeaderSet {
    buf: Vec<u8>,
    index: HashMap<u32, (usize, usize)>,
}

impl HeaderSet {
    pub(super) fn push(&mut self, uid: u32, h: &[u8]) {
        let start = self.buf.len();
        self.buf.extend_from_slice(h);
        self.index.insert(uid, (start, self.buf.len()));
    }

    /// The header block of `uid`, if it was cached.
    pub fn get(&self, uid: u32) -> Option<&[u8]> {
        self.index.get(&uid).map(|(a, b)| &self.buf[*a..*b])
    }

    /// True if `uid`'s header is here.
    pub fn contains(&self, uid: u32) -> bool {
        self.index.contains_key(&uid)
    }
}

/// The header block of a message (up to and including the empty line).
pub fn header_block(data: &[u8]) -> &[u8] {
    let end = memchr::memmem::find(data, b"\r\n\r\n")
        .map(|p| p + 4)
        .or_else(|| memchr::memmem::find(data, b"\n\n").map(|p| p + 2))
        .unwrap_or(data.len());
    &data[..end]
}

pub(super) fn read_message(path: &Path) -> std::io::Result<(Vec<u8>, u64, i64)> {
    let data = std::fs::read(path)?;
    let mtime = std::fs::metadata(path)
        .ok()
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let len = data.len() as u64;
    Ok((data, len, mtime))
}

pub(super) fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}
