//! Tidy checks, run by `cargo test`: the rules that keep the fold deterministic,
//! written down where a change that breaks them fails the build.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// Lines that are code, not comments.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().filter(|(_, l)| !l.trim_start().starts_with("//")).map(|(i, l)| (i + 1, l))
}

#[test]
fn the_ledger_fold_touches_no_clock_disk_randomness_or_hash_order() {
    let forbidden =
        ["sled", "tokio", "std::time", "Instant", "SystemTime", "Utc::now", "rand::", "HashMap", "HashSet", "f64"];
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut offences = Vec::new();
    for file in rust_files(&root.join("journal/src/state")).into_iter().chain([root.join("journal/src/check.rs")]) {
        let text = std::fs::read_to_string(&file).unwrap();
        for (line, code) in code_lines(&text) {
            for word in forbidden {
                if code.contains(word) {
                    offences.push(format!("{}:{line}: {word}", file.strip_prefix(root).unwrap().display()));
                }
            }
        }
    }
    assert!(offences.is_empty(), "the fold must stay pure and exact:\n{}", offences.join("\n"));
}

#[test]
fn only_the_store_touches_disk_in_the_journal_crate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut offences = Vec::new();
    for file in rust_files(&root.join("journal/src")) {
        let name = file.strip_prefix(root).unwrap().display().to_string();
        // The store is `store.rs` and its submodules in `store/`.
        if name.ends_with("store.rs") || name.starts_with("journal/src/store/") || name.ends_with("testkit.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (line, code) in code_lines(&text) {
            if code.contains("std::fs") || code.contains("sled::") {
                offences.push(format!("{name}:{line}"));
            }
        }
    }
    assert!(offences.is_empty(), "disk access outside journal/src/store.rs and store/:\n{}", offences.join("\n"));
}

#[test]
fn strategies_never_reach_the_network_or_the_wall_clock_for_events() {
    // The sandbox may read the wall clock only for its timeout backstop, and the
    // runtime only for health metrics; nothing in the deciders opens sockets.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut offences = Vec::new();
    for file in rust_files(&root.join("strategies/src")) {
        let text = std::fs::read_to_string(&file).unwrap();
        for (line, code) in code_lines(&text) {
            for word in ["std::net", "reqwest", "TcpStream", "SystemTime", "Utc::now"] {
                if code.contains(word) {
                    offences.push(format!("{}:{line}: {word}", file.strip_prefix(root).unwrap().display()));
                }
            }
        }
    }
    assert!(offences.is_empty(), "{}", offences.join("\n"));
}
