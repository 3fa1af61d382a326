//! The gRPC facade (`render_node.v1.RenderNode`): the HTTP operations for clients and
//! cluster coordinators, over the same [`Jobs`]. Every error leaves through [`to_status`].

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use tonic::{Request, Response, Status};

use super::{cost_usd, result_urls};
use crate::jobs::{JobError, JobStatus, JobView, Jobs};
use crate::project;
use crate::project::{FieldError, ValidateOptions, ValidationErrors, validate_request};

/// The generated messages and service.
pub mod pb {
    tonic::include_proto!("render_node.v1");

    /// The descriptor set served by reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("render_node_descriptor");
}

use pb::render_node_server::RenderNode;

/// The one mapping from job errors to gRPC status codes.
pub fn to_status(error: &JobError) -> Status {
    match error {
        JobError::Invalid(_) => Status::invalid_argument(error.to_string()),
        JobError::Unauthorized => Status::unauthenticated(error.to_string()),
        JobError::InsufficientCredits { .. } | JobError::Finished { .. } => {
            Status::failed_precondition(error.to_string())
        }
        JobError::NotFound(_) => Status::not_found(error.to_string()),
        JobError::BacklogFull(_) => Status::resource_exhausted(error.to_string()),
        JobError::ShuttingDown => Status::unavailable(error.to_string()),
        JobError::Storage(_) | JobError::Internal(_) => {
            tracing::warn!("internal error: {error}");
            Status::internal("the node could not complete the request; nothing was charged")
        }
    }
}

pub struct RenderNodeService {
    pub jobs: Arc<Jobs>,
    pub public_url: String,
    pub adapter: String,
}

fn invalid(field: &str, message: &str) -> JobError {
    JobError::Invalid(ValidationErrors {
        errors: vec![FieldError {
            field: field.into(),
            message: message.into(),
        }],
    })
}

/// Runs blocking store work off the async workers and maps its error.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, JobError> + Send + 'static,
) -> Result<T, Status> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(|e| to_status(&e)),
        Err(e) => Err(to_status(&JobError::Internal(format!("task: {e}")))),
    }
}

impl RenderNodeService {
    fn result_of(&self, view: &JobView) -> Option<pb::JobResult> {
        let r = &view.record;
        (r.status == JobStatus::Completed).then(|| {
            let (video_url, thumbnail_url) = result_urls(&self.public_url, &r.id);
            pb::JobResult {
                video_url,
                thumbnail_url,
                duration_seconds: r.duration_seconds.unwrap_or(0.0),
                width: r.width.unwrap_or(0),
                height: r.height.unwrap_or(0),
                format: r.format.clone(),
                published: r.publish,
            }
        })
    }

    fn job_of(&self, view: &JobView) -> pb::Job {
        let r = &view.record;
        pb::Job {
            job_id: r.id.clone(),
            status: r.status.as_str().into(),
            progress: view.progress.into(),
            credits_charged: r.credits,
            cost_usd: cost_usd(r.credits),
            result: self.result_of(view),
            error: r.error.clone(),
            credits_refunded: r.refunded,
        }
    }

    fn event_of(&self, view: &JobView, progress: u8) -> pb::JobEvent {
        pb::JobEvent {
            job_id: view.record.id.clone(),
            status: view.record.status.as_str().into(),
            progress: progress.into(),
            result: self.result_of(view),
            error: view.record.error.clone(),
        }
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::JobEvent, Status>> + Send>>;

#[tonic::async_trait]
impl RenderNode for RenderNodeService {
    async fn submit_render(
        &self,
        request: Request<pb::SubmitRenderRequest>,
    ) -> Result<Response<pb::SubmitRenderResponse>, Status> {
        let message = request.into_inner();
        let jobs = Arc::clone(&self.jobs);
        let view = blocking(move || {
            let account = jobs.authenticate(&message.api_key)?;
            let request = to_render_request(message)?;
            let options = ValidateOptions {
                allow_local_paths: false,
            };
            let timeline = validate_request(&request, &options).map_err(JobError::Invalid)?;
            jobs.submit(account, &request, &timeline)
        })
        .await?;
        let r = &view.record;
        Ok(Response::new(pb::SubmitRenderResponse {
            job_id: r.id.clone(),
            status: r.status.as_str().into(),
            status_url: format!("/api/video-editor/render/status/{}", r.id),
            credits_charged: r.credits,
            cost_usd: cost_usd(r.credits),
        }))
    }

    async fn get_job(
        &self,
        request: Request<pb::GetJobRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        let m = request.into_inner();
        let jobs = Arc::clone(&self.jobs);
        let view = blocking(move || jobs.get(jobs.authenticate(&m.api_key)?, &m.job_id)).await?;
        Ok(Response::new(self.job_of(&view)))
    }

    async fn cancel_job(
        &self,
        request: Request<pb::CancelJobRequest>,
    ) -> Result<Response<pb::CancelJobResponse>, Status> {
        let m = request.into_inner();
        let jobs = Arc::clone(&self.jobs);
        let (view, refunded) =
            blocking(move || jobs.cancel(jobs.authenticate(&m.api_key)?, &m.job_id)).await?;
        Ok(Response::new(pb::CancelJobResponse {
            job_id: view.record.id,
            status: view.record.status.as_str().into(),
            credits_refunded: refunded,
        }))
    }

    type WatchJobStream = EventStream;

    async fn watch_job(
        &self,
        request: Request<pb::WatchJobRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let m = request.into_inner();
        let jobs = Arc::clone(&self.jobs);
        // Subscribe before the first read so that no change falls between the two.
        let mut changes = self.jobs.subscribe();
        let (account, first) = {
            let jobs = Arc::clone(&jobs);
            let job_id = m.job_id.clone();
            blocking(move || {
                let account = jobs.authenticate(&m.api_key)?;
                Ok((account, jobs.get(account, &job_id)?))
            })
            .await?
        };
        let service = RenderNodeService {
            jobs: Arc::clone(&jobs),
            public_url: self.public_url.clone(),
            adapter: self.adapter.clone(),
        };
        let job_id = m.job_id;
        let stream = async_stream(move |tx| async move {
            let mut last: Option<(JobStatus, u8)> = None;
            let mut progress = 0u8;
            let mut view = first;
            loop {
                progress = progress.max(view.progress);
                let key = (view.record.status, progress);
                if last != Some(key) {
                    last = Some(key);
                    if tx
                        .send(Ok(service.event_of(&view, progress)))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                if view.record.status.is_final() {
                    return;
                }
                // Wait for a change to this job; on lag, read it again anyway.
                loop {
                    if service.jobs.is_shutting_down() {
                        let _ = tx.send(Err(to_status(&JobError::ShuttingDown))).await;
                        return;
                    }
                    match changes.recv().await {
                        Ok(id) if id == job_id => break,
                        Ok(_) => continue,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => break,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    }
                }
                match service.jobs.get(account, &job_id) {
                    Ok(v) => view = v,
                    Err(e) => {
                        let _ = tx.send(Err(to_status(&e))).await;
                        return;
                    }
                }
            }
        });
        Ok(Response::new(stream))
    }

    async fn get_node_info(
        &self,
        _request: Request<pb::GetNodeInfoRequest>,
    ) -> Result<Response<pb::NodeInfo>, Status> {
        let jobs = Arc::clone(&self.jobs);
        let queued = blocking(move || jobs.queue_length()).await?;
        Ok(Response::new(pb::NodeInfo {
            adapter: self.adapter.clone(),
            concurrency: self.jobs.concurrency() as u32,
            queue_length: queued as u32,
            running: self.jobs.running() as u32,
            version: env!("CARGO_PKG_VERSION").into(),
        }))
    }
}

/// A stream fed by a task through a small channel (backpressure on slow watchers).
fn async_stream<F, Fut>(body: F) -> EventStream
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<pb::JobEvent, Status>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(body(tx));
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}

/// The message as the JSON model, so that both facades validate the same thing.
fn to_render_request(m: pb::SubmitRenderRequest) -> Result<project::RenderRequest, JobError> {
    let p = m.project.ok_or_else(|| invalid("project", "is required"))?;
    Ok(project::RenderRequest {
        api_key: m.api_key,
        format: m.format,
        publish: m.publish,
        project: project::Project {
            resolution: p.resolution.map(|r| project::Resolution {
                width: r.width,
                height: r.height,
            }),
            fps: p.fps,
            clips: p.clips.into_iter().map(to_clip).collect(),
            audio: p.audio.map(|a| project::BackgroundAudio {
                src: a.src,
                gain: a.gain,
                fade_in: a.fade_in,
                fade_out: a.fade_out,
            }),
            background: p.background,
            transition: p.transition.map(to_transition),
        },
    })
}

fn to_transition(t: pb::Transition) -> project::Transition {
    project::Transition {
        kind: t.r#type,
        duration: t.duration,
    }
}

fn to_keyframes(keyframes: Vec<pb::Keyframe>) -> Vec<project::JsonKeyframe> {
    keyframes
        .into_iter()
        .map(|k| project::JsonKeyframe {
            time: k.time,
            value: k.value,
            ease: k.ease,
        })
        .collect()
}

fn to_clip(c: pb::Clip) -> project::Clip {
    project::Clip {
        src: c.src,
        kind: c.r#type,
        duration: c.duration,
        trim_start: c.trim_start,
        fit: c.fit,
        transition: c.transition.map(to_transition),
        audio_gain: c.audio_gain,
        audio_gain_end: c.audio_gain_end,
        audio_pan: c.audio_pan,
        audio_pan_end: c.audio_pan_end,
        audio_gain_keyframes: to_keyframes(c.audio_gain_keyframes),
        audio_pan_keyframes: to_keyframes(c.audio_pan_keyframes),
        audio_mute: c.audio_mute,
        audio_solo: c.audio_solo,
        audio_fade_in: c.audio_fade_in,
        audio_fade_out: c.audio_fade_out,
    }
}
