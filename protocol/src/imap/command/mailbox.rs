//! Mailbox commands with arguments of their own: LIST/LSUB (RFC 9051 §6.3.9, RFC 5258),
//! SELECT/EXAMINE with CONDSTORE/QRESYNC (RFC 7162), STATUS items, APPEND (§6.3.12), and
//! the URLAUTH commands (RFC 4467 §7: RESETKEY, GENURLAUTH, URLFETCH).

use super::*;

impl<'a> Cur<'a> {
    pub(super) fn status_items(&mut self) -> R<Vec<StatusItem>> {
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
                _ => return Err(format!("unknown STATUS item {k}").into()),
            });
            if self.eat(b')') {
                return Ok(v);
            }
            self.sp()?;
        }
    }

    pub(super) fn list(&mut self, lsub: bool) -> R<CommandBody> {
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
                    o => return Err(format!("unknown LIST selection option {o}").into()),
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
                    o => return Err(format!("unknown LIST return option {o}").into()),
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

    pub(super) fn select(&mut self, read_only: bool) -> R<CommandBody> {
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
                    o => return Err(format!("unknown SELECT parameter {o}").into()),
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

    pub(super) fn append(&mut self) -> R<CommandBody> {
        self.sp()?;
        let mailbox = self.mailbox()?;
        let mut messages = Vec::new();
        // RFC 3502 §6.3.11: `append-message *(SP append-message)`.
        loop {
            self.sp()?;
            messages.push(self.append_message()?);
            if self.done() {
                break;
            }
        }
        Ok(CommandBody::Append { mailbox, messages })
    }

    /// One `[SP flag-list] [SP date-time] SP literal` of APPEND (the leading space taken).
    fn append_message(&mut self) -> R<AppendMessage> {
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
        // RFC 4469 §5: CATENATE (TEXT literal / URL url ...).
        let save = self.p;
        if self.keyword().ok().as_deref() == Some("CATENATE") {
            self.sp()?;
            self.expect(b'(')?;
            let mut catenate = Vec::new();
            loop {
                let kind = self.keyword()?;
                self.sp()?;
                catenate.push(match kind.as_str() {
                    "TEXT" => {
                        let _ = self.eat(b'~');
                        CatPart::Text(self.literal()?)
                    }
                    "URL" => CatPart::Url(self.astring()?),
                    o => return Err(format!("unknown CATENATE part {o}").into()),
                });
                if catenate.len() > 100 {
                    return Err("too many CATENATE parts".into());
                }
                if self.eat(b')') {
                    break;
                }
                self.sp()?;
            }
            return Ok(AppendMessage {
                flags,
                date,
                data: Vec::new(),
                catenate,
            });
        }
        self.p = save;
        // RFC 3516 / RFC 9051: literal8 `~{N}` is accepted too.
        let _ = self.eat(b'~');
        let data = self.literal()?;
        Ok(AppendMessage {
            flags,
            date,
            data,
            catenate: Vec::new(),
        })
    }
}

/// URLs one GENURLAUTH or URLFETCH may name (a bound on one command's work).
pub const MAX_URLS: usize = 100;

impl<'a> Cur<'a> {
    /// RFC 4467 §7.2 `GENURLAUTH 1*(SP url-rump SP mechanism)`.
    pub(super) fn genurlauth_args(&mut self) -> R<CommandBody> {
        let mut pairs = Vec::new();
        while self.eat(b' ') {
            if pairs.len() >= MAX_URLS {
                return Err("too many URLs".into());
            }
            let url = self.astring()?;
            self.sp()?;
            let mech = self.atom()?.to_ascii_uppercase();
            pairs.push((url, mech));
        }
        if pairs.is_empty() {
            return Err("GENURLAUTH needs a URL and a mechanism".into());
        }
        self.end()?;
        Ok(CommandBody::GenUrlAuth(pairs))
    }

    /// RFC 4467 §7.3 `URLFETCH 1*(SP url)`.
    pub(super) fn urlfetch_args(&mut self) -> R<CommandBody> {
        let mut urls = Vec::new();
        while self.eat(b' ') {
            if urls.len() >= MAX_URLS {
                return Err("too many URLs".into());
            }
            urls.push(self.astring()?);
        }
        if urls.is_empty() {
            return Err("URLFETCH needs a URL".into());
        }
        self.end()?;
        Ok(CommandBody::UrlFetch(urls))
    }

    /// RFC 4467 §7.1 `RESETKEY [SP mailbox *(SP mechanism)]`.
    pub(super) fn resetkey_args(&mut self) -> R<CommandBody> {
        if !self.eat(b' ') {
            return Ok(CommandBody::ResetKey(None));
        }
        let mailbox = self.mailbox()?;
        let mut mechs = Vec::new();
        while self.eat(b' ') {
            mechs.push(self.atom()?.to_ascii_uppercase());
        }
        self.end()?;
        Ok(CommandBody::ResetKey(Some((mailbox, mechs))))
    }
}
