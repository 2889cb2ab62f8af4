//! The server on its own, as `quantfold llm-sim` will run it:
//! `cargo run -p llm-server --example llm_sim -- --seed 7 --script "429:1@2,refusal@3"`.
//! The first line of stdout carries both base URLs; ctrl-c stops it.

use clap::Parser;

#[derive(Debug, Parser)]
#[command(about = "A local OpenAI / Anthropic server with a seeded model and scripted faults")]
struct Cli {
    #[command(flatten)]
    args: llm_server::Args,
}

fn main() -> anyhow::Result<()> {
    llm_server::run(&Cli::parse().args)
}
