//! `postcore bayes`: the statistical filter's model offline (sa-learn's job) — status,
//! learn-spam/learn-ham/forget from files, directories and mbox files, classify, expire —
//! on the data directory of a stopped server (a running one is reached through
//! `postcore admin bayes`), and `cross-validate`, which picks the classifier's constants
//! inside a training set without touching any store.

use crate::message_files;
use anyhow::{Context, Result};
use postcore_scanner::bayes::memory::MemoryStore;
use postcore_scanner::bayes::tokens::Pairs;
use postcore_scanner::bayes::{
    Bayes, BayesStore, Class, Counts, LearnOutcome, Params, Token, TokenOptions,
};
use postcore_storage::bayes::BayesDb;
use postcore_storage::store::Store;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// `postcore bayes …`
#[derive(clap::Args)]
pub struct BayesArgs {
    /// The store (a RocksDB directory); default: the configuration's `data_dir/db`.
    #[arg(long, global = true)]
    pub db: Option<PathBuf>,
    /// The server's configuration file (for its data directory).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub cmd: BayesCmd,
}

/// The subcommands.
#[derive(clap::Subcommand)]
pub enum BayesCmd {
    /// Learned spam and ham, tokens, store size, whether it is active.
    Status {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Learn messages as spam (files, directories, mbox files).
    LearnSpam {
        /// Where the messages are.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Learn messages as ham.
    LearnHam {
        /// Where the messages are.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Take learned messages back out of the model.
    Forget {
        /// Where the messages are.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Forget everything learned.
    Clear,
    /// Remove the least recently learned tokens so that at most `keep` remain.
    Expire {
        /// Tokens to keep.
        #[arg(long, default_value_t = 1_000_000)]
        keep: u64,
    },
    /// The spam probability of each message (one line each; JSON with `--json`).
    Classify {
        /// One JSON object per message: file, index in the file, probability, symbol.
        #[arg(long)]
        json: bool,
        /// Where the messages are.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// The tokens that decided each message's probability, strongest first.
    Explain {
        /// How many tokens to show per message.
        #[arg(long, default_value_t = 30)]
        top: usize,
        /// Where the messages are.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// k-fold cross-validation of tokenizer and classifier choices on labelled messages, in
    /// memory; every combination of the listed values is tried.
    CrossValidate(Box<CvArgs>),
}

/// Options of `cross-validate`.
#[derive(clap::Args)]
pub struct CvArgs {
    /// Spam messages (files, directories, mbox files).
    #[arg(long, required = true, num_args = 1..)]
    pub spam: Vec<PathBuf>,
    /// Ham messages.
    #[arg(long, required = true, num_args = 1..)]
    pub ham: Vec<PathBuf>,
    /// Folds.
    #[arg(long, default_value_t = 5)]
    pub folds: usize,
    /// Word pairs: `none`, `bigrams`, `osbN` (comma-separated to compare).
    #[arg(long, default_value = "none", value_delimiter = ',')]
    pub pairs: Vec<String>,
    /// Header tokens on or off (comma-separated to compare).
    #[arg(long, default_value = "true", value_delimiter = ',')]
    pub headers: Vec<bool>,
    /// Case kept with variants (true) or folded (false), comma-separated to compare.
    #[arg(long, default_value = "false", value_delimiter = ',')]
    pub case: Vec<bool>,
    /// Oldest Received fields read (comma-separated to compare).
    #[arg(long, default_value = "1000", value_delimiter = ',')]
    pub received: Vec<usize>,
    /// Robinson's s.
    #[arg(long, value_delimiter = ',')]
    pub s: Vec<f64>,
    /// Robinson's x.
    #[arg(long, value_delimiter = ',')]
    pub x: Vec<f64>,
    /// Minimum distance of a token's probability from 0.5.
    #[arg(long, value_delimiter = ',')]
    pub min_strength: Vec<f64>,
    /// Most tokens combined.
    #[arg(long, value_delimiter = ',')]
    pub max_tokens: Vec<usize>,
    /// Minimum times a token was seen.
    #[arg(long, value_delimiter = ',')]
    pub min_count: Vec<u32>,
    /// Weight of a token's ham ratio.
    #[arg(long, value_delimiter = ',')]
    pub ham_weight: Vec<f64>,
    /// Log-odds against spam to overcome.
    #[arg(long, value_delimiter = ',')]
    pub bias: Vec<f64>,
    /// Largest probability of one token (its mirror the smallest; 1: no cap).
    #[arg(long, value_delimiter = ',')]
    pub cap: Vec<f64>,
    /// Brown's c: the combined tokens count as n / c independent ones (1: Fisher's method).
    #[arg(long, value_delimiter = ',')]
    pub dependence: Vec<f64>,
    /// Also list the misclassified messages with their probability.
    #[arg(long)]
    pub errors: bool,
}

/// Runs a `bayes` command.
pub fn run(args: BayesArgs) -> Result<()> {
    if let BayesCmd::CrossValidate(cv) = args.cmd {
        return cross_validate(&cv);
    }
    let dir = match args.db {
        Some(d) => d,
        None => crate::config::load(args.config.as_deref())?
            .data_dir
            .join("db"),
    };
    let store = Store::open(&dir).with_context(|| {
        format!(
            "opening the store at {} (while the server runs, use `postcore admin bayes`)",
            dir.display()
        )
    })?;
    let db = Arc::new(BayesDb::bulk(store));
    let bayes = Bayes::new(db.clone());
    let res = match args.cmd {
        BayesCmd::Status { json } => status(&bayes, json),
        BayesCmd::LearnSpam { paths } => learn(&bayes, &paths, Some(Class::Spam)),
        BayesCmd::LearnHam { paths } => learn(&bayes, &paths, Some(Class::Ham)),
        BayesCmd::Forget { paths } => learn(&bayes, &paths, None),
        BayesCmd::Clear => bayes.store().clear().map_err(anyhow::Error::msg),
        BayesCmd::Expire { keep } => {
            let n = bayes.store().expire(keep).map_err(anyhow::Error::msg)?;
            println!("{n} tokens removed");
            Ok(())
        }
        BayesCmd::Classify { json, paths } => classify(&bayes, &paths, json),
        BayesCmd::Explain { top, paths } => explain(&bayes, &paths, top),
        BayesCmd::CrossValidate(_) => Ok(()),
    };
    db.flush().map_err(anyhow::Error::msg)?;
    res
}

fn status(bayes: &Bayes, json: bool) -> Result<()> {
    let st = bayes.status().map_err(anyhow::Error::msg)?;
    if json {
        println!("{}", serde_json::to_string(&st)?);
    } else {
        println!("{}", status_text(&st));
    }
    Ok(())
}

/// The status as `bayes status` prints it (also for `admin bayes status`).
pub fn status_text(st: &postcore_scanner::bayes::BayesStatus) -> String {
    format!(
        "learned: {} spam, {} ham\ntokens: {}\nstore: {} KiB\nactive: {}{}",
        st.spam,
        st.ham,
        st.tokens,
        st.size_bytes / 1024,
        if st.active { "yes" } else { "no" },
        if st.active {
            String::new()
        } else {
            format!(
                " (training {}%: needs {} spam and {} ham)",
                st.progress_percent, st.needed, st.needed
            )
        }
    )
}

/// Learns (or forgets, with `None`) every message under `paths`: tokenized on every core,
/// learned one at a time.
fn learn(bayes: &Bayes, paths: &[PathBuf], class: Option<Class>) -> Result<()> {
    let files = message_files::files(paths)?;
    let started = std::time::Instant::now();
    let mut outcomes: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut n = 0usize;
    let mut batch: Vec<(Vec<Token>, [u8; 16], Class)> = Vec::new();
    let count = |r: Result<Vec<LearnOutcome>, String>, outcomes: &mut BTreeMap<_, _>| match r {
        Ok(v) => v
            .into_iter()
            .for_each(|o| *outcomes.entry(o.name()).or_default() += 1),
        Err(e) => eprintln!("bayes: {e}"),
    };
    for_each_tokenized(bayes, &files, |_, _, raw, toks, d| {
        n += 1;
        match class {
            // Learned in batches of 500: one write, each token's deltas added up.
            Some(c) => {
                batch.push((toks.to_vec(), *d, c));
                if batch.len() == 500 {
                    count(bayes.learn_batch(&batch), &mut outcomes);
                    batch.clear();
                }
            }
            None => count(bayes.forget(raw).map(|o| vec![o]), &mut outcomes),
        }
    })?;
    if !batch.is_empty() {
        count(bayes.learn_batch(&batch), &mut outcomes);
    }
    let secs = started.elapsed().as_secs_f64();
    let parts: Vec<String> = outcomes.iter().map(|(k, v)| format!("{v} {k}")).collect();
    println!(
        "{n} messages: {} in {secs:.2} s ({:.0} msg/s)",
        parts.join(", "),
        n as f64 / secs.max(1e-9)
    );
    Ok(())
}

/// Reads and tokenizes `files` on every core; calls `f` in file order with (file, index in
/// the file, octets, tokens, digest).
fn for_each_tokenized(
    bayes: &Bayes,
    files: &[PathBuf],
    mut f: impl FnMut(&Path, usize, &[u8], &[Token], &[u8; 16]),
) -> Result<()> {
    type Item = (usize, Result<Vec<(Vec<u8>, Vec<Token>, [u8; 16])>>);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let next = AtomicUsize::new(0);
    let (tx, rx) = std::sync::mpsc::sync_channel::<Item>(256);
    std::thread::scope(|s| -> Result<()> {
        for _ in 0..threads {
            let tx = tx.clone();
            let next = &next;
            s.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = files.get(i) else { break };
                    let r = message_files::messages_in(path).map(|ms| {
                        ms.into_iter()
                            .map(|raw| {
                                let (toks, d) = bayes.tokens_of(&raw);
                                (raw, toks, d)
                            })
                            .collect()
                    });
                    if tx.send((i, r)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        // In file order, whatever order the threads finish in.
        let mut pending = BTreeMap::new();
        let mut want = 0;
        for (i, r) in rx {
            pending.insert(i, r);
            while let Some(r) = pending.remove(&want) {
                for (k, (raw, toks, d)) in r?.iter().enumerate() {
                    f(&files[want], k, raw, toks, d);
                }
                want += 1;
            }
        }
        Ok(())
    })
}

fn classify(bayes: &Bayes, paths: &[PathBuf], json: bool) -> Result<()> {
    let files = message_files::files(paths)?;
    let totals = bayes.store().totals().map_err(anyhow::Error::msg)?;
    let active = bayes.active(totals);
    let mut err = None;
    for_each_tokenized(bayes, &files, |path, k, _, toks, _| {
        let c = match bayes.classify_tokens(toks, totals) {
            Ok((_, c)) => c,
            Err(e) => {
                err = Some(e);
                return;
            }
        };
        let p = active.then_some(c.probability);
        let sym = active
            .then(|| postcore_scanner::bayes::symbol(&c, &bayes.params))
            .flatten();
        if json {
            let v = serde_json::json!({
                "file": path.display().to_string(),
                "index": k,
                "probability": p,
                "symbol": sym.map(|s| s.0),
                "score": sym.map(|s| s.1),
                "tokens": toks.len(),
                "used": c.used,
            });
            println!("{v}");
        } else {
            let shown = p.map_or("inactive".to_string(), |p| format!("{p:.4}"));
            let sym = sym.map_or(String::new(), |(n, s)| format!(" {n}({s:.2})"));
            println!("{}#{k}: {shown}{sym}", path.display());
        }
    })?;
    match err {
        Some(e) => Err(anyhow::anyhow!(e)),
        None => Ok(()),
    }
}

/// Every combination of the classifier constants listed (defaults where none is).
fn param_grid(cv: &CvArgs) -> Vec<Params> {
    let d = Params::default();
    let or = |v: &[f64], x: f64| if v.is_empty() { vec![x] } else { v.to_vec() };
    let mut grid = vec![d];
    let mut vary = |values: Vec<f64>, set: &dyn Fn(&mut Params, f64)| {
        grid = grid
            .iter()
            .flat_map(|p| {
                values.iter().map(move |v| {
                    let mut q = *p;
                    set(&mut q, *v);
                    q
                })
            })
            .collect();
    };
    vary(or(&cv.s, d.s), &|p, v| p.s = v);
    vary(or(&cv.x, d.x), &|p, v| p.x = v);
    vary(or(&cv.min_strength, d.min_strength), &|p, v| {
        p.min_strength = v
    });
    let maxes: Vec<f64> = cv.max_tokens.iter().map(|m| *m as f64).collect();
    vary(or(&maxes, d.max_tokens as f64), &|p, v| {
        p.max_tokens = v as usize
    });
    let mins: Vec<f64> = cv.min_count.iter().map(|m| f64::from(*m)).collect();
    vary(or(&mins, f64::from(d.min_count)), &|p, v| {
        p.min_count = v as u32
    });
    vary(or(&cv.ham_weight, d.ham_weight), &|p, v| p.ham_weight = v);
    vary(or(&cv.bias, d.bias), &|p, v| p.bias = v);
    vary(or(&cv.cap, d.cap), &|p, v| p.cap = v);
    vary(or(&cv.dependence, d.dependence), &|p, v| p.dependence = v);
    grid
}

/// Prints, for each message, its probability and its strongest tokens as
/// `token=f(w) (spam/ham)`.
fn explain(bayes: &Bayes, paths: &[PathBuf], top: usize) -> Result<()> {
    let files = message_files::files(paths)?;
    let totals = bayes.store().totals().map_err(anyhow::Error::msg)?;
    let mut err = None;
    for_each_tokenized(bayes, &files, |path, k, raw, toks, _| {
        let (counts, c) = match bayes.classify_tokens(toks, totals) {
            Ok(x) => x,
            Err(e) => {
                err = Some(e);
                return;
            }
        };
        println!(
            "{}#{k}: probability {:.5}, log-odds {:.2}, {} tokens, {} known, {} used",
            path.display(),
            c.probability,
            c.log_odds,
            toks.len(),
            c.known,
            c.used
        );
        let names = token_names(raw, &bayes.options);
        for line in strongest(toks, &counts, totals, &bayes.params, &names, top) {
            println!("  {line}");
        }
    })?;
    match err {
        Some(e) => Err(anyhow::anyhow!(e)),
        None => Ok(()),
    }
}

/// The `top` strongest tokens of a message as `token=f(w) (spam/ham)`.
fn strongest(
    toks: &[Token],
    counts: &[Counts],
    totals: postcore_scanner::bayes::Totals,
    params: &Params,
    names: &std::collections::HashMap<Token, String>,
    top: usize,
) -> Vec<String> {
    let mut strong: Vec<(f64, &Token, Counts)> = toks
        .iter()
        .zip(counts)
        .filter_map(|(t, c)| {
            postcore_scanner::bayes::classify::token_probability(*c, totals, params)
                .map(|f| (f, t, *c))
        })
        .filter(|(f, _, _)| (f - 0.5).abs() >= params.min_strength)
        .collect();
    strong.sort_by(|a, b| (b.0 - 0.5).abs().total_cmp(&(a.0 - 0.5).abs()));
    strong
        .iter()
        .take(top)
        .map(|(f, t, c)| {
            let name = names.get(t).map_or("?", String::as_str);
            format!("{name}={f:.3} ({}/{})", c.spam, c.ham)
        })
        .collect()
}

/// One labelled message of a cross-validation.
struct Labelled {
    file: String,
    /// Token texts by hash (with `--errors` only).
    names: std::collections::HashMap<Token, String>,
    tokens: Vec<Token>,
    digest: [u8; 16],
    spam: bool,
}

fn token_names(raw: &[u8], options: &TokenOptions) -> std::collections::HashMap<Token, String> {
    postcore_scanner::bayes::tokens::texts_of_raw(raw, options)
        .into_iter()
        .map(|t| (postcore_scanner::bayes::tokens::hash(t.as_bytes()), t))
        .collect()
}

fn parse_pairs(s: &str) -> Result<Pairs> {
    Ok(match s {
        "none" => Pairs::None,
        "bigrams" => Pairs::Bigrams,
        o => Pairs::Osb(
            o.strip_prefix("osb")
                .and_then(|n| n.parse().ok())
                .with_context(|| format!("--pairs {o}: none, bigrams or osbN"))?,
        ),
    })
}

fn cross_validate(cv: &CvArgs) -> Result<()> {
    let grid = param_grid(cv);
    let spam_files = message_files::files(&cv.spam)?;
    let ham_files = message_files::files(&cv.ham)?;
    println!(
        "pairs\theaders\ts\tx\tmin_strength\tmax_tokens\tmin_count\tham_weight/bias/cap/dependence\tspam\tham\trecall%\tfp\tfp%\tunsure\trecall%@1fp"
    );
    for pairs in &cv.pairs {
        for (&headers, &case, &received) in cv.headers.iter().flat_map(|h| {
            cv.case
                .iter()
                .flat_map(move |c| cv.received.iter().map(move |r| (h, c, r)))
        }) {
            let options = TokenOptions {
                pairs: parse_pairs(pairs)?,
                headers,
                case,
                received,
            };
            let mut tokenizer = Bayes::new(Arc::new(MemoryStore::new()));
            tokenizer.options = options;
            let mut all: Vec<Labelled> = Vec::new();
            for (files, spam) in [(&spam_files, true), (&ham_files, false)] {
                for_each_tokenized(&tokenizer, files, |path, _, raw, toks, d| {
                    let names = if cv.errors {
                        token_names(raw, &options)
                    } else {
                        Default::default()
                    };
                    all.push(Labelled {
                        names,
                        file: path.display().to_string(),
                        tokens: toks.to_vec(),
                        digest: *d,
                        spam,
                    });
                })?;
            }
            for params in &grid {
                let r = folds(&all, cv.folds, params, cv.errors)?;
                let p = params;
                println!(
                    "{pairs}\t{headers}/{case}/{received}\t{}\t{}\t{}\t{}\t{}\t{}/{}/{}/{}\t{}\t{}\t{:.2}\t{}\t{:.3}\t{}\t{:.2}",
                    p.s,
                    p.x,
                    p.min_strength,
                    p.max_tokens,
                    p.min_count,
                    p.ham_weight,
                    p.bias,
                    p.cap,
                    p.dependence,
                    r.spam,
                    r.ham,
                    100.0 * r.caught as f64 / r.spam.max(1) as f64,
                    r.fp,
                    100.0 * r.fp as f64 / r.ham.max(1) as f64,
                    r.unsure,
                    r.recall_at_one_fp(),
                );
            }
        }
    }
    Ok(())
}

#[derive(Default)]
struct CvResult {
    /// Log-odds of the spam and of the ham messages.
    spam_probs: Vec<f64>,
    ham_probs: Vec<f64>,
    spam: usize,
    ham: usize,
    caught: usize,
    fp: usize,
    unsure: usize,
}

impl CvResult {
    /// Recall with the threshold just above the second most spammy ham (one false
    /// positive): how well the classes separate, whatever the calibration.
    fn recall_at_one_fp(&self) -> f64 {
        let mut h = self.ham_probs.clone();
        h.sort_by(|a, b| b.total_cmp(a));
        let t = h.get(1).copied().unwrap_or(f64::NEG_INFINITY);
        let caught = self.spam_probs.iter().filter(|p| **p > t).count();
        100.0 * caught as f64 / self.spam_probs.len().max(1) as f64
    }
}

/// Message `i` is in fold `i % k`: each fold is tested on a model of the others.
fn folds(all: &[Labelled], k: usize, params: &Params, errors: bool) -> Result<CvResult> {
    let mut r = CvResult::default();
    for fold in 0..k.max(2) {
        let store = Arc::new(MemoryStore::new());
        let mut b = Bayes::new(store.clone());
        b.params = *params;
        b.min_learned = 0;
        for (i, m) in all.iter().enumerate() {
            if i % k.max(2) != fold {
                let class = if m.spam { Class::Spam } else { Class::Ham };
                b.learn_tokens(&m.tokens, &m.digest, class)
                    .map_err(anyhow::Error::msg)?;
            }
        }
        let totals = store.totals().map_err(anyhow::Error::msg)?;
        for (i, m) in all.iter().enumerate() {
            if i % k.max(2) != fold {
                continue;
            }
            let (counts, c) = b
                .classify_tokens(&m.tokens, totals)
                .map_err(anyhow::Error::msg)?;
            let p = c.probability;
            if errors && (p > 0.5) != m.spam {
                let what = if m.spam { "missed" } else { "false positive" };
                println!("# {what} {p:.4} {}", m.file);
                let shown = strongest(&m.tokens, &counts, totals, params, &m.names, 25);
                println!("#   {}", shown.join("  "));
            }
            if (0.3..0.7).contains(&p) {
                r.unsure += 1;
            }
            if m.spam {
                r.spam_probs.push(c.log_odds);
            } else {
                r.ham_probs.push(c.log_odds);
            }
            if m.spam {
                r.spam += 1;
                r.caught += usize::from(p > 0.5);
            } else {
                r.ham += 1;
                r.fp += usize::from(p > 0.5);
            }
        }
    }
    Ok(r)
}
