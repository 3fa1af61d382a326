//! The node as a service: the HTTP API of API.md and the same operations over gRPC, both
//! thin facades over one [`Jobs`] queue. Each facade owns exactly one function that turns
//! errors into its wire format, so a given failure reads the same on both.

pub mod grpc;
pub mod http;
mod metrics;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::info;

use crate::jobs::{self, Jobs, QueueConfig, Store};
use crate::render::RenderSettings;
use crate::storage::Storage;

/// Everything `render-node serve` is told.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub http: SocketAddr,
    pub grpc: SocketAddr,
    pub data_dir: PathBuf,
    /// Base of the absolute URLs handed out; `http://<http addr>` when absent.
    pub public_url: Option<String>,
    pub concurrency: usize,
    /// Queued jobs at most before submissions get 429 / RESOURCE_EXHAUSTED.
    pub backlog: usize,
    pub allow_private_sources: bool,
    /// Largest source fetched, in bytes; `None`: the fetcher's default.
    pub fetch_max_bytes: Option<u64>,
    /// Longest whole fetch of one source; `None`: the fetcher's default.
    pub fetch_timeout: Option<Duration>,
    pub preset: String,
    pub crf: u8,
    /// The GPU adapter's name, reported by `GetNodeInfo` and `/metrics`.
    pub adapter: String,
}

/// Why the node could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("--data-dir {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Jobs(#[from] jobs::JobError),
    #[error("--{flag} {addr}: {source}")]
    Bind {
        flag: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("gRPC server: {0}")]
    Grpc(String),
    #[error("HTTP server: {0}")]
    Http(std::io::Error),
}

/// Dollars for `credits`: $0.01 each, as a JSON number (0.04, not 0.04000000001).
pub fn cost_usd(credits: u64) -> f64 {
    credits as f64 / 100.0
}

/// The absolute URLs of a job's video and thumbnail.
pub fn result_urls(public_url: &str, job_id: &str) -> (String, String) {
    let base = public_url.trim_end_matches('/');
    (
        format!(
            "{base}/static/uploads/{}",
            crate::storage::video_name(job_id)
        ),
        format!(
            "{base}/static/uploads/{}",
            crate::storage::thumbnail_name(job_id)
        ),
    )
}

/// Runs the node until SIGINT or SIGTERM: stops accepting, puts running jobs back in the
/// queue, and returns.
pub async fn serve(config: ServeConfig) -> Result<(), ServeError> {
    serve_with(config, Arc::new(crate::render::render), shutdown_signal()).await
}

/// [`serve`] with the renderer and the shutdown trigger given.
pub async fn serve_with(
    config: ServeConfig,
    renderer: jobs::RenderFn,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let data_dir_error = |source| ServeError::DataDir {
        path: config.data_dir.clone(),
        source,
    };
    let storage = Storage::open(&config.data_dir).map_err(data_dir_error)?;
    let store = Arc::new(Store::open(&config.data_dir)?);
    let settings = RenderSettings {
        preset: config.preset.clone(),
        crf: config.crf,
        allow_private_sources: config.allow_private_sources,
        local_base: None,
        cache_dir: storage.cache_dir(),
        fetch_max_bytes: config.fetch_max_bytes,
        fetch_timeout: config.fetch_timeout,
    };
    let queue = QueueConfig {
        concurrency: config.concurrency,
        backlog: config.backlog,
        settings,
        renderer,
    };
    let jobs = Jobs::start(store, storage, queue)?;
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", config.http));

    let http_listener = tokio::net::TcpListener::bind(config.http)
        .await
        .map_err(|source| ServeError::Bind {
            flag: "http",
            addr: config.http,
            source,
        })?;
    let grpc_listener = tokio::net::TcpListener::bind(config.grpc)
        .await
        .map_err(|source| ServeError::Bind {
            flag: "grpc",
            addr: config.grpc,
            source,
        })?;

    // One trigger stops both servers.
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopping = Arc::clone(&jobs);
    tokio::spawn(async move {
        shutdown.await;
        stopping.stop_accepting();
        let _ = stop_tx.send(true);
    });

    let state = http::HttpState {
        jobs: Arc::clone(&jobs),
        public_url: public_url.clone(),
        adapter: config.adapter.clone(),
    };
    let http_server = axum::serve(http_listener, http::router(state))
        .with_graceful_shutdown(stopped(stop_rx.clone()));
    let grpc_server = grpc_server(&jobs, &public_url, &config.adapter, grpc_listener, stop_rx);
    info!(http = %config.http, grpc = %config.grpc, concurrency = config.concurrency,
          "render node serving");

    let (http_result, grpc_result) = tokio::join!(http_server, grpc_server);
    info!("stopped accepting; re-queueing running jobs");
    jobs.shutdown(Duration::from_secs(30)).await;
    http_result.map_err(ServeError::Http)?;
    grpc_result
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

async fn grpc_server(
    jobs: &Arc<Jobs>,
    public_url: &str,
    adapter: &str,
    listener: tokio::net::TcpListener,
    stop: watch::Receiver<bool>,
) -> Result<(), ServeError> {
    use grpc::pb::render_node_server::RenderNodeServer;

    let service = grpc::RenderNodeService {
        jobs: Arc::clone(jobs),
        public_url: public_url.to_string(),
        adapter: adapter.to_string(),
    };
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<RenderNodeServer<grpc::RenderNodeService>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(grpc::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| ServeError::Grpc(e.to_string()))?;
    let reflection_alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(grpc::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| ServeError::Grpc(e.to_string()))?;
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_alpha)
        .add_service(RenderNodeServer::new(service))
        .serve_with_incoming_shutdown(incoming, stopped(stop))
        .await
        .map_err(|e| ServeError::Grpc(e.to_string()))
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("cannot listen for SIGTERM: {e}");
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
