//! Directory record types, as stored and as exchanged by the admin API.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What happens to mail for a domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DomainKind {
    /// Delivered into local Maildirs.
    #[default]
    Local,
    /// Accepted and queued for another server (outbound delivery routes it).
    Relay,
}

/// A mail domain (Email > Domains).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Domain {
    /// Domain name, lower case.
    pub name: String,
    /// Local or relay.
    #[serde(default)]
    pub kind: DomainKind,
    /// For relay domains: the server to hand mail to (`host` or `host:port`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_host: Option<String>,
    /// "Copy inbound messages": hidden copy of every message for this domain to an address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bcc: Option<String>,
    /// "Accept unknown recipients": unknown local parts go to `catch_all`.
    #[serde(default)]
    pub accept_unknown: bool,
    /// Destination of unknown recipients when `accept_unknown` is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catch_all: Option<Destination>,
    /// DKIM signing of mail submitted from this domain (RFC 6376), when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dkim: Option<DkimSetting>,
    /// Legal notice appended to mail submitted from this domain (plain text or Markdown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_notice: Option<String>,
}

/// DKIM key algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DkimAlgorithm {
    /// RSA 2048, rsa-sha256.
    #[default]
    Rsa,
    /// Ed25519, ed25519-sha256 (RFC 8463).
    Ed25519,
}

/// A domain's DKIM signing setting; the key lives in `data_dir/dkim/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DkimSetting {
    /// Selector (`default` unless chosen).
    pub selector: String,
    /// Key algorithm.
    #[serde(default)]
    pub algorithm: DkimAlgorithm,
}

/// A user account with a personal mailbox (Email > Mailboxes > Users).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Login name, lower case; also the local part of `<login>@<each local domain>`.
    pub login: String,
    /// Argon2 PHC hash of the password.
    pub password_hash: String,
    /// Access to mail services (IMAP, POP3, SMTP AUTH). Delivery continues when off.
    #[serde(default = "yes")]
    pub mail_access: bool,
    /// Quota in MiB; `None` uses the default quota, `Some(0)` is unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_mb: Option<u64>,
    /// "Keep spam for N days" for this user (`None`: the default setting; 0 keeps all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_spam_days: Option<u32>,
    /// "Move spam to Junk" for this user (`None`: the global `filter.spam.move_to_junk`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spam_to_junk: Option<bool>,
    /// External addresses that receive a copy of every message for this user.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forward: Vec<String>,
    /// With forwarding: keep a copy in the local mailbox too.
    #[serde(default = "yes")]
    pub keep_copy: bool,
}

fn yes() -> bool {
    true
}

/// A group of users; `<group>@<domain>` delivers to each member when group addresses are on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// Group name, lower case.
    pub name: String,
    /// Member logins.
    #[serde(default)]
    pub members: Vec<String>,
    /// This group's automatic address (also needs the global switch).
    #[serde(default = "yes")]
    pub address_enabled: bool,
}

/// A shared mailbox owned by groups (Email > Mailboxes > Public mailboxes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicMailbox {
    /// Mailbox name.
    pub name: String,
    /// Owning groups.
    #[serde(default)]
    pub owners: Vec<String>,
}

/// Where an address delivers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Destination {
    /// A user's mailbox (and the user's forwarding).
    User(String),
    /// Every member of a group.
    Group(String),
    /// A public mailbox.
    Public(String),
    /// An external address.
    External(String),
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::User(u) => write!(f, "user:{u}"),
            Destination::Group(g) => write!(f, "group:{g}"),
            Destination::Public(p) => write!(f, "public:{p}"),
            Destination::External(a) => write!(f, "external:{a}"),
        }
    }
}

impl FromStr for Destination {
    type Err = String;
    /// `user:alice`, `group:sales`, `public:info`, `external:bob@example.org`, or a bare
    /// address (external).
    fn from_str(s: &str) -> Result<Self, String> {
        let (kind, name) = s.split_once(':').unwrap_or(("external", s));
        let name = name.trim();
        if name.is_empty() {
            return Err(format!("empty destination in {s:?}"));
        }
        Ok(match kind {
            "user" => Destination::User(name.to_lowercase()),
            "group" => Destination::Group(name.to_lowercase()),
            "public" => Destination::Public(name.to_lowercase()),
            "external" | "ext" => Destination::External(name.to_string()),
            _ => {
                return Err(format!(
                    "unknown destination type {kind:?} (user, group, public, external)"
                ));
            }
        })
    }
}

impl TryFrom<String> for Destination {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Destination> for String {
    fn from(d: Destination) -> String {
        d.to_string()
    }
}

/// An address (Email > Addresses): a local part on one local domain or on all of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressEntry {
    /// Local part, lower case.
    pub local: String,
    /// `None`: bound to every local domain.
    #[serde(default)]
    pub domain: Option<String>,
    /// One or more destinations.
    pub destinations: Vec<Destination>,
    /// Refuse mail from unauthenticated outside clients.
    #[serde(default)]
    pub internal: bool,
}

impl AddressEntry {
    /// `local@domain` or `local@*`.
    pub fn key(&self) -> String {
        format!("{}@{}", self.local, self.domain.as_deref().unwrap_or("*"))
    }
}

/// SMTP access policy (Email > Relay > Configuration).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RelayPolicy {
    /// "Allow relay from IP addresses": clients that may relay without AUTH.
    pub allow_relay_from: Vec<IpNet>,
    /// Trusted networks: inside clients (internal addresses accept their mail).
    pub trusted_networks: Vec<IpNet>,
    /// "Allow relay from trusted networks".
    pub allow_relay_from_trusted: bool,
    /// "Enable authentication on port 25".
    pub auth_on_port25: bool,
    /// "Enforce sender/login match".
    pub enforce_sender_login_match: bool,
}

impl Default for RelayPolicy {
    fn default() -> Self {
        RelayPolicy {
            allow_relay_from: Vec::new(),
            trusted_networks: vec![
                "127.0.0.0/8".parse().expect("literal"),
                "::1/128".parse().expect("literal"),
            ],
            allow_relay_from_trusted: false,
            auth_on_port25: false,
            enforce_sender_login_match: false,
        }
    }
}

/// What to do with bare CR or bare LF in message content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BareNewline {
    /// Store them as CRLF (the message is accepted).
    #[default]
    Normalize,
    /// Refuse the message with 550 5.5.2.
    Reject,
}

/// Server-wide settings changed at run time (Email > Settings, Email > Mailboxes > General).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Maximum message size in octets (SIZE and DATA).
    pub max_message_size: u64,
    /// Maximum recipients per message.
    pub max_recipients: usize,
    /// Message queue lifetime in seconds.
    pub queue_lifetime_secs: u64,
    /// Warn the sender once when a message is still queued after this many seconds
    /// (`None`: no delay warnings, like Postfix's default).
    pub delay_warning_secs: Option<u64>,
    /// "Forward a copy of all messages": hidden copy of everything to this address.
    pub always_bcc: Option<String>,
    /// Default quota in MiB (0 = unlimited).
    pub default_quota_mb: u64,
    /// Global switch for automatic group addresses.
    pub group_addresses: bool,
    /// Relay and SMTP access policy.
    pub relay: RelayPolicy,
    /// Handling of bare CR/LF in DATA.
    pub bare_newline: BareNewline,
    /// Outbound routing: custom HELO, relay hosts by sender, smarthost.
    pub outbound: Outbound,
    /// "Allow unencrypted connections": POP3/IMAP logins without TLS (off by default).
    pub allow_unencrypted: bool,
    /// IMAP settings (Email > Mailboxes > General).
    pub imap: ImapSettings,
    /// Email > Filter: attachment blocking and antivirus.
    pub filter: postcore_scanner::filter::FilterPolicy,
}

/// IMAP behaviour set by the administrator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImapSettings {
    /// "Log IMAP actions": one log line per command (logins and logouts are always logged).
    pub log_actions: bool,
    /// "Move deleted email to trash": \Deleted messages are moved to Trash (for Outlook).
    pub move_deleted_to_trash: bool,
    /// "Shared seen": \Seen on shared and public mailboxes is common to every reader.
    pub shared_seen: bool,
    /// Messages in Junk older than this many days are expunged (0 = keep).
    pub keep_spam_days: u32,
    /// Maximum IMAP connections per user from one IP address.
    pub max_connections_per_user_ip: usize,
    /// Maximum mailboxes (folders, INBOX included) a user may have; 0 = no limit.
    pub max_mailboxes: usize,
    /// "Root can log in as another user": Argon2 hash of the master password
    /// (`alice*root` + this password logs in as alice with full rights).
    pub master_password_hash: Option<String>,
    /// Migration login (`alice*vmail` + this secret), for IMAP migration tools.
    pub migration_user: Option<String>,
    /// Argon2 hash of the migration login's secret.
    pub migration_password_hash: Option<String>,
}

impl Default for ImapSettings {
    fn default() -> Self {
        ImapSettings {
            log_actions: false,
            move_deleted_to_trash: false,
            shared_seen: false,
            keep_spam_days: 0,
            max_connections_per_user_ip: 20,
            max_mailboxes: 1000,
            master_password_hash: None,
            migration_user: None,
            migration_password_hash: None,
        }
    }
}

/// TLS towards a relay host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain SMTP.
    None,
    /// STARTTLS, required (RFC 3207).
    #[default]
    Starttls,
    /// TLS from the first byte (RFC 8314).
    Implicit,
}

/// A relay host (Email > Relay > relay host, System > Smart host).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayHost {
    /// Host name or IP address.
    pub host: String,
    /// Port.
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    /// AUTH user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// AUTH password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// TLS mode.
    #[serde(default)]
    pub tls: TlsMode,
}

fn default_smtp_port() -> u16 {
    25
}

/// A relay host chosen by sender address (`user@domain`) or sender domain (`domain`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SenderRoute {
    /// `user@domain` or `domain`.
    pub sender: String,
    /// Where that sender's mail goes.
    pub relay: RelayHost,
}

/// Outbound delivery settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Outbound {
    /// HELO name used towards other servers (default: the host name).
    pub helo_name: Option<String>,
    /// Relay hosts by sender address or sender domain.
    pub sender_routes: Vec<SenderRoute>,
    /// Default relay host for everything else (smarthost).
    pub smarthost: Option<RelayHost>,
}

impl Outbound {
    /// The relay host for a sender, if any: exact address first, then its domain, then the
    /// smarthost.
    pub fn route_for_sender(&self, sender: &str) -> Option<&RelayHost> {
        let sender = sender.to_lowercase();
        let domain = sender.rsplit_once('@').map(|(_, d)| d);
        self.sender_routes
            .iter()
            .find(|r| r.sender.to_lowercase() == sender)
            .or_else(|| {
                self.sender_routes
                    .iter()
                    .find(|r| Some(r.sender.to_lowercase().as_str()) == domain)
            })
            .map(|r| &r.relay)
            .or(self.smarthost.as_ref())
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_message_size: 25 * 1024 * 1024,
            max_recipients: 1000,
            queue_lifetime_secs: 4 * 24 * 3600,
            delay_warning_secs: None,
            always_bcc: None,
            default_quota_mb: 0,
            group_addresses: false,
            relay: RelayPolicy::default(),
            bare_newline: BareNewline::Normalize,
            outbound: Outbound::default(),
            allow_unencrypted: false,
            imap: ImapSettings::default(),
            filter: Default::default(),
        }
    }
}

/// Checks a login, group or mailbox name: it becomes a local part and a directory name.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && !s.starts_with(['.', '-'])
        && !s.ends_with('.')
        && !s.contains("..")
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}
