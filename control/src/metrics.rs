//! `/metrics`: Prometheus text from the `prometheus-client` crate.
//!
//! Two kinds of family. What the journal knows (orders by status, fills, equity and PnL per
//! trader, journal head and durable lag) is read from the replicas at scrape time by a
//! [`Collector`], so it can never drift from the fold. What only the live shell sees
//! (exchange REST latency and errors, rate-limit waits, WebSocket reconnects, LLM calls,
//! decision-cycle latency) lives in [`ShellMetrics`], registered now so dashboards and alerts
//! can be written against stable names, and fed by the live driver as it runs.
//!
//! No label ever carries a secret: labels are trader ids, symbols' venues' endpoint paths,
//! model names and order statuses.

use std::sync::Arc;

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric},
    metrics::{
        counter::{ConstCounter, Counter},
        family::Family,
        gauge::{ConstGauge, Gauge},
        histogram::{exponential_buckets, Histogram},
    },
    registry::{Registry, Unit},
};

use crate::{api::num, arena::Shared};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    pub venue: String,
    pub endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointErrorLabels {
    pub venue: String,
    pub endpoint: String,
    /// An HTTP status or the venue's error code, never a message (messages can echo requests).
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StreamLabels {
    pub venue: String,
    pub stream: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelLabels {
    pub model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    pub model: String,
    /// "prompt" or "completion".
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TraderLabels {
    pub trader: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 1 ms to ~65 s: venue round trips through slow LLM answers.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

fn fine_histogram() -> Histogram {
    // 1 µs to ~4 s: an append is microseconds, an fsync milliseconds.
    Histogram::new(exponential_buckets(0.000_001, 4.0, 12))
}

/// The families only the live shell can feed.
#[derive(Debug)]
pub struct ShellMetrics {
    pub rest_latency: HistogramFamily<EndpointLabels>,
    pub rest_errors: Family<EndpointErrorLabels, Counter>,
    pub rate_limit_waits: Family<EndpointLabels, Counter>,
    pub rate_limit_wait_seconds: Family<EndpointLabels, Counter<f64, std::sync::atomic::AtomicU64>>,
    pub ws_reconnects: Family<StreamLabels, Counter>,
    pub llm_requests: Family<ModelLabels, Counter>,
    pub llm_failures: Family<ModelLabels, Counter>,
    pub llm_latency: HistogramFamily<ModelLabels>,
    pub llm_tokens: Family<TokenLabels, Counter>,
    pub llm_cost_usd: Family<ModelLabels, Counter<f64, std::sync::atomic::AtomicU64>>,
    pub decision_cycle: HistogramFamily<TraderLabels>,
    pub journal_append: Histogram,
    pub journal_flush: Histogram,
    pub notifications_delivered: Counter,
    pub notification_failures: Counter,
    /// `live --mirror`: durable records not yet stored on the NATS mirror (0 without one).
    pub mirror_lag: Gauge,
}

impl ShellMetrics {
    fn new() -> ShellMetrics {
        ShellMetrics {
            rest_latency: Family::new_with_constructor(latency_histogram),
            rest_errors: Family::default(),
            rate_limit_waits: Family::default(),
            rate_limit_wait_seconds: Family::default(),
            ws_reconnects: Family::default(),
            llm_requests: Family::default(),
            llm_failures: Family::default(),
            llm_latency: Family::new_with_constructor(latency_histogram),
            llm_tokens: Family::default(),
            llm_cost_usd: Family::default(),
            decision_cycle: Family::new_with_constructor(latency_histogram),
            journal_append: fine_histogram(),
            journal_flush: fine_histogram(),
            notifications_delivered: Counter::default(),
            notification_failures: Counter::default(),
            mirror_lag: Gauge::default(),
        }
    }

    fn register(&self, r: &mut Registry) {
        let s = Unit::Seconds;
        r.register_with_unit(
            "exchange_rest_latency",
            "Exchange REST round trips",
            s.clone(),
            self.rest_latency.clone(),
        );
        r.register("exchange_rest_errors", "Exchange REST calls that failed, by code", self.rest_errors.clone());
        r.register(
            "exchange_rate_limit_waits",
            "Requests held back by the rate limiter",
            self.rate_limit_waits.clone(),
        );
        r.register_with_unit(
            "exchange_rate_limit_wait",
            "Time requests were held back by the rate limiter",
            s.clone(),
            self.rate_limit_wait_seconds.clone(),
        );
        r.register("exchange_ws_reconnects", "WebSocket reconnections", self.ws_reconnects.clone());
        r.register("llm_requests", "LLM requests sent", self.llm_requests.clone());
        r.register("llm_failures", "LLM requests that failed", self.llm_failures.clone());
        r.register_with_unit("llm_latency", "LLM answer latency", s.clone(), self.llm_latency.clone());
        r.register("llm_tokens", "LLM tokens used", self.llm_tokens.clone());
        r.register("llm_cost_usd", "LLM cost in US dollars", self.llm_cost_usd.clone());
        r.register_with_unit(
            "decision_cycle_latency",
            "A bar's arrival to its decisions journaled, per trader",
            s.clone(),
            self.decision_cycle.clone(),
        );
        r.register_with_unit("journal_append_latency", "One journal append", s.clone(), self.journal_append.clone());
        r.register_with_unit(
            "journal_flush_latency",
            "One journal flush (segments, sled and head made durable)",
            s,
            self.journal_flush.clone(),
        );
        r.register(
            "notifications_delivered",
            "Notifications delivered to Telegram",
            self.notifications_delivered.clone(),
        );
        r.register(
            "notification_failures",
            "Telegram refusals that halted delivery",
            self.notification_failures.clone(),
        );
        r.register(
            "journal_mirror_lag_records",
            "Durable journal records not yet on the NATS mirror (live --mirror; 0 without)",
            self.mirror_lag.clone(),
        );
    }
}

/// The journal's timings into [`ShellMetrics`].
impl journal::Timings for Metrics {
    fn appended(&self, took: std::time::Duration) {
        self.shell.journal_append.observe(took.as_secs_f64());
    }

    fn flushed(&self, took: std::time::Duration) {
        self.shell.journal_flush.observe(took.as_secs_f64());
    }
}

/// Reads the replicas at scrape time.
#[derive(Debug)]
struct LedgerCollector(Shared);

impl Collector for LedgerCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let arena = self.0.read();
        let traders = arena.traders();

        #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
        struct StatusLabels {
            trader: String,
            status: String,
        }
        let c = ConstCounter::new(0u64);
        let mut family = encoder.encode_descriptor(
            "quantfold_orders",
            "Orders by what became of them (submitted counts every order that passed the checks)",
            None,
            c.metric_type(),
        )?;
        for (id, name, replica) in &traders {
            let Some(t) = replica.state.traders.get(*name) else { continue };
            let s = &t.stats;
            for (status, n) in [
                ("submitted", s.orders_submitted),
                ("rejected", s.orders_rejected),
                ("cancelled", s.orders_cancelled),
                ("filled", s.orders_filled),
            ] {
                let labels = StatusLabels { trader: id.clone(), status: status.to_owned() };
                ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
            }
        }

        let g = ConstGauge::new(0i64);
        let mut family =
            encoder.encode_descriptor("quantfold_orders_open", "Orders not yet ended", None, g.metric_type())?;
        for (id, name, replica) in &traders {
            let open = replica.state.traders.get(*name).map_or(0, |t| t.orders.len());
            ConstGauge::new(open as i64).encode(family.encode_family(&TraderLabels { trader: id.clone() })?)?;
        }

        let mut family =
            encoder.encode_descriptor("quantfold_fills", "Fills applied to the ledger", None, c.metric_type())?;
        for (id, name, replica) in &traders {
            let fills = replica.state.traders.get(*name).map_or(0, |t| t.stats.fills);
            ConstCounter::new(fills).encode(family.encode_family(&TraderLabels { trader: id.clone() })?)?;
        }

        let gf = ConstGauge::new(0f64);
        for (metric, help, pick) in [
            ("quantfold_equity_quote", "Equity at the current marks, in the quote currency", 0),
            ("quantfold_pnl_quote", "Equity minus starting capital", 1),
            ("quantfold_realized_pnl_quote", "Realized PnL before fees", 2),
            ("quantfold_fees_paid_quote", "Fees paid", 3),
        ] {
            let mut family = encoder.encode_descriptor(metric, help, None, gf.metric_type())?;
            for (id, name, replica) in &traders {
                let Some(t) = replica.state.traders.get(*name) else { continue };
                let equity = replica.state.trader_equity(t);
                let value = match pick {
                    0 => equity,
                    1 => equity - replica.capital(name),
                    2 => t.realized_pnl,
                    _ => t.fees_paid,
                };
                ConstGauge::new(num(value)).encode(family.encode_family(&TraderLabels { trader: id.clone() })?)?;
            }
        }

        #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
        struct JournalLabels {
            journal: String,
        }
        for (metric, help, pick) in [
            ("quantfold_journal_records", "Records in the journal (the next seq)", 0),
            ("quantfold_journal_durable_records", "Records known durable", 1),
            ("quantfold_journal_durable_lag_records", "Records appended but not yet durable", 2),
        ] {
            let mut family = encoder.encode_descriptor(metric, help, None, g.metric_type())?;
            for source in &arena.sources {
                let head = &source.replica.head;
                let durable = head.durable_through.map_or(0, |d| d + 1);
                let value = match pick {
                    0 => head.records,
                    1 => durable,
                    _ => head.records.saturating_sub(durable),
                };
                let labels = JournalLabels { journal: source.name.clone() };
                ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX)).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

/// The registry behind `/metrics`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub shell: ShellMetrics,
}

impl Metrics {
    pub fn new(shared: Shared) -> Arc<Metrics> {
        let mut registry = Registry::default();
        let shell = ShellMetrics::new();
        shell.register(registry.sub_registry_with_prefix("quantfold"));
        registry.register_collector(Box::new(LedgerCollector(shared)));
        Arc::new(Metrics { registry, shell })
    }

    /// The exposition text.
    ///
    /// # Errors
    /// Only if formatting fails, which writing to a `String` does not.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(prometheus_text(&out))
    }
}

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The crate writes OpenMetrics; Prometheus' classic text format (what `promtool check
/// metrics` and every Prometheus version read) differs in three ways for what we emit: a
/// counter's `# HELP`/`# TYPE` name the sample name (with `_total`), there are no `# UNIT`
/// lines, and no `# EOF`.
pub fn prometheus_text(openmetrics: &str) -> String {
    let lines: Vec<&str> = openmetrics.lines().collect();
    let mut out = String::with_capacity(openmetrics.len());
    for (i, line) in lines.iter().enumerate() {
        if *line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let counter = |name: &str| {
            lines[i..].iter().take(3).any(|l| l.strip_prefix("# TYPE ").is_some_and(|t| t == format!("{name} counter")))
        };
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            (counter(name) && !name.ends_with("_total")).then(|| format!("{prefix}{name}_total {tail}"))
        });
        match renamed {
            Some(l) => out.push_str(&l),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_families_show_once_fed_and_counters_are_named_for_prometheus() {
        let metrics = Metrics::new(Shared::default());
        let model = ModelLabels { model: "gpt-5".into() };
        metrics.shell.llm_requests.get_or_create(&model).inc();
        metrics.shell.llm_latency.get_or_create(&model).observe(0.9);
        let endpoint = EndpointLabels { venue: "bybit".into(), endpoint: "/v5/order/create".into() };
        metrics.shell.rest_latency.get_or_create(&endpoint).observe(0.05);
        let text = metrics.render().unwrap();
        assert!(text.contains("# TYPE quantfold_llm_requests_total counter\n"), "{text}");
        assert!(text.contains("quantfold_llm_requests_total{model=\"gpt-5\"} 1\n"), "{text}");
        assert!(text.contains("# TYPE quantfold_llm_latency_seconds histogram\n"), "{text}");
        assert!(text.contains(
            "quantfold_exchange_rest_latency_seconds_count{venue=\"bybit\",endpoint=\"/v5/order/create\"} 1"
        ));
        assert!(!text.contains("# EOF") && !text.contains("# UNIT"), "{text}");
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn prometheus_text_renames_only_counters() {
        let om = "# HELP a_b Help.\n# TYPE a_b counter\na_b_total 1\n# HELP g Gauge.\n# TYPE g gauge\ng 2\n# EOF\n";
        let want =
            "# HELP a_b_total Help.\n# TYPE a_b_total counter\na_b_total 1\n# HELP g Gauge.\n# TYPE g gauge\ng 2\n";
        assert_eq!(prometheus_text(om), want);
    }
}
