//! THREAD (RFC 5256 §BASE.6.4.THREAD): the ORDEREDSUBJECT and REFERENCES algorithms, and
//! REFS (draft-ietf-morg-inthread §3, as Dovecot offers it: REFERENCES without the subject
//! merge, threads ordered by their newest message), over header values the caller supplies,
//! and the response's thread-list syntax (§4). No I/O: the session collects the fields.

use super::sort::base_subject_and_reply;
use std::collections::HashMap;

/// A threading algorithm (the THREAD command's first argument).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// RFC 5256: threads by base subject, each a parent with its siblings.
    OrderedSubject,
    /// RFC 5256: Message-ID / References / In-Reply-To links, then merged by subject.
    References,
    /// draft-ietf-morg-inthread: REFERENCES without the subject merge, newest thread last.
    Refs,
}

impl Algorithm {
    /// The algorithm named `name` (case-insensitive), if supported.
    pub fn parse(name: &str) -> Option<Algorithm> {
        match name.to_ascii_uppercase().as_str() {
            "ORDEREDSUBJECT" => Some(Algorithm::OrderedSubject),
            "REFERENCES" => Some(Algorithm::References),
            "REFS" => Some(Algorithm::Refs),
            _ => None,
        }
    }
}

/// The names advertised as `THREAD=…` capabilities.
pub const ALGORITHMS: &[&str] = &["ORDEREDSUBJECT", "REFERENCES", "REFS"];

/// One message to thread, in mailbox order (the order breaks ties, RFC 5256 §BASE.6.4.THREAD),
/// by the keys [`Keys::from_fields`] derives from its header (which a caller may keep).
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// What the response names it by: sequence number or UID.
    pub id: u32,
    /// The sent date (RFC 5256 §2.2: the Date field in UTC, else the internal date).
    pub sent: i64,
    /// The threading keys.
    pub keys: &'a Keys,
}

/// What threading needs of a message's header, parsed once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keys {
    /// The base subject (RFC 5256 §2.1).
    pub subject: String,
    /// Whether the subject was a reply or forward.
    pub reply: bool,
    /// Its own Message-ID, when well-formed.
    pub message_id: Option<String>,
    /// The ids it refers to, oldest first: References, or else In-Reply-To's first id.
    pub references: Vec<String>,
}

impl Keys {
    /// The keys from the raw Subject, Message-ID, References and In-Reply-To values.
    pub fn from_fields(
        subject: &[u8],
        message_id: Option<&[u8]>,
        references: Option<&[u8]>,
        in_reply_to: Option<&[u8]>,
    ) -> Keys {
        let (subject, reply) = base_subject_and_reply(subject);
        let mut refs = references.map(msg_ids).unwrap_or_default();
        if refs.is_empty() {
            refs = in_reply_to
                .map(msg_ids)
                .unwrap_or_default()
                .into_iter()
                .take(1)
                .collect();
        }
        Keys {
            subject,
            reply,
            message_id: message_id.and_then(|v| msg_ids(v).into_iter().next()),
            references: refs,
        }
    }
}

/// A node of a thread tree: a message, or a placeholder for one that is not there (only at
/// the top of a thread, RFC 5256 step 3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The message's id, `None` for a placeholder.
    pub id: Option<u32>,
    /// Replies, in order.
    pub children: Vec<Node>,
}

/// The threads of `msgs` by `algorithm`, in response order.
pub fn thread(algorithm: Algorithm, msgs: &[Message]) -> Vec<Node> {
    match algorithm {
        Algorithm::OrderedSubject => ordered_subject(msgs),
        Algorithm::References => Forest::build(msgs).finish(msgs, true),
        Algorithm::Refs => Forest::build(msgs).finish(msgs, false),
    }
}

/// The `* THREAD` response's data (RFC 5256 §4 `thread-list`), without the leading
/// `THREAD`: `(1 2 (3)(4))(5)`.
pub fn format(threads: &[Node]) -> String {
    let mut out = String::new();
    for t in threads {
        out.push('(');
        members(t, &mut out);
        out.push(')');
    }
    out
}

/// `thread-members [SP thread-nested]` for a chain starting at `n`, or `thread-nested` for a
/// placeholder.
fn members(n: &Node, out: &mut String) {
    let mut at = n;
    let mut first = true;
    loop {
        if let Some(id) = at.id {
            if !first {
                out.push(' ');
            }
            out.push_str(&id.to_string());
            first = false;
        }
        match at.children.as_slice() {
            [only] if at.id.is_some() => at = only,
            kids => {
                if !kids.is_empty() && !first {
                    out.push(' ');
                }
                for k in kids {
                    out.push('(');
                    members(k, out);
                    out.push(')');
                }
                return;
            }
        }
    }
}

/// ORDEREDSUBJECT: sorted by (base subject, sent date); each run of one subject is a thread
/// whose first message is the parent of the others; threads ordered by their first message.
fn ordered_subject(msgs: &[Message]) -> Vec<Node> {
    let mut keyed: Vec<(&str, i64, usize)> = msgs
        .iter()
        .enumerate()
        .map(|(i, m)| (m.keys.subject.as_str(), m.sent, i))
        .collect();
    keyed.sort_unstable();
    let mut threads: Vec<(i64, usize, Node)> = Vec::new();
    let mut at = 0;
    while at < keyed.len() {
        let subject = keyed[at].0;
        let end = keyed[at..]
            .iter()
            .position(|k| k.0 != subject)
            .map_or(keyed.len(), |n| at + n);
        let (_, sent, first) = keyed[at];
        let children = keyed[at + 1..end]
            .iter()
            .map(|k| Node {
                id: Some(msgs[k.2].id),
                children: Vec::new(),
            })
            .collect();
        threads.push((
            sent,
            first,
            Node {
                id: Some(msgs[first].id),
                children,
            },
        ));
        at = end;
    }
    threads.sort_by_key(|t| (t.0, t.1));
    threads.into_iter().map(|t| t.2).collect()
}

/// The message ids in a field value (`<…>`, RFC 5322 §3.6.4), without the brackets; only
/// well-formed ones (`left@right`, no spaces).
fn msg_ids(v: &[u8]) -> Vec<String> {
    let s = String::from_utf8_lossy(v);
    let mut out = Vec::new();
    let mut rest = s.as_ref();
    while let Some(open) = rest.find('<') {
        let Some(close) = rest[open..].find('>') else {
            break;
        };
        let id: String = rest[open + 1..open + close]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if let Some((l, r)) = id.split_once('@')
            && !l.is_empty()
            && !r.is_empty()
            && !id.contains('<')
        {
            out.push(id);
        }
        rest = &rest[open + close + 1..];
    }
    out
}

/// The deepest a thread grows; deeper replies start threads of their own.
pub const MAX_DEPTH: usize = 1000;

/// One container of the REFERENCES algorithm: a message (index into the input) or a
/// placeholder for a referenced id.
#[derive(Default)]
struct Container {
    msg: Option<usize>,
    parent: Option<usize>,
    children: Vec<usize>,
    /// Took the place of a placeholder at the top (step 3): REFS still orders it as one.
    promoted: bool,
}

/// The containers and their links.
struct Forest {
    c: Vec<Container>,
}

impl Forest {
    /// Step 1: containers by message id, linked by References (or In-Reply-To).
    fn build(msgs: &[Message]) -> Forest {
        let mut f = Forest {
            c: Vec::with_capacity(msgs.len() * 2),
        };
        let mut by_id: HashMap<&str, usize> = HashMap::with_capacity(msgs.len() * 2);
        for (i, m) in msgs.iter().enumerate() {
            // A message without a valid Message-ID, or with one already seen on a message,
            // is threaded as if its id were unique (§BASE.6.4.THREAD step 1).
            let me = match m.keys.message_id.as_deref() {
                Some(id) => match by_id.get(id) {
                    Some(&c) if f.c[c].msg.is_none() => {
                        f.c[c].msg = Some(i);
                        c
                    }
                    Some(_) => f.new_container(Some(i)),
                    None => {
                        let c = f.new_container(Some(i));
                        by_id.insert(id, c);
                        c
                    }
                },
                None => f.new_container(Some(i)),
            };
            // Step 1A: the References chain (In-Reply-To's first id when there is none),
            // linked parent → child where neither link exists nor a loop would follow.
            let chain: Vec<usize> = m
                .keys
                .references
                .iter()
                .map(|id| {
                    *by_id
                        .entry(id.as_str())
                        .or_insert_with(|| f.new_container(None))
                })
                .collect();
            for w in chain.windows(2) {
                if f.c[w[1]].parent.is_none() && f.may_link(w[0], w[1]) {
                    f.link(w[0], w[1]);
                }
            }
            // Step 1B: the message's parent is the last reference (or none), replacing the
            // parent it had (from another message's references, or from its own chain
            // above) — also when that link would close a loop, as Dovecot does.
            f.unlink(me);
            if let Some(&p) = chain.last()
                && f.may_link(p, me)
            {
                f.link(p, me);
            }
        }
        f
    }

    fn new_container(&mut self, msg: Option<usize>) -> usize {
        self.c.push(Container {
            msg,
            ..Default::default()
        });
        self.c.len() - 1
    }

    /// Whether `child` may hang under `parent` without a loop (`child` not `parent` nor one
    /// of its ancestors) and without `parent` being deeper than [`MAX_DEPTH`].
    fn may_link(&self, parent: usize, child: usize) -> bool {
        let mut at = Some(parent);
        let mut steps = 0;
        while let Some(a) = at {
            steps += 1;
            if a == child || steps >= MAX_DEPTH {
                return false;
            }
            at = self.c[a].parent;
        }
        true
    }

    /// Cuts every container whose depth is a multiple of [`MAX_DEPTH`] from its parent, so
    /// no tree is deeper than that (the later steps recurse; References fields are written
    /// by senders, and a chain of thousands of messages must not exhaust the stack).
    fn cap_depth(&mut self) {
        const UNKNOWN: usize = usize::MAX;
        let mut depth = vec![UNKNOWN; self.c.len()];
        let mut path = Vec::new();
        for i in 0..self.c.len() {
            path.clear();
            let mut at = i;
            let mut base = None;
            loop {
                if depth[at] != UNKNOWN {
                    base = Some(depth[at]);
                    break;
                }
                path.push(at);
                match self.c[at].parent {
                    Some(p) => at = p,
                    None => break,
                }
            }
            for &c in path.iter().rev() {
                let d = base.map_or(0, |b| b + 1);
                depth[c] = d;
                base = Some(d);
            }
        }
        for (c, d) in depth.into_iter().enumerate() {
            if d > 0 && d % MAX_DEPTH == 0 {
                self.unlink(c);
            }
        }
    }

    fn link(&mut self, parent: usize, child: usize) {
        self.c[child].parent = Some(parent);
        self.c[parent].children.push(child);
    }

    fn unlink(&mut self, child: usize) {
        if let Some(p) = self.c[child].parent.take() {
            self.c[p].children.retain(|&k| k != child);
        }
    }

    /// Steps 2 to 6: the root set, placeholders pruned, (for REFERENCES) merged by subject,
    /// every level sorted; as nodes.
    fn finish(mut self, msgs: &[Message], merge: bool) -> Vec<Node> {
        self.cap_depth();
        let roots: Vec<usize> = (0..self.c.len())
            .filter(|&i| self.c[i].parent.is_none())
            .collect();
        let roots = self.prune(roots, true);
        let mut tree = Tree {
            nodes: roots.iter().map(|&r| self.to_tree(r)).collect(),
        };
        if merge {
            tree.sort_top(msgs);
            tree.merge_subjects(msgs);
            tree.sort_all(msgs);
        } else {
            tree.sort_newest_last(msgs);
        }
        tree.nodes.into_iter().map(|n| n.into_node(msgs)).collect()
    }

    /// Step 3: placeholders without children go; those with children give way to them, except
    /// at the top where more than one child would become separate threads.
    fn prune(&mut self, list: Vec<usize>, top: bool) -> Vec<usize> {
        let mut out = Vec::with_capacity(list.len());
        for c in list {
            let kids = std::mem::take(&mut self.c[c].children);
            let kids = self.prune(kids, false);
            if self.c[c].msg.is_none() && (kids.len() <= 1 || !top) {
                if top && let Some(&k) = kids.first() {
                    self.c[k].promoted = true;
                }
                out.extend(kids);
                continue;
            }
            self.c[c].children = kids;
            out.push(c);
        }
        out
    }

    fn to_tree(&self, c: usize) -> TNode {
        TNode {
            msg: self.c[c].msg,
            promoted: self.c[c].promoted,
            children: self.c[c]
                .children
                .iter()
                .map(|&k| self.to_tree(k))
                .collect(),
        }
    }
}

/// The pruned forest, owned, for sorting and merging.
struct Tree {
    nodes: Vec<TNode>,
}

struct TNode {
    msg: Option<usize>,
    /// A message that replaced a placeholder at the top.
    promoted: bool,
    children: Vec<TNode>,
}

impl TNode {
    /// The message that stands for this node in comparisons: itself, or a placeholder's
    /// first child (its children sorted first).
    fn rep(&self) -> Option<usize> {
        match self.msg {
            Some(m) => Some(m),
            None => self.children.first().and_then(TNode::rep),
        }
    }

    /// Sort key: sent date, then mailbox order.
    fn key(&self, msgs: &[Message]) -> (i64, usize) {
        self.rep().map_or((i64::MIN, 0), |m| (msgs[m].sent, m))
    }

    /// The newest sent date of the thread below and including this node.
    fn newest(&self, msgs: &[Message]) -> i64 {
        let own = self.msg.map_or(i64::MIN, |m| msgs[m].sent);
        self.children
            .iter()
            .map(|k| k.newest(msgs))
            .fold(own, i64::max)
    }

    /// REFS' order of threads: the newest sent date, then the thread's first message in
    /// mailbox order, a thread that starts at a missing message first (as Dovecot does).
    fn refs_key(&self, msgs: &[Message]) -> (i64, usize) {
        let first = match self.msg {
            Some(m) if !self.promoted => m + 1,
            _ => 0,
        };
        (self.newest(msgs), first)
    }

    fn sort(&mut self, msgs: &[Message]) {
        for k in &mut self.children {
            k.sort(msgs);
        }
        self.children.sort_by_key(|k| k.key(msgs));
    }

    /// The base subject of the message that stands for this node, and whether it was a
    /// reply or forward.
    fn subject<'s>(&self, msgs: &[Message<'s>]) -> (&'s str, bool) {
        self.rep().map_or(("", false), |m| {
            (msgs[m].keys.subject.as_str(), msgs[m].keys.reply)
        })
    }

    fn into_node(self, msgs: &[Message]) -> Node {
        Node {
            id: self.msg.map(|m| msgs[m].id),
            children: self
                .children
                .into_iter()
                .map(|k| k.into_node(msgs))
                .collect(),
        }
    }
}

impl Tree {
    /// Step 4: the threads by sent date (a placeholder by its first child, its children
    /// sorted first).
    fn sort_top(&mut self, msgs: &[Message]) {
        for n in &mut self.nodes {
            if n.msg.is_none() {
                n.children.sort_by_key(|k| k.key(msgs));
            }
        }
        self.nodes.sort_by_key(|n| n.key(msgs));
    }

    /// Step 6: every set of siblings by sent date, deepest first.
    fn sort_all(&mut self, msgs: &[Message]) {
        for n in &mut self.nodes {
            n.sort(msgs);
        }
        self.nodes.sort_by_key(|n| n.key(msgs));
    }

    /// REFS: every thread's siblings by sent date, and the threads by their newest message
    /// — a stable sort over the roots in the order their ids first appeared, which decides
    /// between threads that start at missing messages (as Dovecot's does).
    fn sort_newest_last(&mut self, msgs: &[Message]) {
        for n in &mut self.nodes {
            n.sort(msgs);
        }
        self.nodes.sort_by_key(|n| n.refs_key(msgs));
    }

    /// Step 5: threads with the same base subject gathered (A–C).
    fn merge_subjects(&mut self, msgs: &[Message]) {
        let subjects = msgs;
        // (B) One thread per subject: a placeholder before a message, an original before a
        // reply; otherwise the first.
        let mut table: HashMap<&str, usize> = HashMap::new();
        for (i, n) in self.nodes.iter().enumerate() {
            let (subject, reply) = n.subject(subjects);
            if subject.is_empty() {
                continue;
            }
            match table.get(&subject) {
                None => {
                    table.insert(subject, i);
                }
                Some(&t) => {
                    let old = &self.nodes[t];
                    if old.msg.is_some() && (n.msg.is_none() || (old.subject(subjects).1 && !reply))
                    {
                        table.insert(subject, i);
                    }
                }
            }
        }
        // (C) The others join the table's thread. Nodes move by index; removed ones are
        // taken out at the end.
        let mut slots: Vec<Option<TNode>> = std::mem::take(&mut self.nodes)
            .into_iter()
            .map(Some)
            .collect();
        for i in 0..slots.len() {
            let Some(node) = slots[i].as_ref() else {
                continue;
            };
            let (subject, reply) = node.subject(subjects);
            let Some(&t) = table.get(subject) else {
                continue;
            };
            if t == i || subject.is_empty() {
                continue;
            }
            let Some(cur) = slots[i].take() else { continue };
            let Some(target) = slots[t].as_mut() else {
                slots[i] = Some(cur);
                continue;
            };
            match (target.msg.is_none(), cur.msg.is_none()) {
                // Both placeholders: one set of children.
                (true, true) => target.children.extend(cur.children),
                // Into the placeholder, beside its children.
                (true, false) => target.children.push(cur),
                // A reply under the original.
                (false, false) if reply && !target.subject(subjects).1 => target.children.push(cur),
                // Otherwise a new placeholder holds both.
                _ => {
                    let old = std::mem::replace(
                        target,
                        TNode {
                            msg: None,
                            promoted: false,
                            children: Vec::new(),
                        },
                    );
                    target.children = vec![old, cur];
                }
            }
        }
        self.nodes = slots.into_iter().flatten().collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test message: its keys owned.
    struct Tm {
        id: u32,
        sent: i64,
        keys: Keys,
    }

    fn m(id: u32, sent: i64, subject: &str, mid: &str, refs: &str) -> Tm {
        let mid = format!("<{mid}>");
        let refs: Vec<String> = refs.split(' ').map(|r| format!("<{r}>")).collect();
        let refs = refs.join(" ");
        Tm {
            id,
            sent,
            keys: Keys::from_fields(
                subject.as_bytes(),
                (mid != "<>").then_some(mid.as_bytes()),
                (refs != "<>").then_some(refs.as_bytes()),
                None,
            ),
        }
    }

    fn view(ms: &[Tm]) -> Vec<Message<'_>> {
        ms.iter()
            .map(|m| Message {
                id: m.id,
                sent: m.sent,
                keys: &m.keys,
            })
            .collect()
    }

    fn t(alg: Algorithm, msgs: &[Tm]) -> String {
        format(&thread(alg, &view(msgs)))
    }

    /// RFC 5256 §4's syntax: a chain is a run of numbers, siblings are nested lists, a
    /// placeholder's children are nested lists with no number before them.
    #[test]
    fn thread_list_syntax() {
        let leaf = |id| Node {
            id: Some(id),
            children: vec![],
        };
        let threads = vec![
            leaf(2),
            Node {
                id: Some(3),
                children: vec![Node {
                    id: Some(6),
                    children: vec![
                        Node {
                            id: Some(4),
                            children: vec![leaf(23)],
                        },
                        Node {
                            id: Some(44),
                            children: vec![Node {
                                id: Some(7),
                                children: vec![leaf(96)],
                            }],
                        },
                    ],
                }],
            },
            Node {
                id: None,
                children: vec![leaf(8), leaf(9)],
            },
        ];
        // RFC 5256 §BASE.6.4.THREAD's example, and a placeholder thread.
        assert_eq!(format(&threads), "(2)(3 6 (4 23)(44 7 96))((8)(9))");
    }

    #[test]
    fn references_links_replies_and_orders_by_date() {
        let msgs = [
            m(1, 100, "Hello", "a@x", ""),
            m(2, 300, "Other", "b@x", ""),
            m(3, 200, "Re: Hello", "c@x", "a@x"),
            m(4, 400, "Re: Hello", "d@x", "a@x c@x"),
            m(5, 150, "Re: Hello", "e@x", "a@x"),
        ];
        assert_eq!(t(Algorithm::References, &msgs), "(1 (5)(3 4))(2)");
        // REFS: the same links, the thread with the newest message last.
        assert_eq!(t(Algorithm::Refs, &msgs), "(2)(1 (5)(3 4))");
    }

    #[test]
    fn missing_parents_become_placeholders_or_give_way() {
        // Two replies to a message that is not here: one thread under a placeholder.
        let msgs = [
            m(1, 100, "Re: gone", "b@x", "a@x"),
            m(2, 200, "Re: gone", "c@x", "a@x"),
        ];
        assert_eq!(t(Algorithm::References, &msgs), "((1)(2))");
        // One reply to a missing message: it is the thread.
        let msgs = [m(1, 100, "Re: gone", "b@x", "a@x")];
        assert_eq!(t(Algorithm::References, &msgs), "(1)");
        // A missing message in the middle of a chain: its child moves up.
        let msgs = [
            m(1, 100, "x", "a@x", ""),
            m(2, 300, "Re: x", "c@x", "a@x b@x"),
        ];
        assert_eq!(t(Algorithm::References, &msgs), "(1 2)");
    }

    #[test]
    fn loops_duplicates_and_bad_ids_do_not_break_threads() {
        let msgs = [
            m(1, 100, "a", "a@x", "b@x"),
            m(2, 200, "b", "b@x", "a@x"),
            m(3, 300, "c", "a@x", ""),
            m(4, 400, "d", "", "a@x"),
            m(5, 500, "e", "not-an-id", ""),
        ];
        let out = t(Algorithm::References, &msgs);
        for id in 1..=5 {
            assert_eq!(
                out.matches(&id.to_string()).count(),
                1,
                "{id} once in {out}"
            );
        }
        // 1 replies to 2; 2's reference to 1 would close a loop and is dropped; 3 repeats
        // 1's id and stands alone; 4 replies to the first holder of that id.
        assert_eq!(out, "(2 1 4)(3)(5)");
    }

    #[test]
    fn references_merges_by_subject() {
        // No links: the reply joins the original by subject (step 5.C), a second original
        // with the same subject makes a placeholder of both.
        let msgs = [
            m(1, 100, "Plans", "a@x", ""),
            m(2, 200, "Re: Plans", "b@x", ""),
            m(3, 300, "Lunch", "c@x", ""),
            m(4, 400, "Lunch", "d@x", ""),
        ];
        assert_eq!(t(Algorithm::References, &msgs), "(1 2)((3)(4))");
        assert_eq!(t(Algorithm::Refs, &msgs), "(1)(2)(3)(4)");
    }

    #[test]
    fn ordered_subject_groups_by_base_subject() {
        let msgs = [
            m(1, 300, "Re: b", "", ""),
            m(2, 100, "a", "", ""),
            m(3, 200, "b", "", ""),
            m(4, 150, "[fwd: a]", "", ""),
            m(5, 400, "A (fwd)", "", ""),
        ];
        assert_eq!(t(Algorithm::OrderedSubject, &msgs), "(2 (4)(5))(3 1)");
    }

    #[test]
    fn a_very_long_chain_is_cut_not_a_stack_overflow() {
        let n = 5000u32;
        let msgs: Vec<Tm> = (1..=n)
            .map(|i| {
                let refs = if i > 1 {
                    format!("m{}@x", i - 1)
                } else {
                    String::new()
                };
                m(i, i64::from(i), "chain", &format!("m{i}@x"), &refs)
            })
            .collect();
        for alg in [Algorithm::References, Algorithm::Refs] {
            let listed = t(alg, &msgs);
            let ids = listed
                .split(|c: char| !c.is_ascii_digit())
                .filter(|w| !w.is_empty())
                .count();
            assert_eq!(ids, n as usize, "every message once");
        }
        let refs = thread(Algorithm::Refs, &view(&msgs));
        assert_eq!(refs.len(), n as usize / MAX_DEPTH, "cut every {MAX_DEPTH}");
    }

    #[test]
    fn in_reply_to_counts_when_there_are_no_references() {
        let r = Tm {
            id: 2,
            sent: 200,
            keys: Keys::from_fields(
                b"Re: q",
                Some(b"<b@x>"),
                None,
                Some(b"<a@x> (sent by alice)"),
            ),
        };
        let msgs = [m(1, 100, "q", "a@x", ""), r];
        assert_eq!(t(Algorithm::Refs, &msgs), "(1 2)");
    }
}
