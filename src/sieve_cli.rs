//! `postcore admin sieve …` (users' and global Sieve scripts over the admin API, import of
//! Pigeonhole script directories), `postcore admin user vacation …`, and the offline
//! `postcore sieve-test SCRIPT MESSAGE`, which prints what a script does with a message as
//! Pigeonhole's `sieve-test` does.

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use postcore_protocol::sieve::{self, Envelope, Host, Limits, dates::Moment};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// What the sieve commands need of the admin API client.
pub trait Api {
    /// A JSON call.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value>;
    /// A call whose body is text (a script).
    fn send_text(&self, method: &str, path: &str, body: &str) -> Result<Value>;
}

/// `postcore admin sieve …`. OWNER is a user's login, or `@global` for the administrator's
/// scripts that run before and after every user's.
#[derive(Subcommand)]
pub enum SieveCmd {
    /// List OWNER's scripts (which is active).
    List { owner: String },
    /// Print a script.
    Show { owner: String, name: String },
    /// Upload FILE as script NAME (checked first; "-" reads standard input).
    Put {
        owner: String,
        name: String,
        file: PathBuf,
    },
    /// Make NAME the active script (for @global: --after for the "after" slot).
    Activate {
        owner: String,
        name: String,
        #[arg(long)]
        after: bool,
    },
    /// No active script (for @global: --after for the "after" slot).
    Deactivate {
        owner: String,
        #[arg(long)]
        after: bool,
    },
    /// Rename a script (an active one stays active).
    Rename {
        owner: String,
        name: String,
        to: String,
    },
    /// Delete a script (not the active one).
    Delete { owner: String, name: String },
    /// Check that FILE compiles; errors with line and column.
    Check { file: PathBuf },
    /// Import a user's Pigeonhole scripts: every `*.sieve` in DIR (e.g. ~/sieve), the one
    /// `--active` links to (default: DIR/../.dovecot.sieve) activated.
    Import {
        login: String,
        dir: PathBuf,
        #[arg(long)]
        active: Option<PathBuf>,
    },
}

/// `postcore admin user vacation LOGIN …`: the out-of-office reply.
#[derive(Args)]
pub struct VacationArgs {
    /// The user.
    pub login: String,
    /// Turn the reply off (the script active before is active again).
    #[arg(long)]
    pub off: bool,
    /// Subject of the reply.
    #[arg(long)]
    pub subject: Option<String>,
    /// Text of the reply.
    #[arg(long)]
    pub body: Option<String>,
    /// First day (YYYY-MM-DD).
    #[arg(long)]
    pub from_date: Option<String>,
    /// Last day (YYYY-MM-DD, inclusive).
    #[arg(long)]
    pub until: Option<String>,
    /// Days between two replies to one sender (default 7).
    #[arg(long)]
    pub days: Option<u64>,
}

fn read(file: &Path) -> Result<String> {
    if file == Path::new("-") {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .context("reading standard input")?;
        return Ok(s);
    }
    std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))
}

/// Percent-encodes a path segment (script names may hold spaces and more).
fn seg(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Runs a `postcore admin sieve` command; its answer.
pub fn sieve_command(c: &dyn Api, cmd: SieveCmd) -> Result<Value> {
    let slot = |after: bool| json!({"slot": if after { "after" } else { "before" }});
    Ok(match cmd {
        SieveCmd::List { owner } => c.call("GET", &format!("/sieve/{}", seg(&owner)), None)?,
        SieveCmd::Show { owner, name } => {
            let v = c.call(
                "GET",
                &format!("/sieve/{}/{}", seg(&owner), seg(&name)),
                None,
            )?;
            print!("{}", v["script"].as_str().unwrap_or_default());
            Value::Null
        }
        SieveCmd::Put { owner, name, file } => c.send_text(
            "PUT",
            &format!("/sieve/{}/{}", seg(&owner), seg(&name)),
            &read(&file)?,
        )?,
        SieveCmd::Activate { owner, name, after } => c.call(
            "POST",
            &format!("/sieve/{}/{}/activate", seg(&owner), seg(&name)),
            Some(slot(after)),
        )?,
        SieveCmd::Deactivate { owner, after } => c.call(
            "POST",
            &format!("/sieve/{}/deactivate", seg(&owner)),
            Some(slot(after)),
        )?,
        SieveCmd::Rename { owner, name, to } => c.call(
            "POST",
            &format!("/sieve/{}/{}/rename", seg(&owner), seg(&name)),
            Some(json!({"to": to})),
        )?,
        SieveCmd::Delete { owner, name } => c.call(
            "DELETE",
            &format!("/sieve/{}/{}", seg(&owner), seg(&name)),
            None,
        )?,
        SieveCmd::Check { file } => c.send_text("POST", "/sieve/check", &read(&file)?)?,
        SieveCmd::Import { login, dir, active } => import(c, &login, &dir, active)?,
    })
}

/// Pigeonhole's layout: `DIR/NAME.sieve` scripts, the active one a symbolic link
/// (`~/.dovecot.sieve` → `sieve/NAME.sieve`).
fn import(c: &dyn Api, login: &str, dir: &Path, active: Option<PathBuf>) -> Result<Value> {
    let mut names = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sieve") && p.is_file())
        .collect();
    entries.sort();
    for p in &entries {
        let name = p
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        c.send_text(
            "PUT",
            &format!("/sieve/{}/{}", seg(login), seg(&name)),
            &read(p)?,
        )
        .with_context(|| format!("importing {}", p.display()))?;
        names.push(name);
    }
    let link = active.unwrap_or_else(|| dir.join("..").join(".dovecot.sieve"));
    let mut activated = Value::Null;
    if let Ok(target) = std::fs::read_link(&link) {
        let name = target
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if names.contains(&name) {
            c.call(
                "POST",
                &format!("/sieve/{}/{}/activate", seg(login), seg(&name)),
                Some(json!({})),
            )?;
            activated = json!(name);
        }
    }
    Ok(json!({"imported": names, "active": activated}))
}

/// Runs `postcore admin user vacation`.
pub fn vacation_command(c: &dyn Api, a: VacationArgs) -> Result<Value> {
    let path = format!("/users/{}/vacation", seg(&a.login));
    if a.off {
        return c.call("DELETE", &path, None);
    }
    let Some(body) = a.body else {
        bail!("--body is needed (or --off)")
    };
    let spec = json!({"subject": a.subject, "body": body, "until": a.until, "from_date": a.from_date, "days": a.days});
    c.call("PUT", &path, Some(spec))
}

/// `postcore sieve-test SCRIPT MESSAGE`: runs a script over a message file offline.
#[derive(Args)]
pub struct SieveTestArgs {
    /// The script.
    pub script: PathBuf,
    /// The message (RFC 5322 file).
    pub message: PathBuf,
    /// Envelope sender.
    #[arg(short = 'f', long, default_value = "sender@example.org")]
    pub from: String,
    /// Envelope recipient.
    #[arg(short = 'r', long, default_value = "recipient@example.org")]
    pub to: String,
    /// Run the script this many times and print the mean time of one run (benchmarks).
    #[arg(long)]
    pub repeat: Option<u32>,
}

struct Offline;

impl Host for Offline {
    fn now(&self) -> Moment {
        let utc = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        Moment { utc, offset: 0 }
    }
}

/// Prints the script's actions; an error when it does not compile.
pub fn sieve_test(a: SieveTestArgs) -> Result<()> {
    let src = read(&a.script)?;
    let script =
        sieve::compile(&src).map_err(|e| anyhow::anyhow!("{}: {e}", a.script.display()))?;
    let msg =
        std::fs::read(&a.message).with_context(|| format!("reading {}", a.message.display()))?;
    let env = Envelope {
        from: a.from,
        to: a.to,
    };
    if let Some(n) = a.repeat.filter(|n| *n > 0) {
        let started = std::time::Instant::now();
        for _ in 0..n {
            std::hint::black_box(sieve::run(&script, &msg, &env, &Offline, Limits::default()));
        }
        let each = started.elapsed().as_secs_f64() / f64::from(n);
        println!("runs={n} mean={:.1}us", each * 1e6);
        return Ok(());
    }
    let out = sieve::run(&script, &msg, &env, &Offline, Limits::default());
    print!("{}", sieve::report(&out));
    Ok(())
}
