//! Managing Sieve scripts, for the admin API, the CLI and ManageSieve alike: upload (checked
//! by compiling, within the quotas), list, show, activate, rename, delete, the global scripts,
//! the vacation shortcut, and import of Pigeonhole script directories.

use crate::context::Shared;
use postcore_protocol::sieve;
use postcore_storage::sieve::{GLOBAL, ScriptInfo, valid_name};

/// Why a script operation failed (each maps to a ManageSieve response code, RFC 5804 §1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SieveError {
    /// The script does not compile: where and why.
    Invalid(String),
    /// The script name is not acceptable.
    BadName,
    /// No such script (NONEXISTENT).
    NotFound(String),
    /// The name is taken (ALREADYEXISTS).
    Exists(String),
    /// The script is active (ACTIVE).
    Active(String),
    /// Over the script count (QUOTA/MAXSCRIPTS) or size (QUOTA/MAXSIZE).
    Quota(&'static str, String),
    /// Storage failure.
    Internal(String),
}

impl std::fmt::Display for SieveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SieveError::Invalid(e) => write!(f, "script error: {e}"),
            SieveError::BadName => write!(f, "invalid script name"),
            SieveError::NotFound(n) => write!(f, "no script named \"{n}\""),
            SieveError::Exists(n) => write!(f, "a script named \"{n}\" exists"),
            SieveError::Active(n) => write!(f, "script \"{n}\" is active"),
            SieveError::Quota(_, m) => write!(f, "{m}"),
            SieveError::Internal(e) => write!(f, "{e}"),
        }
    }
}

fn internal(e: anyhow::Error) -> SieveError {
    SieveError::Internal(format!("{e:#}"))
}

/// Compiles `src`: `Ok` or the error with its line and column (RFC 5804 §2.6).
pub fn check(src: &str) -> Result<(), SieveError> {
    sieve::compile(src)
        .map(|_| ())
        .map_err(|e| SieveError::Invalid(e.to_string()))
}

/// Whether `size` more octets in one script fits (RFC 5804 §2.3 HAVESPACE), `replacing` an
/// existing script of that name or adding one.
pub fn have_space(shared: &Shared, owner: &str, name: &str, size: usize) -> Result<(), SieveError> {
    let limits = &shared.config.sieve;
    if size > limits.max_script_size {
        return Err(SieveError::Quota(
            "MAXSIZE",
            format!("scripts are limited to {} octets", limits.max_script_size),
        ));
    }
    let list = shared.sieve.store.list(owner).map_err(internal)?;
    if !list.iter().any(|s| s.name == name) && list.len() >= limits.max_scripts {
        return Err(SieveError::Quota(
            "MAXSCRIPTS",
            format!("at most {} scripts", limits.max_scripts),
        ));
    }
    Ok(())
}

/// Stores a script after checking its name, the quotas and that it compiles (PUTSCRIPT);
/// its compiled form is stored with it, so delivery never parses it.
pub fn put(shared: &Shared, owner: &str, name: &str, src: &str) -> Result<(), SieveError> {
    if !valid_name(name) {
        return Err(SieveError::BadName);
    }
    have_space(shared, owner, name, src.len())?;
    let script = sieve::compile(src).map_err(|e| SieveError::Invalid(e.to_string()))?;
    let compiled = sieve::stored::encode(&script);
    shared
        .sieve
        .store
        .put(owner, name, src, &compiled)
        .map_err(internal)?;
    tracing::info!(
        owner,
        script = name,
        "sieve: script \"{name}\" of {owner} stored ({} octets)",
        src.len()
    );
    Ok(())
}

/// The owner's scripts.
pub fn list(shared: &Shared, owner: &str) -> Result<Vec<ScriptInfo>, SieveError> {
    shared.sieve.store.list(owner).map_err(internal)
}

/// A script's source.
pub fn get(shared: &Shared, owner: &str, name: &str) -> Result<String, SieveError> {
    shared
        .sieve
        .store
        .get(owner, name)
        .map_err(internal)?
        .ok_or_else(|| SieveError::NotFound(name.into()))
}

/// Activates `name`, or with `None` deactivates (SETACTIVE). For [`GLOBAL`], `after`
/// chooses the "after" slot (else "before").
pub fn activate(
    shared: &Shared,
    owner: &str,
    name: Option<&str>,
    after: bool,
) -> Result<(), SieveError> {
    if let Some(n) = name
        && shared
            .sieve
            .store
            .get(owner, n)
            .map_err(internal)?
            .is_none()
    {
        return Err(SieveError::NotFound(n.into()));
    }
    let store = &shared.sieve.store;
    if owner == GLOBAL {
        store.set_global_active(after, name)
    } else {
        store.set_active(owner, name)
    }
    .map_err(internal)?;
    tracing::info!(
        owner,
        "sieve: active script of {owner}: {}",
        name.unwrap_or("(none)")
    );
    Ok(())
}

/// Deletes a script that is not active (DELETESCRIPT).
pub fn delete(shared: &Shared, owner: &str, name: &str) -> Result<(), SieveError> {
    let store = &shared.sieve.store;
    if store.get(owner, name).map_err(internal)?.is_none() {
        return Err(SieveError::NotFound(name.into()));
    }
    if store.is_active(owner, name).map_err(internal)? {
        return Err(SieveError::Active(name.into()));
    }
    store.delete(owner, name).map_err(internal)?;
    tracing::info!(
        owner,
        script = name,
        "sieve: script \"{name}\" of {owner} deleted"
    );
    Ok(())
}

/// Renames a script (RENAMESCRIPT); an active script stays active.
pub fn rename(shared: &Shared, owner: &str, old: &str, new: &str) -> Result<(), SieveError> {
    if !valid_name(new) {
        return Err(SieveError::BadName);
    }
    let store = &shared.sieve.store;
    if store.get(owner, old).map_err(internal)?.is_none() {
        return Err(SieveError::NotFound(old.into()));
    }
    if store.get(owner, new).map_err(internal)?.is_some() {
        return Err(SieveError::Exists(new.into()));
    }
    store.rename(owner, old, new).map_err(internal)
}

/// The script name the vacation shortcut uses.
pub const VACATION_SCRIPT: &str = "vacation";

/// The vacation shortcut's settings.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct VacationSpec {
    /// Subject of the reply.
    pub subject: Option<String>,
    /// Body of the reply.
    pub body: String,
    /// Last day replies go out (`YYYY-MM-DD`, inclusive); none: until turned off.
    pub until: Option<String>,
    /// First day (`YYYY-MM-DD`).
    pub from_date: Option<String>,
    /// Days between replies to one sender (default 7).
    pub days: Option<u64>,
}

fn sieve_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn valid_day(d: &str) -> bool {
    let b = d.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// Writes and activates the `vacation` script for `login` (the console's out-of-office form):
/// the reply between the dates, then the script that was active before, included (so its
/// rules keep working).
pub fn set_vacation(shared: &Shared, login: &str, v: &VacationSpec) -> Result<String, SieveError> {
    for d in [&v.until, &v.from_date].into_iter().flatten() {
        if !valid_day(d) {
            return Err(SieveError::Invalid(format!(
                "dates are YYYY-MM-DD, not \"{d}\""
            )));
        }
    }
    let previous = shared
        .sieve
        .store
        .active(login)
        .map_err(internal)?
        .filter(|n| n != VACATION_SCRIPT);
    let mut conds = Vec::new();
    if let Some(f) = &v.from_date {
        conds.push(format!(
            "currentdate :value \"ge\" \"date\" {}",
            sieve_string(f)
        ));
    }
    if let Some(u) = &v.until {
        conds.push(format!(
            "currentdate :value \"le\" \"date\" {}",
            sieve_string(u)
        ));
    }
    let mut src = format!(
        "# postcore vacation; previous={}\n",
        previous.as_deref().unwrap_or("")
    );
    src.push_str("require [\"vacation\", \"date\", \"relational\", \"include\"];\n");
    let subject = v
        .subject
        .as_deref()
        .map(|s| format!(":subject {} ", sieve_string(s)))
        .unwrap_or_default();
    let reply = format!(
        "vacation :days {} {subject}{};",
        v.days.unwrap_or(7).clamp(1, 60),
        sieve_string(&v.body)
    );
    if conds.is_empty() {
        src.push_str(&reply);
        src.push('\n');
    } else {
        src.push_str(&format!(
            "if allof ({}) {{\n  {reply}\n}}\n",
            conds.join(", ")
        ));
    }
    if let Some(p) = &previous {
        src.push_str(&format!("include :personal {};\n", sieve_string(p)));
    }
    put(shared, login, VACATION_SCRIPT, &src)?;
    activate(shared, login, Some(VACATION_SCRIPT), false)?;
    Ok(src)
}

/// Turns the vacation shortcut off: the script that was active before is active again.
pub fn clear_vacation(shared: &Shared, login: &str) -> Result<(), SieveError> {
    let src = match shared
        .sieve
        .store
        .get(login, VACATION_SCRIPT)
        .map_err(internal)?
    {
        Some(s) => s,
        None => return Ok(()),
    };
    let previous = src
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("# postcore vacation; previous="))
        .filter(|p| !p.is_empty())
        .map(str::to_string);
    let active = shared.sieve.store.active(login).map_err(internal)?;
    if active.as_deref() == Some(VACATION_SCRIPT) {
        // The earlier script may have been deleted meanwhile: then none is active.
        if let Err(SieveError::NotFound(_)) = activate(shared, login, previous.as_deref(), false) {
            activate(shared, login, None, false)?;
        }
    }
    delete(shared, login, VACATION_SCRIPT)
}
