//! `quantfold strategy check FILE`: compile a strategy and say what it defines.

use std::{path::Path, process::ExitCode};

use anyhow::Context;
use serde_json::Value as Json;
use strategies::sandbox::{Hook, Host, Sandbox, SandboxConfig};

/// Answers `ctx.api` during the check: there is no account yet.
struct NoAccount;

impl Host for NoAccount {
    fn now_ms(&self) -> i64 {
        0
    }

    fn api(&mut self, method: &str, _args: Vec<Json>) -> Result<Json, String> {
        Err(format!("ctx.api.{method} is not available during `strategy check`"))
    }
}

pub fn check(file: &Path) -> anyhow::Result<ExitCode> {
    let source = std::fs::read_to_string(file).with_context(|| format!("failed to read {}", file.display()))?;
    let name = file.display().to_string();
    let mut sandbox = match Sandbox::load(&name, &source, SandboxConfig::default()) {
        Ok(sandbox) => sandbox,
        Err(e) => {
            // The error already reads FILE:LINE:COLUMN: message for syntax errors.
            eprintln!("{e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let hooks: Vec<&str> = sandbox.hooks().into_iter().map(Hook::js_name).collect();
    say!("{name}: ok ({:?})", sandbox.kind());
    say!("hooks: {}", if hooks.is_empty() { "(none)".to_owned() } else { hooks.join(", ") });
    say!("params: {}", sandbox.params());
    if let Some(message) = sandbox.missing_heartbeat() {
        eprintln!("{message}; it would never trade");
        return Ok(ExitCode::FAILURE);
    }
    if sandbox.has_hook(Hook::Init) {
        match sandbox.call(Hook::Init, None, &mut NoAccount) {
            Ok(out) => say!("st_init returned: {}", out.value),
            Err(e) => {
                eprintln!("{name}: st_init failed: {e}");
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
