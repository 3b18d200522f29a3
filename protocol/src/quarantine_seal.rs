//! The envelope record a quarantined copy carries (`X-Postcore-Quarantine`), as text: the
//! items in the order they are sealed, and their parser. The seal itself (an HMAC under the
//! server's secret) is the server's business; this is only the syntax, free of I/O so that it
//! can be fuzzed.
//!
//! ```text
//! qid=19A0B1C2D3E4F00001; score=1000.00; from=<spammer@remote.test>;
//!  to=<alice@example.test>, <bob@example.test>; mac=…
//! ```
//!
//! Addresses are percent-encoded outside a conservative set (RFC 3986 §2.1 style), so quoted
//! local parts and UTF-8 addresses (RFC 6531) stay one ASCII token without white space; the
//! parser sees the value with all white space removed (RFC 5322 §2.2.3 unfolding and more).

/// What a quarantined copy records about its envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct Stamp {
    /// The queue id the message was accepted under.
    pub qid: String,
    /// The envelope sender (empty: the null sender).
    pub from: String,
    /// The RCPT TO addresses whose copies went to the quarantine.
    pub rcpts: Vec<String>,
    /// The spam score.
    pub score: f64,
}

/// The sealed items in order, each with its separator.
pub fn items(s: &Stamp) -> Vec<String> {
    let mut v = vec![
        format!("qid={};", encode(&s.qid)),
        format!("score={:.2};", s.score),
        format!("from=<{}>;", encode(&s.from)),
    ];
    let n = s.rcpts.len();
    for (i, r) in s.rcpts.iter().enumerate() {
        let first = if i == 0 { "to=" } else { "" };
        let sep = if i + 1 == n { ';' } else { ',' };
        v.push(format!("{first}<{}>{sep}", encode(r)));
    }
    if n == 0 {
        v.push("to=;".into());
    }
    v
}

/// Parses the unfolded, whitespace-free items (the part before `mac=`).
pub fn parse(body: &str) -> Option<Stamp> {
    let mut s = Stamp {
        qid: String::new(),
        from: String::new(),
        rcpts: Vec::new(),
        score: 0.0,
    };
    for item in body.split(';').filter(|i| !i.is_empty()) {
        let (k, v) = item.split_once('=')?;
        let angle = |a: &str| -> Option<String> { decode(a.strip_prefix('<')?.strip_suffix('>')?) };
        match k {
            "qid" => s.qid = decode(v)?,
            "score" => s.score = v.parse().ok()?,
            "from" => s.from = angle(v)?,
            "to" if !v.is_empty() => {
                s.rcpts = v.split(',').map(angle).collect::<Option<Vec<_>>>()?;
            }
            _ => {}
        }
    }
    (!s.qid.is_empty()).then_some(s)
}

/// Percent-encodes every byte outside the characters an unquoted address uses, minus the
/// field's own separators.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let plain = b.is_ascii_alphanumeric() || b"!#$&'*+-./=?^_`{|}~@".contains(&b);
        if plain {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn decode(s: &str) -> Option<String> {
    crate::imap::url::percent_decode(s)
}

/// Splits a field value into its sealed part (white space removed) and its `mac=` value.
pub fn split(value: &str) -> Option<(String, String)> {
    let flat: String = value.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let (body, mac) = flat.rsplit_once("mac=")?;
    Some((body.to_string(), mac.to_string()))
}
