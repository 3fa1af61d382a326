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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate { project } => validate(&project),
    }
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
