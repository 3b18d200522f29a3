//! The DNS and authentication checks of a message received on port 25, run on the session's
//! event loop while nothing else waits for them: DNS block lists for the client address and
//! the message's link domains, reverse DNS (iprev), whether the HELO name resolves, and SPF
//! (RFC 7208), DKIM (RFC 6376), ARC (RFC 8617) and DMARC (RFC 7489) with mail-auth.
//!
//! Every lookup of a message starts at once and all of them share one deadline (the DNS
//! budget, `filter.spam.dns_budget_ms`): what has not answered by then is dropped and named
//! in the facts, so a dead or slow resolver costs a message at most the budget and never
//! stalls a core. Answers are cached across cores by their TTL ([`NetCache`]); each worker
//! has its own resolver on its own event loop ([`NetChecker`]).
//!
//! The result is [`NetFacts`] for the scanner (which turns them into symbols) and the
//! `Authentication-Results` field (RFC 8601) for the delivered message.

use mail_auth::common::headers::HeaderWriter;
use mail_auth::dmarc::Policy;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{
    AuthenticatedMessage, AuthenticationResults, DkimOutput, DkimResult, DmarcOutput, DmarcResult,
    IpLookupStrategy, IprevOutput, IprevResult, MX, MessageAuthenticator, Parameters, RecordSet,
    ResolverCache, SpfOutput, SpfResult, Txt,
};
use postcore_scanner::network::{
    AuthResult, DkimFact, DmarcFact, DmarcPolicy, DnsList, HeloFact, Listing, NetFacts, dnsbl_name,
    uribl_domain,
};
use postcore_scanner::spam::SpamPolicy;
use std::borrow::Borrow;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::time::Instant as Deadline;

/// Most links whose domains a message's URI block-list lookups cover.
pub const MAX_LINK_HOSTS: usize = 20;

/// Entries one cache keeps before it drops what has expired (and, if still full, all).
const CACHE_ENTRIES: usize = 50_000;

/// DNS answers kept until their TTL runs out, shared by every core.
pub struct TtlCache<K, V> {
    map: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K, V> Default for TtlCache<K, V> {
    fn default() -> Self {
        TtlCache {
            map: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq, V: Clone> ResolverCache<K, V> for TtlCache<K, V> {
    fn get<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let map = self.map.lock().ok()?;
        map.get(name)
            .filter(|(_, until)| *until > Instant::now())
            .map(|(v, _)| v.clone())
    }

    fn remove<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.lock().ok()?.remove(name).map(|(v, _)| v)
    }

    fn insert(&self, key: K, value: V, valid_until: Instant) {
        let Ok(mut map) = self.map.lock() else { return };
        if map.len() >= CACHE_ENTRIES {
            let now = Instant::now();
            map.retain(|_, (_, until)| *until > now);
            if map.len() >= CACHE_ENTRIES {
                map.clear();
            }
        }
        map.insert(key, (value, valid_until));
    }
}

/// The answers every core shares: TXT records (SPF, DKIM keys, DMARC), MX, A, AAAA, PTR.
#[derive(Default)]
pub struct NetCache {
    txt: TtlCache<Box<str>, Txt>,
    mx: TtlCache<Box<str>, RecordSet<MX>>,
    ipv4: TtlCache<Box<str>, RecordSet<Ipv4Addr>>,
    ipv6: TtlCache<Box<str>, RecordSet<Ipv6Addr>>,
    ptr: TtlCache<IpAddr, RecordSet<Box<str>>>,
}

/// mail-auth's parameters with the shared caches.
type Cached<'x, P> = Parameters<
    'x,
    P,
    TtlCache<Box<str>, Txt>,
    TtlCache<Box<str>, RecordSet<MX>>,
    TtlCache<Box<str>, RecordSet<Ipv4Addr>>,
    TtlCache<Box<str>, RecordSet<Ipv6Addr>>,
    TtlCache<IpAddr, RecordSet<Box<str>>>,
>;

/// What the checks are about: the session's facts and the message.
pub struct NetRequest<'a> {
    /// The client's address.
    pub ip: IpAddr,
    /// The HELO/EHLO name.
    pub helo: Option<&'a str>,
    /// The envelope sender (empty: the null sender).
    pub mail_from: &'a str,
    /// The message as received.
    pub message: &'a [u8],
    /// The hosts its links point to.
    pub link_hosts: &'a [String],
    /// Our host name: the authserv-id of the `Authentication-Results` field.
    pub hostname: &'a str,
    /// The client is in the trusted networks (`relay.trusted_networks`, loopback by
    /// default): the checks about the client (SPF, DMARC, iprev, HELO, DNSBL) are not made,
    /// as SpamAssassin skips its trusted relays and Rspamd its `local_addrs`; those about
    /// the content (DKIM, ARC, URIBL) are.
    pub trusted: bool,
}

/// What the checks found.
pub struct NetOutcome {
    /// The facts, for the scanner.
    pub facts: NetFacts,
    /// The `Authentication-Results:` field, CRLF-terminated.
    pub auth_results: String,
}

/// One worker's checker: its own resolver, the shared caches.
pub struct NetChecker {
    auth: MessageAuthenticator,
    cache: Arc<NetCache>,
}

/// The bookkeeping of one message's checks: the deadline, the checks it cut off, the
/// lookups made.
struct Budget {
    deadline: Deadline,
    late: RefCell<Vec<String>>,
    lookups: Cell<u32>,
}

impl Budget {
    /// Runs `f` until the deadline; `None` (and `name` noted) if it did not finish.
    async fn within<T>(&self, name: &str, f: impl Future<Output = T>) -> Option<T> {
        self.lookups.set(self.lookups.get() + 1);
        match tokio::time::timeout_at(self.deadline, f).await {
            Ok(v) => Some(v),
            Err(_) => {
                self.late.borrow_mut().push(name.to_string());
                None
            }
        }
    }
}

impl NetChecker {
    /// A checker asking `servers` (empty: the system's resolvers), sharing `cache`. Must be
    /// made on the event loop that will use it.
    pub fn new(servers: &[SocketAddr], cache: Arc<NetCache>) -> anyhow::Result<NetChecker> {
        let resolver = crate::outbound::route::resolver(servers)?;
        Ok(NetChecker {
            auth: MessageAuthenticator(resolver),
            cache,
        })
    }

    fn params<P>(&self, p: P) -> Cached<'_, P> {
        Parameters::new(p)
            .with_txt_cache(&self.cache.txt)
            .with_mx_cache(&self.cache.mx)
            .with_ipv4_cache(&self.cache.ipv4)
            .with_ipv6_cache(&self.cache.ipv6)
            .with_ptr_cache(&self.cache.ptr)
    }

    /// Runs every check `policy` asks for, all at once, within its DNS budget.
    pub async fn check(&self, req: &NetRequest<'_>, policy: &SpamPolicy) -> NetOutcome {
        let started = Instant::now();
        let budget = Budget {
            deadline: Deadline::now() + std::time::Duration::from_millis(policy.dns_budget_ms),
            late: RefCell::new(Vec::new()),
            lookups: Cell::new(0),
        };
        let ip = req.ip.to_canonical();
        let client_checks = policy.network_checks && !req.trusted;
        let auth = async {
            if policy.network_checks {
                Some(self.authenticate(req, ip, &budget).await)
            } else {
                None
            }
        };
        let iprev = async {
            if client_checks {
                budget
                    .within("iprev", self.auth.verify_iprev(self.params(ip)))
                    .await
            } else {
                None
            }
        };
        let helo = async {
            match req.helo.filter(|h| client_checks && is_name(h)) {
                Some(h) => budget.within("helo", self.helo(h)).await.flatten(),
                None => None,
            }
        };
        let client = if req.trusted {
            Vec::new()
        } else {
            vec![ip.to_string()]
        };
        let dnsbl = self.lists(&policy.dnsbl, &client, &budget, |_, zone| {
            Some(dnsbl_name(ip, zone))
        });
        let domains = uribl_domains(req.link_hosts);
        let uribl = self.lists(&policy.uribl, &domains, &budget, |item, zone| {
            Some(format!("{item}.{}.", zone.trim_end_matches('.')))
        });
        let (auth, iprev, helo, dnsbl, uribl) = tokio::join!(auth, iprev, helo, dnsbl, uribl);
        let mut facts = NetFacts {
            iprev: iprev.as_ref().map(iprev_fact),
            helo,
            dnsbl,
            uribl,
            ..NetFacts::default()
        };
        let mut header = AuthenticationResults::new(req.hostname);
        if let Some((auth_facts, h)) = auth {
            facts.spf = auth_facts.spf;
            facts.dkim = auth_facts.dkim;
            facts.dmarc = auth_facts.dmarc;
            facts.arc = auth_facts.arc;
            header = h;
        }
        if let Some(i) = &iprev {
            header = header.with_iprev_result(i, ip);
        }
        facts.timed_out = budget.late.into_inner();
        facts.lookups = budget.lookups.get();
        facts.millis = started.elapsed().as_millis() as u64;
        NetOutcome {
            facts,
            auth_results: header.to_header(),
        }
    }

    /// SPF, DKIM and ARC at once, then DMARC from their results.
    async fn authenticate<'r>(
        &self,
        req: &NetRequest<'r>,
        ip: IpAddr,
        budget: &Budget,
    ) -> (NetFacts, AuthenticationResults<'r>) {
        let msg = AuthenticatedMessage::parse(req.message);
        let helo = req.helo.unwrap_or("unknown");
        // RFC 7208 §2.3/§2.4: the MAIL FROM identity, or the HELO identity for the null
        // sender (the HELO check beside a MAIL FROM is optional; like Rspamd, one lookup less).
        let spf_params = if req.mail_from.is_empty() {
            SpfParameters::verify_ehlo(ip, helo, req.hostname)
        } else {
            SpfParameters::verify_mail_from(ip, helo, req.hostname, req.mail_from)
        };
        let spf = async {
            if req.trusted {
                None
            } else {
                budget
                    .within("spf", self.auth.verify_spf(self.params(spf_params)))
                    .await
            }
        };
        let dkim = async {
            match &msg {
                Some(m) => {
                    budget
                        .within("dkim", self.auth.verify_dkim(self.params(m)))
                        .await
                }
                None => None,
            }
        };
        let arc = async {
            match &msg {
                Some(m) if !m.as_headers.is_empty() => {
                    budget
                        .within("arc", self.auth.verify_arc(self.params(m)))
                        .await
                }
                _ => None,
            }
        };
        let (spf, dkim, arc) = tokio::join!(spf, dkim, arc);
        let from_domain = match req.mail_from.rsplit_once('@') {
            Some((_, d)) => d,
            None => helo,
        };
        // DMARC goes on what arrived in time: a check cut off counts as a temporary error.
        let spf_or_late = spf.clone().unwrap_or_else(|| {
            SpfOutput::new(from_domain.to_string()).with_result(SpfResult::TempError)
        });
        let dkim_or_none = dkim.clone().unwrap_or_default();
        let dmarc = match &msg {
            // RFC 7489 §6.6.2 needs the SPF result of the client, which a trusted one has not.
            Some(_) if req.trusted => None,
            Some(m) => {
                let p = DmarcParameters::new(m, &dkim_or_none, from_domain, &spf_or_late);
                budget
                    .within("dmarc", self.auth.verify_dmarc(self.params(p)))
                    .await
            }
            None => None,
        };
        let header_from = msg.as_ref().map_or("", |m| m.from());
        let mut header = AuthenticationResults::new(req.hostname);
        if let Some(d) = &dkim {
            header = header.with_dkim_results(d, header_from);
        }
        if let Some(s) = &spf {
            header = if req.mail_from.is_empty() {
                header.with_spf_ehlo_result(s, ip, helo)
            } else {
                header.with_spf_mailfrom_result(s, ip, req.mail_from, helo)
            };
        }
        if let Some(a) = &arc {
            header = header.with_arc_result(a, ip);
        }
        if let Some(d) = &dmarc {
            header = header.with_dmarc_result(d);
        }
        let facts = NetFacts {
            spf: spf
                .as_ref()
                .map(|s| (spf_result(s.result()), s.domain().to_string())),
            dkim: dkim.as_ref().map(|d| d.iter().map(dkim_fact).collect()),
            dmarc: dmarc.as_ref().and_then(dmarc_fact),
            arc: arc.as_ref().map(|a| dkim_result(a.result())),
            ..NetFacts::default()
        };
        (facts, header)
    }

    /// Whether `helo` has an address or an MX; `None` on a DNS error.
    async fn helo(&self, helo: &str) -> Option<HeloFact> {
        let c = &self.cache;
        let ips = self
            .auth
            .ip_lookup(
                helo,
                IpLookupStrategy::Ipv4thenIpv6,
                1,
                Some(&c.ipv4),
                Some(&c.ipv6),
            )
            .await;
        match ips {
            Ok(v) if !v.is_empty() => return Some(HeloFact::Resolves),
            Ok(_) => {}
            Err(e) if not_found(&e) => {}
            Err(_) => return None,
        }
        match self.auth.mx_lookup(helo, Some(&c.mx)).await {
            Ok(mx) if !mx.rrset.is_empty() => Some(HeloFact::Resolves),
            Ok(_) => Some(HeloFact::NoSuchHost),
            Err(e) if not_found(&e) => Some(HeloFact::NoSuchHost),
            Err(_) => None,
        }
    }

    /// Asks every list about every item (at once); the listings found.
    async fn lists(
        &self,
        lists: &[DnsList],
        items: &[String],
        budget: &Budget,
        name_of: impl Fn(&str, &str) -> Option<String>,
    ) -> Vec<Listing> {
        let mut queries = Vec::new();
        for list in lists {
            for item in items {
                if let Some(name) = name_of(item, &list.zone) {
                    queries.push((list, item, name));
                }
            }
        }
        let asks = queries.iter().map(|(list, item, name)| async move {
            let what = format!("{} {item}", list.zone);
            let codes = budget.within(&what, self.a_records(name)).await??;
            Some(Listing {
                zone: list.zone.clone(),
                item: (*item).clone(),
                codes,
            })
        });
        futures_util::future::join_all(asks)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// The A records of `name`; `None` when it has none (not listed) or the lookup failed.
    async fn a_records(&self, name: &str) -> Option<Vec<Ipv4Addr>> {
        match self.auth.ipv4_lookup(name, Some(&self.cache.ipv4)).await {
            Ok(r) if !r.rrset.is_empty() => Some(r.rrset.to_vec()),
            Ok(_) => None,
            Err(e) => {
                if !not_found(&e) {
                    tracing::debug!("DNS list lookup {name}: {e}");
                }
                None
            }
        }
    }
}

/// The registered domains of the link hosts, each once.
fn uribl_domains(hosts: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for d in hosts.iter().filter_map(|h| uribl_domain(h)) {
        if !out.contains(&d) {
            out.push(d);
        }
    }
    out
}

/// A HELO argument that is a domain name (not an address literal, not a bare word).
fn is_name(helo: &str) -> bool {
    !helo.starts_with('[') && helo.parse::<IpAddr>().is_err() && helo.contains('.')
}

fn not_found(e: &mail_auth::Error) -> bool {
    matches!(
        e,
        mail_auth::Error::Dns(mail_auth::DnsError::RecordNotFound(_))
    )
}

fn spf_result(r: SpfResult) -> AuthResult {
    match r {
        SpfResult::Pass => AuthResult::Pass,
        SpfResult::Fail => AuthResult::Fail,
        SpfResult::SoftFail => AuthResult::SoftFail,
        SpfResult::Neutral => AuthResult::Neutral,
        SpfResult::TempError => AuthResult::TempError,
        SpfResult::PermError => AuthResult::PermError,
        SpfResult::None => AuthResult::None,
    }
}

fn dkim_result(r: &DkimResult) -> AuthResult {
    match r {
        DkimResult::Pass => AuthResult::Pass,
        DkimResult::Neutral(_) => AuthResult::Neutral,
        DkimResult::Fail(_) => AuthResult::Fail,
        DkimResult::PermError(_) => AuthResult::PermError,
        DkimResult::TempError(_) => AuthResult::TempError,
        DkimResult::None => AuthResult::None,
    }
}

fn dkim_fact(o: &DkimOutput<'_>) -> DkimFact {
    DkimFact {
        result: dkim_result(o.result()),
        domain: o.signature().map(|s| s.d.clone()).unwrap_or_default(),
    }
}

fn dmarc_fact(o: &DmarcOutput) -> Option<DmarcFact> {
    if o.domain().is_empty() {
        return None;
    }
    let result = match o.result() {
        DmarcResult::Pass => AuthResult::Pass,
        DmarcResult::Fail(_) => AuthResult::Fail,
        DmarcResult::TempError(_) => AuthResult::TempError,
        DmarcResult::PermError(_) => AuthResult::PermError,
        DmarcResult::None => AuthResult::None,
    };
    let policy = match o.policy() {
        Policy::Reject => DmarcPolicy::Reject,
        Policy::Quarantine => DmarcPolicy::Quarantine,
        Policy::None | Policy::Unspecified => DmarcPolicy::None,
    };
    Some(DmarcFact {
        result,
        policy,
        domain: o.domain().to_string(),
    })
}

fn iprev_fact(o: &IprevOutput) -> (AuthResult, Option<String>) {
    let result = match &o.result {
        IprevResult::Pass => AuthResult::Pass,
        IprevResult::Fail(_) => AuthResult::Fail,
        IprevResult::TempError(_) => AuthResult::TempError,
        IprevResult::PermError(_) => AuthResult::PermError,
        IprevResult::None => AuthResult::None,
    };
    let ptr = o
        .ptr
        .as_ref()
        .and_then(|p| p.first())
        .map(|p| p.trim_end_matches('.').to_string());
    (result, ptr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helo_names_and_link_domains() {
        assert!(is_name("mail.example.test"));
        assert!(!is_name("[192.0.2.1]"));
        assert!(!is_name("192.0.2.1"));
        assert!(!is_name("localhost"));
        let hosts = ["www.a.test", "cdn.a.test", "192.0.2.1", "b.co.uk"].map(String::from);
        assert_eq!(uribl_domains(&hosts), vec!["a.test", "b.co.uk"]);
    }

    #[test]
    fn the_cache_expires_by_ttl_and_stays_bounded() {
        let c: TtlCache<Box<str>, u32> = TtlCache::default();
        let later = Instant::now() + std::time::Duration::from_secs(60);
        c.insert("a".into(), 1, later);
        c.insert("old".into(), 2, Instant::now());
        assert_eq!(c.get("a"), Some(1));
        assert_eq!(c.get("old"), None);
        for i in 0..CACHE_ENTRIES + 10 {
            c.insert(i.to_string().into_boxed_str(), 0, later);
        }
        assert!(c.map.lock().unwrap().len() <= CACHE_ENTRIES);
    }
}
