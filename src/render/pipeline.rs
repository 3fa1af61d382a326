//! The streaming stages of a render, each on its own thread, joined by bounded channels:
//!
//! ```text
//! clip decoders ──▶ compositor (GPU) ──▶ video encoder ──┐
//!                                                        ├──▶ muxer (calling thread)
//!                   audio mixer ──────▶ audio encoder ───┘
//! ```
//!
//! A decoder runs for each clip that is visible or about to be (two during a crossfade),
//! so memory holds a few frames per stage however long the timeline is. Every stage checks
//! the cancel token between frames; the first stage to fail stops the others.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::Duration;

use crate::audio::Mixer;
use crate::gpu::{Compositor, GpuContext, LayerInput};
use crate::media::encode::{EncodedPacket, StreamKind, packet_channel};
use crate::media::{
    AudioEncoder, EncodeSettings, Muxer, VideoDecoder, VideoEncoder, VideoFrame, write_thumbnail,
};
use crate::project::{Timeline, TimelineClip};

use super::progress::Reporter;
use super::sources::{SourceFile, Sources, source_error};
use super::{CancelToken, RenderError, RenderOutput, RenderSettings, Stage};

/// Frames a decoder may run ahead of the compositor.
const DECODE_AHEAD: usize = 3;
/// Frames between the compositor and the encoder.
const ENCODE_AHEAD: usize = 4;
/// How many output frames before a clip's first one its decoder starts.
const DECODER_LEAD_FRAMES: u64 = 8;
/// Stereo sample frames per audio block: one AAC frame.
const AUDIO_BLOCK: usize = 1024;
/// How far, in seconds, the audio may run ahead of the video into the muxer.
const AUDIO_LEAD_SECONDS: f64 = 1.0;

/// A frame on its way to the encoder: the compositor's own (given back after encoding),
/// or a decoded frame that needed no compositing.
enum EncodeFrame {
    Composited(VideoFrame),
    Passthrough(Arc<VideoFrame>),
}

/// What every stage shares.
struct Shared<'a> {
    timeline: &'a Timeline,
    sources: &'a Sources,
    cancel: &'a CancelToken,
    /// Set by the first stage that fails, so the others stop.
    abort: CancelToken,
    /// Whether a stage has failed for a reason of its own.
    failed: std::sync::atomic::AtomicBool,
    /// Output frames handed to the video encoder, for pacing the audio.
    frames_encoded: AtomicU64,
}

impl Shared<'_> {
    fn check(&self) -> Result<(), RenderError> {
        if self.cancel.is_cancelled() || self.abort.is_cancelled() {
            return Err(RenderError::Cancelled);
        }
        Ok(())
    }

    /// A stage's result: its failure stops every other stage, and only the first failure
    /// keeps its reason (the others failed because of it).
    fn guard<T>(&self, result: Result<T, RenderError>) -> Result<T, RenderError> {
        match result {
            // Once the user has cancelled, stages fail only because others stopped.
            Err(_) if self.cancel.is_cancelled() => Err(RenderError::Cancelled),
            Err(e) if !matches!(e, RenderError::Cancelled) => {
                let first = !self.failed.swap(true, Ordering::SeqCst);
                self.abort.cancel();
                Err(if first { e } else { RenderError::Cancelled })
            }
            other => other,
        }
    }
}

/// The process's GPU device, created on first use and shared by every render.
pub fn gpu_context() -> Result<Arc<GpuContext>, RenderError> {
    static GPU: OnceLock<Result<Arc<GpuContext>, String>> = OnceLock::new();
    GPU.get_or_init(|| GpuContext::new().map(Arc::new).map_err(|e| e.to_string()))
        .clone()
        .map_err(|e| RenderError::Internal(format!("no GPU device: {e}")))
}

pub fn run(
    timeline: &Timeline,
    sources: &Sources,
    output: &Path,
    thumbnail: &Path,
    settings: &RenderSettings,
    reporter: &Reporter,
    cancel: &CancelToken,
) -> Result<RenderOutput, RenderError> {
    let shared = Shared {
        timeline,
        sources,
        cancel,
        abort: CancelToken::default(),
        failed: std::sync::atomic::AtomicBool::new(false),
        frames_encoded: AtomicU64::new(0),
    };
    let encode = EncodeSettings {
        width: timeline.width,
        height: timeline.height,
        fps: timeline.fps,
        preset: settings.preset.clone(),
        crf: settings.crf,
    };
    let (packets_tx, packets) = packet_channel(64);
    let video_encoder = VideoEncoder::new(&encode, packets_tx.clone()).map_err(source_error)?;
    let mut audio_encoder = AudioEncoder::new(packets_tx).map_err(source_error)?;
    audio_encoder.set_length(encode.samples_for_frames(timeline.frame_count));
    let mut muxer =
        Muxer::create(output, &video_encoder, Some(&audio_encoder)).map_err(source_error)?;
    reporter.stage(Stage::Rendering);

    let (frame_tx, frame_rx) = sync_channel(ENCODE_AHEAD);
    let (recycle_tx, recycle_rx) = sync_channel(ENCODE_AHEAD + 2);
    let shared = &shared;

    let (thumb, video, audio, muxed) = thread::scope(|scope| {
        let compositor =
            scope.spawn(move || shared.guard(composite_stage(shared, frame_tx, recycle_rx)));
        let video = scope.spawn(move || {
            shared.guard(video_encode_stage(
                shared,
                video_encoder,
                frame_rx,
                recycle_tx,
            ))
        });
        let audio = scope.spawn(move || shared.guard(audio_stage(shared, audio_encoder)));
        let muxed = shared.guard(mux_stage(shared, &mut muxer, packets, reporter));
        (join(compositor), join(video), join(audio), muxed)
    });

    let thumb = first_error([muxed, video, audio], thumb)?;
    reporter.stage(Stage::Finishing);
    let muxed = muxer.finish().map_err(source_error)?;
    if muxed != timeline.frame_count {
        return Err(RenderError::Internal(format!(
            "muxed {muxed} frames, expected {}",
            timeline.frame_count
        )));
    }
    if let Some(frame) = thumb {
        write_thumbnail(&frame, thumbnail).map_err(source_error)?;
    }
    Ok(RenderOutput {
        video: output.to_path_buf(),
        thumbnail: thumbnail.to_path_buf(),
        frames: timeline.frame_count,
        duration_seconds: timeline.duration(),
        width: timeline.width,
        height: timeline.height,
    })
}

fn join<T>(handle: thread::ScopedJoinHandle<'_, Result<T, RenderError>>) -> Result<T, RenderError> {
    handle
        .join()
        .unwrap_or_else(|_| Err(RenderError::Internal("a render stage panicked".into())))
}

/// The error that caused the others: `guard` leaves its own reason only on the first
/// stage that failed, so any error that is not `Cancelled` is the one.
fn first_error<T>(
    others: [Result<(), RenderError>; 3],
    main: Result<T, RenderError>,
) -> Result<T, RenderError> {
    let mut cancelled = false;
    let value = match main {
        Ok(value) => Some(value),
        Err(RenderError::Cancelled) => {
            cancelled = true;
            None
        }
        Err(e) => return Err(e),
    };
    for result in others {
        match result {
            Ok(()) => {}
            Err(RenderError::Cancelled) => cancelled = true,
            Err(e) => return Err(e),
        }
    }
    match value {
        Some(value) if !cancelled => Ok(value),
        _ => Err(RenderError::Cancelled),
    }
}

// ---------------------------------------------------------------------------------------
// Video: decoders and the compositor

/// A running clip decoder and the receiving end of its frames.
struct Feeder {
    clip: usize,
    frames: Receiver<Result<(u64, Arc<VideoFrame>), RenderError>>,
}

/// Composites every output frame in order; returns the thumbnail frame.
fn composite_stage(
    shared: &Shared,
    to_encoder: SyncSender<EncodeFrame>,
    recycled: Receiver<VideoFrame>,
) -> Result<Option<VideoFrame>, RenderError> {
    let timeline = shared.timeline;
    let gpu = gpu_context()?;
    let gpu_error = |e: crate::gpu::GpuError| RenderError::Internal(format!("GPU: {e}"));
    let mut compositor =
        Compositor::new(&gpu, timeline.width, timeline.height, timeline.background)
            .map_err(gpu_error)?;
    let thumb_index = timeline.frame_count / 3;
    let mut thumb = None;
    let mut emitted = 0u64;
    let mut emit = |frame: EncodeFrame, thumb: &mut Option<VideoFrame>| {
        if emitted == thumb_index {
            *thumb = Some(match &frame {
                EncodeFrame::Composited(f) => f.clone(),
                EncodeFrame::Passthrough(f) => VideoFrame::clone(f),
            });
        }
        emitted += 1;
        to_encoder.send(frame).map_err(|_| RenderError::Cancelled)
    };

    thread::scope(|scope| {
        let mut feeders: Vec<Feeder> = Vec::new();
        let mut next_clip = 0;
        for n in 0..timeline.frame_count {
            shared.check()?;
            while let Some(clip) = timeline.clips.get(next_clip)
                && clip.start_frame <= n + DECODER_LEAD_FRAMES
            {
                if clip.end_frame > clip.start_frame {
                    feeders.push(spawn_feeder(
                        scope,
                        shared,
                        clip,
                        &shared.sources.clips[clip.index],
                    ));
                }
                next_clip += 1;
            }
            feeders.retain(|f| timeline.clips[f.clip].end_frame > n);
            while let Ok(frame) = recycled.try_recv() {
                compositor.recycle(frame);
            }

            let mut frames: [Option<Arc<VideoFrame>>; 2] = [None, None];
            let layers = timeline.frame(n);
            for (slot, layer) in layers.iter().enumerate() {
                let feeder = feeders.iter().find(|f| f.clip == layer.clip);
                frames[slot] = Some(receive(shared, feeder, n)?);
            }

            // A lone full-weight frame already in the encoder's shape skips the GPU.
            if let [Some(frame), None] = &frames
                && is_passthrough(frame, timeline)
            {
                for out in compositor.flush().map_err(gpu_error)? {
                    emit(EncodeFrame::Composited(out), &mut thumb)?;
                }
                emit(EncodeFrame::Passthrough(frame.clone()), &mut thumb)?;
                continue;
            }

            let inputs: Vec<LayerInput> = layers
                .iter()
                .zip(frames.iter().flatten())
                .map(|(layer, frame)| LayerInput {
                    frame,
                    weight: layer.weight,
                    fit: timeline.clips[layer.clip].fit,
                })
                .collect();
            if let Some(out) = compositor.submit(&inputs).map_err(gpu_error)? {
                emit(EncodeFrame::Composited(out), &mut thumb)?;
            }
        }
        for out in compositor.flush().map_err(gpu_error)? {
            emit(EncodeFrame::Composited(out), &mut thumb)?;
        }
        Ok(thumb)
    })
}

fn receive(
    shared: &Shared,
    feeder: Option<&Feeder>,
    n: u64,
) -> Result<Arc<VideoFrame>, RenderError> {
    let feeder =
        feeder.ok_or_else(|| RenderError::Internal(format!("no decoder for frame {n}")))?;
    loop {
        shared.check()?;
        match feeder.frames.recv_timeout(Duration::from_millis(100)) {
            Ok(Ok((index, frame))) if index == n => return Ok(frame),
            Ok(Ok((index, _))) => {
                return Err(RenderError::Internal(format!(
                    "clip {} decoder sent frame {index}, expected {n}",
                    feeder.clip
                )));
            }
            Ok(Err(e)) => return Err(e),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Err(RenderError::Cancelled);
            }
        }
    }
}

/// True when a frame can go to the encoder as it is: the output's size, 4:2:0, BT.709
/// limited range, upright, square pixels.
fn is_passthrough(frame: &VideoFrame, timeline: &Timeline) -> bool {
    use crate::media::{Matrix, PixelLayout, Range, Rotation};
    frame.width == timeline.width
        && frame.height == timeline.height
        && frame.layout == PixelLayout::Yuv420p
        && frame.matrix == Matrix::Bt709
        && frame.range == Range::Limited
        && frame.rotation == Rotation::None
        && matches!(frame.sample_aspect, (0, _) | (_, 0) | (1, 1))
}

fn spawn_feeder<'scope>(
    scope: &'scope thread::Scope<'scope, '_>,
    shared: &'scope Shared,
    clip: &'scope TimelineClip,
    file: &'scope SourceFile,
) -> Feeder {
    let (tx, rx) = sync_channel(DECODE_AHEAD);
    scope.spawn(move || {
        if let Err(e) = feed(shared, clip, file, &tx) {
            // The compositor may already have gone; then nobody needs the error.
            let _ = tx.send(Err(e));
        }
    });
    Feeder {
        clip: clip.index,
        frames: rx,
    }
}

/// Decodes one clip's frames for its output frames, in order. A source frame shown on
/// several output frames is sent once and shared.
fn feed(
    shared: &Shared,
    clip: &TimelineClip,
    file: &SourceFile,
    tx: &SyncSender<Result<(u64, Arc<VideoFrame>), RenderError>>,
) -> Result<(), RenderError> {
    let fps = shared.timeline.fps;
    let mut decoder =
        VideoDecoder::open(&file.path, &file.field, clip.trim_start).map_err(source_error)?;
    // Frames the compositor has let go of are reused (allocation only while the pool
    // grows to the channel's depth).
    let mut pool: Vec<Arc<VideoFrame>> = Vec::with_capacity(DECODE_AHEAD + 3);
    let mut last: Option<Arc<VideoFrame>> = None;
    for n in clip.start_frame..clip.end_frame {
        shared.check()?;
        let frame = decoder
            .frame_at(clip.source_time(fps.time_of(n)))
            .map_err(source_error)?;
        let shared_frame = match &last {
            Some(previous) if previous.pts == frame.pts => previous.clone(),
            _ => {
                let fresh = take_from_pool(&mut pool, frame);
                if let Some(previous) = last.replace(fresh.clone()) {
                    pool.push(previous);
                }
                fresh
            }
        };
        if tx.send(Ok((n, shared_frame))).is_err() {
            return Ok(());
        }
    }
    Ok(())
}

fn take_from_pool(pool: &mut Vec<Arc<VideoFrame>>, frame: &VideoFrame) -> Arc<VideoFrame> {
    if let Some(pos) = pool.iter().position(|f| Arc::strong_count(f) == 1) {
        let mut reused = pool.swap_remove(pos);
        if let Some(target) = Arc::get_mut(&mut reused) {
            target.copy_from(frame);
            return reused;
        }
    }
    Arc::new(frame.clone())
}

// ---------------------------------------------------------------------------------------
// Encoders and the muxer

fn video_encode_stage(
    shared: &Shared,
    mut encoder: VideoEncoder,
    frames: Receiver<EncodeFrame>,
    recycle: SyncSender<VideoFrame>,
) -> Result<(), RenderError> {
    for item in frames {
        shared.check()?;
        let frame = match &item {
            EncodeFrame::Composited(f) => f,
            EncodeFrame::Passthrough(f) => f.as_ref(),
        };
        encoder.encode(frame).map_err(source_error)?;
        shared.frames_encoded.fetch_add(1, Ordering::Relaxed);
        if let EncodeFrame::Composited(f) = item {
            // The compositor may have finished; then the frame is simply dropped.
            let _ = recycle.try_send(f);
        }
    }
    shared.check()?;
    let frames = encoder.finish().map_err(source_error)?;
    if frames != shared.timeline.frame_count {
        return Err(RenderError::Internal(format!(
            "the encoder wrote {frames} frames, expected {}",
            shared.timeline.frame_count
        )));
    }
    Ok(())
}

fn audio_stage(shared: &Shared, mut encoder: AudioEncoder) -> Result<(), RenderError> {
    let timeline = shared.timeline;
    let mut mixer = Mixer::new(timeline);
    let mut open = |clip: Option<usize>| shared.sources.open_audio(timeline, clip);
    // One block, reused for the whole render.
    let mut block = vec![0f32; AUDIO_BLOCK * 2];
    let mut written = 0u64;
    loop {
        shared.check()?;
        wait_for_video(shared, written)?;
        let frames = mixer.fill(&mut block, &mut open).map_err(source_error)?;
        if frames == 0 {
            break;
        }
        encoder.encode(&block[..frames * 2]).map_err(source_error)?;
        written += frames as u64;
    }
    encoder.finish().map_err(source_error)
}

/// Keeps the audio at most a second ahead of the video, so the muxer interleaves them
/// without buffering either.
fn wait_for_video(shared: &Shared, audio_frames: u64) -> Result<(), RenderError> {
    let fps = shared.timeline.fps;
    loop {
        let video_frames = shared.frames_encoded.load(Ordering::Relaxed);
        let video_done = video_frames >= shared.timeline.frame_count;
        let audio_seconds = audio_frames as f64 / f64::from(crate::audio::SAMPLE_RATE);
        if video_done || audio_seconds <= fps.time_of(video_frames) + AUDIO_LEAD_SECONDS {
            return Ok(());
        }
        shared.check()?;
        thread::sleep(Duration::from_millis(5));
    }
}

fn mux_stage(
    shared: &Shared,
    muxer: &mut Muxer,
    packets: Receiver<EncodedPacket>,
    reporter: &Reporter,
) -> Result<(), RenderError> {
    for packet in packets {
        shared.check()?;
        let video = packet.kind == StreamKind::Video;
        muxer.write(packet).map_err(source_error)?;
        if video {
            reporter.frames(muxer.video_packets());
        }
    }
    shared.check()
}
