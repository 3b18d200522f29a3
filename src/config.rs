//! Loading the configuration file and setting up logging.

use anyhow::{Context, Result};
use postcore_actors::Config;
use std::path::Path;

/// Reads `path`, or the embedded default when there is none.
pub fn load(path: Option<&Path>) -> Result<Config> {
    match path {
        None => Ok(Config::default()),
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            let mut cfg =
                Config::from_toml(&text).with_context(|| format!("in {}", p.display()))?;
            // A relative data_dir is relative to the configuration file.
            if cfg.data_dir.is_relative()
                && let Some(dir) = p.parent()
            {
                cfg.data_dir = dir.join(&cfg.data_dir);
            }
            Ok(cfg)
        }
    }
}

/// One line per event on stderr, maillog-style; `RUST_LOG` filters (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}
