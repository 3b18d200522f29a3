//! The parser's cursor over one command and the RFC 9051 §9 primitives: atoms, strings,
//! literals, numbers, sequence sets, flags and dates.

use super::*;

pub(super) struct Cur<'a> {
    pub(super) d: &'a [u8],
    pub(super) p: usize,
}

pub(super) fn is_atom_char(b: u8) -> bool {
    // RFC 9051 §9 ATOM-CHAR: any CHAR except atom-specials.
    b > 0x20 && b < 0x7f && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

pub(super) fn is_astring_char(b: u8) -> bool {
    // Lenient like deployed servers: `*` and `%` are accepted inside astring atoms, so
    // `LOGIN alice*root secret` (master login, RFC-wise a quoted string) works unquoted.
    is_atom_char(b) || matches!(b, b']' | b'*' | b'%')
}

pub(super) fn is_list_char(b: u8) -> bool {
    is_atom_char(b) || matches!(b, b'%' | b'*' | b']')
}

pub(super) const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];

impl<'a> Cur<'a> {
    pub(super) fn peek(&self) -> Option<u8> {
        self.d.get(self.p).copied()
    }

    pub(super) fn done(&self) -> bool {
        self.p >= self.d.len()
    }

    pub(super) fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.p += 1;
            true
        } else {
            false
        }
    }

    pub(super) fn expect(&mut self, b: u8) -> R<()> {
        if self.eat(b) {
            Ok(())
        } else {
            Err(format!("expected '{}'", b as char).into())
        }
    }

    pub(super) fn sp(&mut self) -> R<()> {
        self.expect(b' ')
    }

    pub(super) fn end(&self) -> R<()> {
        if self.done() {
            Ok(())
        } else {
            Err("unexpected characters at end of command".into())
        }
    }

    pub(super) fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let s = self.p;
        while self.p < self.d.len() && f(self.d[self.p]) {
            self.p += 1;
        }
        &self.d[s..self.p]
    }

    pub(super) fn atom(&mut self) -> R<String> {
        let a = self.take_while(is_atom_char);
        if a.is_empty() {
            return Err("expected an atom".into());
        }
        Ok(String::from_utf8_lossy(a).into_owned())
    }

    pub(super) fn keyword(&mut self) -> R<String> {
        Ok(self.atom()?.to_ascii_uppercase())
    }

    pub(super) fn number(&mut self) -> R<u64> {
        let n = self.take_while(|b| b.is_ascii_digit());
        if n.is_empty() || n.len() > 19 {
            return Err("expected a number".into());
        }
        std::str::from_utf8(n)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| "bad number".into())
    }

    pub(super) fn nz_number(&mut self) -> R<u32> {
        let n = self.number()?;
        if n == 0 || n > u32::MAX as u64 {
            return Err("number out of range".into());
        }
        Ok(n as u32)
    }

    pub(super) fn quoted(&mut self) -> R<Vec<u8>> {
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

    pub(super) fn literal(&mut self) -> R<Vec<u8>> {
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

    pub(super) fn string_bytes(&mut self) -> R<Vec<u8>> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') => self.literal(),
            _ => Err("expected a string".into()),
        }
    }

    pub(super) fn string(&mut self) -> R<String> {
        Ok(String::from_utf8_lossy(&self.string_bytes()?).into_owned())
    }

    pub(super) fn astring(&mut self) -> R<String> {
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

    pub(super) fn mailbox(&mut self) -> R<String> {
        let m = self.astring()?;
        Ok(if m.eq_ignore_ascii_case("INBOX") {
            "INBOX".into()
        } else {
            m
        })
    }

    pub(super) fn list_mailbox(&mut self) -> R<String> {
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

    pub(super) fn seq_num(&mut self) -> R<SeqNum> {
        if self.eat(b'*') {
            Ok(SeqNum::Star)
        } else {
            Ok(SeqNum::Value(self.nz_number()?))
        }
    }

    /// RFC 9051 §9 sequence-set, or `$` (RFC 5182 §4: the saved result, alone).
    pub(super) fn seq_set(&mut self) -> R<SeqSet> {
        if self.eat(b'$') {
            return Ok(SeqSet::saved());
        }
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

    pub(super) fn flag(&mut self) -> R<String> {
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

    pub(super) fn flag_list(&mut self) -> R<Vec<String>> {
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

    pub(super) fn flags_maybe_list(&mut self) -> R<Vec<String>> {
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
    pub(super) fn date(&mut self) -> R<Day> {
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
    pub(super) fn date_time(&mut self) -> R<i64> {
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
}
