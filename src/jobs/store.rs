//! The job store, the accounts and the credit ledger in one SQLite file. Every change of a
//! job's state and every movement of credits is one transaction, so a process killed at any
//! moment leaves either the state before or the state after, never half of each; the
//! ledger holds one row per movement and always sums to the balance.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::RngCore;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::JobError;

/// The file inside `--data-dir`.
pub const DB_FILE: &str = "render-node.sqlite3";

/// How long a writer waits for another (the node, or `keys` run beside it).
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS accounts (
    id INTEGER PRIMARY KEY,
    key_hash TEXT NOT NULL UNIQUE,
    key_prefix TEXT NOT NULL,
    credits INTEGER NOT NULL CHECK (credits >= 0),
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    status TEXT NOT NULL,
    request TEXT NOT NULL,
    credits INTEGER NOT NULL,
    refunded INTEGER NOT NULL DEFAULT 0,
    publish INTEGER NOT NULL,
    format TEXT NOT NULL,
    error TEXT,
    error_field TEXT,
    width INTEGER,
    height INTEGER,
    duration_seconds REAL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status);
CREATE TABLE IF NOT EXISTS ledger (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    job_id TEXT,
    delta INTEGER NOT NULL,
    balance_after INTEGER NOT NULL,
    reason TEXT NOT NULL,
    at INTEGER NOT NULL
);
";

/// A job's place in its life: `queued` → `in_progress` → `completed` | `failed` |
/// `cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobStatus {
    Queued,
    InProgress,
    Completed,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub const ALL: [JobStatus; 5] = [
        JobStatus::Queued,
        JobStatus::InProgress,
        JobStatus::Completed,
        JobStatus::Failed,
        JobStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::InProgress => "in_progress",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }

    fn parse(text: &str) -> JobStatus {
        JobStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .unwrap_or(JobStatus::Failed)
    }

    /// No transition leaves a final state.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobStatus::Completed | JobStatus::Failed | JobStatus::Cancelled
        )
    }
}

/// One row of `jobs`.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    pub id: String,
    pub account_id: i64,
    pub status: JobStatus,
    /// The request body as submitted (JSON), so a restart can run the job again.
    pub request: String,
    pub credits: u64,
    pub refunded: u64,
    pub publish: bool,
    pub format: String,
    pub error: Option<String>,
    pub error_field: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub duration_seconds: Option<f64>,
    pub created_at: i64,
}

/// A job to insert: what submission decided.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub account_id: i64,
    pub request: String,
    pub credits: u64,
    pub publish: bool,
    pub format: String,
}

/// What a completed render produced, as stored.
#[derive(Debug, Clone, Copy)]
pub struct Completion {
    pub width: u32,
    pub height: u32,
    pub duration_seconds: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub id: i64,
    /// The first characters of the key, to tell keys apart in listings.
    pub key_prefix: String,
    pub credits: i64,
    pub created_at: i64,
}

/// One movement of credits.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerEntry {
    pub account_id: i64,
    pub job_id: Option<String>,
    pub delta: i64,
    pub balance_after: i64,
    pub reason: String,
}

pub struct Store {
    conn: Mutex<Connection>,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// The stored form of an API key.
fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A new job id, `job_` and 16 random bytes.
pub fn new_job_id() -> String {
    format!("job_{}", random_hex(16))
}

const JOB_COLUMNS: &str = "id, account_id, status, request, credits, refunded, publish, \
     format, error, error_field, width, height, duration_seconds, created_at";

fn job_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<JobRecord> {
    Ok(JobRecord {
        id: row.get(0)?,
        account_id: row.get(1)?,
        status: JobStatus::parse(&row.get::<_, String>(2)?),
        request: row.get(3)?,
        credits: row.get::<_, i64>(4)?.max(0) as u64,
        refunded: row.get::<_, i64>(5)?.max(0) as u64,
        publish: row.get(6)?,
        format: row.get(7)?,
        error: row.get(8)?,
        error_field: row.get(9)?,
        width: row.get(10)?,
        height: row.get(11)?,
        duration_seconds: row.get(12)?,
        created_at: row.get(13)?,
    })
}

/// Moves `delta` credits on an account inside `tx` and writes the ledger row.
fn move_credits(
    tx: &rusqlite::Transaction<'_>,
    account_id: i64,
    job_id: Option<&str>,
    delta: i64,
    reason: &str,
) -> rusqlite::Result<i64> {
    tx.execute(
        "UPDATE accounts SET credits = credits + ?1 WHERE id = ?2",
        params![delta, account_id],
    )?;
    let balance: i64 = tx.query_row(
        "SELECT credits FROM accounts WHERE id = ?1",
        [account_id],
        |r| r.get(0),
    )?;
    tx.execute(
        "INSERT INTO ledger (account_id, job_id, delta, balance_after, reason, at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![account_id, job_id, delta, balance, reason, now()],
    )?;
    Ok(balance)
}

impl Store {
    /// Opens (creating if needed) the store in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Store, JobError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| JobError::Internal(format!("data dir {}: {e}", data_dir.display())))?;
        let conn = Connection::open(data_dir.join(DB_FILE))?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // WAL lets `keys` write while the node reads; FULL makes each commit durable.
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!("SQLite journal mode is {mode}, not WAL");
        }
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.execute_batch(SCHEMA)?;
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (transactions roll back),
        // so a poisoned lock is safe to take over.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates an account with `credits` and returns its new key (shown once).
    pub fn create_account(&self, credits: u64) -> Result<(String, Account), JobError> {
        let key = format!("rn_{}", random_hex(32));
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO accounts (key_hash, key_prefix, credits, created_at) \
             VALUES (?1, ?2, 0, ?3)",
            params![hash_key(&key), &key[..11], now()],
        )?;
        let id = tx.last_insert_rowid();
        move_credits(&tx, id, None, credits as i64, "grant")?;
        tx.commit()?;
        drop(conn);
        let account = self.account(id)?;
        Ok((key, account))
    }

    pub fn account(&self, id: i64) -> Result<Account, JobError> {
        self.conn()
            .query_row(
                "SELECT id, key_prefix, credits, created_at FROM accounts WHERE id = ?1",
                [id],
                |r| {
                    Ok(Account {
                        id: r.get(0)?,
                        key_prefix: r.get(1)?,
                        credits: r.get(2)?,
                        created_at: r.get(3)?,
                    })
                },
            )
            .optional()?
            .ok_or_else(|| JobError::Internal(format!("account {id}: no such account")))
    }

    pub fn accounts(&self) -> Result<Vec<Account>, JobError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT id, key_prefix, credits, created_at FROM accounts ORDER BY id")?;
        let rows = stmt.query_map([], |r| {
            Ok(Account {
                id: r.get(0)?,
                key_prefix: r.get(1)?,
                credits: r.get(2)?,
                created_at: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Adds `credits` to account `id` (a top-up, in the ledger).
    pub fn add_credits(&self, id: i64, credits: u64) -> Result<Account, JobError> {
        {
            let mut conn = self.conn();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let exists: Option<i64> = tx
                .query_row("SELECT id FROM accounts WHERE id = ?1", [id], |r| r.get(0))
                .optional()?;
            if exists.is_none() {
                return Err(JobError::Internal(format!(
                    "--id: no account {id}; `keys list` shows the ids"
                )));
            }
            move_credits(&tx, id, None, credits as i64, "top-up")?;
            tx.commit()?;
        }
        self.account(id)
    }

    /// The account whose key this is: looked up by hash, then compared in constant time.
    pub fn authenticate(&self, key: &str) -> Result<i64, JobError> {
        let hash = hash_key(key);
        let found: Option<(i64, String)> = self
            .conn()
            .query_row(
                "SELECT id, key_hash FROM accounts WHERE key_hash = ?1",
                [&hash],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        match found {
            Some((id, stored)) if bool::from(stored.as_bytes().ct_eq(hash.as_bytes())) => Ok(id),
            _ => Err(JobError::Unauthorized),
        }
    }

    /// Charges the account and queues the job in one transaction: with a full backlog or
    /// too few credits nothing is written.
    pub fn submit(&self, job: &NewJob, backlog: usize) -> Result<JobRecord, JobError> {
        let id = new_job_id();
        {
            let mut conn = self.conn();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let queued: i64 = tx.query_row(
                "SELECT COUNT(*) FROM jobs WHERE status = 'queued'",
                [],
                |r| r.get(0),
            )?;
            if queued as usize >= backlog {
                return Err(JobError::BacklogFull(backlog));
            }
            let available: i64 = tx.query_row(
                "SELECT credits FROM accounts WHERE id = ?1",
                [job.account_id],
                |r| r.get(0),
            )?;
            if available < job.credits as i64 {
                return Err(JobError::InsufficientCredits {
                    needed: job.credits,
                    available: available.max(0) as u64,
                });
            }
            let at = now();
            tx.execute(
                "INSERT INTO jobs (id, account_id, status, request, credits, publish, format, \
                 created_at, updated_at) VALUES (?1, ?2, 'queued', ?3, ?4, ?5, ?6, ?7, ?7)",
                params![
                    id,
                    job.account_id,
                    job.request,
                    job.credits as i64,
                    job.publish,
                    job.format,
                    at
                ],
            )?;
            move_credits(
                &tx,
                job.account_id,
                Some(&id),
                -(job.credits as i64),
                "charge",
            )?;
            tx.commit()?;
        }
        self.job(&id)?
            .ok_or_else(|| JobError::Internal(format!("job {id} vanished after insert")))
    }

    pub fn job(&self, id: &str) -> Result<Option<JobRecord>, JobError> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1");
        Ok(self.conn().query_row(&sql, [id], job_from_row).optional()?)
    }

    /// The job if it belongs to `account_id`; another user's job is as unknown as a
    /// missing one.
    pub fn owned_job(&self, account_id: i64, id: &str) -> Result<JobRecord, JobError> {
        match self.job(id)? {
            Some(job) if job.account_id == account_id => Ok(job),
            _ => Err(JobError::NotFound(id.to_string())),
        }
    }

    /// Moves a job from one state to another if it is still in `from`; false if it was not.
    fn transition(&self, id: &str, from: &[JobStatus], to: JobStatus) -> Result<bool, JobError> {
        let conn = self.conn();
        let changed = conn.execute(
            &format!(
                "UPDATE jobs SET status = ?1, updated_at = ?2 WHERE id = ?3 AND status IN ({})",
                status_list(from)
            ),
            params![to.as_str(), now(), id],
        )?;
        Ok(changed == 1)
    }

    /// queued → in_progress; false if the job left `queued` meanwhile (cancelled).
    pub fn start(&self, id: &str) -> Result<bool, JobError> {
        self.transition(id, &[JobStatus::Queued], JobStatus::InProgress)
    }

    /// in_progress → queued (shutdown); nothing is refunded, the job runs again.
    pub fn requeue(&self, id: &str) -> Result<bool, JobError> {
        self.transition(id, &[JobStatus::InProgress], JobStatus::Queued)
    }

    /// in_progress → completed with what the render produced.
    pub fn complete(&self, id: &str, done: Completion) -> Result<bool, JobError> {
        let changed = self.conn().execute(
            "UPDATE jobs SET status = 'completed', width = ?1, height = ?2, \
             duration_seconds = ?3, updated_at = ?4 WHERE id = ?5 AND status = 'in_progress'",
            params![done.width, done.height, done.duration_seconds, now(), id],
        )?;
        Ok(changed == 1)
    }

    /// queued | in_progress → failed, refunding the charge in the same transaction.
    pub fn fail(&self, id: &str, message: &str, field: Option<&str>) -> Result<bool, JobError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some((account_id, credits)) = unfinished(&tx, id)? else {
            return Ok(false);
        };
        tx.execute(
            "UPDATE jobs SET status = 'failed', error = ?1, error_field = ?2, refunded = ?3, \
             updated_at = ?4 WHERE id = ?5",
            params![message, field, credits, now(), id],
        )?;
        move_credits(&tx, account_id, Some(id), credits, "refund")?;
        tx.commit()?;
        Ok(true)
    }

    /// queued | in_progress → cancelled with a full refund, for the job's owner only.
    /// Returns the credits refunded.
    pub fn cancel(&self, account_id: i64, id: &str) -> Result<u64, JobError> {
        self.owned_job(account_id, id)?;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some((owner, credits)) = unfinished(&tx, id)? else {
            let status = tx.query_row("SELECT status FROM jobs WHERE id = ?1", [id], |r| {
                r.get::<_, String>(0)
            })?;
            return Err(JobError::Finished {
                id: id.to_string(),
                status,
            });
        };
        tx.execute(
            "UPDATE jobs SET status = 'cancelled', refunded = ?1, updated_at = ?2 WHERE id = ?3",
            params![credits, now(), id],
        )?;
        move_credits(&tx, owner, Some(id), credits, "refund")?;
        tx.commit()?;
        Ok(credits as u64)
    }

    /// After a restart: jobs left in progress go back to the queue; returns every queued
    /// job id, oldest first.
    pub fn recover(&self) -> Result<Vec<String>, JobError> {
        let conn = self.conn();
        conn.execute(
            "UPDATE jobs SET status = 'queued', updated_at = ?1 WHERE status = 'in_progress'",
            [now()],
        )?;
        let mut stmt = conn.prepare("SELECT id FROM jobs WHERE status = 'queued' ORDER BY seq")?;
        let ids = stmt.query_map([], |r| r.get(0))?;
        Ok(ids.collect::<Result<_, _>>()?)
    }

    /// How many jobs are in each state.
    pub fn counts(&self) -> Result<Vec<(JobStatus, u64)>, JobError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT status, COUNT(*) FROM jobs GROUP BY status")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        let mut counts: Vec<(JobStatus, u64)> =
            JobStatus::ALL.into_iter().map(|s| (s, 0)).collect();
        for row in rows {
            let (status, n) = row?;
            let status = JobStatus::parse(&status);
            if let Some(slot) = counts.iter_mut().find(|(s, _)| *s == status) {
                slot.1 = n.max(0) as u64;
            }
        }
        Ok(counts)
    }

    /// Completed renders whose owners asked to publish them, newest first.
    pub fn gallery(&self, limit: usize) -> Result<Vec<JobRecord>, JobError> {
        let conn = self.conn();
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE status = 'completed' AND publish = 1 \
             ORDER BY seq DESC LIMIT ?1"
        );
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map([limit as i64], job_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every movement of an account's credits, oldest first.
    pub fn ledger(&self, account_id: i64) -> Result<Vec<LedgerEntry>, JobError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT account_id, job_id, delta, balance_after, reason FROM ledger \
             WHERE account_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([account_id], |r| {
            Ok(LedgerEntry {
                account_id: r.get(0)?,
                job_id: r.get(1)?,
                delta: r.get(2)?,
                balance_after: r.get(3)?,
                reason: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

fn status_list(statuses: &[JobStatus]) -> String {
    let quoted: Vec<String> = statuses
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    quoted.join(", ")
}

/// The owner and charge of a job that is still queued or in progress.
fn unfinished(tx: &rusqlite::Transaction<'_>, id: &str) -> rusqlite::Result<Option<(i64, i64)>> {
    tx.query_row(
        "SELECT account_id, credits FROM jobs WHERE id = ?1 \
         AND status IN ('queued', 'in_progress')",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        (dir, store)
    }

    fn new_job(account_id: i64, credits: u64) -> NewJob {
        NewJob {
            account_id,
            request: "{}".into(),
            credits,
            publish: false,
            format: "mp4".into(),
        }
    }

    #[test]
    fn keys_authenticate_only_themselves() {
        let (_dir, store) = store();
        let (key, account) = store.create_account(10).unwrap();
        assert!(key.starts_with("rn_") && key.len() == 3 + 64);
        assert_eq!(store.authenticate(&key).unwrap(), account.id);
        // The same key with its last digit changed (to one it is not).
        let last = if key.ends_with('0') { '1' } else { '0' };
        let wrong = format!("{}{last}", &key[..key.len() - 1]);
        assert!(matches!(
            store.authenticate(&wrong),
            Err(JobError::Unauthorized)
        ));
    }

    #[test]
    fn charge_fail_refund_and_cancel_keep_the_ledger_equal_to_the_balance() {
        let (_dir, store) = store();
        let (_, account) = store.create_account(100).unwrap();
        let a = store.submit(&new_job(account.id, 30), 10).unwrap();
        let b = store.submit(&new_job(account.id, 20), 10).unwrap();
        assert_eq!(store.account(account.id).unwrap().credits, 50);

        assert!(store.start(&a.id).unwrap());
        assert!(
            store
                .fail(&a.id, "decode", Some("project.clips[0].src"))
                .unwrap()
        );
        assert!(
            !store.fail(&a.id, "twice", None).unwrap(),
            "refunded once only"
        );
        assert_eq!(store.cancel(account.id, &b.id).unwrap(), 20);
        assert!(matches!(
            store.cancel(account.id, &b.id),
            Err(JobError::Finished { .. })
        ));

        let balance = store.account(account.id).unwrap().credits;
        let ledger = store.ledger(account.id).unwrap();
        assert_eq!(balance, 100);
        assert_eq!(ledger.iter().map(|e| e.delta).sum::<i64>(), balance);
        assert_eq!(ledger.len(), 5);
    }

    #[test]
    fn too_few_credits_or_a_full_backlog_write_nothing() {
        let (_dir, store) = store();
        let (_, account) = store.create_account(5).unwrap();
        assert!(matches!(
            store.submit(&new_job(account.id, 6), 10),
            Err(JobError::InsufficientCredits {
                needed: 6,
                available: 5
            })
        ));
        store.submit(&new_job(account.id, 1), 1).unwrap();
        assert!(matches!(
            store.submit(&new_job(account.id, 1), 1),
            Err(JobError::BacklogFull(1))
        ));
        assert_eq!(store.account(account.id).unwrap().credits, 4);
        assert_eq!(store.ledger(account.id).unwrap().len(), 2);
    }

    #[test]
    fn another_users_job_is_not_found() {
        let (_dir, store) = store();
        let (_, alice) = store.create_account(5).unwrap();
        let (_, bob) = store.create_account(5).unwrap();
        let job = store.submit(&new_job(alice.id, 1), 10).unwrap();
        assert!(matches!(
            store.cancel(bob.id, &job.id),
            Err(JobError::NotFound(_))
        ));
        assert_eq!(
            store.job(&job.id).unwrap().unwrap().status,
            JobStatus::Queued
        );
    }

    #[test]
    fn recover_requeues_jobs_left_in_progress() {
        let (_dir, store) = store();
        let (_, account) = store.create_account(5).unwrap();
        let a = store.submit(&new_job(account.id, 1), 10).unwrap();
        let b = store.submit(&new_job(account.id, 1), 10).unwrap();
        store.start(&a.id).unwrap();
        assert_eq!(store.recover().unwrap(), vec![a.id.clone(), b.id]);
        assert_eq!(store.job(&a.id).unwrap().unwrap().status, JobStatus::Queued);
    }
}
