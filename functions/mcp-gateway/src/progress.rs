//! Progress reporting for long tool calls (`notifications/progress`).
//!
//! A request opts in by carrying `_meta.progressToken`; without one, reports are dropped here so
//! tools can report unconditionally. Over HTTP a report turns the response into an SSE stream.

use rmcp::{
    RoleServer,
    model::{ProgressNotificationParam, ProgressToken},
    service::Peer,
};

/// Sends progress for one request, or nothing when the request carried no progress token.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    target: Option<(ProgressToken, Peer<RoleServer>)>,
}

impl Progress {
    /// A reporter that drops every report.
    pub fn disabled() -> Self {
        Self::default()
    }

    /// A reporter for `token` (if any) that sends through `peer`.
    pub fn new(token: Option<ProgressToken>, peer: Peer<RoleServer>) -> Self {
        Self { target: token.map(|token| (token, peer)) }
    }

    /// Whether the client asked for progress.
    pub fn is_enabled(&self) -> bool {
        self.target.is_some()
    }

    /// Reports `done` out of `total` (if known) with a short message.
    pub async fn report(&self, done: f64, total: Option<f64>, message: impl Into<String>) {
        let Some((token, peer)) = &self.target else {
            return;
        };
        let mut param = ProgressNotificationParam::new(token.clone(), done);
        param.total = total;
        param.message = Some(message.into());
        if let Err(error) = peer.notify_progress(param).await {
            tracing::debug!(%error, "progress notification not delivered");
        }
    }
}
