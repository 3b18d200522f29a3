//! `postcore admin …`: a thin client of the admin HTTP API. It finds the API address and the
//! bearer token from the server's configuration file (`[admin] token`, or
//! `<data_dir>/admin.token`).

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use postcore_actors::Config;
use serde_json::{Map, Value, json};

/// Admin subcommands.
#[derive(Subcommand)]
pub enum AdminCmd {
    /// Mail domains.
    Domain {
        #[command(subcommand)]
        cmd: DomainCmd,
    },
    /// Users (personal mailboxes).
    User {
        #[command(subcommand)]
        cmd: UserCmd,
    },
    /// Groups.
    Group {
        #[command(subcommand)]
        cmd: GroupCmd,
    },
    /// Public (shared) mailboxes.
    Public {
        #[command(subcommand)]
        cmd: PublicCmd,
    },
    /// Addresses with destinations.
    Address {
        #[command(subcommand)]
        cmd: AddressCmd,
    },
    /// Server-wide settings, relay policy included.
    Settings {
        #[command(subcommand)]
        cmd: SettingsCmd,
    },
    /// DKIM signing per domain.
    Dkim {
        #[command(subcommand)]
        cmd: DkimCmd,
    },
    /// The mail queue.
    Queue {
        #[command(subcommand)]
        cmd: QueueCmd,
    },
    /// Messages quarantine mode held (filter.spam.quarantine_to).
    Quarantine {
        #[command(subcommand)]
        cmd: QuarantineCmd,
    },
    /// The antivirus signature database.
    Av {
        #[command(subcommand)]
        cmd: AvCmd,
    },
    /// The antispam rules and statistics.
    Spam {
        #[command(subcommand)]
        cmd: SpamCmd,
    },
    /// The statistical filter (Bayes) of the running server.
    Bayes {
        #[command(subcommand)]
        cmd: BayesCmd,
    },
    /// Sieve scripts of users (OWNER = login) and global ones (OWNER = @global).
    Sieve {
        #[command(subcommand)]
        cmd: crate::sieve_cli::SieveCmd,
    },
}

#[derive(Subcommand)]
pub enum BayesCmd {
    /// Learned spam and ham, tokens, store size, active or not, training progress, queue.
    Status,
    /// Learn messages as spam (files, directories, mbox files).
    LearnSpam {
        /// Where the messages are.
        #[arg(required = true)]
        paths: Vec<std::path::PathBuf>,
    },
    /// Learn messages as ham.
    LearnHam {
        /// Where the messages are.
        #[arg(required = true)]
        paths: Vec<std::path::PathBuf>,
    },
    /// Take learned messages back out of the model.
    Forget {
        /// Where the messages are.
        #[arg(required = true)]
        paths: Vec<std::path::PathBuf>,
    },
    /// Forget everything learned.
    Clear,
}

#[derive(Subcommand)]
pub enum SpamCmd {
    /// Rules loaded by type and engine, skipped and why; messages by action, hits by symbol.
    Status,
    /// Read the rule directories now (the loaded rules stay if it fails).
    Reload,
}

#[derive(Subcommand)]
pub enum AvCmd {
    /// Signatures loaded by kind, skipped and why, database version, last reload.
    Status,
    /// Read the signature directory now (the old database stays if it fails).
    Reload,
}

#[derive(Subcommand)]
pub enum DomainCmd {
    /// Add a domain (local delivery unless --relay-host is given).
    Add {
        name: String,
        /// Make it a relay domain delivered to this host[:port].
        #[arg(long)]
        relay_host: Option<String>,
        /// Legal notice appended to mail submitted from this domain.
        #[arg(long)]
        legal_notice: Option<String>,
        /// Hidden copy of inbound mail for this domain to this address.
        #[arg(long)]
        bcc: Option<String>,
        /// Accept unknown recipients into this destination (user:x, group:x, public:x, address).
        #[arg(long)]
        catch_all: Option<String>,
    },
    /// Change a domain: each option given replaces the current value ("" clears).
    Set {
        name: String,
        #[arg(long)]
        bcc: Option<String>,
        /// Legal notice text ("" removes it).
        #[arg(long)]
        legal_notice: Option<String>,
        #[arg(long)]
        catch_all: Option<String>,
        #[arg(long)]
        relay_host: Option<String>,
    },
    /// Remove a domain (stored mail is kept).
    Remove { name: String },
    /// List domains.
    List,
}

#[derive(Subcommand)]
pub enum UserCmd {
    /// Add a user; the password is read from standard input.
    Add {
        login: String,
        /// Read the password from the first line of standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
        /// Quota in MiB (0 = unlimited; default: the default quota).
        #[arg(long)]
        quota_mb: Option<u64>,
    },
    /// Change a user.
    Set {
        login: String,
        #[arg(long)]
        password_stdin: bool,
        #[arg(long)]
        quota_mb: Option<u64>,
        /// on/off: access to IMAP, POP3 and SMTP AUTH.
        #[arg(long)]
        mail_access: Option<OnOff>,
        /// Comma-separated external addresses ("" clears).
        #[arg(long)]
        forward: Option<String>,
        /// on/off: keep a local copy when forwarding.
        #[arg(long)]
        keep_copy: Option<OnOff>,
        /// Expunge messages older than N days from Junk (0 keeps all; "default" uses the
        /// `imap.keep_spam_days` setting).
        #[arg(long)]
        keep_spam_days: Option<String>,
        /// on/off/default: file spam into this user's Junk folder ("default" follows
        /// `filter.spam.move_to_junk`).
        #[arg(long)]
        spam_to_junk: Option<String>,
    },
    /// Remove a user (the Maildir is kept).
    Remove { login: String },
    /// List users with quota and usage.
    List,
    /// The out-of-office reply (a Sieve vacation script, RFC 5230).
    Vacation(crate::sieve_cli::VacationArgs),
    /// Usage per IMAP mailbox (messages, bytes).
    Mailboxes { login: String },
}

#[derive(Subcommand)]
pub enum GroupCmd {
    /// Add a group.
    Add {
        name: String,
        /// Members (repeat or comma-separate).
        #[arg(long, value_delimiter = ',')]
        member: Vec<String>,
    },
    /// Change a group.
    Set {
        name: String,
        /// Replace the member list (comma-separated).
        #[arg(long, value_delimiter = ',')]
        members: Option<Vec<String>>,
        /// on/off: this group's automatic address.
        #[arg(long)]
        address: Option<OnOff>,
    },
    /// Remove a group.
    Remove { name: String },
    /// List groups.
    List,
}

#[derive(Subcommand)]
pub enum PublicCmd {
    /// Add a public mailbox owned by groups.
    Add {
        name: String,
        #[arg(long, value_delimiter = ',', required = true)]
        owner: Vec<String>,
    },
    /// Remove a public mailbox (its Maildir is kept).
    Remove { name: String },
    /// List public mailboxes.
    List,
}

#[derive(Subcommand)]
pub enum AddressCmd {
    /// Add an address: LOCAL@DOMAIN, or LOCAL for every local domain.
    Add {
        address: String,
        /// Destinations: user:NAME, group:NAME, public:NAME or an external address.
        #[arg(long = "to", value_delimiter = ',', required = true)]
        to: Vec<String>,
        /// Refuse mail from unauthenticated outside clients.
        #[arg(long)]
        internal: bool,
    },
    /// Change an address's destinations or internal flag.
    Set {
        address: String,
        #[arg(long = "to", value_delimiter = ',')]
        to: Option<Vec<String>>,
        #[arg(long)]
        internal: Option<OnOff>,
    },
    /// Remove an address.
    Remove { address: String },
    /// List addresses.
    List,
}

#[derive(Subcommand)]
pub enum SettingsCmd {
    /// Show all settings.
    Show,
    /// Set values: KEY=VALUE with dotted keys and JSON values, e.g.
    /// `max_message_size=10485760 relay.auth_on_port25=true relay.allow_relay_from='["192.0.2.0/24"]'`.
    Set {
        #[arg(required = true)]
        pairs: Vec<String>,
    },
}

#[derive(Subcommand)]
pub enum DkimCmd {
    /// Sign mail submitted from DOMAIN (generates the key on first use).
    Enable {
        domain: String,
        /// rsa (2048 bits) or ed25519.
        #[arg(long, default_value = "rsa")]
        algorithm: String,
        /// Selector.
        #[arg(long, default_value = "default")]
        selector: String,
    },
    /// Stop signing (the key is kept).
    Disable { domain: String },
    /// Print the DNS TXT record to publish.
    Show { domain: String },
}

#[derive(Subcommand)]
pub enum QueueCmd {
    /// List queued messages with their recipients' status.
    List,
    /// Retry now: one message, or all without QID.
    Resend { qid: Option<String> },
    /// Delete from the queue (no bounce): one message, or all without QID.
    Delete { qid: Option<String> },
}

#[derive(Subcommand)]
pub enum QuarantineCmd {
    /// List held messages: id (the queue id), envelope, subject, score.
    List,
    /// Deliver a held message to its recipients (without the spam fields) and remove it.
    Release { id: String },
    /// Delete a held message.
    Delete { id: String },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

impl OnOff {
    fn b(self) -> bool {
        matches!(self, OnOff::On)
    }
}

struct Client {
    base: String,
    token: String,
}

impl Client {
    fn new(cfg: &Config) -> Result<Client> {
        let addr = Config::listener(&cfg.listeners.admin)?
            .context("the admin listener is disabled in this configuration")?;
        let host = if addr.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            addr.ip().to_string()
        };
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host
        };
        let token = match &cfg.admin.token {
            Some(t) => t.clone(),
            None => std::fs::read_to_string(cfg.admin_token_path())
                .with_context(|| {
                    format!(
                        "reading {} (has the server run once?)",
                        cfg.admin_token_path().display()
                    )
                })?
                .trim()
                .to_string(),
        };
        Ok(Client {
            base: format!("http://{host}:{}/api", addr.port()),
            token,
        })
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        let req = ureq::request(method, &format!("{}{path}", self.base))
            .set("Authorization", &format!("Bearer {}", self.token));
        let res = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        self.reply(res)
    }

    /// Sends octets of `content_type` to `path`.
    fn send_bytes(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        content_type: &str,
    ) -> Result<Value> {
        let res = ureq::request(method, &format!("{}{path}", self.base))
            .set("Authorization", &format!("Bearer {}", self.token))
            .set("Content-Type", content_type)
            .send_bytes(body);
        self.reply(res)
    }

    /// POSTs raw octets (a message) to `path`.
    fn post_bytes(&self, path: &str, body: &[u8]) -> Result<Value> {
        self.send_bytes("POST", path, body, "message/rfc822")
    }

    fn reply(&self, res: Result<ureq::Response, ureq::Error>) -> Result<Value> {
        match res {
            Ok(r) => r.into_json().context("reading reply"),
            Err(ureq::Error::Status(code, r)) => {
                let v: Value = r.into_json().unwrap_or(Value::Null);
                let msg = v
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("request failed")
                    .to_string();
                bail!("{msg} (HTTP {code})")
            }
            Err(e) => Err(anyhow::anyhow!(
                "cannot reach the admin API at {}: {e}",
                self.base
            )),
        }
    }
}

impl crate::sieve_cli::Api for Client {
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        Client::call(self, method, path, body)
    }
    fn send_text(&self, method: &str, path: &str, body: &str) -> Result<Value> {
        self.send_bytes(method, path, body.as_bytes(), "application/sieve")
    }
}

fn read_password() -> Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading password from stdin")?;
    let p = line.trim_end_matches(['\r', '\n']).to_string();
    if p.is_empty() {
        bail!("empty password on standard input");
    }
    Ok(p)
}

fn opt_str(s: Option<String>) -> Option<Value> {
    s.map(|v| {
        if v.is_empty() {
            Value::Null
        } else {
            Value::String(v)
        }
    })
}

fn list_split(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(String::from)
        .collect()
}

/// `local@domain` → API key; a bare local part binds to every domain (`local@*`).
fn address_key(a: &str) -> (String, Option<String>) {
    match a.split_once('@') {
        Some((l, d)) if d != "*" => (l.to_lowercase(), Some(d.to_lowercase())),
        Some((l, _)) => (l.to_lowercase(), None),
        None => (a.to_lowercase(), None),
    }
}

fn set_path(obj: &mut Map<String, Value>, key: &str, v: Value) {
    match key.split_once('.') {
        Some((head, rest)) => {
            let e = obj
                .entry(head.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !e.is_object() {
                *e = Value::Object(Map::new());
            }
            if let Value::Object(m) = e {
                set_path(m, rest, v);
            }
        }
        None => {
            obj.insert(key.to_string(), v);
        }
    }
}

/// Messages sent to `/bayes/learn/…` are cut to this size (the server learns no more of a
/// message than its first 512 KiB either).
const LEARN_LIMIT: usize = 512 * 1024;

fn bayes_command(c: &Client, cmd: BayesCmd) -> Result<Value> {
    let (what, paths) = match cmd {
        BayesCmd::Status => return c.call("GET", "/bayes/status", None),
        BayesCmd::Clear => return c.call("POST", "/bayes/clear", Some(json!({}))),
        BayesCmd::LearnSpam { paths } => ("spam", paths),
        BayesCmd::LearnHam { paths } => ("ham", paths),
        BayesCmd::Forget { paths } => ("forget", paths),
    };
    let mut outcomes = serde_json::Map::new();
    let mut n = 0u64;
    for file in crate::message_files::files(&paths)? {
        for m in crate::message_files::messages_in(&file)? {
            let body = &m[..m.len().min(LEARN_LIMIT)];
            let v = c
                .post_bytes(&format!("/bayes/learn/{what}"), body)
                .with_context(|| format!("{}", file.display()))?;
            let o = v["outcome"].as_str().unwrap_or("unknown").to_string();
            let e = outcomes.entry(o).or_insert(json!(0));
            *e = json!(e.as_u64().unwrap_or(0) + 1);
            n += 1;
        }
    }
    Ok(json!({"messages": n, "outcomes": outcomes}))
}

/// Runs one admin command and prints its JSON result.
pub fn run(cfg: &Config, cmd: AdminCmd) -> Result<()> {
    let c = Client::new(cfg)?;
    let out = match cmd {
        AdminCmd::Domain { cmd } => domain_command(&c, cmd)?,
        AdminCmd::User { cmd } => user_command(&c, cmd)?,
        AdminCmd::Group { cmd } => group_command(&c, cmd)?,
        AdminCmd::Public { cmd } => public_command(&c, cmd)?,
        AdminCmd::Address { cmd } => address_command(&c, cmd)?,
        AdminCmd::Settings { cmd } => settings_command(&c, cmd)?,
        AdminCmd::Dkim { cmd } => dkim_command(&c, cmd)?,
        AdminCmd::Queue { cmd } => queue_command(&c, cmd)?,
        AdminCmd::Quarantine { cmd } => match cmd {
            QuarantineCmd::List => c.call("GET", "/quarantine", None)?,
            QuarantineCmd::Release { id } => c.call(
                "POST",
                &format!("/quarantine/{id}/release"),
                Some(json!({})),
            )?,
            QuarantineCmd::Delete { id } => c.call("DELETE", &format!("/quarantine/{id}"), None)?,
        },
        AdminCmd::Av { cmd: AvCmd::Status } => c.call("GET", "/av/status", None)?,
        AdminCmd::Av { cmd: AvCmd::Reload } => c.call("POST", "/av/reload", Some(json!({})))?,
        AdminCmd::Spam {
            cmd: SpamCmd::Status,
        } => c.call("GET", "/spam/status", None)?,
        AdminCmd::Spam {
            cmd: SpamCmd::Reload,
        } => c.call("POST", "/spam/reload", Some(json!({})))?,
        AdminCmd::Bayes { cmd } => bayes_command(&c, cmd)?,
        AdminCmd::Sieve { cmd } => crate::sieve_cli::sieve_command(&c, cmd)?,
    };
    if !out.is_null() {
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(())
}

/// `postcore admin domain …`: the API call and its answer (`Null` when the command
/// printed its own output).
fn domain_command(c: &Client, cmd: DomainCmd) -> Result<Value> {
    Ok(match cmd {
        DomainCmd::Add {
            name,
            relay_host,
            legal_notice,
            bcc,
            catch_all,
        } => {
            let mut d = json!({"name": name});
            if let Some(n) = legal_notice {
                d["legal_notice"] = json!(n);
            }
            if let Some(h) = relay_host {
                d["kind"] = json!("relay");
                d["relay_host"] = json!(h);
            }
            if let Some(b) = bcc {
                d["bcc"] = json!(b);
            }
            if let Some(ca) = catch_all {
                d["accept_unknown"] = json!(true);
                d["catch_all"] = json!(ca);
            }
            c.call("POST", "/domains", Some(d))?
        }
        DomainCmd::Set {
            name,
            bcc,
            legal_notice,
            catch_all,
            relay_host,
        } => {
            let mut p = Map::new();
            if let Some(v) = opt_str(legal_notice) {
                p.insert("legal_notice".into(), v);
            }
            if let Some(v) = opt_str(bcc) {
                p.insert("bcc".into(), v);
            }
            if let Some(v) = opt_str(catch_all) {
                p.insert("accept_unknown".into(), json!(!v.is_null()));
                p.insert("catch_all".into(), v);
            }
            if let Some(v) = opt_str(relay_host) {
                p.insert("relay_host".into(), v);
            }
            c.call("PATCH", &format!("/domains/{name}"), Some(Value::Object(p)))?
        }
        DomainCmd::Remove { name } => c.call("DELETE", &format!("/domains/{name}"), None)?,
        DomainCmd::List => c.call("GET", "/domains", None)?,
    })
}

/// `postcore admin user …`: the API call and its answer (`Null` when the command
/// printed its own output).
fn user_command(c: &Client, cmd: UserCmd) -> Result<Value> {
    Ok(match cmd {
        UserCmd::Vacation(a) => crate::sieve_cli::vacation_command(c, a)?,
        UserCmd::Add {
            login,
            password_stdin: _,
            quota_mb,
        } => {
            let password = read_password()?;
            c.call(
                "POST",
                "/users",
                Some(json!({"login": login, "password": password, "quota_mb": quota_mb})),
            )?
        }
        UserCmd::Set {
            login,
            password_stdin,
            quota_mb,
            mail_access,
            forward,
            keep_copy,
            keep_spam_days,
            spam_to_junk,
        } => {
            let mut p = Map::new();
            if let Some(j) = spam_to_junk {
                let v = match j.as_str() {
                    "on" => json!(true),
                    "off" => json!(false),
                    "default" => Value::Null,
                    _ => anyhow::bail!("--spam-to-junk {j:?}: on, off or default"),
                };
                p.insert("spam_to_junk".into(), v);
            }
            if let Some(d) = keep_spam_days {
                let v = if d == "default" {
                    Value::Null
                } else {
                    json!(d.parse::<u32>().with_context(|| format!(
                        "--keep-spam-days {d:?}: a number of days or \"default\""
                    ))?)
                };
                p.insert("keep_spam_days".into(), v);
            }
            if password_stdin {
                p.insert("password".into(), json!(read_password()?));
            }
            if let Some(q) = quota_mb {
                p.insert("quota_mb".into(), json!(q));
            }
            if let Some(m) = mail_access {
                p.insert("mail_access".into(), json!(m.b()));
            }
            if let Some(f) = forward {
                p.insert("forward".into(), json!(list_split(&f)));
            }
            if let Some(k) = keep_copy {
                p.insert("keep_copy".into(), json!(k.b()));
            }
            c.call("PATCH", &format!("/users/{login}"), Some(Value::Object(p)))?
        }
        UserCmd::Remove { login } => c.call("DELETE", &format!("/users/{login}"), None)?,
        UserCmd::List => c.call("GET", "/users", None)?,
        UserCmd::Mailboxes { login } => {
            c.call("GET", &format!("/users/{login}/mailboxes"), None)?
        }
    })
}

/// `postcore admin group …`: the API call and its answer (`Null` when the command
/// printed its own output).
fn group_command(c: &Client, cmd: GroupCmd) -> Result<Value> {
    Ok(match cmd {
        GroupCmd::Add { name, member } => c.call(
            "POST",
            "/groups",
            Some(json!({"name": name, "members": member})),
        )?,
        GroupCmd::Set {
            name,
            members,
            address,
        } => {
            let mut p = Map::new();
            if let Some(m) = members {
                p.insert("members".into(), json!(m));
            }
            if let Some(a) = address {
                p.insert("address_enabled".into(), json!(a.b()));
            }
            c.call("PATCH", &format!("/groups/{name}"), Some(Value::Object(p)))?
        }
        GroupCmd::Remove { name } => c.call("DELETE", &format!("/groups/{name}"), None)?,
        GroupCmd::List => c.call("GET", "/groups", None)?,
    })
}

/// `postcore admin public …`: the API call and its answer (`Null` when the command
/// printed its own output).
fn public_command(c: &Client, cmd: PublicCmd) -> Result<Value> {
    Ok(match cmd {
        PublicCmd::Add { name, owner } => c.call(
            "POST",
            "/public",
            Some(json!({"name": name, "owners": owner})),
        )?,
        PublicCmd::Remove { name } => c.call("DELETE", &format!("/public/{name}"), None)?,
        PublicCmd::List => c.call("GET", "/public", None)?,
    })
}

/// `postcore admin address …`: the API call and its answer (`Null` when the command
/// printed its own output).
fn address_command(c: &Client, cmd: AddressCmd) -> Result<Value> {
    Ok(match cmd {
        AddressCmd::Add {
            address,
            to,
            internal,
        } => {
            let (local, domain) = address_key(&address);
            c.call("POST", "/addresses", Some(json!({"local": local, "domain": domain, "destinations": to, "internal": internal})))?
        }
        AddressCmd::Set {
            address,
            to,
            internal,
        } => {
            let (local, domain) = address_key(&address);
            let mut p = Map::new();
            if let Some(t) = to {
                p.insert("destinations".into(), json!(t));
            }
            if let Some(i) = internal {
                p.insert("internal".into(), json!(i.b()));
            }
            let key = format!("{local}@{}", domain.as_deref().unwrap_or("*"));
            c.call(
                "PATCH",
                &format!("/addresses/{key}"),
                Some(Value::Object(p)),
            )?
        }
        AddressCmd::Remove { address } => {
            let (local, domain) = address_key(&address);
            c.call(
                "DELETE",
                &format!("/addresses/{local}@{}", domain.as_deref().unwrap_or("*")),
                None,
            )?
        }
        AddressCmd::List => c.call("GET", "/addresses", None)?,
    })
}

/// `postcore admin settings …`: the API call and its answer (`Null` when the command
/// printed its own output).
fn settings_command(c: &Client, cmd: SettingsCmd) -> Result<Value> {
    Ok(match cmd {
        SettingsCmd::Show => c.call("GET", "/settings", None)?,
        SettingsCmd::Set { pairs } => {
            let mut patch = Map::new();
            for p in pairs {
                let (k, v) = p
                    .split_once('=')
                    .with_context(|| format!("{p:?}: expected KEY=VALUE"))?;
                let val = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string()));
                set_path(&mut patch, k, val);
            }
            c.call("PATCH", "/settings", Some(Value::Object(patch)))?
        }
    })
}

/// `postcore admin dkim …`: the API call and its answer (`Null` when the command
/// printed its own output).
fn dkim_command(c: &Client, cmd: DkimCmd) -> Result<Value> {
    Ok(match cmd {
        DkimCmd::Enable {
            domain,
            algorithm,
            selector,
        } => c.call(
            "POST",
            &format!("/domains/{domain}/dkim"),
            Some(json!({"algorithm": algorithm, "selector": selector})),
        )?,
        DkimCmd::Disable { domain } => {
            c.call("DELETE", &format!("/domains/{domain}/dkim"), None)?
        }
        DkimCmd::Show { domain } => {
            let v = c.call("GET", &format!("/domains/{domain}/dkim"), None)?;
            let record = v["record"].as_str().unwrap_or_default();
            // Zone-file form: TXT strings are at most 255 octets each (RFC 1035 §3.3.14).
            let chunks: Vec<String> = record
                .as_bytes()
                .chunks(255)
                .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
                .collect();
            println!(
                "{}. IN TXT {}",
                v["record_name"].as_str().unwrap_or_default(),
                chunks.join(" ")
            );
            return Ok(Value::Null);
        }
    })
}

/// `postcore admin queue …`: the API call and its answer (`Null` when the command
/// printed its own output).
fn queue_command(c: &Client, cmd: QueueCmd) -> Result<Value> {
    Ok(match cmd {
        QueueCmd::List => c.call("GET", "/queue", None)?,
        QueueCmd::Resend { qid: Some(q) } => {
            c.call("POST", &format!("/queue/{q}/resend"), Some(json!({})))?
        }
        QueueCmd::Resend { qid: None } => c.call("POST", "/queue/resend", Some(json!({})))?,
        QueueCmd::Delete { qid: Some(q) } => c.call("DELETE", &format!("/queue/{q}"), None)?,
        QueueCmd::Delete { qid: None } => c.call("DELETE", "/queue", None)?,
    })
}
