//! The command name and its arguments: one match over every command (and the UID forms).

use super::*;

impl<'a> Cur<'a> {
    pub(super) fn uid_command(&mut self, uid: bool) -> R<CommandBody> {
        let verb = self.keyword()?;
        match verb.as_str() {
            "FETCH" => self.fetch_command(uid),
            "STORE" => self.store_command(uid),
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
            "SEARCH" => self.search_command(uid),
            "SORT" => self.sort_command(uid),
            "THREAD" => self.thread_command(uid),
            "EXPUNGE" if uid => {
                self.sp()?;
                let set = self.seq_set()?;
                self.end()?;
                Ok(CommandBody::Expunge(Some(set)))
            }
            _ => Err(format!("unknown command UID {verb}").into()),
        }
    }

    pub(super) fn body(&mut self) -> R<CommandBody> {
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
            "AUTHENTICATE" => self.authenticate_args(),
            "LOGIN" => self.login_args(),
            "ENABLE" => self.enable_args(),
            "SELECT" => self.select(false),
            "EXAMINE" => self.select(true),
            "CREATE" => self.create_args(),
            "DELETE" => Ok(C::Delete(one_mailbox(self)?)),
            "SUBSCRIBE" => Ok(C::Subscribe(one_mailbox(self)?)),
            "UNSUBSCRIBE" => Ok(C::Unsubscribe(one_mailbox(self)?)),
            "RENAME" => self.rename_args(),
            "LIST" => self.list(false),
            "LSUB" => self.list(true),
            "STATUS" => self.status_args(),
            "APPEND" => self.append(),
            "UID" => {
                self.sp()?;
                self.uid_command(true)
            }
            "FETCH" | "STORE" | "COPY" | "MOVE" | "SEARCH" | "SORT" | "THREAD" => {
                self.p = save;
                self.uid_command(false)
            }
            "ID" => self.id_args(),
            "CANCELUPDATE" => self.cancel_update_args(),
            "NOTIFY" => self.notify_args(),
            "GENURLAUTH" => self.genurlauth_args(),
            "URLFETCH" => self.urlfetch_args(),
            "RESETKEY" => self.resetkey_args(),
            "GETMETADATA" => self.getmetadata_args(),
            "SETMETADATA" => self.setmetadata_args(),
            "COMPRESS" => {
                self.sp()?;
                let mechanism = self.keyword()?;
                self.end()?;
                Ok(C::Compress(mechanism))
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
            "SETACL" | "DELETEACL" | "LISTRIGHTS" => self.acl_args(verb.as_str()),
            _ => Err(format!("unknown command {verb}").into()),
        }
    }

    /// STORE and UID STORE, with UNCHANGEDSINCE (RFC 7162 §3.1.3).
    fn store_command(&mut self, uid: bool) -> R<CommandBody> {
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

    /// AUTHENTICATE mechanism [initial-response] (RFC 9051 §6.2.2, RFC 4959).
    fn authenticate_args(&mut self) -> R<CommandBody> {
        use CommandBody as C;
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

    /// LOGIN user password (RFC 9051 §6.2.3).
    fn login_args(&mut self) -> R<CommandBody> {
        use CommandBody as C;
        self.sp()?;
        let user = self.astring()?;
        self.sp()?;
        let password = self.astring()?;
        self.end()?;
        Ok(C::Login { user, password })
    }

    /// ENABLE capability… (RFC 5161).
    fn enable_args(&mut self) -> R<CommandBody> {
        use CommandBody as C;
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

    /// CREATE mailbox [(USE (flags))] (RFC 9051 §6.3.4, RFC 6154 §3).
    fn create_args(&mut self) -> R<CommandBody> {
        use CommandBody as C;
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

    /// RENAME from to (RFC 9051 §6.3.6).
    fn rename_args(&mut self) -> R<CommandBody> {
        use CommandBody as C;
        self.sp()?;
        let from = self.mailbox()?;
        self.sp()?;
        let to = self.mailbox()?;
        self.end()?;
        Ok(C::Rename { from, to })
    }

    /// STATUS mailbox (items) (RFC 9051 §6.3.11).
    fn status_args(&mut self) -> R<CommandBody> {
        use CommandBody as C;
        self.sp()?;
        let mailbox = self.mailbox()?;
        self.sp()?;
        let items = self.status_items()?;
        self.end()?;
        Ok(C::Status { mailbox, items })
    }

    /// ID (field value …) or NIL (RFC 2971 §3.1).
    fn id_args(&mut self) -> R<CommandBody> {
        use CommandBody as C;
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

    /// SETACL, DELETEACL and LISTRIGHTS (RFC 4314 §3.1–3.3).
    fn acl_args(&mut self, verb: &str) -> R<CommandBody> {
        use CommandBody as C;
        self.sp()?;
        let mailbox = self.mailbox()?;
        self.sp()?;
        let identifier = self.astring()?;
        let r = match verb {
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
}
