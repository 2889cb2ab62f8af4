//! What the live tests share: the local Bybit server and `quantfold live` as real
//! processes on loopback, configs, and readers for the journal and the server's log.

#![allow(dead_code)]

use std::{
    collections::{BTreeMap, BTreeSet},
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};

use serde_json::Value;

/// The key and secret the local server accepts by default (not a secret of anyone's).
pub const KEY: &str = "qf-local-key";
pub const SECRET: &str = "qf-local-secret";

/// One live scenario at a time: they are timing-sensitive and the machine has two cores.
pub static SERIAL: Mutex<()> = Mutex::new(());

pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_quantfold")
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Lines of a process's stderr a failure shows.
const STDERR_LINES: usize = 60;

/// A child process killed when dropped (a failed test leaves nothing running).
pub struct Proc {
    pub child: Child,
    pub stderr: PathBuf,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then the exit code within `timeout`.
    pub fn terminate(&mut self, timeout: Duration) -> Option<i32> {
        let _ = Command::new("kill").arg("-TERM").arg(self.pid().to_string()).status();
        self.wait(timeout)
    }

    pub fn wait(&mut self, timeout: Duration) -> Option<i32> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status.code().unwrap_or(-1));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The last lines of the process's stderr (the whole file may hold several runs).
    pub fn stderr_text(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(STDERR_LINES)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The local Bybit server on `klines`, with its URLs.
pub struct Server {
    pub proc: Proc,
    pub rest: String,
    pub ws: String,
    pub log: PathBuf,
}

pub fn server(dir: &Path, klines: &Path, args: &[&str]) -> Server {
    let log = dir.join("server.jsonl");
    let mut command = Command::new(bin());
    command.args(["venue-sim", "bybit", "--klines"]).arg(klines).arg("--log").arg(&log).args(args);
    let (proc, line) = announcing(command, &dir.join("server.stderr"));
    let (rest, ws) = (word_after(&line, "rest="), word_after(&line, "ws="));
    Server { proc, rest, ws, log }
}

/// A GET over a plain socket (`Connection: close`) to `base` (`http://HOST:PORT`, a trailing
/// slash allowed): the response's head (status line and headers) and body, as sent.
pub fn http_get(base: &str, path_and_query: &str) -> (String, String) {
    let hostport = base.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(hostport).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(stream, "GET {path_and_query} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    match response.split_once("\r\n\r\n") {
        Some((head, body)) => (head.to_owned(), body.to_owned()),
        None => (response, String::new()),
    }
}

/// A local server (`quantfold venue-sim …`, `llm-sim`, `telegram-sim`) started from the
/// repository root, its stderr to `stderr`, and the first line it prints on stdout (which
/// names its URLs).
pub fn announcing(mut command: Command, stderr: &Path) -> (Proc, String) {
    let mut child = command
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(stderr).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    (Proc { child, stderr: stderr.to_owned() }, line)
}

/// The word of `line` that starts with `prefix`, without it.
pub fn word_after(line: &str, prefix: &str) -> String {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("the first line names no {prefix}: {line:?}"))
        .to_owned()
}

impl Server {
    /// A GET on the server over a plain socket: the JSON `result`.
    pub fn get(&self, path_and_query: &str) -> Value {
        let (_, body) = http_get(&self.rest, path_and_query);
        // A chunked body: the JSON object is between the first '{' and the last '}'.
        let (start, end) = (body.find('{').unwrap_or(0), body.rfind('}').map_or(0, |e| e + 1));
        let envelope: Value = serde_json::from_str(&body[start..end]).unwrap_or(Value::Null);
        envelope["result"].clone()
    }

    /// A signed GET (v5: HMAC-SHA256 of timestamp, key, recv window and query) with the test key.
    pub fn get_signed(&self, path: &str, query: &str) -> Value {
        self.signed("GET", &format!("{path}?{query}"), query, "")
    }

    /// A signed POST of a JSON body (v5 signs the exact body bytes), as a user's own script
    /// placing an order by hand would.
    pub fn post_signed(&self, path: &str, body: &str) -> Value {
        self.signed("POST", path, body, body)
    }

    /// A signed request, asked again (up to five times) while the server's `http_5xx` fault
    /// answers 502/503 instead: those change nothing at the venue.
    fn signed(&self, method: &str, target: &str, signed: &str, body: &str) -> Value {
        for _ in 0..5 {
            if let Some(result) = self.signed_once(method, target, signed, body) {
                return result;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{method} {target}: the server answered 5xx five times");
    }

    fn signed_once(&self, method: &str, target: &str, signed: &str, body: &str) -> Option<Value> {
        use hmac::Mac;
        let hostport = self.rest.trim_start_matches("http://");
        let timestamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(format!("{timestamp}{KEY}5000{signed}").as_bytes());
        let sign = hex::encode(mac.finalize().into_bytes());
        let mut stream = TcpStream::connect(hostport).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(
            stream,
            "{method} {target} HTTP/1.1\r\nHost: {hostport}\r\nX-BAPI-API-KEY: {KEY}\r\nX-BAPI-TIMESTAMP: {timestamp}\r\n\
             X-BAPI-SIGN: {sign}\r\nX-BAPI-RECV-WINDOW: 5000\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        if response.starts_with("HTTP/1.1 502") || response.starts_with("HTTP/1.1 503") {
            return None;
        }
        let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        let (start, end) = (body.find('{').unwrap_or(0), body.rfind('}').map_or(0, |e| e + 1));
        let envelope: Value = serde_json::from_str(&body[start..end]).unwrap_or(Value::Null);
        assert_eq!(envelope["retCode"], 0, "{target}: {response}");
        Some(envelope["result"].clone())
    }

    /// The open time of the newest closed bar the server has played.
    pub fn newest_bar(&self, symbol: &str) -> Option<i64> {
        let result = self.get(&format!("/v5/market/kline?category=linear&symbol={symbol}&interval=1&limit=1"));
        result["list"][0][0].as_str().and_then(|s| s.parse().ok())
    }

    /// Waits until the server has played the bar opening at `open_ms`.
    pub fn wait_for_bar(&self, symbol: &str, open_ms: i64, timeout: Duration) {
        let end = Instant::now() + timeout;
        while self.newest_bar(symbol).is_none_or(|b| b < open_ms) {
            assert!(Instant::now() < end, "the server did not reach the bar at {open_ms} in {timeout:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The ground truth: every accepted order and execution, as the server logged them.
    pub fn log_lines(&self) -> Vec<Value> {
        jsonl(&self.log)
    }
}

pub fn jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}: {l}", path.display())))
        .collect()
}

/// A trader of a config: id, strategy file (relative to the repository), params as TOML inline table.
pub struct TraderSpec<'a> {
    pub id: &'a str,
    pub strategy: &'a str,
    pub params: &'a str,
    pub capital: &'a str,
}

pub fn config(dir: &Path, kind: &str, server: &Server, traders: &[TraderSpec<'_>], extra_venue: &str) -> PathBuf {
    let mut text = format!(
        "[venue]\nkind = \"{kind}\"\nrest_url = \"{}\"\nws_url = \"{}\"\nkey_env = \"QF_TEST_KEY\"\nsecret_env = \"QF_TEST_SECRET\"\n{extra_venue}\n",
        server.rest, server.ws
    );
    for t in traders {
        text.push_str(&format!(
            "\n[[trader]]\nid = \"{}\"\nstrategy = \"{}\"\nsymbols = [\"BTCUSDT\"]\ninterval = \"1m\"\ncapital = \"{}\"\nparams = {}\n",
            t.id,
            root().join(t.strategy).display(),
            t.capital,
            t.params
        ));
    }
    let path = dir.join("live.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `quantfold live` on `config` and `journal`, with the test key in the environment.
pub fn live(config: &Path, journal: &Path, stderr: &Path) -> Proc {
    live_with(config, journal, stderr, &[])
}

/// [`live`] with more arguments (`--dry-run`).
pub fn live_with(config: &Path, journal: &Path, stderr: &Path, args: &[&str]) -> Proc {
    live_env(config, journal, stderr, args, &[])
}

/// `quantfold live --serve 127.0.0.1:0` and `args`, without an API token: the process and the
/// URL its first line announces (`serving URL`).
pub fn live_serving(config: &Path, journal: &Path, stderr: &Path, args: &[&str]) -> (Proc, String) {
    live_serving_env(config, journal, stderr, args, &[])
}

/// [`live_serving`] with more environment (a Hyperliquid key), set after the test key.
pub fn live_serving_env(
    config: &Path,
    journal: &Path,
    stderr: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Proc, String) {
    let mut child = Command::new(bin())
        .args(["live", "--config"])
        .arg(config)
        .arg("--journal")
        .arg(journal)
        .args(["--serve", "127.0.0.1:0"])
        .args(args)
        .env("QF_TEST_KEY", KEY)
        .env("QF_TEST_SECRET", SECRET)
        .envs(env.iter().copied())
        .env_remove("QUANTFOLD_API_TOKEN")
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(stderr).unwrap())
        .spawn()
        .expect("start quantfold live");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let live = Proc { child, stderr: stderr.to_path_buf() };
    let Some(url) = line.trim().strip_prefix("serving ") else {
        panic!("first line: {line:?}\n{}", live.stderr_text());
    };
    (live, url.to_owned())
}

/// [`live_with`] with more environment (a model's key, a bot token), set after the test key.
pub fn live_env(config: &Path, journal: &Path, stderr: &Path, args: &[&str], env: &[(&str, &str)]) -> Proc {
    let child = Command::new(bin())
        .args(["live", "--config"])
        .arg(config)
        .arg("--journal")
        .arg(journal)
        .args(args)
        .env("QF_TEST_KEY", KEY)
        .env("QF_TEST_SECRET", SECRET)
        .env("QUANTFOLD_LOG", "info")
        .envs(env.iter().copied())
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(std::fs::OpenOptions::new().create(true).append(true).open(stderr).unwrap())
        .spawn()
        .expect("start quantfold live");
    Proc { child, stderr: stderr.to_owned() }
}

/// A quantfold command that must succeed; its stdout.
#[track_caller]
pub fn ok(args: &[&str]) -> String {
    let out = Command::new(bin()).args(args).current_dir(root()).output().unwrap();
    assert!(
        out.status.success(),
        "quantfold {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every record of a journal, as `journal export` writes them.
pub fn records(journal: &Path) -> Vec<Value> {
    let out = journal.with_extension("export.jsonl");
    ok(&["journal", "export", journal.to_str().unwrap(), "--jsonl", out.to_str().unwrap()]);
    jsonl(&out)
}

/// The event of a record: `(kind, body)`.
pub fn event(record: &Value) -> (&str, &Value) {
    let e = &record["event"];
    match e {
        Value::String(kind) => (kind.as_str(), &Value::Null),
        Value::Object(map) => map.iter().next().map(|(k, v)| (k.as_str(), v)).unwrap_or(("", &Value::Null)),
        _ => ("", &Value::Null),
    }
}

/// The decisions of a journal, without what differs by construction between two runs
/// of the same inputs (sequence numbers, and the client order ids derived from them):
/// time, trader, and the order's every field.
pub fn decisions(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .filter_map(|r| {
            let (kind, body) = event(r);
            match kind {
                "OrderSubmitted" => {
                    let mut intent = body.clone();
                    intent.as_object_mut()?.remove("cloid");
                    Some(format!("{} {} {}", r["time_ms"], r["trader"], intent))
                }
                "OrderCancelRequested" => Some(format!("{} {} cancel", r["time_ms"], r["trader"])),
                _ => None,
            }
        })
        .collect()
}

/// A decimal string without its trailing zeros ("0.54836100" and "0.548361" are one amount).
pub fn amount(v: &Value) -> String {
    v.as_str()
        .and_then(|s| s.parse::<rust_decimal::Decimal>().ok())
        .map_or_else(|| v.to_string(), |d| d.normalize().to_string())
}

/// Every fill: side, quantity, price, fee and liquidity.
pub fn fills(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .filter_map(|r| {
            let (kind, f) = event(r);
            (kind == "OrderFilled").then(|| {
                format!(
                    "{} {} @ {} fee {} {}",
                    f["side"],
                    amount(&f["qty"]),
                    amount(&f["price"]),
                    amount(&f["fee_quote"]),
                    f["liquidity"]
                )
            })
        })
        .collect()
}

/// A log field as text: a string as it is, a number in decimal.
fn text(value: &Value) -> String {
    value.as_str().map_or_else(|| value.to_string(), str::to_owned)
}

/// No decision sent as two orders: every order of the venue's log (`"type": "order"`, its
/// client id in `id_field`, with or without `0x`) is one the journal decided, each once.
/// Returns how many orders the venue accepted.
pub fn each_decision_sent_once(records: &[Value], log: &[Value], id_field: &str) -> usize {
    let submitted: BTreeSet<String> = records
        .iter()
        .filter(|r| event(r).0 == "OrderSubmitted")
        .map(|r| event(r).1["cloid"].as_str().unwrap().to_owned())
        .collect();
    let mut per_id: BTreeMap<String, usize> = BTreeMap::new();
    for order in log.iter().filter(|l| l["type"] == "order") {
        let id = order[id_field].as_str().unwrap_or("");
        let id = id.strip_prefix("0x").unwrap_or(id).to_owned();
        assert!(submitted.contains(&id), "the venue has order {id}, which the journal never decided");
        *per_id.entry(id).or_default() += 1;
    }
    let twice: Vec<_> = per_id.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "decisions sent as two orders: {twice:?}");
    per_id.len()
}

/// Every execution of the venue's log (`"type": kind`, its id in `id_field`) is in the
/// journal exactly once, and the journal has no other. Returns how many there are.
pub fn each_fill_journaled_once(records: &[Value], log: &[Value], kind: &str, id_field: &str) -> usize {
    let mut journaled: BTreeMap<String, usize> = BTreeMap::new();
    for r in records.iter().filter(|r| event(r).0 == "OrderFilled") {
        *journaled.entry(event(r).1["fill_id"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    let venue: BTreeSet<String> = log.iter().filter(|l| l["type"] == kind).map(|l| text(&l[id_field])).collect();
    let missing: Vec<_> = venue.iter().filter(|id| !journaled.contains_key(*id)).collect();
    let doubled: Vec<_> = journaled.iter().filter(|(_, n)| **n > 1).collect();
    let unknown: Vec<_> = journaled.keys().filter(|id| !venue.contains(*id)).collect();
    assert!(missing.is_empty(), "executions lost: {missing:?}");
    assert!(doubled.is_empty(), "executions journaled twice: {doubled:?}");
    assert!(unknown.is_empty(), "fills the venue never made: {unknown:?}");
    venue.len()
}
