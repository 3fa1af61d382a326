//! The `keys` subcommands: accounts managed from the shell, beside a running node (SQLite
//! waits for the node's writes instead of failing).

use std::io::Write;
use std::path::Path;

use super::JobError;
use super::store::Store;

/// Creates an account with `credits` and writes its key (shown only now) to `out`.
pub fn create(data_dir: &Path, credits: u64, out: &mut dyn Write) -> Result<(), JobError> {
    let (key, _) = Store::open(data_dir)?.create_account(credits)?;
    writeln!(out, "{key}").map_err(|e| JobError::Internal(format!("stdout: {e}")))
}

/// Lists accounts: id, key prefix, credits.
pub fn list(data_dir: &Path, out: &mut dyn Write) -> Result<(), JobError> {
    let accounts = Store::open(data_dir)?.accounts()?;
    let write = |out: &mut dyn Write| -> std::io::Result<()> {
        writeln!(out, "{:>6}  {:<14}  {:>10}", "id", "key", "credits")?;
        for a in &accounts {
            writeln!(
                out,
                "{:>6}  {:<14}  {:>10}",
                a.id,
                format!("{}…", a.key_prefix),
                a.credits
            )?;
        }
        Ok(())
    };
    write(out).map_err(|e| JobError::Internal(format!("stdout: {e}")))
}

/// Adds credits to account `id` and prints the new balance.
pub fn add_credits(
    data_dir: &Path,
    id: i64,
    credits: u64,
    out: &mut dyn Write,
) -> Result<(), JobError> {
    let account = Store::open(data_dir)?.add_credits(id, credits)?;
    writeln!(out, "{}", account.credits).map_err(|e| JobError::Internal(format!("stdout: {e}")))
}
