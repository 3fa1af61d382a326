//! Progress reporting: frames muxed over frames total, sent to the caller's callback at
//! every stage change and at most every 250 ms in between, with an estimate of time left
//! from the rate so far.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Progress, Stage};

/// How often, at most, frame progress reaches the callback.
const INTERVAL: Duration = Duration::from_millis(250);

pub struct Reporter<'a> {
    callback: &'a (dyn Fn(Progress) + Sync),
    frames_total: u64,
    state: Mutex<State>,
}

struct State {
    stage: Stage,
    frames_done: u64,
    stage_started: Instant,
    last_sent: Option<Instant>,
}

impl<'a> Reporter<'a> {
    pub fn new(callback: &'a (dyn Fn(Progress) + Sync), frames_total: u64) -> Reporter<'a> {
        let state = State {
            stage: Stage::Fetching,
            frames_done: 0,
            stage_started: Instant::now(),
            last_sent: None,
        };
        Reporter {
            callback,
            frames_total,
            state: Mutex::new(state),
        }
    }

    /// Enters a stage; always reported.
    pub fn stage(&self, stage: Stage) {
        let progress = {
            let mut state = self.lock();
            state.stage = stage;
            state.stage_started = Instant::now();
            state.last_sent = Some(Instant::now());
            self.snapshot(&state)
        };
        (self.callback)(progress);
    }

    /// Records `frames_done`; reported when the last report is older than the interval.
    pub fn frames(&self, frames_done: u64) {
        let progress = {
            let mut state = self.lock();
            state.frames_done = frames_done;
            let due = state.last_sent.is_none_or(|t| t.elapsed() >= INTERVAL);
            if !due {
                return;
            }
            state.last_sent = Some(Instant::now());
            self.snapshot(&state)
        };
        (self.callback)(progress);
    }

    fn snapshot(&self, state: &State) -> Progress {
        let eta = (state.stage == Stage::Rendering && state.frames_done > 0).then(|| {
            let per_frame = state.stage_started.elapsed().as_secs_f64() / state.frames_done as f64;
            let left = self.frames_total.saturating_sub(state.frames_done);
            Duration::from_secs_f64(per_frame * left as f64)
        });
        Progress {
            stage: state.stage,
            frames_done: state.frames_done,
            frames_total: self.frames_total,
            eta,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the counters inconsistent.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
