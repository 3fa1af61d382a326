//! The `render-node` binary: parses the command line and calls the library.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use render_node::{api, jobs};

#[derive(Debug, Parser)]
#[command(name = "render-node", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the render API over HTTP and gRPC.
    Serve(ServeArgs),
    /// Manage API keys and credits (also while the node runs).
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// HTTP listen address.
    #[arg(long, env = "RENDER_NODE_HTTP", default_value = "127.0.0.1:8080")]
    http: SocketAddr,
    /// gRPC listen address.
    #[arg(long, env = "RENDER_NODE_GRPC", default_value = "127.0.0.1:50051")]
    grpc: SocketAddr,
    /// Folder of the job store, the outputs and the source cache.
    #[arg(long, env = "RENDER_NODE_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// Base of the absolute URLs handed out [default: http://<--http>].
    #[arg(long, env = "RENDER_NODE_PUBLIC_URL")]
    public_url: Option<String>,
    /// Renders at once [default: half the cores, at least 1]; 0 queues without rendering.
    #[arg(long, env = "RENDER_NODE_CONCURRENCY")]
    concurrency: Option<usize>,
    /// Queued jobs at most; beyond, submissions get 429 and are not charged.
    #[arg(long, env = "RENDER_NODE_BACKLOG", default_value_t = 64)]
    backlog: usize,
    /// Allow sources on loopback and private addresses (local use and tests).
    #[arg(long, env = "RENDER_NODE_ALLOW_PRIVATE_SOURCES")]
    allow_private_sources: bool,
    /// libx264 preset.
    #[arg(long, env = "RENDER_NODE_PRESET", default_value = "veryfast")]
    preset: String,
    /// libx264 constant rate factor.
    #[arg(long, env = "RENDER_NODE_CRF", default_value_t = 20,
          value_parser = clap::value_parser!(u8).range(0..=51))]
    crf: u8,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create an account and print its new API key.
    Create {
        #[arg(long, env = "RENDER_NODE_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
        #[arg(long, default_value_t = 0)]
        credits: u64,
    },
    /// List accounts with their credits.
    List {
        #[arg(long, env = "RENDER_NODE_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
    },
    /// Add credits to an account (its id from `keys list`) and print the balance.
    AddCredits {
        #[arg(long, env = "RENDER_NODE_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
        #[arg(long)]
        id: i64,
        #[arg(long)]
        credits: u64,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Serve(args) => serve(args),
        Command::Keys(command) => keys(command),
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = api::ServeConfig {
        http: args.http,
        grpc: args.grpc,
        data_dir: args.data_dir,
        public_url: args.public_url,
        concurrency: args.concurrency.unwrap_or_else(jobs::default_concurrency),
        backlog: args.backlog,
        allow_private_sources: args.allow_private_sources,
        preset: args.preset,
        crf: args.crf,
        adapter: std::env::var("RENDER_NODE_ADAPTER").unwrap_or_else(|_| "wgpu default".into()),
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(api::serve(config))?;
    Ok(())
}

fn keys(command: KeysCommand) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match command {
        KeysCommand::Create { data_dir, credits } => {
            jobs::keys::create(&data_dir, credits, &mut out)?
        }
        KeysCommand::List { data_dir } => jobs::keys::list(&data_dir, &mut out)?,
        KeysCommand::AddCredits {
            data_dir,
            id,
            credits,
        } => jobs::keys::add_credits(&data_dir, id, credits, &mut out)?,
    }
    Ok(())
}
