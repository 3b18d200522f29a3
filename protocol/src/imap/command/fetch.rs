//! FETCH attributes and body sections (RFC 9051 §6.4.5), BINARY (RFC 3516).

use super::*;

impl<'a> Cur<'a> {
    pub(super) fn header_list(&mut self) -> R<Vec<String>> {
        self.expect(b'(')?;
        let mut v = vec![self.astring()?];
        while self.eat(b' ') {
            v.push(self.astring()?);
        }
        self.expect(b')')?;
        Ok(v)
    }

    /// RFC 9051 §9 section: `[` section-spec `]`.
    pub(super) fn section(&mut self) -> R<Section> {
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

    pub(super) fn partial(&mut self) -> R<Option<(u32, u32)>> {
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

    pub(super) fn fetch_att(&mut self) -> R<FetchAtt> {
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
            b"SAVEDATE" => FetchAtt::SaveDate,
            b"RFC822.SIZE" => FetchAtt::Size,
            b"ENVELOPE" => FetchAtt::Envelope,
            b"BODYSTRUCTURE" => FetchAtt::BodyStructure,
            b"MODSEQ" => FetchAtt::ModSeq,
            b"PREVIEW" | b"SNIPPET" => {
                // RFC 8970 §3: `PREVIEW (LAZY)`; postcore always computes the preview. The
                // draft's `(FUZZY)` / `(LAZY=FUZZY)` and SNIPPET ask for its older form.
                let snippet = name.as_slice() == b"SNIPPET";
                let rest = &self.d[self.p..];
                let opt =
                    |o: &[u8]| rest.len() >= o.len() && rest[..o.len()].eq_ignore_ascii_case(o);
                if !snippet && opt(b" (LAZY)") {
                    self.p += 7;
                    FetchAtt::Preview
                } else if opt(b" (LAZY=FUZZY)") {
                    self.p += 13;
                    FetchAtt::PreviewFuzzy(snippet)
                } else if opt(b" (FUZZY)") {
                    self.p += 8;
                    FetchAtt::PreviewFuzzy(snippet)
                } else if snippet {
                    FetchAtt::PreviewFuzzy(true)
                } else {
                    FetchAtt::Preview
                }
            }
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

    pub(super) fn fetch_atts(&mut self) -> R<Vec<FetchAtt>> {
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

    /// FETCH and UID FETCH with CONDSTORE/QRESYNC modifiers (RFC 7162 §3.1.4, §3.2.6).
    pub(super) fn fetch_command(&mut self, uid: bool) -> R<CommandBody> {
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
                    o => return Err(format!("unknown FETCH modifier {o}").into()),
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
}
