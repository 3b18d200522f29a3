//! Start-up configuration (the TOML file). Everything an administrator changes at run time
//! (domains, users, relay policy, message size, …) lives in the store instead.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

/// The whole configuration file. Every key has a default, so an empty file is valid.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the store, spool, Maildirs and TLS material live.
    pub data_dir: PathBuf,
    /// Our host name (banner, Received, Maildir names). Default: the system's.
    pub hostname: String,
    /// Worker threads (one event loop each); 0 = one per core.
    pub workers: usize,
    /// Listener addresses.
    pub listeners: Listeners,
    /// TLS certificate and key (PEM). Empty: a self-signed pair under `data_dir/tls/`.
    pub tls: TlsConfig,
    /// Protocol limits.
    pub limits: Limits,
    /// Queue timing.
    pub queue: QueueConfig,
    /// Admin API credentials.
    pub admin: AdminConfig,
    /// DNS resolution for outbound delivery.
    pub dns: DnsConfig,
    /// The content scanner's threads, time limit and signature directory.
    pub scanner: ScannerConfig,
    /// Outbound SMTP client.
    pub outbound: OutboundConfig,
    /// Sieve scripts: quotas.
    pub sieve: SieveConfig,
}

/// Quotas on each user's Sieve scripts (ManageSieve HAVESPACE/PUTSCRIPT, RFC 5804 §2.3).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SieveConfig {
    /// Scripts a user may keep.
    pub max_scripts: usize,
    /// Largest script, in octets.
    pub max_script_size: usize,
}

impl Default for SieveConfig {
    fn default() -> Self {
        SieveConfig {
            max_scripts: 20,
            max_script_size: 64 * 1024,
        }
    }
}

/// DNS resolvers: `["IP:PORT", …]` replaces the system's (`/etc/resolv.conf`).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct DnsConfig {
    /// Resolver addresses; empty = the system configuration.
    pub resolvers: Vec<SocketAddr>,
}

/// Outbound SMTP client settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboundConfig {
    /// Port of MX hosts (25 on the internet).
    pub mx_port: u16,
    /// Seconds to wait for a TCP connection.
    pub connect_timeout_secs: u64,
    /// Seconds to wait for each reply (RFC 5321 §4.5.3.2 suggests minutes; DATA end 10).
    pub command_timeout_secs: u64,
    /// Simultaneous connections to one destination.
    pub max_per_destination: usize,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        OutboundConfig {
            mx_port: 25,
            connect_timeout_secs: 30,
            command_timeout_secs: 300,
            max_per_destination: 20,
        }
    }
}

/// Listener addresses; a listener set to `""` is disabled.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Listeners {
    /// SMTP from other MTAs (25).
    pub smtp: String,
    /// Submission with STARTTLS (587, RFC 6409).
    pub submission: String,
    /// Submission over implicit TLS (465, RFC 8314).
    pub submissions: String,
    /// POP3 with STLS (110, RFC 1939/2595).
    pub pop3: String,
    /// POP3 over implicit TLS (995, RFC 8314).
    pub pop3s: String,
    /// IMAP with STARTTLS (143, RFC 9051).
    pub imap: String,
    /// IMAP over implicit TLS (993, RFC 8314).
    pub imaps: String,
    /// ManageSieve (4190, RFC 5804).
    pub managesieve: String,
    /// Admin API and /metrics (HTTP).
    pub admin: String,
}

/// TLS material paths.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain, PEM.
    pub cert: Option<PathBuf>,
    /// Private key, PEM.
    pub key: Option<PathBuf>,
}

/// Limits that protect the server from clients.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Longest accepted command line (RFC 5321 §4.5.3.1.4 minimum is 512).
    pub max_line_length: usize,
    /// Simultaneous connections from one IP address.
    pub max_connections_per_ip: usize,
    /// Simultaneous connections from one network (/24 for IPv4, /64 for IPv6), never less
    /// than `max_connections_per_ip`; 0 = no network limit.
    pub max_connections_per_network: usize,
    /// Simultaneous sessions of every protocol together; 0 = derived at start-up from the
    /// descriptor limit (which start-up raises to its hard limit): three quarters of it.
    pub max_connections: usize,
    /// Protocol errors before the session is closed: SMTP 5xx replies (then 421), IMAP `BAD`
    /// responses (then `BYE`), POP3 unknown or malformed commands (then `-ERR` and close).
    pub max_errors: u32,
    /// Seconds to wait for a command (RFC 5321 §4.5.3.2.7: at least 5 minutes).
    pub command_timeout_secs: u64,
    /// Seconds to wait for each block of message data.
    pub data_timeout_secs: u64,
    /// The slowest average rate, in octets per second, at which a DATA transfer or a BDAT
    /// chunk may arrive once [`Limits::data_grace_secs`] have passed; slower ones are cut
    /// (`421 4.4.2`). 0 turns the check off.
    pub data_min_rate: u64,
    /// Seconds a transfer may take before [`Limits::data_min_rate`] applies.
    pub data_grace_secs: u64,
    /// Failed AUTH attempts per IP within the window before AUTH is refused.
    pub max_auth_failures_per_ip: u32,
    /// The AUTH failure window in seconds.
    pub auth_failure_window_secs: u64,
    /// Failed logins of one account (every protocol, from any address) within the window
    /// after which its logins are refused until the window ends; 0 = no limit. Guards
    /// against password guessing spread over many addresses.
    pub max_auth_failures_per_account: u32,
    /// Messages one authenticated user may send per hour (submission); past it MAIL FROM
    /// gets `451 4.7.1`; 0 = no limit. A compromised account cannot become a spam cannon.
    pub max_messages_per_hour_per_user: u32,
    /// Seconds sessions get to finish after SIGTERM.
    pub shutdown_grace_secs: u64,
    /// Memory for mail in flight, in MiB; 0 = an eighth of the machine's memory, at most
    /// 1024. Each SMTP transaction reserves 576 KiB of it (bodies stream to disk past
    /// 256 KiB); when it is spent, MAIL FROM gets `452 4.3.1`.
    pub memory_budget_mb: u64,
}

/// Queue timing.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    /// First retry delay in seconds; doubles per attempt.
    pub retry_min_secs: u64,
    /// Longest retry delay in seconds.
    pub retry_max_secs: u64,
    /// How often the queue looks for due messages.
    pub scan_interval_secs: u64,
}

/// Admin API credentials.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Bearer token for the admin API. Empty: generated once into `data_dir/admin.token`.
    pub token: Option<String>,
}

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The system host name (`/proc/sys/kernel/hostname`), or `localhost`.
pub fn system_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

impl Default for Listeners {
    fn default() -> Self {
        let (smtp, sub, subs, pop3, pop3s, imap, imaps, sieve) = if running_as_root() {
            (25, 587, 465, 110, 995, 143, 993, 4190)
        } else {
            (2525, 5587, 5465, 5110, 5995, 5143, 5993, 5190)
        };
        Listeners {
            smtp: format!("0.0.0.0:{smtp}"),
            submission: format!("0.0.0.0:{sub}"),
            submissions: format!("0.0.0.0:{subs}"),
            pop3: format!("0.0.0.0:{pop3}"),
            pop3s: format!("0.0.0.0:{pop3s}"),
            imap: format!("0.0.0.0:{imap}"),
            imaps: format!("0.0.0.0:{imaps}"),
            managesieve: format!("0.0.0.0:{sieve}"),
            admin: "127.0.0.1:8465".into(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line_length: 2048,
            max_connections_per_ip: 50,
            max_connections_per_network: 200,
            max_connections: 0,
            max_errors: 20,
            command_timeout_secs: 300,
            data_timeout_secs: 300,
            data_min_rate: 1024,
            data_grace_secs: 30,
            max_auth_failures_per_ip: 10,
            auth_failure_window_secs: 600,
            max_auth_failures_per_account: 30,
            max_messages_per_hour_per_user: 1000,
            shutdown_grace_secs: 10,
            memory_budget_mb: 0,
        }
    }
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            retry_min_secs: 300,
            retry_max_secs: 3600,
            scan_interval_secs: 30,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("postcore-data"),
            hostname: system_hostname(),
            workers: 0,
            listeners: Listeners::default(),
            tls: TlsConfig::default(),
            limits: Limits::default(),
            queue: QueueConfig::default(),
            admin: AdminConfig::default(),
            dns: DnsConfig::default(),
            outbound: OutboundConfig::default(),
            scanner: ScannerConfig::default(),
            sieve: SieveConfig::default(),
        }
    }
}

/// What a message gets when its scan runs past the time limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnTimeout {
    /// `451 4.3.2`: the client tries again later.
    #[default]
    Tempfail,
    /// Accept it unscanned (logged).
    Accept,
}

/// The scanner pool (content checks run off the SMTP event loops).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScannerConfig {
    /// Scanner threads; 0 = one per core.
    pub threads: usize,
    /// Time limit per message in milliseconds.
    pub timeout_ms: u64,
    /// What a message that ran out of time gets.
    pub on_timeout: OnTimeout,
    /// Messages waiting for or in a scan at once; past it, `451 4.3.2` (back-pressure).
    /// 0 = 16 per thread.
    pub max_in_flight: usize,
    /// ClamAV signature directory (`.cvd`, `.ndb`, `.ldb`, `.hdb`, …); empty = `<data_dir>/clamav`.
    pub signature_dir: Option<PathBuf>,
    /// How often the signature directory is checked for changes, in seconds.
    pub reload_check_secs: u64,
    /// Antispam rule directories or files in SpamAssassin's syntax, read after postcore's
    /// built-in rules (e.g. Debian's `/usr/share/spamassassin`); empty = built-in rules only.
    pub spam_rules: Vec<PathBuf>,
}

impl Default for ScannerConfig {
    fn default() -> Self {
        ScannerConfig {
            threads: 0,
            timeout_ms: 30_000,
            on_timeout: OnTimeout::Tempfail,
            max_in_flight: 0,
            signature_dir: None,
            reload_check_secs: 5,
            spam_rules: Vec::new(),
        }
    }
}

impl ScannerConfig {
    /// The signature directory for a data directory.
    pub fn signature_dir(&self, data_dir: &std::path::Path) -> PathBuf {
        self.signature_dir
            .clone()
            .unwrap_or_else(|| data_dir.join("clamav"))
    }

    /// Scanner threads (at least one).
    pub fn threads(&self) -> usize {
        if self.threads > 0 {
            self.threads
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }

    /// The back-pressure bound.
    pub fn max_in_flight(&self) -> usize {
        if self.max_in_flight > 0 {
            self.max_in_flight
        } else {
            16 * self.threads()
        }
    }
}

impl Config {
    /// Parses a configuration file's text.
    pub fn from_toml(text: &str) -> anyhow::Result<Config> {
        toml::from_str(text).map_err(|e| anyhow::anyhow!("configuration: {e}"))
    }

    /// The default configuration as TOML.
    pub fn default_toml() -> String {
        toml::to_string_pretty(&Config::default()).unwrap_or_default()
    }

    /// Parses a listener address; `None` if disabled.
    pub fn listener(addr: &str) -> anyhow::Result<Option<SocketAddr>> {
        if addr.trim().is_empty() {
            return Ok(None);
        }
        addr.parse()
            .map(Some)
            .map_err(|e| anyhow::anyhow!("listener address {addr:?}: {e}"))
    }

    /// Number of workers to run.
    pub fn worker_count(&self) -> usize {
        if self.workers > 0 {
            self.workers
        } else {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        }
    }

    /// Path of the admin token file.
    pub fn admin_token_path(&self) -> PathBuf {
        self.data_dir.join("admin.token")
    }
}
