//! `postcore filter check`: the antispam verdict of message files, as `rspamc` prints it
//! (action, score / threshold, every symbol with its score), or one JSON object per message
//! with `--json`. Same rules and thresholds as the server; for trying rules before they go
//! live, and for the quality and speed benchmarks in `bench/`.

use anyhow::{Context, Result};
use postcore_scanner::bayes::Bayes;
use postcore_scanner::spam::{Antispam, SpamPolicy};
use postcore_scanner::{ScanContext, ScanInput};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// `postcore filter …`
#[derive(clap::Subcommand)]
pub enum FilterCmd {
    /// Judge message files with the antispam rules (exit 1 when any is spam).
    Check(CheckArgs),
}

/// Options of `postcore filter check`.
#[derive(clap::Args)]
pub struct CheckArgs {
    /// Rule directories or files (SpamAssassin syntax) read after the built-in rules, as
    /// `[scanner] spam_rules` in the server's configuration.
    #[arg(long = "rules", short = 'r')]
    pub rules: Vec<PathBuf>,
    /// Keep compiled rule databases here between runs.
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// One JSON object per message: file, action, score, threshold, spam, symbols.
    #[arg(long)]
    pub json: bool,
    /// Envelope sender to judge with (default: the null sender).
    #[arg(long, default_value = "")]
    pub from: String,
    /// Judging threads (0 = one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Add the Bayes classifier's symbol, with the model of this store (a RocksDB directory:
    /// a stopped server's `data_dir/db`, or one `postcore bayes --db` learned into).
    #[arg(long)]
    pub bayes_db: Option<PathBuf>,
    /// Message files (a leading mbox `From ` line is skipped).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// Runs a filter command; `Ok(true)` when a message is spam.
pub fn run(cmd: FilterCmd) -> Result<bool> {
    match cmd {
        FilterCmd::Check(args) => check(args),
    }
}

fn check(args: CheckArgs) -> Result<bool> {
    let spam = Antispam::new();
    if !args.rules.is_empty() {
        let report = spam
            .load(&args.rules, args.cache.as_deref())
            .map_err(anyhow::Error::msg)
            .context("loading rules")?;
        eprintln!(
            "rules: {} loaded {:?}; regexes: {} hyperscan, {} prefiltered, {} fancy-regex ({} narrowed for plain texts); {} built-in checks; {} lines skipped; {} ms",
            report.total_loaded(),
            report.loaded,
            report.hyperscan,
            report.prefiltered,
            report.fallback,
            report.narrowed,
            report.evals,
            report.total_skipped(),
            report.compile_ms,
        );
    }
    let bayes = match &args.bayes_db {
        Some(dir) => {
            let store = postcore_storage::store::Store::open(dir)
                .with_context(|| format!("opening the Bayes store {}", dir.display()))?;
            Some(Bayes::new(std::sync::Arc::new(
                postcore_storage::bayes::BayesDb::new(store),
            )))
        }
        None => None,
    };
    let mut ctx = ScanContext::for_test(&["postmaster@localhost"]);
    ctx.qid = "check".into();
    ctx.mail_from = args.from.clone();
    ctx.helo = None;
    ctx.policy.spam = SpamPolicy::default();
    let threads = if args.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        args.threads
    };
    let started = std::time::Instant::now();
    let next = AtomicUsize::new(0);
    let any_spam = AtomicUsize::new(0);
    let out = Mutex::new(std::io::stdout());
    let errors = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = args.files.get(i) else { break };
                    match judge_file(&spam, bayes.as_ref(), &ctx, path, args.json) {
                        Ok((text, is_spam)) => {
                            if is_spam {
                                any_spam.fetch_add(1, Ordering::Relaxed);
                            }
                            if let Ok(mut o) = out.lock() {
                                let _ = o.write_all(text.as_bytes());
                            }
                        }
                        Err(e) => {
                            if let Ok(mut v) = errors.lock() {
                                v.push(format!("{e:#}"));
                            }
                        }
                    }
                }
            });
        }
    });
    let secs = started.elapsed().as_secs_f64();
    let n = args.files.len();
    eprintln!(
        "judged {n} messages in {secs:.3} s ({:.1} msg/s, {threads} threads; rule loading not counted)",
        n as f64 / secs.max(1e-9)
    );
    let errors = errors.into_inner().unwrap_or_default();
    if let Some(e) = errors.first() {
        anyhow::bail!("{e} ({} files failed)", errors.len());
    }
    Ok(any_spam.load(Ordering::Relaxed) > 0)
}

fn judge_file(
    spam: &Antispam,
    bayes: Option<&Bayes>,
    ctx: &ScanContext,
    path: &PathBuf,
    json: bool,
) -> Result<(String, bool)> {
    let raw = std::fs::read(path).with_context(|| format!("{}", path.display()))?;
    let data = crate::message_files::message_bytes(&raw);
    let j = spam.judge_with(&ScanInput::new(ctx, &data), bayes);
    let threshold = ctx.policy.spam.flag_score;
    let is_spam = threshold.is_some_and(|t| j.score >= t);
    let text = if json {
        let v = serde_json::json!({
            "file": path.display().to_string(),
            "action": j.action.name(),
            "score": j.score,
            "threshold": threshold,
            "spam": is_spam,
            "symbols": j.symbols,
            "micros": j.micros,
        });
        format!("{v}\n")
    } else {
        let mut s = format!(
            "Results for file: {} ({:.3} seconds)\nAction: {}\nSpam: {}\nScore: {:.2} / {}\n",
            path.display(),
            j.micros as f64 / 1e6,
            j.action.name(),
            is_spam,
            j.score,
            threshold.map_or("-".into(), |t| format!("{t:.2}")),
        );
        for h in &j.symbols {
            s.push_str(&format!("Symbol: {} ({:.2})", h.name, h.score));
            if h.count > 1 {
                s.push_str(&format!("[{} hits]", h.count));
            }
            s.push('\n');
        }
        s.push('\n');
        s
    };
    Ok((text, is_spam))
}
