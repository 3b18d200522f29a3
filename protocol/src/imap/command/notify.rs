//! NOTIFY arguments (RFC 5465 §3.1, §8): `NOTIFY NONE` or `NOTIFY SET [STATUS] event-group…`,
//! with the composition rules of §5 and §6.1 (broken ones are a BAD).

use super::*;

/// Mailbox names one NOTIFY may list (a bound on the work one command asks for).
pub const MAX_NOTIFY_MAILBOXES: usize = 1000;

/// Which mailboxes an event group covers (RFC 5465 §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyFilter {
    /// SELECTED: the selected mailbox, events sent at once (§6.1.1).
    Selected,
    /// SELECTED-DELAYED: the selected mailbox, expunges held until a command allows them
    /// (§6.1.2).
    SelectedDelayed,
    /// INBOXES: mailboxes mail is delivered to (§6.3).
    Inboxes,
    /// PERSONAL: the user's personal namespace (§6.2).
    Personal,
    /// SUBSCRIBED: the subscribed mailboxes, re-evaluated as subscriptions change (§6.4).
    Subscribed,
    /// SUBTREE: the named mailboxes and all below them (§6.5).
    Subtree(Vec<String>),
    /// MAILBOXES: exactly the named mailboxes (§6.6).
    Mailboxes(Vec<String>),
}

impl NotifyFilter {
    /// SELECTED or SELECTED-DELAYED.
    pub fn is_selected(&self) -> bool {
        matches!(self, NotifyFilter::Selected | NotifyFilter::SelectedDelayed)
    }
}

/// An event type (RFC 5465 §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyEvent {
    /// MessageNew, with the FETCH items to send for a new message of the selected mailbox.
    MessageNew(Vec<FetchAtt>),
    /// MessageExpunge.
    MessageExpunge,
    /// FlagChange.
    FlagChange,
    /// AnnotationChange (RFC 5257 annotations).
    AnnotationChange,
    /// MailboxName: created, deleted, renamed.
    MailboxName,
    /// SubscriptionChange.
    SubscriptionChange,
    /// MailboxMetadataChange (RFC 5464).
    MailboxMetadataChange,
    /// ServerMetadataChange (RFC 5464).
    ServerMetadataChange,
    /// An event name this parser does not know (answered with NO [BADEVENT], §3.1).
    Other(String),
}

impl NotifyEvent {
    /// A message event (§5.1–5.3), the only kind SELECTED groups may name (§6.1).
    pub fn is_message_event(&self) -> bool {
        matches!(
            self,
            NotifyEvent::MessageNew(_)
                | NotifyEvent::MessageExpunge
                | NotifyEvent::FlagChange
                | NotifyEvent::AnnotationChange
        )
    }

    /// The event's name as the RFC spells it.
    pub fn name(&self) -> &str {
        match self {
            NotifyEvent::MessageNew(_) => "MessageNew",
            NotifyEvent::MessageExpunge => "MessageExpunge",
            NotifyEvent::FlagChange => "FlagChange",
            NotifyEvent::AnnotationChange => "AnnotationChange",
            NotifyEvent::MailboxName => "MailboxName",
            NotifyEvent::SubscriptionChange => "SubscriptionChange",
            NotifyEvent::MailboxMetadataChange => "MailboxMetadataChange",
            NotifyEvent::ServerMetadataChange => "ServerMetadataChange",
            NotifyEvent::Other(n) => n,
        }
    }
}

/// `"(" filter-mailboxes SP events ")"`: events empty for NONE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyGroup {
    /// The mailboxes.
    pub filter: NotifyFilter,
    /// The events wanted there; empty is NONE.
    pub events: Vec<NotifyEvent>,
}

/// NOTIFY SET's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifySet {
    /// The STATUS indicator: STATUS of every watched mailbox now (§3.1).
    pub status: bool,
    /// The event groups, in the client's order.
    pub groups: Vec<NotifyGroup>,
}

impl<'a> Cur<'a> {
    /// `SP ("NONE" / "SET" [SP "STATUS"] 1*(SP event-group))`.
    pub(super) fn notify_args(&mut self) -> R<CommandBody> {
        self.sp()?;
        match self.keyword()?.as_str() {
            "NONE" => {
                self.end()?;
                Ok(CommandBody::Notify(None))
            }
            "SET" => {
                let mut set = NotifySet {
                    status: false,
                    groups: Vec::new(),
                };
                self.sp()?;
                if !matches!(self.peek(), Some(b'(')) {
                    if self.keyword()? != "STATUS" {
                        return Err("expected STATUS or an event group".into());
                    }
                    set.status = true;
                    self.sp()?;
                }
                loop {
                    set.groups.push(self.notify_group()?);
                    if !self.eat(b' ') {
                        break;
                    }
                }
                self.end()?;
                check_groups(&set.groups)?;
                Ok(CommandBody::Notify(Some(set)))
            }
            o => Err(format!("NOTIFY {o}: expected SET or NONE").into()),
        }
    }

    /// `"(" filter-mailboxes SP events ")"`.
    fn notify_group(&mut self) -> R<NotifyGroup> {
        self.expect(b'(')?;
        let filter = match self.keyword()?.as_str() {
            "SELECTED" => NotifyFilter::Selected,
            "SELECTED-DELAYED" => NotifyFilter::SelectedDelayed,
            "INBOXES" => NotifyFilter::Inboxes,
            "PERSONAL" => NotifyFilter::Personal,
            "SUBSCRIBED" => NotifyFilter::Subscribed,
            "SUBTREE" => NotifyFilter::Subtree(self.notify_mailboxes()?),
            "MAILBOXES" => NotifyFilter::Mailboxes(self.notify_mailboxes()?),
            o => return Err(format!("unknown NOTIFY mailbox filter {o}").into()),
        };
        self.sp()?;
        let mut events = Vec::new();
        if self.eat(b'(') {
            loop {
                events.push(self.notify_event(filter.is_selected())?);
                if self.eat(b')') {
                    break;
                }
                self.sp()?;
            }
        } else if self.keyword()? != "NONE" {
            return Err("expected an event list or NONE".into());
        }
        self.expect(b')')?;
        Ok(NotifyGroup { filter, events })
    }

    /// `SP one-or-more-mailbox`: one mailbox, or a parenthesized list.
    fn notify_mailboxes(&mut self) -> R<Vec<String>> {
        self.sp()?;
        if !self.eat(b'(') {
            return Ok(vec![self.mailbox()?]);
        }
        let mut v = vec![self.mailbox()?];
        while self.eat(b' ') {
            if v.len() >= MAX_NOTIFY_MAILBOXES {
                return Err("too many mailboxes in NOTIFY".into());
            }
            v.push(self.mailbox()?);
        }
        self.expect(b')')?;
        Ok(v)
    }

    /// One event; MessageNew may carry FETCH items, but only for the selected mailbox.
    fn notify_event(&mut self, selected: bool) -> R<NotifyEvent> {
        let name = self.atom()?;
        Ok(match name.to_ascii_uppercase().as_str() {
            "MESSAGENEW" => {
                let mut atts = Vec::new();
                if self.peek() == Some(b' ') && self.d.get(self.p + 1) == Some(&b'(') {
                    if !selected {
                        return Err("MessageNew FETCH items are for SELECTED only".into());
                    }
                    self.sp()?;
                    atts = self.fetch_atts()?;
                }
                NotifyEvent::MessageNew(atts)
            }
            "MESSAGEEXPUNGE" => NotifyEvent::MessageExpunge,
            "FLAGCHANGE" => NotifyEvent::FlagChange,
            "ANNOTATIONCHANGE" => NotifyEvent::AnnotationChange,
            "MAILBOXNAME" => NotifyEvent::MailboxName,
            "SUBSCRIPTIONCHANGE" => NotifyEvent::SubscriptionChange,
            "MAILBOXMETADATACHANGE" => NotifyEvent::MailboxMetadataChange,
            "SERVERMETADATACHANGE" => NotifyEvent::ServerMetadataChange,
            _ => NotifyEvent::Other(name),
        })
    }
}

/// The composition rules whose breach is a BAD (RFC 5465 §5, §6.1).
fn check_groups(groups: &[NotifyGroup]) -> R<()> {
    if groups.iter().filter(|g| g.filter.is_selected()).count() > 1 {
        return Err("only one SELECTED or SELECTED-DELAYED group".into());
    }
    for g in groups {
        let has = |f: fn(&NotifyEvent) -> bool| g.events.iter().any(f);
        let new = has(|e| matches!(e, NotifyEvent::MessageNew(_)));
        let expunge = has(|e| matches!(e, NotifyEvent::MessageExpunge));
        if new != expunge {
            return Err("MessageNew and MessageExpunge go together".into());
        }
        if !new && has(|e| matches!(e, NotifyEvent::FlagChange | NotifyEvent::AnnotationChange)) {
            return Err(
                "FlagChange and AnnotationChange need MessageNew and MessageExpunge".into(),
            );
        }
        if g.filter.is_selected()
            && has(|e| !e.is_message_event() && !matches!(e, NotifyEvent::Other(_)))
        {
            return Err("SELECTED groups take message events only".into());
        }
    }
    Ok(())
}
