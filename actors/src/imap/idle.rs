//! IDLE (RFC 2177): pushes changes to the selected mailbox until the client sends DONE.

use super::{Done, Session};
use postcore_protocol::imap::Code;
use std::time::Duration;

/// How often an IDLE session looks at the folder anyway: changes made outside postcore wake
/// it at once through inotify (`postcore_storage::dirwatch`); this covers folders it cannot
/// watch (the kernel's watch limit reached).
const IDLE_POLL: Duration = Duration::from_secs(30);
/// RFC 9051 §5.4 / RFC 2177: IDLE is ended by the server after this long.
const IDLE_MAX: Duration = Duration::from_secs(29 * 60);

impl Session {
    /// RFC 2177 IDLE: pushes changes until the client sends DONE.
    pub(super) async fn idle(&mut self) -> Done {
        self.line("+ idling");
        if !self.flush().await {
            self.conn.close();
            return Done::Silent;
        }
        let started = std::time::Instant::now();
        let mut shutdown = self.ctx.shared.shutdown.clone();
        // RFC 5465 §4: with NOTIFY, IDLE sends exactly the events NOTIFY asked for.
        let notifying = self.notifier.is_some();
        let selected_too = self.notifier.as_ref().is_none_or(|n| n.watches_selected());
        let mut watch = match &self.sel {
            Some(s) if selected_too => Some(s.watch.clone()),
            _ => None,
        };
        loop {
            if let Some(p) = memchr::memchr(b'\n', &self.conn.inbuf) {
                let line: Vec<u8> = self.conn.inbuf.drain(..=p).collect();
                let l = String::from_utf8_lossy(&line);
                return if l.trim().eq_ignore_ascii_case("DONE") {
                    self.refresh(true).await;
                    Done::ok("IDLE terminated")
                } else {
                    Done::bad("Expected DONE")
                };
            }
            if self.conn.inbuf.len() > 1024 {
                return Done::bad("Expected DONE");
            }
            enum Ev {
                Data,
                Closed,
                Changed,
                Poll,
                Stop,
            }
            let mut others = self
                .notifier
                .as_mut()
                .map(|n| n.take_watches())
                .unwrap_or_default();
            let ev = tokio::select! {
                r = self.conn.read_some() => match r {
                    Ok(_) => Ev::Data,
                    Err(_) => Ev::Closed,
                },
                _ = async {
                    match watch.as_mut() {
                        Some(w) => { let _ = w.changed().await; }
                        None => std::future::pending::<()>().await,
                    }
                } => Ev::Changed,
                _ = super::notify::changed(&mut others), if !others.is_empty() => Ev::Changed,
                _ = tokio::time::sleep(IDLE_POLL) => Ev::Poll,
                _ = shutdown.wait_for(|v| *v) => Ev::Stop,
            };
            if let Some(n) = self.notifier.as_mut() {
                n.restore_watches(others);
            }
            match ev {
                Ev::Data => {}
                Ev::Closed => {
                    self.conn.close();
                    return Done::Silent;
                }
                Ev::Changed | Ev::Poll => {
                    if started.elapsed() > IDLE_MAX {
                        self.bye(None, "Autologout; IDLE for too long");
                        let _ = self.flush().await;
                        self.conn.close();
                        return Done::Silent;
                    }
                    if notifying {
                        self.notify_push().await;
                    } else {
                        self.refresh(true).await;
                        self.update_contexts().await;
                    }
                    if !self.flush().await {
                        self.conn.close();
                        return Done::Silent;
                    }
                }
                Ev::Stop => {
                    self.bye(Some(Code::Unavailable), "Server shutting down");
                    let _ = self.flush().await;
                    self.conn.close();
                    return Done::Silent;
                }
            }
        }
    }
}
