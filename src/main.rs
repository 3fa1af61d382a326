//! The `render-node` binary: parses the command line and calls the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use render_node::project::{self, ValidateOptions};

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
    #[arg(long, default_value = "veryfast")]
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
    let cli = Cli::parse();
    match cli.command {
        Command::Validate { project } => validate(&project),
        Command::Render(args) => render(args),
        Command::Preview(args) => preview(args),
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
