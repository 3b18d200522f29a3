//! Per-IP limits shared by every worker: concurrent connections, AUTH failures, and the
//! rate of log lines about one client's refusals.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Counters keyed by client IP.
#[derive(Default)]
pub struct IpLimits {
    conns: Mutex<HashMap<IpAddr, usize>>,
    /// Open connections per network (/24 for IPv4, /64 for IPv6).
    nets: Mutex<HashMap<IpAddr, usize>>,
    auth_failures: Mutex<Windows<IpAddr>>,
    /// Failed logins per existing account, from any address.
    account_failures: Mutex<Windows<String>>,
    /// Messages accepted per authenticated user in the current hour.
    sent: Mutex<Windows<String>>,
}

/// Counts per key in fixed windows: `key → (count, window start)`.
type Windows<K> = HashMap<K, (u32, Instant)>;

/// True when `key` has reached `max` inside its current window.
fn at_limit<K, Q>(m: &Windows<K>, key: &Q, max: u32, window: Duration) -> bool
where
    K: Eq + Hash + Borrow<Q>,
    Q: Eq + Hash + ?Sized,
{
    m.get(key)
        .is_some_and(|(n, since)| *n >= max && since.elapsed() < window)
}

/// Adds one to `key`'s count, starting a new window when the old one is over (and dropping
/// expired keys when the map has grown large).
fn count<K, Q>(m: &mut Windows<K>, key: &Q, window: Duration)
where
    K: Eq + Hash + Borrow<Q>,
    Q: Eq + Hash + ToOwned<Owned = K> + ?Sized,
{
    if m.len() > 100_000 {
        m.retain(|_, (_, since)| since.elapsed() < window);
    }
    let e = m.entry(key.to_owned()).or_insert((0, Instant::now()));
    if e.1.elapsed() >= window {
        *e = (0, Instant::now());
    }
    e.0 += 1;
}

/// Held while a connection is open; releases its slot on drop.
pub struct ConnSlot {
    limits: Arc<IpLimits>,
    ip: IpAddr,
}

fn release(m: &Mutex<HashMap<IpAddr, usize>>, key: IpAddr) {
    let mut m = m.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(n) = m.get_mut(&key) {
        *n -= 1;
        if *n == 0 {
            m.remove(&key);
        }
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        release(&self.limits.conns, self.ip);
        release(&self.limits.nets, network_of(self.ip));
    }
}

/// The network a client address is counted in: its /24 (IPv4, and IPv4-mapped IPv6) or its
/// /64 (IPv6) — what one customer or one attacker's host usually has.
pub fn network_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            IpAddr::from([o[0], o[1], o[2], 0])
        }
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => network_of(IpAddr::V4(v4)),
            None => {
                let s = a.segments();
                IpAddr::from([s[0], s[1], s[2], s[3], 0, 0, 0, 0])
            }
        },
    }
}

impl IpLimits {
    /// Takes a connection slot for `ip`, or `None` if it already has `max`, or its network
    /// ([`network_of`]) already has `max_net` (0 = no network limit).
    pub fn connect(self: &Arc<Self>, ip: IpAddr, max: usize, max_net: usize) -> Option<ConnSlot> {
        let mut m = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        let mut nets = self.nets.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.get(&ip).copied().unwrap_or(0);
        let net = network_of(ip);
        let nn = nets.get(&net).copied().unwrap_or(0);
        if n >= max || (max_net > 0 && nn >= max_net) {
            return None;
        }
        m.insert(ip, n + 1);
        nets.insert(net, nn + 1);
        Some(ConnSlot {
            limits: self.clone(),
            ip,
        })
    }

    /// True if `ip` has reached `max` AUTH failures within `window`.
    pub fn auth_blocked(&self, ip: IpAddr, max: u32, window: Duration) -> bool {
        let m = self.auth_failures.lock().unwrap_or_else(|p| p.into_inner());
        at_limit(&m, &ip, max, window)
    }

    /// True if the account `login` has had `max` failed logins (from any address) within
    /// `window`; 0 = no limit.
    pub fn account_blocked(&self, login: &str, max: u32, window: Duration) -> bool {
        let m = self
            .account_failures
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        max > 0 && at_limit(&m, login, max, window)
    }

    /// Records a failed login for the existing account `login`.
    pub fn account_failed(&self, login: &str, window: Duration) {
        let mut m = self
            .account_failures
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        count(&mut m, login, window);
    }

    /// True if `login` has sent `max` messages in the current hour; 0 = no limit.
    pub fn send_limited(&self, login: &str, max: u32) -> bool {
        let m = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        max > 0 && at_limit(&m, login, max, HOUR)
    }

    /// Counts one message accepted from `login`.
    pub fn sent_one(&self, login: &str) {
        let mut m = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        count(&mut m, login, HOUR);
    }

    /// Records a failed AUTH from `ip`.
    pub fn auth_failed(&self, ip: IpAddr, window: Duration) {
        let mut m = self.auth_failures.lock().unwrap_or_else(|p| p.into_inner());
        count(&mut m, &ip, window);
    }
}

/// The window of the per-user message rate.
const HOUR: Duration = Duration::from_secs(3600);

/// Log lines one client may cause per [`LOG_WINDOW`] through [`log_limited`].
pub const LOG_LINES_PER_WINDOW: u32 = 10;
/// The window of [`log_limited`].
pub const LOG_WINDOW: Duration = Duration::from_secs(10);

/// Runs `log` (which writes one line) unless client `ip` has already had
/// [`LOG_LINES_PER_WINDOW`] such lines in this [`LOG_WINDOW`]; the first line of the next
/// window says how many were left out. Repeated refusals of one client cannot flood the log.
pub fn log_limited(ip: IpAddr, log: impl FnOnce()) {
    log_limited_by(&ip.to_string(), log);
}

/// [`log_limited`] keyed by any name (an account, say) instead of a client address.
pub fn log_limited_by(key: &str, log: impl FnOnce()) {
    static SEEN: Mutex<Option<HashMap<String, (Instant, u32)>>> = Mutex::new(None);
    let suppressed = {
        let mut g = SEEN.lock().unwrap_or_else(|p| p.into_inner());
        let m = g.get_or_insert_with(HashMap::new);
        if m.len() > 100_000 {
            m.retain(|_, (since, _)| since.elapsed() < LOG_WINDOW);
        }
        let e = m.entry(key.to_string()).or_insert((Instant::now(), 0));
        let mut left_out = 0;
        if e.0.elapsed() >= LOG_WINDOW {
            left_out = e.1.saturating_sub(LOG_LINES_PER_WINDOW);
            *e = (Instant::now(), 0);
        }
        e.1 += 1;
        if e.1 > LOG_LINES_PER_WINDOW {
            return;
        }
        left_out
    };
    if suppressed > 0 {
        tracing::warn!(
            key,
            suppressed,
            "{suppressed} similar lines about {key} left out"
        );
    }
    log();
}

/// The cap on simultaneous sessions: `configured`, or, when 0, three quarters of the
/// descriptor limit after raising the soft limit to the hard one (each session holds one
/// descriptor; the rest stay for Maildir files, the store and the listeners).
pub fn connection_cap(configured: usize) -> usize {
    if configured > 0 {
        return configured;
    }
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the struct we pass, nothing else.
    let soft = unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 768;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
        lim.rlim_cur
    };
    let soft = usize::try_from(soft).unwrap_or(usize::MAX / 4).min(1 << 24);
    (soft * 3 / 4).max(16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_released() {
        let l = Arc::new(IpLimits::default());
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let a = l.connect(ip, 2, 0).unwrap();
        let _b = l.connect(ip, 2, 0).unwrap();
        assert!(l.connect(ip, 2, 0).is_none());
        drop(a);
        assert!(l.connect(ip, 2, 0).is_some());
    }

    #[test]
    fn networks_are_capped_as_a_whole() {
        let l = Arc::new(IpLimits::default());
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        let _a = l.connect(ip("192.0.2.1"), 5, 2).unwrap();
        let b = l.connect(ip("192.0.2.2"), 5, 2).unwrap();
        assert!(l.connect(ip("192.0.2.3"), 5, 2).is_none(), "same /24");
        assert!(l.connect(ip("192.0.3.3"), 5, 2).is_some(), "another /24");
        drop(b);
        assert!(l.connect(ip("192.0.2.3"), 5, 2).is_some());
        assert_eq!(network_of(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
        assert_eq!(network_of(ip("::ffff:192.0.2.9")), ip("192.0.2.0"));
    }

    #[test]
    fn auth_failures_block_within_window() {
        let l = IpLimits::default();
        let ip: IpAddr = "127.0.0.2".parse().unwrap();
        let w = Duration::from_secs(60);
        for _ in 0..3 {
            assert!(!l.auth_blocked(ip, 3, w));
            l.auth_failed(ip, w);
        }
        assert!(l.auth_blocked(ip, 3, w));
        assert!(!l.auth_blocked(ip, 3, Duration::ZERO));
    }
}
