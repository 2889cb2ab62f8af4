//! `quantfold live --serve ADDR`: the control plane over the running session.
//!
//! The server and the task folding its replica run on the session's tokio runtime; the
//! engine thread only hands them records. After each step it sends what the journal holds
//! past the last record sent (read back through the journal handle, which includes the
//! open block), so a record appended by any path — a step, a stop, a reconciliation — is
//! sent at the next forward, in order, exactly once. Sending never blocks the engine.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use control::metrics::{EndpointErrorLabels, EndpointLabels};
use journal::{Envelope, Journal};

/// The engine's side of the served replica.
pub struct Served {
    feed: control::Feed,
    /// The durable point last sent, to skip repeats.
    durable: Option<u64>,
}

impl Served {
    /// Binds `addr`, starts the server and the folding task on `runtime`, and prints the URL
    /// as the first stdout line. The session then sends it the journal as it stands (a
    /// resumed run's history) and says when that is done ([`Served::caught_up`]).
    ///
    /// # Errors
    /// The token rule refuses the address, it cannot be bound, or the journal cannot be read.
    pub fn start(
        runtime: &tokio::runtime::Runtime,
        addr: SocketAddr,
        journal: &Journal,
        (shared, metrics): (control::Shared, Arc<control::Metrics>),
    ) -> anyhow::Result<Served> {
        let token = std::env::var(control::server::TOKEN_ENV).ok();
        let bound = runtime
            .block_on(control::bind(addr, token.as_deref()))
            .with_context(|| format!("cannot serve on {addr}"))?;
        let name = journal.path().file_name().map_or_else(|| "journal".into(), |n| n.to_string_lossy().into_owned());
        let (feed, fold) = control::arena::feed(&shared, &name);
        runtime.spawn(fold);
        let url = format!("http://{}/", bound.addr);
        runtime.spawn(async move {
            // The runtime's shutdown at the end of the session ends the server.
            if let Err(e) = control::serve(bound, shared, metrics, std::future::pending()).await {
                tracing::warn!("the API server stopped: {e}");
            }
        });
        say!("serving {url}");
        Ok(Served { feed, durable: None })
    }

    /// A journaled record, in order.
    pub fn record(&self, env: &Envelope) {
        self.feed.record(env);
    }

    /// The journal's durable point, sent when it moved.
    pub fn durable(&mut self, durable: Option<u64>) {
        if durable != self.durable {
            self.durable = durable;
            self.feed.durable(durable);
        }
    }

    /// The journal as it stood at start has been sent: the API is ready.
    pub fn caught_up(&self) {
        self.feed.caught_up();
    }
}

/// The session's metrics, made before the venue's client so that it can report to them.
pub fn metrics() -> (control::Shared, Arc<control::Metrics>) {
    let shared = control::Shared::default();
    let metrics = control::Metrics::new(shared.clone());
    (shared, metrics)
}

/// The venue client's requests into the exchange families of `/metrics`.
#[derive(Debug)]
pub struct VenueMetrics {
    pub metrics: Arc<control::Metrics>,
    pub venue: &'static str,
}

impl VenueMetrics {
    fn labels(&self, endpoint: &str) -> EndpointLabels {
        EndpointLabels { venue: self.venue.to_owned(), endpoint: endpoint.to_owned() }
    }
}

impl bybit::Observer for VenueMetrics {
    fn answered(&self, endpoint: &str, took: Duration, code: Option<&str>) {
        let shell = &self.metrics.shell;
        shell.rest_latency.get_or_create(&self.labels(endpoint)).observe(took.as_secs_f64());
        if let Some(code) = code {
            let labels = EndpointErrorLabels {
                venue: self.venue.to_owned(),
                endpoint: endpoint.to_owned(),
                code: code.to_owned(),
            };
            shell.rest_errors.get_or_create(&labels).inc();
        }
    }

    fn waited(&self, endpoint: &str, took: Duration) {
        let shell = &self.metrics.shell;
        shell.rate_limit_waits.get_or_create(&self.labels(endpoint)).inc();
        shell.rate_limit_wait_seconds.get_or_create(&self.labels(endpoint)).inc_by(took.as_secs_f64());
    }
}

/// Hyperliquid's client reports the same families (endpoints such as `/exchange order`).
impl hyperliquid::rest::Observer for VenueMetrics {
    fn answered(&self, endpoint: &str, took: Duration, code: Option<&str>) {
        bybit::Observer::answered(self, endpoint, took, code);
    }

    fn waited(&self, endpoint: &str, took: Duration) {
        bybit::Observer::waited(self, endpoint, took);
    }
}

/// A model's answer (or failure) into the LLM families of `/metrics`.
pub fn observe_llm(metrics: &control::Metrics, event: &journal::Event) {
    use control::metrics::{ModelLabels, TokenLabels};
    let shell = &metrics.shell;
    match event {
        journal::Event::LlmResponded { model, tokens_prompt, tokens_completion, cost_usd, latency_ms, .. } => {
            let labels = ModelLabels { model: model.clone() };
            shell.llm_requests.get_or_create(&labels).inc();
            shell.llm_latency.get_or_create(&labels).observe(*latency_ms as f64 / 1000.0);
            shell.llm_cost_usd.get_or_create(&labels).inc_by(journal::money::to_f64(*cost_usd));
            for (kind, n) in [("prompt", tokens_prompt), ("completion", tokens_completion)] {
                let labels = TokenLabels { model: model.clone(), kind: kind.to_owned() };
                shell.llm_tokens.get_or_create(&labels).inc_by(u64::from(*n));
            }
        }
        journal::Event::LlmFailed { model, .. } => {
            let labels = ModelLabels { model: model.clone() };
            shell.llm_requests.get_or_create(&labels).inc();
            shell.llm_failures.get_or_create(&labels).inc();
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use journal::{Event, Hash};
    use rust_decimal::Decimal;

    #[test]
    fn model_answers_and_failures_reach_the_llm_families() {
        let (_, metrics) = super::metrics();
        let answered = Event::LlmResponded {
            digest: Hash::default(),
            model: "gpt-4o-mini".into(),
            raw: "{}".into(),
            tokens_prompt: 1200,
            tokens_completion: 80,
            cost_usd: Decimal::new(228, 6),
            latency_ms: 1500,
        };
        super::observe_llm(&metrics, &answered);
        let failed = Event::LlmFailed { digest: Hash::default(), model: "gpt-4o-mini".into(), error: "timeout".into() };
        super::observe_llm(&metrics, &failed);
        let text = metrics.render().unwrap();
        for line in [
            "quantfold_llm_requests_total{model=\"gpt-4o-mini\"} 2",
            "quantfold_llm_failures_total{model=\"gpt-4o-mini\"} 1",
            "quantfold_llm_tokens_total{model=\"gpt-4o-mini\",kind=\"prompt\"} 1200",
            "quantfold_llm_tokens_total{model=\"gpt-4o-mini\",kind=\"completion\"} 80",
            "quantfold_llm_cost_usd_total{model=\"gpt-4o-mini\"} 0.000228",
            "quantfold_llm_latency_seconds_count{model=\"gpt-4o-mini\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing:\n{text}");
        }
    }
}
