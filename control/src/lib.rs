//! The read-only control plane: what a person or a monitoring system sees of a run, computed
//! from the journal's own fold — there is no second database to drift from it.
//!
//! # Layout
//! - [`replica`]: the fold ([`journal::State`]) plus the API's views (equity over time,
//!   round trips, fills, ended orders, LLM conversations), built record by record.
//! - [`arena`]: the replicas one server shows, loading closed journals and the live feed.
//! - [`api`]: the JSON responses as pure functions (nof0's endpoints and shapes, and ours).
//! - [`metrics`]: `/metrics` in Prometheus text.
//! - [`dashboard`]: the embedded one-page dashboard.
//! - [`server`]: routes, the token rule, limits, errors, and [`serve`].

pub mod api;
pub mod arena;
pub mod dashboard;
pub mod metrics;
pub mod replica;
pub mod server;

use std::{future::Future, net::SocketAddr, sync::Arc};

pub use arena::{Arena, Feed, Shared};
pub use metrics::Metrics;
pub use replica::Replica;

/// A bound server, not yet serving: its address is known (port 0 picks one).
#[derive(Debug)]
pub struct Bound {
    pub listener: tokio::net::TcpListener,
    pub addr: SocketAddr,
    pub token: Option<Arc<[u8]>>,
}

/// Binds `addr` after checking the token rule ([`server::check_token`]).
///
/// # Errors
/// The token rule refuses the address, or the address cannot be bound.
pub async fn bind(addr: SocketAddr, token: Option<&str>) -> Result<Bound, std::io::Error> {
    let token =
        server::check_token(addr, token).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    Ok(Bound { listener, addr, token })
}

/// Serves `shared` until `shutdown` completes.
///
/// # Errors
/// The listener failed.
pub async fn serve(
    bound: Bound,
    shared: Shared,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), std::io::Error> {
    let app = server::router(shared, metrics, bound.token);
    axum::serve(bound.listener, app).with_graceful_shutdown(shutdown).await
}
