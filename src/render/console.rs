//! Progress on the console for `render-node render`: an `indicatif` bar on a terminal,
//! plain lines (every stage change and every few seconds) otherwise, so logs stay readable.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use super::{Progress, Stage};

const LINE_INTERVAL: Duration = Duration::from_secs(2);

pub struct ConsoleProgress {
    bar: Option<ProgressBar>,
    last_line: Mutex<Option<(Instant, Stage)>>,
}

impl ConsoleProgress {
    pub fn new(frames_total: u64) -> ConsoleProgress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(frames_total);
            let style = ProgressStyle::with_template(
                "{msg:>9} [{bar:40}] {pos}/{len} frames, {per_sec}, eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar
        });
        ConsoleProgress {
            bar,
            last_line: Mutex::new(None),
        }
    }

    pub fn report(&self, progress: Progress) {
        if let Some(bar) = &self.bar {
            bar.set_message(stage_name(progress.stage));
            bar.set_position(progress.frames_done);
            return;
        }
        let mut last = self.last_line.lock().unwrap_or_else(|p| p.into_inner());
        let due = match *last {
            None => true,
            Some((at, stage)) => stage != progress.stage || at.elapsed() >= LINE_INTERVAL,
        };
        if due {
            *last = Some((Instant::now(), progress.stage));
            let eta = progress.eta.map_or(String::new(), |e| {
                format!(", {:.0} s left", e.as_secs_f64())
            });
            eprintln!(
                "{}: {}/{} frames{eta}",
                stage_name(progress.stage),
                progress.frames_done,
                progress.frames_total
            );
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn stage_name(stage: Stage) -> &'static str {
    match stage {
        Stage::Fetching => "fetching",
        Stage::Rendering => "rendering",
        Stage::Finishing => "finishing",
        Stage::Done => "done",
    }
}
