//! Where a remote recipient's mail goes: relay domain host, relay host by sender, smarthost,
//! or the recipient domain's MX hosts (RFC 5321 §5.1: MX in preference order, the domain's
//! own A/AAAA when it has no MX, RFC 7505 null MX refuses mail).

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use postcore_storage::directory::{Directory, DomainKind, RelayHost, TlsMode};
use std::net::{IpAddr, SocketAddr};

/// TLS policy for one route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsPolicy {
    /// STARTTLS when offered (RFC 7435 opportunistic), plain otherwise.
    Opportunistic,
    /// STARTTLS or fail.
    Required,
    /// TLS from the first byte.
    Implicit,
    /// Never TLS.
    Never,
}

/// A destination that a connection can serve several messages for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Route {
    /// A configured host (relay domain, relay host by sender, smarthost).
    Host {
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
        /// AUTH credentials.
        auth: Option<(String, String)>,
        /// TLS policy.
        tls: TlsPolicy,
    },
    /// The recipient domain's MX hosts.
    Mx(String),
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Route::Host { host, port, .. } => write!(f, "[{host}]:{port}"),
            Route::Mx(d) => write!(f, "MX of {d}"),
        }
    }
}

fn host_route(h: &RelayHost) -> Route {
    let auth = match (&h.username, &h.password) {
        (Some(u), Some(p)) => Some((u.clone(), p.clone())),
        _ => None,
    };
    let tls = match h.tls {
        TlsMode::None => TlsPolicy::Never,
        TlsMode::Starttls => TlsPolicy::Required,
        TlsMode::Implicit => TlsPolicy::Implicit,
    };
    Route::Host {
        host: h.host.clone(),
        port: h.port,
        auth,
        tls,
    }
}

/// Chooses the route for `rcpt` (an address) from envelope sender `sender`.
pub fn route_for(dir: &Directory, sender: &str, rcpt: &str) -> Route {
    let domain = rcpt
        .rsplit_once('@')
        .map(|(_, d)| d.to_lowercase())
        .unwrap_or_default();
    if let Some(d) = dir.domains.get(&domain)
        && d.kind == DomainKind::Relay
        && let Some(h) = &d.relay_host
    {
        let (host, port) = match h.rsplit_once(':') {
            Some((h, p)) if p.parse::<u16>().is_ok() => (h.to_string(), p.parse().unwrap_or(25)),
            _ => (h.clone(), 25),
        };
        return Route::Host {
            host,
            port,
            auth: None,
            tls: TlsPolicy::Opportunistic,
        };
    }
    if let Some(h) = dir.settings.outbound.route_for_sender(sender) {
        return host_route(h);
    }
    Route::Mx(domain)
}

/// A failure to find where to connect.
#[derive(Debug)]
pub enum ResolveError {
    /// Retry later (DNS timeout, SERVFAIL…).
    Temporary(String),
    /// Never deliverable (no such domain, null MX).
    Permanent(String),
}

/// The DNS resolver for outbound delivery and the network checks.
pub fn resolver(servers: &[SocketAddr]) -> anyhow::Result<TokioResolver> {
    let provider = TokioRuntimeProvider::default();
    if servers.is_empty() {
        return TokioResolver::builder(provider)
            .map_err(|e| anyhow::anyhow!("system DNS configuration: {e}"))?
            .build()
            .map_err(|e| anyhow::anyhow!("DNS resolver: {e}"));
    }
    let ns = servers
        .iter()
        .map(|s| {
            let mut udp = ConnectionConfig::udp();
            udp.port = s.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = s.port();
            NameServerConfig::new(s.ip(), true, vec![udp, tcp])
        })
        .collect();
    // Configured servers are the whole truth: the hosts file is not consulted.
    let mut builder =
        TokioResolver::builder_with_config(ResolverConfig::from_name_servers(ns), provider);
    builder.options_mut().use_hosts_file = ResolveHosts::Never;
    builder
        .build()
        .map_err(|e| anyhow::anyhow!("DNS resolver: {e}"))
}

async fn addresses(
    r: &TokioResolver,
    host: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, ResolveError> {
    if let Ok(ip) = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let fqdn = if host.ends_with('.') {
        host.to_string()
    } else {
        format!("{host}.")
    };
    match r.lookup_ip(fqdn.as_str()).await {
        Ok(l) => Ok(l.iter().map(|ip| SocketAddr::new(ip, port)).collect()),
        Err(e) if e.is_nx_domain() || e.is_no_records_found() => {
            Err(ResolveError::Permanent(format!("host {host} not found")))
        }
        Err(e) => Err(ResolveError::Temporary(format!(
            "DNS lookup of {host}: {e}"
        ))),
    }
}

/// The addresses to try for a route, best first, each with the host name for TLS SNI.
pub async fn targets(
    r: &TokioResolver,
    route: &Route,
    mx_port: u16,
) -> Result<Vec<(SocketAddr, String)>, ResolveError> {
    match route {
        Route::Host { host, port, .. } => Ok(addresses(r, host, *port)
            .await?
            .into_iter()
            .map(|a| (a, host.clone()))
            .collect()),
        Route::Mx(domain) => {
            let fqdn = format!("{}.", domain.trim_end_matches('.'));
            let mut mx: Vec<(u16, String)> = match r.mx_lookup(fqdn.as_str()).await {
                Ok(l) => l
                    .answers()
                    .iter()
                    .filter_map(|rec| match &rec.data {
                        RData::MX(m) => Some((
                            m.preference,
                            m.exchange.to_utf8().trim_end_matches('.').to_string(),
                        )),
                        _ => None,
                    })
                    .collect(),
                Err(e) if e.is_nx_domain() => {
                    return Err(ResolveError::Permanent(format!(
                        "domain {domain} not found"
                    )));
                }
                Err(e) if e.is_no_records_found() => Vec::new(),
                Err(e) => {
                    return Err(ResolveError::Temporary(format!(
                        "MX lookup for {domain}: {e}"
                    )));
                }
            };
            if mx.len() == 1 && mx[0].1.is_empty() {
                // RFC 7505 null MX: the domain accepts no mail.
                return Err(ResolveError::Permanent(format!(
                    "domain {domain} does not accept mail (null MX)"
                )));
            }
            if mx.is_empty() {
                mx.push((0, domain.clone()));
            }
            mx.sort_by_key(|(p, _)| *p);
            let mut out = Vec::new();
            let mut last_err = None;
            for (_, host) in mx {
                match addresses(r, &host, mx_port).await {
                    Ok(a) => out.extend(a.into_iter().map(|a| (a, host.clone()))),
                    Err(e) => last_err = Some(e),
                }
            }
            match (out.is_empty(), last_err) {
                (true, Some(e)) => Err(e),
                (true, None) => Err(ResolveError::Permanent(format!("no address for {domain}"))),
                _ => Ok(out),
            }
        }
    }
}
