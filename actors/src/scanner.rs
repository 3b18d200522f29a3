//! The scanner actor: the end-of-data pipeline's scan stage sends it a [`Scan`] and gets a
//! [`postcore_scanner::Verdict`] back. One per core, holding the process's scanner.

use crate::messages::Scan;
use actix::{Actor, Context, Handler, MessageResult};
use postcore_scanner::{AcceptAll, ScanInput, Scanner};
use std::sync::Arc;

/// Per-core actor that runs the configured [`Scanner`].
pub struct ScannerActor {
    scanner: Arc<dyn Scanner>,
}

impl ScannerActor {
    /// An actor running `scanner`.
    pub fn new(scanner: Arc<dyn Scanner>) -> ScannerActor {
        ScannerActor { scanner }
    }
}

/// The scanner this build runs: no filter is configured yet, so every message is accepted.
pub fn configured() -> Arc<dyn Scanner> {
    Arc::new(AcceptAll)
}

impl Actor for ScannerActor {
    type Context = Context<Self>;
}

impl Handler<Scan> for ScannerActor {
    type Result = MessageResult<Scan>;

    fn handle(&mut self, m: Scan, _: &mut Self::Context) -> Self::Result {
        let input = ScanInput::new(&m.context, &m.data);
        MessageResult(self.scanner.scan(&input))
    }
}
