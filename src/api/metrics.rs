//! `/metrics` in the Prometheus text format: what an operator graphs and alerts on.

use std::fmt::Write;

use crate::jobs::{JobError, Jobs};

pub fn render_text(jobs: &Jobs, adapter: &str) -> Result<String, JobError> {
    let counts = jobs.store().counts()?;
    let totals = jobs.totals();
    let mut out = String::new();
    let mut line = |text: String| {
        let _ = writeln!(out, "{text}");
    };

    line("# HELP render_node_jobs Jobs in the store by state.".into());
    line("# TYPE render_node_jobs gauge".into());
    for (status, n) in &counts {
        line(format!(
            "render_node_jobs{{state=\"{}\"}} {n}",
            status.as_str()
        ));
    }
    let queued = counts.first().map_or(0, |(_, n)| *n);
    line("# HELP render_node_queue_length Jobs waiting for a render slot.".into());
    line("# TYPE render_node_queue_length gauge".into());
    line(format!("render_node_queue_length {queued}"));
    line("# HELP render_node_running Renders running now.".into());
    line("# TYPE render_node_running gauge".into());
    line(format!("render_node_running {}", jobs.running()));
    line("# HELP render_node_concurrency Render slots.".into());
    line("# TYPE render_node_concurrency gauge".into());
    line(format!("render_node_concurrency {}", jobs.concurrency()));
    line("# HELP render_node_renders_total Renders completed since start.".into());
    line("# TYPE render_node_renders_total counter".into());
    line(format!("render_node_renders_total {}", totals.renders));
    line("# HELP render_node_render_seconds_total Wall seconds spent in completed renders.".into());
    line("# TYPE render_node_render_seconds_total counter".into());
    line(format!(
        "render_node_render_seconds_total {:.3}",
        totals.render_seconds
    ));
    line("# HELP render_node_frames_total Frames of completed renders.".into());
    line("# TYPE render_node_frames_total counter".into());
    line(format!("render_node_frames_total {}", totals.frames));
    line("# HELP render_node_render_fps Frames per second of the last completed render.".into());
    line("# TYPE render_node_render_fps gauge".into());
    line(format!("render_node_render_fps {:.3}", totals.last_fps));
    line("# HELP render_node_info The node's adapter.".into());
    line("# TYPE render_node_info gauge".into());
    line(format!("render_node_info{{adapter={:?}}} 1", adapter));
    Ok(out)
}
