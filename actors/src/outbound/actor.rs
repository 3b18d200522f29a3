//! The outbound actor: owns the SMTP client engine (resolver, TLS, connection cache, limits
//! per destination) and sends queued messages to one destination per [`SendRoute`],
//! answering each recipient's [`super::Outcome`]. One per process, beside the queue actor.

use super::Outbound;
use crate::messages::{CloseIdle, RouteOutcome, SendRoute};
use actix::{Actor, Context, Handler, ResponseFuture};
use std::rc::Rc;

/// The actor around the [`Outbound`] engine.
pub struct OutboundActor {
    engine: Rc<Outbound>,
}

impl OutboundActor {
    /// An actor sending through `engine`.
    pub fn new(engine: Outbound) -> OutboundActor {
        OutboundActor {
            engine: Rc::new(engine),
        }
    }
}

impl Actor for OutboundActor {
    type Context = Context<Self>;
}

impl Handler<SendRoute> for OutboundActor {
    type Result = ResponseFuture<Vec<RouteOutcome>>;

    fn handle(&mut self, m: SendRoute, _: &mut Self::Context) -> Self::Result {
        let engine = self.engine.clone();
        Box::pin(async move { engine.deliver(&m.route, &m.helo, m.jobs).await })
    }
}

impl Handler<CloseIdle> for OutboundActor {
    type Result = ();

    fn handle(&mut self, _: CloseIdle, _: &mut Self::Context) {
        self.engine.close_idle();
    }
}
