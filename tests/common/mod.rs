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
