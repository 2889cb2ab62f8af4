//! Delivery against the local Bot API server, over real sockets: order, retries on what
//! Telegram asks to retry, halts on what no retry mends, at least once when answers are lost.

use std::{num::NonZeroU32, time::Duration};

use telegram::{deliver, Bot, Error, Outgoing, Report};
use telegram_server::{Config, Rate, Script};

const TOKEN: &str = "7001:AAH-local_test_token_0123456789abcdef";
const CHAT: &str = "5150";

async fn server(script: &str, rate: Rate) -> telegram_server::Server {
    let config = Config {
        listen: "127.0.0.1:0".into(),
        token: TOKEN.into(),
        chats: vec![CHAT.into()],
        rate,
        script: Script::parse(script).unwrap(),
    };
    telegram_server::serve(config).await.unwrap()
}

fn fast() -> Rate {
    Rate { messages: 1000, period: Duration::from_secs(1) }
}

/// Delivers `n` messages with seqs 10, 11, ...; returns the reports.
async fn run(bot: Bot, chat: &str, n: u64, per_minute: u32) -> Vec<Report> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..n {
        tx.send(Outgoing { seq: 10 + i, text: format!("#{} note {i}", 10 + i) }).unwrap();
    }
    drop(tx);
    let mut reports = Vec::new();
    let pace = NonZeroU32::new(per_minute).unwrap();
    tokio::time::timeout(
        Duration::from_secs(60),
        deliver(bot, chat.into(), pace, rx, |r| {
            reports.push(r);
            true
        }),
    )
    .await
    .expect("delivery ends");
    reports
}

fn delivered_seqs(reports: &[Report]) -> Vec<u64> {
    reports.iter().filter_map(|r| if let Report::Delivered { seq, .. } = r { Some(*seq) } else { None }).collect()
}

#[tokio::test]
async fn messages_arrive_in_order_once_each_through_5xx_and_flood_answers() {
    let server = server("500@2,502@3,429:1@5", fast()).await;
    let bot = Bot::new(&server.base_url(), TOKEN, Duration::from_secs(5)).unwrap();
    let reports = run(bot, CHAT, 4, 6000).await;
    assert_eq!(delivered_seqs(&reports), [10, 11, 12, 13]);
    let texts: Vec<String> = server.messages().into_iter().map(|m| m.text).collect();
    assert_eq!(texts, ["#10 note 0", "#11 note 1", "#12 note 2", "#13 note 3"]);
    let statuses: Vec<u16> = server.requests().into_iter().map(|e| e.status).collect();
    assert_eq!(statuses, [200, 500, 502, 200, 429, 200, 200]);
    // The ids are Telegram's.
    let ids: Vec<i64> = reports
        .iter()
        .filter_map(|r| if let Report::Delivered { message_id, .. } = r { Some(*message_id) } else { None })
        .collect();
    assert_eq!(ids, [1, 2, 3, 4]);
}

#[tokio::test]
async fn the_servers_flood_limit_is_waited_out_not_dropped() {
    // 2 messages per second per chat; we pace far faster, so the server answers 429s.
    let server = server("", Rate { messages: 2, period: Duration::from_secs(1) }).await;
    let bot = Bot::new(&server.base_url(), TOKEN, Duration::from_secs(5)).unwrap();
    let reports = run(bot, CHAT, 5, 60_000).await;
    assert_eq!(delivered_seqs(&reports), [10, 11, 12, 13, 14]);
    let floods = server.requests().iter().filter(|e| e.status == 429).count();
    assert!(floods >= 1, "the pace should have met the flood limit: {:?}", server.requests());
    assert_eq!(server.messages().len(), 5);
}

#[tokio::test]
async fn our_pace_keeps_under_the_flood_limit() {
    // 120 a minute is one each half second: under the server's 3 per second.
    let server = server("", Rate { messages: 3, period: Duration::from_secs(1) }).await;
    let bot = Bot::new(&server.base_url(), TOKEN, Duration::from_secs(5)).unwrap();
    let reports = run(bot, CHAT, 4, 120).await;
    assert_eq!(delivered_seqs(&reports), [10, 11, 12, 13]);
    assert!(server.requests().iter().all(|e| e.status == 200), "{:?}", server.requests());
}

#[tokio::test]
async fn a_wrong_token_halts_delivery_and_no_error_shows_the_token() {
    let server = server("", fast()).await;
    let wrong = "7001:AAH-not_the_token_of_this_bot_xyz";
    let bot = Bot::new(&server.base_url(), wrong, Duration::from_secs(5)).unwrap();
    assert!(!format!("{bot:?}").contains("AAH"), "{bot:?}");
    let reports = run(bot, CHAT, 3, 6000).await;
    assert_eq!(reports.len(), 1, "{reports:?}");
    let Report::Halted { seq: 10, error } = &reports[0] else { panic!("{reports:?}") };
    assert_eq!(*error, Error::Refused { code: 401, description: "Unauthorized".into() });
    assert!(!error.to_string().contains("AAH"));
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn an_unknown_chat_halts_delivery_with_telegrams_reason() {
    let server = server("", fast()).await;
    let bot = Bot::new(&server.base_url(), TOKEN, Duration::from_secs(5)).unwrap();
    let reports = run(bot, "777", 2, 6000).await;
    assert!(
        matches!(&reports[..], [Report::Halted { seq: 10, error: Error::Refused { code: 400, description }}] if description == "Bad Request: chat not found"),
        "{reports:?}"
    );
}

#[tokio::test]
async fn a_lost_answer_is_sent_again_so_delivery_is_at_least_once() {
    let server = server("lost@2", fast()).await;
    let bot = Bot::new(&server.base_url(), TOKEN, Duration::from_millis(500)).unwrap();
    let reports = run(bot, CHAT, 3, 6000).await;
    assert_eq!(delivered_seqs(&reports), [10, 11, 12]);
    let texts: Vec<String> = server.messages().into_iter().map(|m| m.text).collect();
    // Telegram acted on the lost request: the repeat shows twice, the sequence number tells.
    assert_eq!(texts, ["#10 note 0", "#11 note 1", "#11 note 1", "#12 note 2"]);
}

#[tokio::test]
async fn a_server_that_is_not_there_is_a_transport_error_without_the_url() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let bot = Bot::new(&format!("http://{addr}"), TOKEN, Duration::from_secs(2)).unwrap();
    let error = bot.send_message(CHAT, "hello").await.unwrap_err();
    assert!(matches!(error, Error::Transport(_)) && error.retryable(), "{error:?}");
    assert!(!error.to_string().contains("AAH") && !error.to_string().contains("/bot"), "{error}");
}
