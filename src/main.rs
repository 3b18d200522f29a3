//! `postcore`: the mail appliance binary — `postcore serve` runs the server, `postcore admin`
//! is the command-line client of the admin API.

mod admin_cli;
mod bayes_cli;
mod config;
mod filter_cli;
mod message_files;
mod scan_cli;
mod sieve_cli;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Command line.
#[derive(Parser)]
#[command(
    name = "postcore",
    version,
    about = "Mail server: SMTP, submission, queue, Maildir delivery"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the server (embedded default configuration without --config).
    Serve {
        /// Configuration file (TOML); keys left out keep their defaults.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print the default configuration as TOML and exit.
        #[arg(long)]
        print_default_config: bool,
    },
    /// Administer a running server through its admin API.
    Admin {
        /// The server's configuration file (admin address and token are read from it).
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        cmd: admin_cli::AdminCmd,
    },
    /// Scan files or messages with the antivirus, as the server would (exit 1 if infected).
    Scan(scan_cli::ScanArgs),
    /// The antispam filter offline: `filter check FILE…` prints each message's verdict.
    Filter {
        #[command(subcommand)]
        cmd: filter_cli::FilterCmd,
    },
    /// The statistical filter's model offline (server stopped): status, learn-spam,
    /// learn-ham, forget, classify, expire, cross-validate.
    Bayes(Box<bayes_cli::BayesArgs>),
    /// Run a Sieve script over a message file offline and print its actions (as Pigeonhole's
    /// sieve-test does).
    SieveTest(sieve_cli::SieveTestArgs),
}

/// glibc: serve allocations of 4 MiB and more from their own mappings, always. By default
/// glibc raises that threshold once such a block is freed, after which each 19 MiB Argon2
/// block lands in a per-thread arena and stays resident (provisioning 11 users and 5,001
/// addresses left the process at 219 MiB RSS instead of 24).
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before any other thread runs.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
    }
}

/// Ends the process at once with `code`, output flushed.
fn exit_now(code: i32) -> Result<()> {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: _exit ends the process immediately; output was flushed above.
    unsafe { libc::_exit(code) }
}

/// The command-line tools end quietly when their reader goes away (`postcore bayes classify
/// DIR | head`), as Unix tools do, rather than panicking on the failed print. The server keeps
/// Rust's default (SIGPIPE ignored); std's sockets send with MSG_NOSIGNAL either way.
fn die_on_closed_pipe() {
    // SAFETY: sets one signal's disposition to the default, before any other thread runs.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() {
    tune_allocator();
    let cli = Cli::parse();
    if !matches!(cli.cmd, Cmd::Serve { .. }) {
        die_on_closed_pipe();
    }
    let res: Result<()> = match cli.cmd {
        Cmd::Serve {
            print_default_config: true,
            ..
        } => {
            print!("{}", postcore_actors::Config::default_toml());
            Ok(())
        }
        Cmd::Serve { config, .. } => config::load(config.as_deref()).and_then(|c| {
            config::init_logging();
            postcore_actors::run(c)?;
            // The store is flushed and quiesced: leave at once (see `postcore_actors::run`).
            use std::io::Write;
            let _ = std::io::stderr().flush();
            // SAFETY: _exit ends the process immediately; nothing is left to clean up.
            unsafe { libc::_exit(0) }
        }),
        Cmd::Admin { config, cmd } => {
            config::load(config.as_deref()).and_then(|c| admin_cli::run(&c, cmd))
        }
        // Both may hold a RocksDB store whose threads still run: they leave without running
        // RocksDB's static destructors under them (nothing is left unwritten: the Bayes
        // commands flush, `filter check` only reads).
        Cmd::Filter { cmd } => match filter_cli::run(cmd) {
            Ok(spam) => exit_now(i32::from(spam)),
            Err(e) => Err(e),
        },
        Cmd::Bayes(args) => bayes_cli::run(*args).and_then(|()| exit_now(0)),
        Cmd::SieveTest(args) => sieve_cli::sieve_test(args),
        Cmd::Scan(args) => match scan_cli::run(args) {
            Ok(true) => std::process::exit(1),
            Ok(false) => Ok(()),
            Err(e) => Err(e),
        },
    };
    if let Err(e) = res {
        eprintln!("postcore: {e:#}");
        let _ = exit_now(1);
    }
}
