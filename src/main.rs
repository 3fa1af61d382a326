//! The `render-node` binary: parses the command line and calls the library.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use render_node::project::{self, ValidateOptions};
use render_node::{api, jobs};

/// libx264's presets, fastest first.
const PRESETS: [&str; 10] = [
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
];

/// Credits granted in one command: far beyond any real balance, well inside SQLite's
/// 64-bit integers so that a balance can never overflow.
fn credits_range() -> clap::builder::RangedU64ValueParser {
    clap::value_parser!(u64).range(0..=1_000_000_000_000)
}

/// A GPU-accelerated video timeline render node.
#[derive(Debug, Parser)]
#[command(name = "render-node", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a project (or a full render request body) and print its length, frame count
    /// and credits; exit 2 and print every error, one a line, if it is invalid.
    Validate {
        /// The project JSON file.
        project: PathBuf,
    },
    /// Render a project to an MP4 (and a WebP thumbnail beside it) in the foreground.
    Render(RenderArgs),
    /// Play a project's audio mix through the sound card.
    Preview(PreviewArgs),
    /// Serve the render API over HTTP and gRPC.
    Serve(ServeArgs),
    /// Manage API keys and credits (also while the node runs).
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Debug, clap::Args)]
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
    #[arg(long, env = "RENDER_NODE_PRESET", default_value = "veryfast", value_parser = PRESETS)]
    preset: String,
    /// libx264 constant rate factor (0-51, lower is better).
    #[arg(long, env = "RENDER_NODE_CRF", default_value_t = 23,
          value_parser = clap::value_parser!(u8).range(0..=51))]
    crf: u8,
    /// Largest source fetched, in bytes [default: 2 GiB]; a bigger one fails its job.
    #[arg(long, env = "RENDER_NODE_FETCH_MAX_BYTES",
          value_parser = clap::value_parser!(u64).range(1..))]
    fetch_max_bytes: Option<u64>,
    /// Longest fetch of one source in seconds, slow or stalled bodies included
    /// [default: 600].
    #[arg(long, env = "RENDER_NODE_FETCH_TIMEOUT",
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    fetch_timeout: Option<u64>,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create an account and print its new API key.
    Create {
        #[arg(long, env = "RENDER_NODE_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
        #[arg(long, default_value_t = 0, value_parser = credits_range())]
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
        #[arg(long, value_parser = credits_range())]
        credits: u64,
    },
}

#[derive(Debug, clap::Args)]
struct PreviewArgs {
    /// The project JSON file; local `src` paths are relative to its folder.
    project: PathBuf,
    /// Output device name (default: the system's default output).
    #[arg(long)]
    device: Option<String>,
    /// Allow sources on loopback and private addresses.
    #[arg(long, env = "RENDER_NODE_ALLOW_PRIVATE_SOURCES")]
    allow_private_sources: bool,
    /// The source cache folder.
    #[arg(long, env = "RENDER_NODE_CACHE_DIR", default_value_os_t = default_cache_dir())]
    cache_dir: PathBuf,
}

#[derive(Debug, clap::Args)]
struct RenderArgs {
    /// The project JSON file; local `src` paths are relative to its folder.
    project: PathBuf,
    /// Where to write the MP4; the thumbnail goes beside it as .webp.
    #[arg(short, long)]
    output: PathBuf,
    /// libx264 preset.
    #[arg(long, default_value = "veryfast", value_parser = PRESETS)]
    preset: String,
    /// libx264 constant rate factor (0-51, lower is better).
    #[arg(long, default_value_t = 23, value_parser = clap::value_parser!(u8).range(0..=51))]
    crf: u8,
    /// Allow sources on loopback and private addresses.
    #[arg(long, env = "RENDER_NODE_ALLOW_PRIVATE_SOURCES")]
    allow_private_sources: bool,
    /// The source cache folder.
    #[arg(long, env = "RENDER_NODE_CACHE_DIR", default_value_os_t = default_cache_dir())]
    cache_dir: PathBuf,
}

fn main() -> ExitCode {
    private_runtime_dir();
    let cli = Cli::parse();
    match cli.command {
        Command::Validate { project } => validate(&project),
        Command::Render(args) => render(args),
        Command::Preview(args) => preview(args),
        Command::Serve(args) => report(serve(args)),
        Command::Keys(command) => report(keys(command)),
    }
}

fn render(args: RenderArgs) -> ExitCode {
    init_logs();
    render_node::render::command::run(&render_node::render::command::RenderCommand {
        project: args.project,
        output: args.output,
        preset: args.preset,
        crf: args.crf,
        allow_private_sources: args.allow_private_sources,
        cache_dir: args.cache_dir,
    })
}

fn preview(args: PreviewArgs) -> ExitCode {
    init_logs();
    render_node::render::command::preview(&render_node::render::command::PreviewCommand {
        project: args.project,
        device: args.device,
        allow_private_sources: args.allow_private_sources,
        cache_dir: args.cache_dir,
    })
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    init_logs();
    // The device is opened (and its adapter logged) before the first job needs it.
    let adapter = match render_node::render::gpu_context() {
        Ok(gpu) => gpu.adapter_name(),
        Err(e) => {
            tracing::error!(error = %e, "no GPU device: every render will fail");
            "unavailable".to_string()
        }
    };
    let config = api::ServeConfig {
        http: args.http,
        grpc: args.grpc,
        data_dir: args.data_dir,
        public_url: args.public_url,
        concurrency: args.concurrency.unwrap_or_else(jobs::default_concurrency),
        backlog: args.backlog,
        allow_private_sources: args.allow_private_sources,
        fetch_max_bytes: args.fetch_max_bytes,
        fetch_timeout: args.fetch_timeout.map(std::time::Duration::from_secs),
        preset: args.preset,
        crf: args.crf,
        adapter,
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

/// Prints an error of `serve` or `keys` with its causes; exit 1.
fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `$XDG_CACHE_HOME/render-node` or `~/.cache/render-node`, else `./data/cache`.
fn default_cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")));
    base.map_or_else(|| PathBuf::from("data/cache"), |b| b.join("render-node"))
}

/// Logs to stderr, `info` and up unless `RUST_LOG` says otherwise.
fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,render_node=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Exit status for input the node refuses (an invalid project, an unreadable file).
const EXIT_INVALID: u8 = 2;

fn validate(path: &Path) -> ExitCode {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("{}: cannot read: {e}", path.display());
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let opts = ValidateOptions {
        allow_local_paths: true,
    };
    match project::parse_and_validate_document(&bytes, &opts) {
        Ok(timeline) => {
            println!("{}", project::summary(&timeline));
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            ExitCode::from(EXIT_INVALID)
        }
    }
}

/// Vulkan's loader wants `XDG_RUNTIME_DIR` to name a private folder and complains on every
/// start otherwise; give it one of ours when the session has none.
fn private_runtime_dir() {
    let usable = std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| Path::new(&d).is_dir());
    if usable {
        return;
    }
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    let dir = std::env::temp_dir().join(format!("render-node-runtime-{uid}"));
    let made = std::fs::DirBuilder::new()
        .recursive(true)
        .create(&dir)
        .and_then(|()| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
        });
    if made.is_ok() {
        // SAFETY: called first thing in `main`, before any other thread exists, so nothing
        // can read the environment while it changes.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", &dir) };
    }
}
