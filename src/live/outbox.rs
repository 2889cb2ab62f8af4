//! The notification outbox: `NotificationSent` records of the configured channels, delivered
//! to Telegram by a task on the session's runtime, each delivery journaled as a
//! `NotificationDelivered` naming the notification's sequence number.
//!
//! The journal is the outbox: at start every notification of the delivered channels without a
//! `NotificationDelivered` (and not older than `max_age` in event time) is queued again, so a
//! crash loses nothing and a restart sends nothing that was delivered. A message whose
//! delivery happened but was not journaled before a crash is sent again: at least once. The
//! text starts with `#seq`, so a reader can tell a repeat. The engine thread only reads new
//! records (the session reads each once, for the outbox and the served replica alike) and
//! hands texts to the task; it never waits on Telegram.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context;
use journal::{Envelope, Event};
use telegram::{Bot, Outgoing, Report};
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

use super::{config::Telegram, Msg};

/// How long one request to Telegram may take.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// The channel name journaled in `NotificationDelivered`.
pub const CHANNEL: &str = "telegram";

pub struct Outbox {
    tx: Option<UnboundedSender<Outgoing>>,
    channels: BTreeSet<String>,
    /// Notifications read and not yet durable (or, at start, not yet known undelivered):
    /// seq → (time, trader, message).
    waiting: BTreeMap<u64, (i64, String, String)>,
    /// Queued and not yet journaled as delivered: seq → trader.
    pending: BTreeMap<u64, String>,
    /// The journal's length at start: a notification below it is owed by an earlier run.
    owed_below: u64,
    /// An owed notification older than this (event time) is not sent: `max_age`.
    owed_since_ms: i64,
    /// Telegram refused for good: nothing more is sent this run.
    pub halted: bool,
}

impl Outbox {
    /// The bot token from the environment: read before anything is journaled, so a missing
    /// one stops the start with nothing written.
    ///
    /// # Errors
    /// The variable is unset or empty; the error names it.
    pub fn token(config: &Telegram) -> anyhow::Result<String> {
        let token = std::env::var(&config.token_env).ok().filter(|t| !t.trim().is_empty()).with_context(|| {
            format!(
                "the environment variable {} is not set: the Telegram bot token comes from the environment only",
                config.token_env
            )
        })?;
        Ok(token.trim().to_owned())
    }

    /// Starts delivering with `token`. What the journal of `journal_len` records holds
    /// undelivered is sent once the session has shown it the journal ([`Outbox::observe`])
    /// and its durable point ([`Outbox::release`]).
    ///
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn start(
        config: &Telegram,
        token: &str,
        runtime: &tokio::runtime::Runtime,
        msgs: UnboundedSender<Msg>,
        journal_len: u64,
        now_ms: i64,
    ) -> anyhow::Result<Outbox> {
        let bot = Bot::new(&config.base_url, token, REQUEST_TIMEOUT)
            .map_err(|e| anyhow::anyhow!("cannot build the Telegram client: {e}"))?;
        let (tx, rx) = unbounded_channel();
        let per_minute = std::num::NonZeroU32::new(config.per_minute).unwrap_or(std::num::NonZeroU32::MIN);
        let chat = config.chat_id.clone();
        runtime.spawn(telegram::deliver(bot, chat, per_minute, rx, move |report| {
            msgs.send(Msg::Notified(report)).is_ok()
        }));
        Ok(Outbox {
            tx: Some(tx),
            channels: config.channels.iter().cloned().collect(),
            waiting: BTreeMap::new(),
            pending: BTreeMap::new(),
            owed_below: journal_len,
            owed_since_ms: now_ms.saturating_sub(config.max_age_ms),
            halted: false,
        })
    }

    /// A journaled record, in order: a notification of the delivered channels waits to be
    /// durable; a delivery journaled by an earlier run settles what it names.
    pub fn observe(&mut self, env: &Envelope) {
        match &env.event {
            Event::NotificationSent { channel, message } if self.channels.contains(channel) => {
                self.waiting.insert(env.seq, (env.time_ms, env.trader.clone(), message.clone()));
            }
            Event::NotificationDelivered { seq, .. } => {
                self.waiting.remove(seq);
            }
            _ => {}
        }
    }

    /// Sends the notifications durable through `durable`. Only durable ones: one that a crash
    /// could still take out of the journal must not reach anybody (its bar is decided again
    /// after the restart, under another sequence number).
    pub fn release(&mut self, durable: Option<u64>) {
        let Some(durable) = durable else { return };
        let later = self.waiting.split_off(&(durable + 1));
        let ready = std::mem::replace(&mut self.waiting, later);
        let (mut owed, mut stale) = (0, 0);
        for (seq, (time_ms, trader, message)) in ready {
            if seq < self.owed_below {
                if time_ms < self.owed_since_ms {
                    stale += 1;
                    continue;
                }
                owed += 1;
            }
            self.queue(seq, trader, &message);
        }
        if stale > 0 {
            tracing::warn!(
                count = stale,
                "undelivered notifications older than max_age are not sent (the journal keeps them)"
            );
        }
        if owed > 0 {
            tracing::info!(count = owed, "sending the notifications a previous run did not deliver");
        }
    }

    fn queue(&mut self, seq: u64, trader: String, message: &str) {
        if self.halted || self.pending.contains_key(&seq) {
            return;
        }
        let who = if trader.is_empty() { "quantfold" } else { trader.as_str() };
        let text = telegram::fit(&format!("#{seq} {who}: {message}"));
        if let Some(tx) = &self.tx {
            if tx.send(Outgoing { seq, text }).is_ok() {
                self.pending.insert(seq, trader);
            }
        }
    }

    /// A delivery to journal: the notification's trader and the event, once per seq.
    pub fn delivered(&mut self, seq: u64, message_id: i64) -> Option<(String, Event)> {
        let trader = self.pending.remove(&seq)?;
        Some((
            trader,
            Event::NotificationDelivered { seq, channel: CHANNEL.to_owned(), message_id: message_id.to_string() },
        ))
    }

    /// Telegram refused for good: say so, keep the rest for the next start.
    pub fn halt(&mut self, seq: u64, error: &telegram::Error) {
        self.halted = true;
        self.tx = None;
        tracing::error!(
            seq,
            %error,
            undelivered = self.pending.len(),
            "Telegram delivery stopped: fix the [telegram] settings; what was not delivered is sent at the next start"
        );
    }

    /// No more notifications come: the task ends once it has sent what it holds.
    pub fn close(&mut self) {
        self.tx = None;
    }

    /// Nothing queued is waiting to be journaled as delivered (or nothing more will be).
    pub fn idle(&self) -> bool {
        self.halted || self.pending.is_empty()
    }

    /// Notifications queued and not yet delivered.
    pub fn undelivered(&self) -> usize {
        self.pending.len()
    }
}

/// What the session does with a delivery task's report.
pub fn report_event(outbox: &mut Outbox, report: Report) -> Option<(String, Event)> {
    match report {
        Report::Delivered { seq, message_id } => outbox.delivered(seq, message_id),
        Report::Halted { seq, error } => {
            outbox.halt(seq, &error);
            None
        }
    }
}
