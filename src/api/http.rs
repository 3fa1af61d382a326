//! The HTTP facade: the hosted render API of API.md, field for field, over [`Jobs`]. Every
//! error leaves through [`error_response`], the one place that picks a status code.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use tower_http::services::ServeDir;

use super::{cost_usd, result_urls};
use crate::jobs::{JobError, JobStatus, JobView, Jobs};
use crate::project::{ValidateOptions, parse_request, validate_request};

/// The largest request body accepted.
pub const BODY_LIMIT: usize = 2 * 1024 * 1024;

/// What the handlers share.
#[derive(Clone)]
pub struct HttpState {
    pub jobs: Arc<Jobs>,
    /// Absolute base of the URLs handed out, without a trailing slash.
    pub public_url: String,
    pub adapter: String,
}

/// An HTTP failure: a job error, or one of the body itself.
#[derive(Debug)]
pub enum ApiError {
    Job(JobError),
    BodyTooLarge,
    Body(String),
}

impl From<JobError> for ApiError {
    fn from(e: JobError) -> ApiError {
        ApiError::Job(e)
    }
}

/// The one mapping from errors to HTTP: status, code and `{"error": {...}}`.
pub fn error_response(error: &ApiError) -> Response {
    let (status, code, message, field) = match error {
        ApiError::BodyTooLarge => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("body: must be at most {BODY_LIMIT} bytes"),
            Some("body".to_string()),
        ),
        ApiError::Body(m) => (
            StatusCode::BAD_REQUEST,
            "invalid_body",
            m.clone(),
            Some("body".into()),
        ),
        ApiError::Job(e) => {
            let (status, code) = match e {
                JobError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
                JobError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
                JobError::InsufficientCredits { .. } => {
                    (StatusCode::PAYMENT_REQUIRED, "insufficient_credits")
                }
                JobError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
                JobError::Finished { .. } => (StatusCode::CONFLICT, "job_finished"),
                JobError::BacklogFull(_) => (StatusCode::TOO_MANY_REQUESTS, "backlog_full"),
                JobError::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "shutting_down"),
                JobError::Storage(_) | JobError::Internal(_) => {
                    (StatusCode::INTERNAL_SERVER_ERROR, "internal")
                }
            };
            let message = match e {
                JobError::Storage(_) | JobError::Internal(_) => {
                    tracing::warn!("internal error: {e}");
                    "the node could not complete the request; nothing was charged".to_string()
                }
                _ => e.to_string(),
            };
            (status, code, message, e.field())
        }
    };
    let body = json!({"error": {"code": code, "message": message, "field": field}});
    (status, Json(body)).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error_response(&self)
    }
}

type ApiResult = Result<Json<Value>, ApiError>;

/// The routes of API.md, the served outputs, `/metrics` and `/healthz`.
pub fn router(state: HttpState) -> Router {
    let uploads = ServeDir::new(state.jobs_storage_dir());
    Router::new()
        .route("/api/video-editor/render", post(submit))
        .route("/api/video-editor/render/status/{job_id}", get(status))
        .route("/api/video-editor/render/cancel/{job_id}", post(cancel))
        .route("/api/video-editor/gallery", get(gallery))
        .route("/api/account", get(account))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .nest_service("/static/uploads", uploads)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

impl HttpState {
    fn jobs_storage_dir(&self) -> std::path::PathBuf {
        self.jobs.uploads_dir()
    }

    fn authenticate(&self, key: Option<&str>) -> Result<i64, ApiError> {
        let key = key.ok_or(ApiError::Job(JobError::Unauthorized))?;
        Ok(self.jobs.authenticate(key)?)
    }

    /// The status document of API.md.
    fn job_json(&self, view: &JobView) -> Value {
        let r = &view.record;
        let mut body = json!({
            "job_id": r.id,
            "status": r.status.as_str(),
            "progress": view.progress,
            "credits_charged": r.credits,
            "cost_usd": cost_usd(r.credits),
        });
        if r.status == JobStatus::Completed {
            let (video_url, thumbnail_url) = result_urls(&self.public_url, &r.id);
            body["result"] = json!({
                "video_url": video_url,
                "thumbnail_url": thumbnail_url,
                "duration_seconds": seconds_json(r.duration_seconds.unwrap_or(0.0)),
                "width": r.width.unwrap_or(0),
                "height": r.height.unwrap_or(0),
                "format": r.format,
                "published": r.publish,
            });
        }
        if r.status == JobStatus::Failed {
            body["error"] = json!({
                "code": "render_failed",
                "message": r.error.clone().unwrap_or_default(),
                "field": r.error_field,
            });
        }
        if r.refunded > 0 {
            body["credits_refunded"] = json!(r.refunded);
        }
        body
    }
}

#[derive(Debug, Deserialize)]
struct KeyQuery {
    api_key: Option<String>,
}

async fn submit(State(state): State<HttpState>, request: Request) -> ApiResult {
    // An announced length over the limit is refused before a byte of the body is read.
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > BODY_LIMIT as u64) {
        return Err(ApiError::BodyTooLarge);
    }
    // A chunked body is cut off at the limit as it arrives.
    let body = Bytes::from_request(request, &state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::BodyTooLarge
        } else {
            ApiError::Body(format!("body: cannot be read: {e}"))
        }
    })?;
    let jobs = Arc::clone(&state.jobs);
    // SQLite writes (fsync per commit) stay off the async workers.
    let view = tokio::task::spawn_blocking(move || -> Result<JobView, ApiError> {
        let request = parse_request(&body).map_err(JobError::Invalid)?;
        let account = jobs.authenticate(&request.api_key)?;
        let options = ValidateOptions {
            allow_local_paths: false,
        };
        let timeline = validate_request(&request, &options).map_err(JobError::Invalid)?;
        Ok(jobs.submit(account, &request, &timeline)?)
    })
    .await
    .map_err(|e| ApiError::Job(JobError::Internal(format!("submit task: {e}"))))??;
    let r = &view.record;
    Ok(Json(json!({
        "job_id": r.id,
        "status": r.status.as_str(),
        "status_url": format!("/api/video-editor/render/status/{}", r.id),
        "credits_charged": r.credits,
        "cost_usd": cost_usd(r.credits),
    })))
}

async fn status(
    State(state): State<HttpState>,
    Path(job_id): Path<String>,
    Query(q): Query<KeyQuery>,
) -> ApiResult {
    let account = state.authenticate(q.api_key.as_deref())?;
    let view = state.jobs.get(account, &job_id)?;
    Ok(Json(state.job_json(&view)))
}

async fn cancel(
    State(state): State<HttpState>,
    Path(job_id): Path<String>,
    Query(q): Query<KeyQuery>,
) -> ApiResult {
    let account = state.authenticate(q.api_key.as_deref())?;
    let jobs = Arc::clone(&state.jobs);
    let (view, refunded) = tokio::task::spawn_blocking(move || jobs.cancel(account, &job_id))
        .await
        .map_err(|e| ApiError::Job(JobError::Internal(format!("cancel task: {e}"))))??;
    Ok(Json(json!({
        "job_id": view.record.id,
        "status": view.record.status.as_str(),
        "credits_refunded": refunded,
    })))
}

async fn account(State(state): State<HttpState>, Query(q): Query<KeyQuery>) -> ApiResult {
    let id = state.authenticate(q.api_key.as_deref())?;
    let account = state.jobs.store().account(id)?;
    Ok(Json(json!({"credits": account.credits})))
}

/// Published renders, newest first.
async fn gallery(State(state): State<HttpState>) -> ApiResult {
    let records = state.jobs.store().gallery(100)?;
    let renders: Vec<Value> = records
        .iter()
        .map(|r| {
            let (video_url, thumbnail_url) = result_urls(&state.public_url, &r.id);
            json!({
                "job_id": r.id,
                "video_url": video_url,
                "thumbnail_url": thumbnail_url,
                "duration_seconds": seconds_json(r.duration_seconds.unwrap_or(0.0)),
                "width": r.width.unwrap_or(0),
                "height": r.height.unwrap_or(0),
                "format": r.format,
                "created_at": r.created_at,
            })
        })
        .collect();
    Ok(Json(json!({"renders": renders})))
}

async fn metrics(State(state): State<HttpState>) -> Result<Response, ApiError> {
    let text = super::metrics::render_text(&state.jobs, &state.adapter)?;
    let content_type = "text/plain; version=0.0.4; charset=utf-8";
    Ok(([(header::CONTENT_TYPE, content_type)], text).into_response())
}

/// Seconds as the hosted API writes them: a whole number as an integer (`4`), else a
/// decimal (`4.5`).
fn seconds_json(seconds: f64) -> Value {
    if seconds.fract() == 0.0 && seconds.abs() < 9.0e15 {
        Value::from(seconds as i64)
    } else {
        Value::from(seconds)
    }
}
