//! Metric names and the Prometheus recorder.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Counter: accepted connections (every protocol), label `listener`.
pub const CONNECTIONS: &str = "postcore_smtp_connections_total";
/// Gauge: open SMTP connections.
pub const CONNECTIONS_OPEN: &str = "postcore_smtp_connections_open";
/// Gauge: open POP3 connections.
pub const POP3_OPEN: &str = "postcore_pop3_connections_open";
/// Gauge: open IMAP connections.
pub const IMAP_OPEN: &str = "postcore_imap_connections_open";
/// Counter: messages accepted (250 after data).
pub const MESSAGES_RECEIVED: &str = "postcore_messages_received_total";
/// Counter: octets accepted.
pub const BYTES_RECEIVED: &str = "postcore_received_bytes_total";
/// Counter: rejections, label `reason`.
pub const REJECTED: &str = "postcore_smtp_rejected_total";
/// Counter: deliveries, labels `kind` (local), `status` (sent, deferred).
pub const DELIVERIES: &str = "postcore_deliveries_total";
/// Histogram: seconds from arrival to local delivery.
pub const DELIVERY_SECONDS: &str = "postcore_delivery_latency_seconds";
/// Gauge: messages in the queue.
pub const QUEUE_LENGTH: &str = "postcore_queue_messages";
/// Gauge: octets in the queue.
pub const QUEUE_BYTES: &str = "postcore_queue_bytes";

/// Counter: scans by `result` (clean, infected, blocked, busy, timeout).
pub const SCANS: &str = "postcore_scans_total";
/// Histogram: seconds one message's content scan took.
pub const SCAN_SECONDS: &str = "postcore_scan_seconds";
/// Counter: octets decoded and unpacked by the content walk.
pub const SCAN_BYTES: &str = "postcore_scan_unpacked_bytes_total";
/// Counter: content-walk limits reached, label `limit` (depth, size, files, ratio, encrypted).
pub const SCAN_LIMITS: &str = "postcore_scan_limits_total";
/// Counter: signature database reloads, label `result` (ok, failed).
pub const AV_RELOADS: &str = "postcore_av_reloads_total";
/// Counter: antispam judgements by `action` (no action, greylist, add header, reject).
pub const SPAM_ACTIONS: &str = "postcore_spam_actions_total";
/// Counter: antispam rule hits by `symbol`.
pub const SPAM_SYMBOLS: &str = "postcore_spam_symbol_hits_total";
/// Counter: greylisting decisions by `result` (deferred, passed).
pub const GREYLIST: &str = "postcore_greylist_total";
/// Counter: Bayes learning, labels `class` (spam, ham), `source` (imap, admin) and
/// `outcome` (learned, relearned, already learned, forgotten, failed). Its verdicts are
/// counted as the symbols `BAYES_SPAM`/`BAYES_HAM` in [`SPAM_SYMBOLS`].
pub const BAYES_LEARNS: &str = "postcore_bayes_learns_total";
/// Histogram: seconds the antispam rules took on one message.
pub const SPAM_SECONDS: &str = "postcore_spam_seconds";
/// Counter: sender authentication results, labels `method` (spf, dkim, dmarc) and `result`
/// (pass, fail, softfail, neutral, none, temperror, permerror).
pub const AUTH_RESULTS: &str = "postcore_auth_results_total";
/// Counter: DNS block-list listings found, label `zone`.
pub const DNS_LISTINGS: &str = "postcore_dns_listings_total";
/// Counter: messages whose DNS budget ran out before every lookup answered.
pub const DNS_BUDGET_EXCEEDED: &str = "postcore_dns_budget_exceeded_total";
/// Histogram: seconds one message's DNS and authentication checks took.
pub const NET_CHECK_SECONDS: &str = "postcore_net_check_seconds";
/// Counter: Sieve scripts run at delivery.
pub const SIEVE_RUNS: &str = "postcore_sieve_runs_total";
/// Counter: Sieve actions carried out, label `action` (keep, fileinto, redirect, discard,
/// reject, vacation, duplicate).
pub const SIEVE_ACTIONS: &str = "postcore_sieve_actions_total";
/// Counter: Sieve scripts that failed (run-time error or limit; the message was kept).
pub const SIEVE_ERRORS: &str = "postcore_sieve_errors_total";
/// Histogram: seconds one Sieve script took.
pub const SIEVE_SECONDS: &str = "postcore_sieve_seconds";
/// Gauge: open ManageSieve connections.
pub const MANAGESIEVE_OPEN: &str = "postcore_managesieve_connections_open";
/// Counter: ManageSieve commands, label `command`.
pub const MANAGESIEVE_COMMANDS: &str = "postcore_managesieve_commands_total";

/// Installs the global recorder and returns the handle that renders `/metrics`.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(DELIVERY_SECONDS.into()),
            &[
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 300.0,
                3600.0,
            ],
        )
        .map_err(|e| anyhow::anyhow!("metrics buckets: {e}"))?
        .set_buckets_for_metric(
            Matcher::Full(NET_CHECK_SECONDS.into()),
            &[0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0],
        )
        .map_err(|e| anyhow::anyhow!("metrics buckets: {e}"))?
        .set_buckets_for_metric(
            Matcher::Full(SCAN_SECONDS.into()),
            &[
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.0, 10.0,
            ],
        )
        .map_err(|e| anyhow::anyhow!("metrics buckets: {e}"))?
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|e| anyhow::anyhow!("metrics recorder: {e}"))?;
    Ok(handle)
}
