//! `quantfold serve`: the control plane over closed journals (a backtest's `--journal`, a
//! stopped live run's). Each journal is folded once at start; the answers never change
//! while it runs, so nothing is re-read.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use anyhow::Context;

/// Arguments of `quantfold serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A journal directory (repeatable).
    #[arg(long, required = true)]
    pub journal: Vec<PathBuf>,
    /// Where to listen; port 0 picks a free port. A non-loopback address needs a bearer
    /// token in the QUANTFOLD_API_TOKEN environment variable.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let token = std::env::var(control::server::TOKEN_ENV).ok();
    // Refuse a bad address/token pairing before spending time folding journals.
    control::server::check_token(args.listen, token.as_deref())?;
    let mut arena = control::Arena::default();
    for dir in &args.journal {
        let source = control::arena::load(dir).with_context(|| format!("failed to load journal {}", dir.display()))?;
        arena.add(source);
    }
    arena.ready = true;
    let shared = control::Shared::new(arena);
    let metrics = control::Metrics::new(shared.clone());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the server runtime")?;
    runtime.block_on(async {
        let bound = control::bind(args.listen, token.as_deref())
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        // The first line of stdout names the URL, so scripts and tests can find a port 0 server.
        say!("serving http://{}/", bound.addr);
        control::serve(bound, shared, metrics, shutdown_signal()).await.context("the server failed")
    })?;
    Ok(ExitCode::SUCCESS)
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
