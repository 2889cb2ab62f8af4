//! What the end-to-end tests share: running the real `quantfold` binary from
//! the repository root and judging its exit.

// Each test file uses a different part of this.
#![allow(dead_code)]

use std::{
    path::Path,
    process::{Command, Output},
};

pub fn quantfold(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_quantfold"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("failed to run quantfold")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[track_caller]
pub fn ok(args: &[&str]) -> Output {
    let out = quantfold(args);
    assert!(out.status.success(), "quantfold {args:?} failed:\n{}\n{}", text(&out.stdout), text(&out.stderr));
    out
}

/// A failure without a panic; the whole output, for tests that read both streams.
#[track_caller]
pub fn fails_output(args: &[&str]) -> Output {
    let out = quantfold(args);
    assert!(!out.status.success(), "quantfold {args:?} should fail; stdout:\n{}", text(&out.stdout));
    assert!(!text(&out.stderr).contains("panicked"), "quantfold {args:?} panicked:\n{}", text(&out.stderr));
    out
}

/// A failure with the one-line error users get; returns that line.
#[track_caller]
pub fn fails(args: &[&str]) -> String {
    let err = text(&fails_output(args).stderr);
    assert_eq!(err.trim().lines().count(), 1, "want a one-line error, got:\n{err}");
    err
}

pub fn stdout(out: &Output) -> String {
    text(&out.stdout)
}

/// `promtool check metrics` on Prometheus text (Debian: `apt-get install -y prometheus`);
/// fails the test with promtool's words and the text.
pub fn promtool_check(text: &str) {
    use std::{io::Write, process::Stdio};
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("promtool is needed ({e}): install it with `apt-get install -y prometheus`"));
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The value of the first sample of Prometheus `text` whose line starts with `name` (labels
/// included).
pub fn metric_sample(text: &str, name: &str) -> f64 {
    let line = text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name} missing:\n{text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}
