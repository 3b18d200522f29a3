//! `postcore scan`: the filter's antivirus over files on disk, clamscan-style (`PATH: NAME
//! FOUND` / `PATH: OK`), with the same engine and limits the server uses. For checking a
//! signature directory before it goes live, and for the parity harness and benchmarks in
//! `bench/`.

use anyhow::{Context, Result};
use postcore_scanner::content::{self, Limits};
use postcore_scanner::filter::{Filter, FilterPolicy};
use postcore_scanner::{MessageAction, ScanContext, ScanInput};
use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Options of `postcore scan`.
#[derive(clap::Args)]
pub struct ScanArgs {
    /// Signature directory (ClamAV databases).
    #[arg(long, short = 'd')]
    pub signatures: PathBuf,
    /// Scanning threads (0 = one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Treat each file as a file (attachment) rather than a message (default: `.eml` and
    /// `.msg` files are messages, anything else a file).
    #[arg(long)]
    pub files: bool,
    /// Keep compiled databases here between runs (a later load with the same signatures
    /// reads them back instead of compiling).
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Print only infected files.
    #[arg(long)]
    pub infected: bool,
    /// Files or directories (recursed).
    pub paths: Vec<PathBuf>,
}

fn collect(p: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let meta = std::fs::metadata(p).with_context(|| format!("{}", p.display()))?;
    if meta.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(p)
            .with_context(|| format!("{}", p.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for e in entries {
            collect(&e, out)?;
        }
    } else {
        out.push(p.to_path_buf());
    }
    Ok(())
}

/// The signature that fires in one file, if any.
fn scan_one(
    filter: &Filter,
    ctx: &ScanContext,
    path: &Path,
    as_file: bool,
) -> Result<Option<String>> {
    let data = std::fs::read(path).with_context(|| format!("{}", path.display()))?;
    let message = !as_file
        && path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("eml") || e.eq_ignore_ascii_case("msg"));
    if message {
        let (v, report) = filter.scan_report(&ScanInput::new(ctx, &data));
        return Ok(match v.action {
            MessageAction::Accept => None,
            _ => report.virus.or(report.blocked),
        });
    }
    let mut found = None;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    content::walk_file(&data, &name, Limits::default(), &mut |o| {
        found = filter.scan_object(o);
        if found.is_some() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    Ok(found)
}

/// Runs the command; exit status 1 when something was found (as clamscan).
pub fn run(a: ScanArgs) -> Result<bool> {
    let started = Instant::now();
    let filter = Filter::with_cache(&a.signatures, a.cache.as_deref());
    let status = filter.status();
    if status.last_reload != "ok" {
        anyhow::bail!("signatures: {}", status.last_reload);
    }
    let load = started.elapsed();
    let mut files = Vec::new();
    for p in &a.paths {
        collect(p, &mut files)?;
    }
    let mut ctx = ScanContext::for_test(&["postmaster@localhost"]);
    ctx.qid = "scan".into();
    // The antivirus and the attachment rules only, as clamscan: the antispam judgement is
    // `postcore filter check`'s.
    let mut policy = FilterPolicy {
        discard_infected: false,
        ..FilterPolicy::default()
    };
    policy.spam.enabled = false;
    ctx.policy = policy;
    let threads = if a.threads > 0 {
        a.threads
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    };
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Result<Option<String>>)>> = Mutex::new(Vec::new());
    let scan_started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = files.get(i) else { break };
                    let r = scan_one(&filter, &ctx, path, a.files);
                    if let Ok(mut v) = results.lock() {
                        v.push((i, r));
                    }
                }
            });
        }
    });
    let scan = scan_started.elapsed();
    let mut results = results.into_inner().unwrap_or_default();
    results.sort_by_key(|(i, _)| *i);
    let mut out = std::io::stdout().lock();
    let mut infected = 0;
    for (i, r) in results {
        let p = files[i].display();
        match r {
            Ok(Some(name)) => {
                infected += 1;
                writeln!(out, "{p}: {name} FOUND")?;
            }
            Ok(None) if !a.infected => writeln!(out, "{p}: OK")?,
            Ok(None) => {}
            Err(e) => writeln!(out, "{p}: ERROR {e:#}")?,
        }
    }
    eprintln!(
        "postcore scan: signatures {} (load+compile {:.3} s), {} files, {} infected, scan {:.3} s ({:.1} files/s, {} threads)",
        status.stats.loaded_text(),
        load.as_secs_f64(),
        files.len(),
        infected,
        scan.as_secs_f64(),
        files.len() as f64 / scan.as_secs_f64().max(1e-9),
        threads
    );
    Ok(infected > 0)
}
