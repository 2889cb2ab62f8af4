//! The JSON Lines form of a journal: lossless, documented, human-readable.
//!
//! Line 1 is a header: `{"format":"quantfold-journal","codec_version":2,"schema_version":2}`
//! (import reads only the format and schema: records and hashes are the same in every codec).
//! Exports of an older schema import too: a schema-1 `StrategyLoaded` has no `limits`
//! and gets [`crate::event::StrategyLimits::SCHEMA_1`]. Such an import writes the
//! schema-2 form, so its hashes are not the export's (the events mean the same).
//! Every further line is one [`Envelope`]: `{"seq", "time_ms", "trader", "event",
//! "prev_hash", "hash"}` where `event` is externally tagged (`{"KlineReceived":{...}}`,
//! or `"ClockTicked"` for variants without fields), decimals are exact strings
//! (`"0.00002025"`), hashes and client order ids are lowercase hex, and JSON
//! carried in events (params, `ctx.state` values) appears as itself.
//!
//! Import re-chains: it appends each line's `(time_ms, trader, event)` and
//! computes fresh sequence numbers and hashes, so importing an export of this
//! schema into an empty journal reproduces the original hashes exactly.

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use crate::{codec, event::Envelope};

pub const FORMAT: &str = "quantfold-journal";

/// The first line of an export.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileHeader {
    pub format: String,
    pub codec_version: u16,
    pub schema_version: u16,
}

impl FileHeader {
    pub fn current() -> FileHeader {
        FileHeader { format: FORMAT.into(), codec_version: codec::CODEC_VERSION, schema_version: codec::SCHEMA_VERSION }
    }
}

/// Why a JSON Lines file could not be read; `line` is 1-based.
#[derive(Debug, thiserror::Error)]
pub enum JsonlError {
    #[error("line {line}: {message}")]
    Line { line: usize, message: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Writes the header line.
///
/// # Errors
/// Write failures.
pub fn write_header(out: &mut impl Write) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, &FileHeader::current())?;
    out.write_all(b"\n")
}

/// Writes one envelope as a line.
///
/// # Errors
/// Write failures.
pub fn write_envelope(out: &mut impl Write, env: &Envelope) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, env)?;
    out.write_all(b"\n")
}

/// Reads envelopes from a JSON Lines export, checking the header line first.
/// Blank lines are skipped; every other line must be an envelope.
pub fn read(input: impl BufRead) -> impl Iterator<Item = Result<Envelope, JsonlError>> {
    let mut lines = input.lines().enumerate();
    let mut header_seen = false;
    std::iter::from_fn(move || loop {
        let (index, line) = lines.next()?;
        let line_no = index + 1;
        let text = match line {
            Ok(text) => text,
            Err(e) => return Some(Err(JsonlError::Line { line: line_no, message: e.to_string() })),
        };
        if text.trim().is_empty() {
            continue;
        }
        if !header_seen {
            header_seen = true;
            return match serde_json::from_str::<FileHeader>(&text) {
                Ok(h) if h.format == FORMAT && h.schema_version <= codec::SCHEMA_VERSION => continue,
                Ok(h) => Some(Err(JsonlError::Line {
                    line: line_no,
                    message: format!("unsupported export: format {:?}, schema v{}", h.format, h.schema_version),
                })),
                Err(_) => Some(Err(JsonlError::Line {
                    line: line_no,
                    message: format!("not a quantfold journal export (the first line must be the {FORMAT:?} header)"),
                })),
            };
        }
        return Some(
            serde_json::from_str::<Envelope>(&text)
                .map_err(|e| JsonlError::Line { line: line_no, message: format!("not an event: {e}") }),
        );
    })
}

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;

    use super::*;
    use crate::{
        event::{Event, Kline},
        testkit::chain,
    };

    fn export(envelopes: &[Envelope]) -> String {
        let mut out = Vec::new();
        write_header(&mut out).expect("writes to a Vec");
        for env in envelopes {
            write_envelope(&mut out, env).expect("writes to a Vec");
        }
        String::from_utf8(out).expect("JSON is UTF-8")
    }

    fn read_all(text: &str) -> Result<Vec<Envelope>, String> {
        read(text.as_bytes()).collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())
    }

    fn d(text: &str) -> Decimal {
        text.parse().expect("literal decimal")
    }

    #[test]
    fn decimals_are_exact_strings_with_their_scale() {
        let kline = Kline {
            symbol: "BTCUSDT".into(),
            interval_ms: 60_000,
            open_time_ms: 0,
            open: d("1.50"),
            high: d("0.00002025"),
            low: d("-3"),
            close: d("100.000"),
            volume: d("79228162514264337593543950335"),
            closed: true,
        };
        let envelopes = chain(&[(5, String::new(), Event::KlineReceived(kline))]);
        let text = export(&envelopes);
        for needle in [r#""open":"1.50""#, r#""high":"0.00002025""#, r#""low":"-3""#, r#""close":"100.000""#] {
            assert!(text.contains(needle), "{needle} not in {text}");
        }
        let back = read_all(&text).expect("reads back");
        let Event::KlineReceived(k) = &back[0].event else { panic!("not a kline: {:?}", back[0].event) };
        assert_eq!((k.open.scale(), k.high.scale(), k.close.scale()), (2, 8, 3));
    }

    #[test]
    fn series_values_without_a_json_number_travel_as_words() {
        let items: Vec<_> = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 0.1]
            .into_iter()
            .map(|value| (0, "alice".to_owned(), Event::SeriesRecorded { name: "x".into(), value }))
            .collect();
        let text = export(&chain(&items));
        for word in
            [r#""value":"NaN""#, r#""value":"Infinity""#, r#""value":"-Infinity""#, r#""value":-0.0"#, r#""value":0.1"#]
        {
            assert!(text.contains(word), "{word} not in {text}");
        }
        let values: Vec<u64> = read_all(&text)
            .expect("reads back")
            .iter()
            .map(|e| match e.event {
                Event::SeriesRecorded { value, .. } => value.to_bits(),
                _ => unreachable!("only series were written"),
            })
            .collect();
        assert_eq!(values, [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 0.1].map(f64::to_bits));
    }

    #[test]
    fn the_header_line_is_required_and_checked() {
        let envelopes = chain(&[(1, "alice".into(), Event::ClockTicked)]);
        let body = serde_json::to_string(&envelopes[0]).expect("serializes");
        struct Case {
            name: &'static str,
            text: String,
            error: Option<&'static str>,
        }
        let cases = [
            Case { name: "header then event", text: export(&envelopes), error: None },
            Case { name: "blank lines are skipped", text: format!("\n{}\n\n", export(&envelopes)), error: None },
            Case {
                name: "no header",
                text: format!("{body}\n"),
                error: Some("line 1: not a quantfold journal export"),
            },
            Case {
                name: "another format",
                text: format!("{{\"format\":\"other\",\"codec_version\":1,\"schema_version\":1}}\n{body}\n"),
                error: Some("line 1: unsupported export: format \"other\""),
            },
            Case {
                name: "a newer schema",
                text: format!(
                    "{{\"format\":\"quantfold-journal\",\"codec_version\":1,\"schema_version\":{}}}\n",
                    codec::SCHEMA_VERSION + 1
                ),
                error: Some("unsupported export"),
            },
            Case {
                name: "a bad line names its number",
                text: format!("{}\n{{\"time_ms\":1}}\n", export(&envelopes)),
                error: Some("line 4: not an event"),
            },
        ];
        for case in cases {
            match (read_all(&case.text), case.error) {
                (Ok(read), None) => assert_eq!(read, envelopes, "{}", case.name),
                (Err(e), Some(expected)) => assert!(e.contains(expected), "{}: {e:?} lacks {expected:?}", case.name),
                (got, expected) => panic!("{}: got {got:?}, expected error {expected:?}", case.name),
            }
        }
    }

    #[test]
    fn a_schema_1_export_imports_its_loads_with_the_limits_of_schema_1() {
        let load = r#"{"time_ms":7,"trader":"bob","event":{"StrategyLoaded":{"name":"s","file":"s.js","code_hash":"0000000000000000000000000000000000000000000000000000000000000000","source":null,"params":{"fast":5},"seed":9}}}"#;
        let text = format!("{{\"format\":\"quantfold-journal\",\"codec_version\":1,\"schema_version\":1}}\n{load}\n");
        let read = read_all(&text).expect("a schema-1 export reads");
        let Event::StrategyLoaded(loaded) = &read[0].event else { panic!("not a load: {:?}", read[0].event) };
        assert_eq!((loaded.seed, loaded.limits), (9, crate::event::StrategyLimits::SCHEMA_1));
        // Exported again, the load carries its limits and the header says schema 2.
        let again = export(&read);
        assert!(again.starts_with(r#"{"format":"quantfold-journal","codec_version":2,"schema_version":2}"#), "{again}");
        assert!(again.contains(r#""limits":{"call_fuel":500,"call_timeout_ms":1000,"#), "{again}");
        assert_eq!(read_all(&again).expect("reads back")[0].event, read[0].event);
    }

    #[test]
    fn seq_and_hashes_are_optional_on_import() {
        let text = format!(
            "{}\n{}\n",
            serde_json::to_string(&FileHeader::current()).expect("serializes"),
            r#"{"time_ms":7,"trader":"bob","event":{"StrategyRestarted":{"attempt":2}}}"#
        );
        let read = read_all(&text).expect("reads");
        assert_eq!(read[0].event, Event::StrategyRestarted { attempt: 2 });
        assert_eq!((read[0].seq, read[0].time_ms, read[0].trader.as_str()), (0, 7, "bob"));
    }
}

#[cfg(test)]
mod property_tests {
    use proptest::prelude::*;

    use super::*;
    use crate::{
        event::Event,
        testkit::{arb_envelope_stream, chain},
    };

    /// The canonical body bytes, with every NaN made the one NaN JSON can say.
    fn canonical_body(env: &Envelope) -> Vec<u8> {
        let event = match &env.event {
            Event::SeriesRecorded { name, value } if value.is_nan() => {
                Event::SeriesRecorded { name: name.clone(), value: f64::NAN }
            }
            other => other.clone(),
        };
        codec::encode_body(env.time_ms, &env.trader, &event)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Export then import: every field comes back (decimal scales, float
        /// bits, unicode, nested JSON), and re-chaining the imported events
        /// reproduces the original hashes, as the module promises.
        #[test]
        fn prop_envelopes_round_trip_through_json_lines(stream in arb_envelope_stream(0..24)) {
            let mut out = Vec::new();
            write_header(&mut out).expect("writes to a Vec");
            for env in &stream {
                write_envelope(&mut out, env).expect("writes to a Vec");
            }
            prop_assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), stream.len() + 1, "one line per envelope");
            let back: Vec<Envelope> = read(out.as_slice()).collect::<Result<_, _>>().expect("reads back");
            prop_assert_eq!(back.len(), stream.len());
            for (original, read) in stream.iter().zip(&back) {
                prop_assert_eq!((read.seq, read.prev_hash, read.hash), (original.seq, original.prev_hash, original.hash));
                prop_assert_eq!(canonical_body(read), canonical_body(original));
            }
            let items: Vec<_> = back.iter().map(|e| (e.time_ms, e.trader.clone(), e.event.clone())).collect();
            let rechained = chain(&items);
            prop_assert_eq!(rechained.last().map(|e| e.hash), stream.last().map(|e| e.hash), "import must reproduce the hashes");
        }
    }
}
