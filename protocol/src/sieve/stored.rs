//! The stored form of a compiled script: a script is compiled once, when it is uploaded, and
//! kept in this form beside its source, so delivery loads a checked program instead of
//! parsing text (the same split as Pigeonhole's `.sieve` / `.svbin`).
//!
//! Layout: the magic `PCSV`, the format number ([`FORMAT`], u16 big-endian), then the
//! [`Script`] in postcard's encoding. `:regex` keys are stored as their patterns and compiled
//! again when loaded (a compiled automaton has no portable form).

use super::matching::regex_for;
use super::program::{Comparator, Regexes, Script};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The stored form's version. Change it whenever a type in [`super::program`] changes shape:
/// records of another format are then compiled again from their source.
pub const FORMAT: u16 = 1;

const MAGIC: &[u8; 4] = b"PCSV";

/// Why a stored form cannot be used (the caller compiles the source instead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredError {
    /// Not a stored script (no magic).
    NotStored,
    /// Written by another format ([`FORMAT`] changed since).
    Format(u16),
    /// The encoding does not decode to a script.
    Corrupt(String),
}

impl std::fmt::Display for StoredError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoredError::NotStored => write!(f, "not a stored Sieve script"),
            StoredError::Format(n) => write!(f, "stored in format {n}, this build reads {FORMAT}"),
            StoredError::Corrupt(e) => write!(f, "stored script does not decode: {e}"),
        }
    }
}

impl std::error::Error for StoredError {}

/// The stored form of `script`.
pub fn encode(script: &Script) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT.to_be_bytes());
    // Serializing plain data into a Vec cannot fail; an empty body would fail `decode`
    // and the source would be compiled instead.
    if let Ok(body) = postcard::to_allocvec(script) {
        out.extend_from_slice(&body);
    }
    out
}

/// The format number a stored form was written in, if it is one.
pub fn format_of(bytes: &[u8]) -> Option<u16> {
    let rest = bytes.strip_prefix(MAGIC.as_slice())?;
    Some(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]))
}

/// The script stored in `bytes`.
pub fn decode(bytes: &[u8]) -> Result<Script, StoredError> {
    let format = format_of(bytes).ok_or(StoredError::NotStored)?;
    if format != FORMAT {
        return Err(StoredError::Format(format));
    }
    let body = &bytes[MAGIC.len() + 2..];
    let (script, rest) = postcard::take_from_bytes::<Script>(body)
        .map_err(|e| StoredError::Corrupt(e.to_string()))?;
    if !rest.is_empty() {
        return Err(StoredError::Corrupt(format!(
            "{} octets after the script",
            rest.len()
        )));
    }
    Ok(script)
}

/// Stored as the sorted list of patterns (so equal scripts store equal bytes).
impl Serialize for Regexes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut keys: Vec<&(String, Comparator)> = self.0.keys().collect();
        keys.sort_by(|a, b| a.0.cmp(&b.0).then((a.1 as u8).cmp(&(b.1 as u8))));
        keys.serialize(s)
    }
}

/// Compiles each pattern again; one that does not compile fails the load.
impl<'de> Deserialize<'de> for Regexes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let keys = Vec::<(String, Comparator)>::deserialize(d)?;
        let mut map = std::collections::HashMap::with_capacity(keys.len());
        for (pattern, cmp) in keys {
            let re = regex_for(&pattern, cmp)
                .map_err(|e| serde::de::Error::custom(format!("regex {pattern:?}: {e}")))?;
            map.insert((pattern, cmp), re);
        }
        Ok(Regexes(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sieve::compile;

    /// Every command, test and tag kind the compiler produces, in one script.
    const WIDE: &str = r#"require ["fileinto", "reject", "ereject", "envelope", "encoded-character",
 "imap4flags", "copy", "body", "variables", "vacation", "vacation-seconds", "relational",
 "comparator-i;ascii-numeric", "subaddress", "date", "index", "mailbox", "include",
 "duplicate", "editheader", "spamtest", "spamtestplus", "virustest", "regex"];
set :lower :upperfirst "who" "${1}";
if allof (header :regex "subject" "^re: (.*)$", not exists "x-none",
          address :localpart :index 1 :last "from" "coyote",
          envelope :detail :comparator "i;octet" "to" "tv",
          size :over 10, body :content "text" :contains "anvil",
          string :count "ge" :comparator "i;ascii-numeric" "${who}" "1",
          hasflag :matches "\\Seen*", date :value "lt" :zone "+0100" "date" "year" "2030",
          currentdate :zone "+0000" "month" "12", mailboxexists "Junk",
          duplicate :header "message-id" :seconds 60 :last,
          spamtest :percent :value "ge" :comparator "i;ascii-numeric" "50",
          virustest :value "eq" :comparator "i;ascii-numeric" "1") {
  fileinto :copy :create :flags ["\\Seen", "$Junk"] "Junk";
  addflag "flags" "\\Flagged";
  addheader :last "X-Sieve" "${who}";
  deleteheader :index 2 :contains "x-spam" "relay";
  vacation :seconds 3600 :subject "Away" :from "me@example.com" :addresses ["a@b.example"]
           :mime :handle "h" "Back soon.";
  redirect :copy "elsewhere@example.net";
  include :global :once :optional "spam";
  global "who";
} elsif true { ereject "no"; stop; } else { discard; keep :flags "\\Seen"; return; }
"#;

    #[test]
    fn round_trip_keeps_every_kind() {
        let script = compile(WIDE).expect("compiles");
        assert!(!script.regexes.0.is_empty());
        let bytes = encode(&script);
        assert_eq!(format_of(&bytes), Some(FORMAT));
        let back = decode(&bytes).expect("decodes");
        assert_eq!(back, script);
        assert_eq!(encode(&back), bytes, "equal scripts store equal bytes");
    }

    #[test]
    fn stored_regexes_still_match() {
        let script = compile(
            "require [\"regex\"]; if header :regex \"subject\" \"^RE: (.*)$\" { discard; }",
        )
        .expect("compiles");
        let back = decode(&encode(&script)).expect("decodes");
        let (key, re) = back.regexes.0.iter().next().expect("one regex");
        assert_eq!(key.1, Comparator::AsciiCasemap);
        assert!(re.is_match("re: hello"), "case-insensitive as compiled");
    }

    #[test]
    fn other_formats_and_damage_are_refused_not_panics() {
        let good = encode(&compile(WIDE).expect("compiles"));
        assert_eq!(
            decode(b"require \"fileinto\";"),
            Err(StoredError::NotStored)
        );
        let mut old = good.clone();
        old[5] = old[5].wrapping_add(1);
        assert!(matches!(decode(&old), Err(StoredError::Format(_))));
        for cut in [6, 7, good.len() / 2, good.len() - 1] {
            assert!(
                matches!(decode(&good[..cut]), Err(StoredError::Corrupt(_))),
                "cut at {cut}"
            );
        }
        let mut long = good.clone();
        long.push(0);
        assert!(matches!(decode(&long), Err(StoredError::Corrupt(_))));
        // Every single-byte change either decodes to some script or is refused.
        for i in 6..good.len() {
            let mut b = good.clone();
            b[i] ^= 0xff;
            let _ = decode(&b);
        }
    }

    /// Fails when the stored layout changes without [`FORMAT`] changing: bump FORMAT, then
    /// set the new length and checksum here.
    #[test]
    fn layout_is_pinned_to_format() {
        let bytes = encode(&compile(WIDE).expect("compiles"));
        let fnv = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        });
        assert_eq!((FORMAT, bytes.len(), fnv), (1, 677, 0xb252_b496_ffea_76c4));
    }
}
