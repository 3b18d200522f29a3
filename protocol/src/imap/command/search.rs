//! SEARCH keys and programs (RFC 9051 §6.4.4), ESEARCH return options (RFC 4731).

use super::*;

impl<'a> Cur<'a> {
    pub(super) fn search_key(&mut self, depth: usize) -> R<SearchKey> {
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
        if matches!(self.peek(), Some(b'0'..=b'9' | b'*' | b'$')) {
            return Ok(SearchKey::Seq(self.seq_set()?));
        }
        let k = self.keyword()?;
        self.named_search_key(&k, depth)
    }

    /// A search key that starts with its name (RFC 9051 §6.4.4 `search-key`).
    fn named_search_key(&mut self, k: &str, depth: usize) -> R<SearchKey> {
        let flag = |f: &str| Ok(SearchKey::Flag(f.into()));
        let noflag = |f: &str| Ok(SearchKey::NoFlag(f.into()));
        match k {
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
                let name = match k {
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
            "BEFORE" | "ON" | "SINCE" | "SENTBEFORE" | "SENTON" | "SENTSINCE" | "SAVEDBEFORE"
            | "SAVEDON" | "SAVEDSINCE" => {
                self.sp()?;
                let d = self.date()?;
                Ok(match k {
                    "BEFORE" => SearchKey::Before(d),
                    "ON" => SearchKey::On(d),
                    "SINCE" => SearchKey::Since(d),
                    "SENTBEFORE" => SearchKey::SentBefore(d),
                    "SENTON" => SearchKey::SentOn(d),
                    "SENTSINCE" => SearchKey::SentSince(d),
                    // RFC 8514 §4.2.
                    "SAVEDBEFORE" => SearchKey::SavedBefore(d),
                    "SAVEDON" => SearchKey::SavedOn(d),
                    _ => SearchKey::SavedSince(d),
                })
            }
            "SAVEDATESUPPORTED" => Ok(SearchKey::SaveDateSupported),
            "LARGER" | "SMALLER" | "OLDER" | "YOUNGER" => {
                self.sp()?;
                let n = self.number()?;
                Ok(match k {
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
            _ => Err(format!("unknown search criterion {k}").into()),
        }
    }

    /// The criteria of SEARCH/SORT after the optional CHARSET: one or more keys.
    pub(super) fn search_program(&mut self) -> R<SearchKey> {
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

    pub(super) fn charset(&mut self) -> R<()> {
        let save = self.p;
        if let Ok(k) = self.keyword()
            && k == "CHARSET"
        {
            self.sp()?;
            let cs = self.astring()?.to_ascii_uppercase();
            if cs != "UTF-8" && cs != "US-ASCII" {
                return Err(Fail::bad_charset());
            }
            self.sp()?;
            return Ok(());
        }
        self.p = save;
        Ok(())
    }

    /// SEARCH and UID SEARCH, with ESEARCH RETURN options (RFC 4731).
    pub(super) fn search_command(&mut self, uid: bool) -> R<CommandBody> {
        self.sp()?;
        let ret = self.search_return()?;
        self.charset()?;
        let key = self.search_program()?;
        Ok(CommandBody::Search { uid, ret, key })
    }

    /// `RETURN (…) SP` of SEARCH (RFC 4731 §3.1) and SORT (RFC 5267 §3), if present.
    fn search_return(&mut self) -> R<SearchReturn> {
        let mut ret = SearchReturn::default();
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
                    "SAVE" => ret.save = true,
                    "CONTEXT" => ret.context = true,
                    "UPDATE" => {
                        ret.update = true;
                        // RFC 5465 §7: `UPDATE (fetch-att …)`.
                        let spaced =
                            self.peek() == Some(b' ') && self.d.get(self.p + 1) == Some(&b'(');
                        if spaced || self.peek() == Some(b'(') {
                            let _ = self.eat(b' ');
                            ret.update_fetch = self.fetch_atts()?;
                        }
                    }
                    "PARTIAL" if ret.partial.is_none() => {
                        self.sp()?;
                        ret.partial = Some(self.partial_range()?);
                    }
                    o => return Err(format!("unknown or repeated RETURN option {o}").into()),
                }
                let _ = self.eat(b' ');
            }
            // RFC 5267 §4.4: one PARTIAL or one ALL, not both.
            if ret.all && ret.partial.is_some() {
                return Err("PARTIAL conflicts with ALL".into());
            }
            // RFC 4731 §3.1: RETURN () is ALL; RFC 5182 §2.1: SAVE alone returns nothing;
            // RFC 5267 §4.2: CONTEXT is only a hint (so RETURN (CONTEXT) is ALL too).
            if !(ret.min || ret.max || ret.count || ret.save || ret.update || ret.partial.is_some())
            {
                ret.all = true;
            }
            self.sp()?;
        } else {
            self.p = save;
        }
        Ok(ret)
    }

    /// RFC 5267 §4.4 `partial-range = nz-number ":" nz-number`; `500:400` is `400:500`.
    fn partial_range(&mut self) -> R<(u32, u32)> {
        let a = self.nz_number()?;
        self.expect(b':')?;
        let b = self.nz_number()?;
        Ok((a.min(b), a.max(b)))
    }

    /// RFC 5267 §4.3.5 `CANCELUPDATE 1*(SP quoted)`: the tags of the searches to stop.
    pub(super) fn cancel_update_args(&mut self) -> R<CommandBody> {
        let mut tags = Vec::new();
        while self.eat(b' ') {
            let t = self.quoted()?;
            tags.push(String::from_utf8(t).map_err(|_| "tag is not UTF-8")?);
        }
        if tags.is_empty() {
            return Err("CANCELUPDATE needs at least one tag".into());
        }
        self.end()?;
        Ok(CommandBody::CancelUpdate(tags))
    }

    /// RFC 5256 §BASE.6.4.THREAD: `THREAD algorithm charset search-criteria`.
    pub(super) fn thread_command(&mut self, uid: bool) -> R<CommandBody> {
        self.sp()?;
        let name = self.keyword()?;
        let algorithm = crate::imap::thread::Algorithm::parse(&name)
            .ok_or_else(|| format!("unknown threading algorithm {name}"))?;
        self.sp()?;
        self.search_charset()?;
        self.sp()?;
        let key = self.search_program()?;
        Ok(CommandBody::Thread {
            uid,
            algorithm,
            key,
        })
    }

    /// The charset of SORT and THREAD (RFC 5256: required; UTF-8 and US-ASCII supported).
    fn search_charset(&mut self) -> R<()> {
        let cs = self.astring()?.to_ascii_uppercase();
        if cs != "UTF-8" && cs != "US-ASCII" {
            return Err(Fail::bad_charset());
        }
        Ok(())
    }

    /// SORT and UID SORT (RFC 5256 §3).
    pub(super) fn sort_command(&mut self, uid: bool) -> R<CommandBody> {
        self.sp()?;
        // RFC 5267 §3 (ESORT): SORT RETURN (…) answers with ESEARCH.
        let ret = self.search_return()?;
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
                "DISPLAYFROM" => SortKey::DisplayFrom,
                "DISPLAYTO" => SortKey::DisplayTo,
                o => return Err(format!("unknown sort key {o}").into()),
            };
            criteria.push((reverse, key));
            reverse = false;
            if self.eat(b')') {
                break;
            }
            self.sp()?;
        }
        self.sp()?;
        self.search_charset()?;
        self.sp()?;
        let key = self.search_program()?;
        Ok(CommandBody::Sort {
            uid,
            ret,
            criteria,
            key,
        })
    }
}
