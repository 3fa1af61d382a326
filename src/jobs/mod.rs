//! Jobs: a render request that has been charged for and waits for, runs on, or has left a
//! render slot. The queue runs at most `concurrency` renders at once and holds at most
//! `backlog` waiting jobs; everything a client can observe (state, charge, refund) is
//! written to the [`Store`] before it is reported, so the node can be killed at any moment
//! and restarted without losing a job or a credit. Progress lives in memory only: after a
//! restart a re-queued job simply starts again from 0.

pub mod keys;
pub mod store;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::project::{RenderRequest, Timeline};
use crate::project::{ValidateOptions, ValidationErrors, parse_request, validate_request};
use crate::render::{CancelToken, Progress, RenderError, RenderOutput, RenderSettings};
use crate::storage::Storage;
pub use store::{Account, Completion, JobRecord, JobStatus, NewJob, Store};

/// Why a job operation was refused; the HTTP and gRPC facades each map it to the wire in
/// one function.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{0}")]
    Invalid(ValidationErrors),
    #[error("api_key: missing, or no account has this key")]
    Unauthorized,
    #[error("api_key: the account has {available} credits, the render needs {needed}")]
    InsufficientCredits { needed: u64, available: u64 },
    #[error("job_id: no job {} for this key", shown_id(.0))]
    NotFound(String),
    #[error("job_id: job {id} is already {status}; only queued or in_progress jobs can change")]
    Finished { id: String, status: String },
    #[error("the backlog is full ({0} jobs queued); retry later")]
    BacklogFull(usize),
    #[error("the node is shutting down; retry later")]
    ShuttingDown,
    #[error("job store: {0}")]
    Storage(#[from] rusqlite::Error),
    #[error("{0}")]
    Internal(String),
}

/// A job id as echoed in an error: quoted, and cut after 80 characters (an unknown id is
/// the caller's input, up to the whole URL or gRPC message).
fn shown_id(id: &str) -> String {
    const SHOWN: usize = 80;
    if id.chars().count() > SHOWN {
        let head: String = id.chars().take(SHOWN).collect();
        format!("{head:?}...")
    } else {
        format!("{id:?}")
    }
}

impl JobError {
    /// The request field the error is about, for the error body.
    pub fn field(&self) -> Option<String> {
        match self {
            JobError::Invalid(v) => v.errors.first().map(|e| e.field.clone()),
            JobError::Unauthorized | JobError::InsufficientCredits { .. } => Some("api_key".into()),
            JobError::NotFound(_) | JobError::Finished { .. } => Some("job_id".into()),
            _ => None,
        }
    }
}

/// The renderer a queue runs: [`crate::render::render`] in the node, a stand-in in tests.
pub type RenderFn = Arc<
    dyn Fn(
            &Timeline,
            &std::path::Path,
            &std::path::Path,
            &RenderSettings,
            &(dyn Fn(Progress) + Sync),
            &CancelToken,
        ) -> Result<RenderOutput, RenderError>
        + Send
        + Sync,
>;

/// How the queue runs.
#[derive(Clone)]
pub struct QueueConfig {
    /// Renders at once; 0 queues jobs without starting any (a drained node).
    pub concurrency: usize,
    /// Queued jobs at most; a submission beyond is refused and not charged.
    pub backlog: usize,
    pub settings: RenderSettings,
    pub renderer: RenderFn,
}

/// The default number of renders at once: half the cores, at least one.
pub fn default_concurrency() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

/// A job as a client sees it: the stored record and its live progress.
#[derive(Debug, Clone, PartialEq)]
pub struct JobView {
    pub record: JobRecord,
    /// 0..=100; 100 only once completed.
    pub progress: u8,
}

/// Totals for `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RenderTotals {
    pub renders: u64,
    pub render_seconds: f64,
    pub frames: u64,
    pub last_fps: f64,
}

/// The queue: submission, cancellation and the workers that run renders.
pub struct Jobs {
    store: Arc<Store>,
    storage: Storage,
    config: QueueConfig,
    sender: mpsc::UnboundedSender<String>,
    receiver: tokio::sync::Mutex<mpsc::UnboundedReceiver<String>>,
    running: Mutex<HashMap<String, CancelToken>>,
    progress: Mutex<HashMap<String, u8>>,
    events: broadcast::Sender<String>,
    shutting_down: AtomicBool,
    totals: Mutex<RenderTotals>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The maps hold plain values; one left by a panicking thread is still consistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Jobs {
    /// Re-queues what a previous run left unfinished and starts the workers.
    pub fn start(
        store: Arc<Store>,
        storage: Storage,
        config: QueueConfig,
    ) -> Result<Arc<Jobs>, JobError> {
        let (sender, receiver) = mpsc::unbounded_channel();
        let (events, _) = broadcast::channel(1024);
        let jobs = Arc::new(Jobs {
            store,
            storage,
            config,
            sender,
            receiver: tokio::sync::Mutex::new(receiver),
            running: Mutex::new(HashMap::new()),
            progress: Mutex::new(HashMap::new()),
            events,
            shutting_down: AtomicBool::new(false),
            totals: Mutex::new(RenderTotals::default()),
            workers: Mutex::new(Vec::new()),
        });
        for id in jobs.store.recover()? {
            info!(job_id = %id, status = "queued", "job re-queued after restart");
            let _ = jobs.sender.send(id);
        }
        let handles = (0..jobs.config.concurrency)
            .map(|_| tokio::spawn(Arc::clone(&jobs).work()))
            .collect();
        *lock(&jobs.workers) = handles;
        Ok(jobs)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The folder of served outputs.
    pub fn uploads_dir(&self) -> std::path::PathBuf {
        self.storage.uploads_dir()
    }

    pub fn concurrency(&self) -> usize {
        self.config.concurrency
    }

    pub fn running(&self) -> usize {
        lock(&self.running).len()
    }

    pub fn totals(&self) -> RenderTotals {
        *lock(&self.totals)
    }

    /// A key over [`crate::project::MAX_API_KEY_BYTES`] is refused (400, naming `api_key`)
    /// before it is hashed or looked up.
    pub fn authenticate(&self, api_key: &str) -> Result<i64, JobError> {
        crate::project::check_api_key_length(api_key).map_err(JobError::Invalid)?;
        self.store.authenticate(api_key)
    }

    /// Charges and queues a validated request for `account_id`.
    pub fn submit(
        &self,
        account_id: i64,
        request: &RenderRequest,
        timeline: &Timeline,
    ) -> Result<JobView, JobError> {
        if self.shutting_down.load(Ordering::SeqCst) {
            return Err(JobError::ShuttingDown);
        }
        let body = serde_json::to_string(request)
            .map_err(|e| JobError::Internal(format!("cannot store the request: {e}")))?;
        let new = NewJob {
            account_id,
            request: body,
            credits: timeline.credits(),
            publish: request.publish,
            format: request.format.clone().unwrap_or_else(|| "mp4".into()),
        };
        let record = self.store.submit(&new, self.config.backlog)?;
        info!(job_id = %record.id, status = "queued", credits = record.credits, "job submitted");
        let _ = self.sender.send(record.id.clone());
        self.view_of(&record.id)
    }

    /// The job of `account_id` with its live progress.
    pub fn get(&self, account_id: i64, job_id: &str) -> Result<JobView, JobError> {
        let record = self.store.owned_job(account_id, job_id)?;
        Ok(self.view(record))
    }

    fn view_of(&self, job_id: &str) -> Result<JobView, JobError> {
        let record = self
            .store
            .job(job_id)?
            .ok_or_else(|| JobError::NotFound(job_id.to_string()))?;
        Ok(self.view(record))
    }

    fn view(&self, record: JobRecord) -> JobView {
        let progress = match record.status {
            JobStatus::Completed => 100,
            _ => lock(&self.progress).get(&record.id).copied().unwrap_or(0),
        };
        JobView { record, progress }
    }

    /// Cancels a queued or running job of `account_id`; returns the credits refunded.
    pub fn cancel(&self, account_id: i64, job_id: &str) -> Result<(JobView, u64), JobError> {
        let refunded = self.store.cancel(account_id, job_id)?;
        info!(job_id, status = "cancelled", refunded, "job cancelled");
        if let Some(token) = lock(&self.running).get(job_id) {
            token.cancel();
        }
        self.notify(job_id);
        Ok((self.get(account_id, job_id)?, refunded))
    }

    /// Changes to jobs: each message is the id of a job whose view changed.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.events.subscribe()
    }

    fn notify(&self, job_id: &str) {
        let _ = self.events.send(job_id.to_string());
    }

    /// Jobs waiting for a render slot.
    pub fn queue_length(&self) -> Result<u64, JobError> {
        Ok(self
            .store
            .counts()?
            .into_iter()
            .find(|(s, _)| *s == JobStatus::Queued)
            .map_or(0, |(_, n)| n))
    }

    /// Stops taking jobs, cancels the running renders and puts them back in the queue
    /// (charged, not refunded: they run again at the next start), then waits for the
    /// workers.
    pub async fn shutdown(&self, grace: Duration) {
        self.stop_accepting();
        // Wake idle workers so they see the flag.
        for _ in 0..self.config.concurrency {
            let _ = self.sender.send(String::new());
        }
        let workers: Vec<_> = lock(&self.workers).drain(..).collect();
        let all = futures::future::join_all(workers);
        if tokio::time::timeout(grace, all).await.is_err() {
            warn!("renders did not stop within {grace:?}; they re-queue at the next start");
        }
    }

    /// The first step of [`Jobs::shutdown`], for when the servers start to stop: refuses new
    /// submissions, cancels the running renders and wakes every watcher so that open
    /// streams end instead of holding the servers open.
    pub fn stop_accepting(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        for token in lock(&self.running).values() {
            token.cancel();
        }
        self.notify("");
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    async fn work(self: Arc<Jobs>) {
        loop {
            let next = self.receiver.lock().await.recv().await;
            if self.shutting_down.load(Ordering::SeqCst) {
                return;
            }
            match next {
                Some(id) if !id.is_empty() => {
                    if let Err(e) = Arc::clone(&self).run(&id).await {
                        warn!(job_id = %id, "job store error: {e}");
                    }
                }
                Some(_) => {}
                None => return,
            }
        }
    }

    /// Runs one job if it is still queued.
    async fn run(self: Arc<Jobs>, id: &str) -> Result<(), JobError> {
        if !self.store.start(id)? {
            return Ok(());
        }
        info!(job_id = %id, status = "in_progress", "job started");
        lock(&self.progress).insert(id.to_string(), 0);
        self.notify(id);

        let Some(record) = self.store.job(id)? else {
            return Ok(());
        };
        let timeline = match prepare(&record.request) {
            Ok(t) => t,
            Err(e) => {
                let field = e.errors.first().map(|f| f.field.clone());
                return self.fail(id, &e.to_string(), field.as_deref());
            }
        };

        let token = CancelToken::default();
        lock(&self.running).insert(id.to_string(), token.clone());
        let started = Instant::now();
        let result = Arc::clone(&self)
            .render_blocking(id, timeline, token.clone())
            .await;
        lock(&self.running).remove(id);
        self.finish(id, result, &token, started.elapsed())
    }

    async fn render_blocking(
        self: Arc<Jobs>,
        id: &str,
        timeline: Timeline,
        token: CancelToken,
    ) -> Result<RenderOutput, RenderError> {
        let id = id.to_string();
        let handle = tokio::task::spawn_blocking(move || {
            let (video, thumbnail) = self.storage.work_paths(&id);
            let report = |p: Progress| self.report_progress(&id, p);
            let renderer = &self.config.renderer;
            renderer(
                &timeline,
                &video,
                &thumbnail,
                &self.config.settings,
                &report,
                &token,
            )
        });
        handle
            .await
            .unwrap_or_else(|e| Err(RenderError::Internal(format!("the render panicked: {e}"))))
    }

    /// Records progress (never decreasing, below 100 until the job is stored completed).
    fn report_progress(&self, id: &str, p: Progress) {
        let percent = (p.frames_done.saturating_mul(100) / p.frames_total.max(1)).min(99) as u8;
        let changed = {
            let mut map = lock(&self.progress);
            let slot = map.entry(id.to_string()).or_insert(0);
            let changed = percent > *slot;
            *slot = (*slot).max(percent);
            changed
        };
        if changed {
            self.notify(id);
        }
    }

    fn finish(
        &self,
        id: &str,
        result: Result<RenderOutput, RenderError>,
        token: &CancelToken,
        elapsed: Duration,
    ) -> Result<(), JobError> {
        let outcome = match result {
            Ok(output) => self.complete(id, &output, elapsed),
            Err(_) if token.is_cancelled() && self.shutting_down.load(Ordering::SeqCst) => {
                if self.store.requeue(id)? {
                    info!(job_id = %id, status = "queued", "job re-queued at shutdown");
                }
                Ok(())
            }
            // Cancelled by its owner: the store already says so and has refunded it.
            Err(_) if token.is_cancelled() => Ok(()),
            Err(RenderError::Source { field, reason }) => {
                self.fail(id, &format!("{field}: {reason}"), Some(&field))
            }
            Err(e) => self.fail(id, &e.to_string(), None),
        };
        let status = self.store.job(id)?.map(|j| j.status);
        if status != Some(JobStatus::Completed) {
            self.storage.discard(id);
        }
        lock(&self.progress).remove(id);
        self.notify(id);
        outcome
    }

    fn complete(&self, id: &str, output: &RenderOutput, elapsed: Duration) -> Result<(), JobError> {
        if let Err(e) = self.storage.publish(id) {
            return self.fail(id, &format!("cannot store the output: {e}"), None);
        }
        let done = Completion {
            width: output.width,
            height: output.height,
            duration_seconds: output.duration_seconds,
        };
        if self.store.complete(id, done)? {
            info!(job_id = %id, status = "completed", frames = output.frames, "job completed");
            let mut totals = lock(&self.totals);
            let seconds = elapsed.as_secs_f64();
            totals.renders += 1;
            totals.render_seconds += seconds;
            totals.frames += output.frames;
            totals.last_fps = output.frames as f64 / seconds.max(1e-9);
        } else {
            // Cancelled while finishing: what was served goes.
            self.unpublish(id);
        }
        Ok(())
    }

    fn unpublish(&self, id: &str) {
        let uploads = self.storage.uploads_dir();
        for name in [
            crate::storage::video_name(id),
            crate::storage::thumbnail_name(id),
        ] {
            let _ = std::fs::remove_file(uploads.join(name));
        }
    }

    fn fail(&self, id: &str, message: &str, field: Option<&str>) -> Result<(), JobError> {
        if self.store.fail(id, message, field)? {
            info!(job_id = %id, status = "failed", error = message, "job failed, refunded");
        }
        self.notify(id);
        Ok(())
    }
}

/// Validates a stored request again (the rules may have changed since it was queued).
fn prepare(request: &str) -> Result<Timeline, ValidationErrors> {
    let request = parse_request(request.as_bytes())?;
    validate_request(&request, &ValidateOptions::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in render: writes both outputs, reports every frame, and honours the token
    /// (waiting for it when `hold` is set).
    fn fake_renderer(hold: bool, fail: Option<RenderError>) -> RenderFn {
        let fail = Arc::new(Mutex::new(fail));
        Arc::new(
            move |timeline, video, thumbnail, _settings, progress, cancel| {
                if let Some(e) = lock(&fail).take() {
                    return Err(e);
                }
                for frame in 0..=timeline.frame_count {
                    progress(Progress {
                        stage: render::Stage::Rendering,
                        frames_done: frame,
                        frames_total: timeline.frame_count,
                        eta: None,
                    });
                }
                while hold && !cancel.is_cancelled() {
                    std::thread::sleep(Duration::from_millis(5));
                }
                if cancel.is_cancelled() {
                    return Err(RenderError::Cancelled);
                }
                std::fs::write(video, b"mp4").map_err(|e| RenderError::Internal(e.to_string()))?;
                std::fs::write(thumbnail, b"webp")
                    .map_err(|e| RenderError::Internal(e.to_string()))?;
                Ok(RenderOutput {
                    video: video.to_path_buf(),
                    thumbnail: thumbnail.to_path_buf(),
                    frames: timeline.frame_count,
                    duration_seconds: timeline.duration(),
                    width: timeline.width,
                    height: timeline.height,
                })
            },
        )
    }

    use crate::render;

    struct Fixture {
        _dir: tempfile::TempDir,
        jobs: Arc<Jobs>,
        account: i64,
    }

    fn fixture(renderer: RenderFn) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let (_, account) = store.create_account(100).unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        let config = QueueConfig {
            concurrency: 1,
            backlog: 8,
            settings: RenderSettings {
                preset: "ultrafast".into(),
                crf: 23,
                allow_private_sources: false,
                local_base: None,
                cache_dir: storage.cache_dir(),
                fetch_max_bytes: None,
                fetch_timeout: None,
            },
            renderer,
        };
        let jobs = Jobs::start(store, storage, config).unwrap();
        Fixture {
            _dir: dir,
            jobs,
            account: account.id,
        }
    }

    fn submit(f: &Fixture, seconds: f64) -> String {
        let body = serde_json::json!({"api_key": "k", "project": {"fps": 10,
            "resolution": {"width": 64, "height": 48},
            "clips": [{"src": "https://media.example/a.mp4", "type": "video",
                       "duration": seconds}]}});
        let request = parse_request(body.to_string().as_bytes()).unwrap();
        let timeline = validate_request(&request, &ValidateOptions::default()).unwrap();
        f.jobs
            .submit(f.account, &request, &timeline)
            .unwrap()
            .record
            .id
    }

    async fn wait_for(f: &Fixture, id: &str, status: JobStatus) -> JobView {
        for _ in 0..400 {
            let view = f.jobs.get(f.account, id).unwrap();
            if view.record.status == status {
                return view;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("job {id} never reached {status:?}");
    }

    fn balance(f: &Fixture) -> i64 {
        f.jobs.store().account(f.account).unwrap().credits
    }

    #[tokio::test]
    async fn a_completed_job_is_served_at_100_percent_and_stays_charged() {
        let f = fixture(fake_renderer(false, None));
        let id = submit(&f, 2.5);
        let view = wait_for(&f, &id, JobStatus::Completed).await;
        assert_eq!(view.progress, 100);
        assert_eq!(
            (view.record.width, view.record.height),
            (Some(64), Some(48))
        );
        assert_eq!(view.record.duration_seconds, Some(2.5));
        assert_eq!(balance(&f), 97, "2.5 s costs 3 credits");
        let uploads = f.jobs.uploads_dir();
        assert!(uploads.join(crate::storage::video_name(&id)).exists());
        assert!(uploads.join(crate::storage::thumbnail_name(&id)).exists());
        assert_eq!(f.jobs.totals().frames, 25);
    }

    #[tokio::test]
    async fn a_source_error_fails_the_job_naming_the_clip_and_refunds_it() {
        let error = RenderError::Source {
            field: "project.clips[0].src".into(),
            reason: "HTTP 404".into(),
        };
        let f = fixture(fake_renderer(false, Some(error)));
        let id = submit(&f, 4.0);
        let view = wait_for(&f, &id, JobStatus::Failed).await;
        assert_eq!(
            view.record.error_field.as_deref(),
            Some("project.clips[0].src")
        );
        assert_eq!(view.record.refunded, 4);
        assert_eq!(balance(&f), 100);
    }

    #[tokio::test]
    async fn cancelling_a_running_job_stops_it_and_refunds_once() {
        let f = fixture(fake_renderer(true, None));
        let id = submit(&f, 6.0);
        wait_for(&f, &id, JobStatus::InProgress).await;
        let (view, refunded) = f.jobs.cancel(f.account, &id).unwrap();
        assert_eq!((view.record.status, refunded), (JobStatus::Cancelled, 6));
        for _ in 0..200 {
            if f.jobs.running() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(f.jobs.running(), 0, "the render stopped");
        assert_eq!(balance(&f), 100);
        let ledger = f.jobs.store().ledger(f.account).unwrap();
        assert_eq!(ledger.iter().filter(|e| e.reason == "refund").count(), 1);
        assert!(
            !f.jobs
                .uploads_dir()
                .join(crate::storage::video_name(&id))
                .exists()
        );
    }

    #[tokio::test]
    async fn shutdown_puts_a_running_job_back_in_the_queue_still_charged() {
        let f = fixture(fake_renderer(true, None));
        let id = submit(&f, 1.0);
        wait_for(&f, &id, JobStatus::InProgress).await;
        f.jobs.shutdown(Duration::from_secs(10)).await;
        let view = f.jobs.get(f.account, &id).unwrap();
        assert_eq!(view.record.status, JobStatus::Queued);
        assert_eq!(balance(&f), 99);
        assert!(matches!(
            f.jobs.submit(
                f.account,
                &parse_request(view.record.request.as_bytes()).unwrap(),
                &prepare(&view.record.request).unwrap()
            ),
            Err(JobError::ShuttingDown)
        ));
    }

    #[tokio::test]
    async fn progress_never_decreases_and_stays_below_100_until_completed() {
        let f = fixture(fake_renderer(true, None));
        let id = submit(&f, 1.0);
        wait_for(&f, &id, JobStatus::InProgress).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(f.jobs.get(f.account, &id).unwrap().progress, 99);
        f.jobs.report_progress(
            &id,
            Progress {
                stage: render::Stage::Rendering,
                frames_done: 1,
                frames_total: 10,
                eta: None,
            },
        );
        assert_eq!(f.jobs.get(f.account, &id).unwrap().progress, 99);
        f.jobs.cancel(f.account, &id).unwrap();
    }
}
