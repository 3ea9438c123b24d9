//! `latentlink`: the one command of latentlink. One binary over lean library crates, so the
//! README's commands, run in the order a newcomer runs them, build the ML stack once.
//!
//! | family | subcommands | module |
//! |---|---|---|
//! | models | `simulate`, `train`, `quantize`, `export`, `eval`, `sweep` | [`model_commands`] |
//! | links | `listen`, `decode`, `stats` (the bridge); `emulate`, `feed`, `qemu`, `demo` (the rig) | [`link_commands`] |
//! | codes | `latent traverse`, `interpolate`, `arithmetic`, `generate` (with a model), `beta-sweep` (training); `latent neighbours`, `anomaly` (on an archive) | [`latent_commands`] |
#![allow(clippy::print_stdout)] // a command-line tool prints its results

mod latent_commands;
mod link_commands;
mod model_commands;
mod ranges;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "latentlink",
    version,
    about = "Learned binary codes for detector data: train models, stream codes over serial, TCP or UDP, account for every event, decode and archive them"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Model(model_commands::ModelCommand),
    #[command(flatten)]
    Link(link_commands::LinkCommand),
    /// Read what a model's codes mean and use them: traversals, interpolation, arithmetic,
    /// generation, β as resolution, nearest codes and anomaly scores over an archive.
    #[command(subcommand)]
    Latent(latent_commands::LatentCommand),
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Model(command) => model_commands::run(command),
        Command::Link(command) => link_commands::run(command),
        Command::Latent(command) => latent_commands::run(command),
    }
}
