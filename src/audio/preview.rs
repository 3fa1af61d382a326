//! `render-node preview`: plays a timeline's mix through a sound card.
//!
//! The preview gets its samples from the same [`Mixer`] a render encodes, so what plays is
//! exactly what the file will hold. The mixer runs on the calling thread (it owns the
//! decoders); cpal's callback runs on the device's thread and pulls blocks from a bounded
//! channel, so at most a few blocks are buffered ahead of what is heard.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, SampleFormat, SizedSample, StreamConfig};

use super::mixer::{Mixer, SourceOpener};
use super::source::SAMPLE_RATE;
use crate::media::MediaError;
use crate::project::Timeline;

/// Stereo frames per block handed to the device thread.
const BLOCK_FRAMES: usize = 4096;

/// Blocks buffered ahead of the device (about 0.7 s).
const QUEUE_BLOCKS: usize = 8;

/// How long the device thread waits for a late block before playing silence.
const UNDERRUN_WAIT: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error(
        "no audio output device: this machine has no default sound output; \
         pick one with --device NAME (available: {available})"
    )]
    NoDevice { available: String },
    #[error("--device {name:?}: no such audio output device (available: {available})")]
    DeviceNotFound { name: String, available: String },
    #[error(
        "audio device {device:?} cannot play: {reason} (no sound card? \
         pick another output with --device NAME)"
    )]
    Device { device: String, reason: String },
    #[error(transparent)]
    Media(#[from] MediaError),
}

/// Plays the mix of `timeline` through the output device named `device` (cpal's default
/// when None). `progress(played, total)` is called with stereo frames played so far, a
/// few times a second. Returns the number of frames played.
pub fn preview(
    timeline: &Timeline,
    open: &mut SourceOpener,
    device: Option<&str>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<u64, PreviewError> {
    let device = pick_device(device)?;
    let name = device_name(&device);
    let mut mixer = Mixer::new(timeline);
    let total = mixer.total_frames();
    let (sender, receiver) = sync_channel::<Vec<f32>>(QUEUE_BLOCKS);
    let shared = Arc::new(Shared::default());
    let stream = open_stream(&device, &name, receiver, Arc::clone(&shared))?;
    stream.play().map_err(|e| device_error(&name, e))?;

    feed(&mut mixer, open, &sender, &shared, &name, progress)?;
    drop(sender);
    wait_until_played(&shared, &name, total, progress)?;
    drop(stream);
    Ok(shared.played.load(Ordering::Acquire))
}

/// A progress line on stderr, rewritten in place: `preview 12.3 s / 60.0 s (20%)`.
pub fn print_progress(played: u64, total: u64) {
    let rate = f64::from(SAMPLE_RATE);
    let percent = (played * 100).checked_div(total).unwrap_or(100);
    eprint!(
        "\rpreview {:.1} s / {:.1} s ({percent}%)",
        played as f64 / rate,
        total as f64 / rate
    );
    if played >= total {
        eprintln!();
    }
}

/// What the device thread tells the mixing thread.
#[derive(Default)]
struct Shared {
    played: AtomicU64,
    /// The channel was closed and drained: everything has been handed to the device.
    finished: AtomicBool,
    error: Mutex<Option<String>>,
}

impl Shared {
    fn check(&self, name: &str) -> Result<(), PreviewError> {
        let error = self.error.lock().map(|e| e.clone()).unwrap_or(None);
        match error {
            Some(reason) => Err(PreviewError::Device {
                device: name.to_string(),
                reason,
            }),
            None => Ok(()),
        }
    }
}

fn pick_device(name: Option<&str>) -> Result<cpal::Device, PreviewError> {
    let host = cpal::default_host();
    let mut devices: Vec<cpal::Device> = host
        .output_devices()
        .map(Iterator::collect)
        .unwrap_or_default();
    let available = || {
        let names: Vec<String> = devices.iter().map(device_name).collect();
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    };
    let Some(name) = name else {
        return host
            .default_output_device()
            .ok_or_else(|| PreviewError::NoDevice {
                available: available(),
            });
    };
    let found = devices.iter().position(|d| device_name(d) == name);
    let found = found.or_else(|| devices.iter().position(|d| device_name(d).contains(name)));
    match found {
        Some(i) => Ok(devices.swap_remove(i)),
        None => Err(PreviewError::DeviceNotFound {
            name: name.to_string(),
            available: available(),
        }),
    }
}

fn device_name(device: &cpal::Device) -> String {
    device
        .description()
        .map(|d| d.name().to_string())
        .unwrap_or_else(|_| "unnamed device".to_string())
}

fn device_error(name: &str, error: impl std::fmt::Display) -> PreviewError {
    PreviewError::Device {
        device: name.to_string(),
        reason: error.to_string(),
    }
}

/// Opens a 48 kHz stereo stream in f32 if the device takes it, else i16.
fn open_stream(
    device: &cpal::Device,
    name: &str,
    blocks: Receiver<Vec<f32>>,
    shared: Arc<Shared>,
) -> Result<cpal::Stream, PreviewError> {
    let configs: Vec<_> = device
        .supported_output_configs()
        .map_err(|e| device_error(name, e))?
        .filter(|c| c.channels() == 2)
        .filter(|c| (c.min_sample_rate()..=c.max_sample_rate()).contains(&SAMPLE_RATE))
        .collect();
    let has = |format| configs.iter().any(|c| c.sample_format() == format);
    let config = StreamConfig {
        channels: 2,
        sample_rate: SAMPLE_RATE,
        buffer_size: cpal::BufferSize::Default,
    };
    if has(SampleFormat::F32) {
        build::<f32>(device, name, config, blocks, shared)
    } else if has(SampleFormat::I16) {
        build::<i16>(device, name, config, blocks, shared)
    } else {
        Err(device_error(
            name,
            "takes neither f32 nor i16 stereo at 48 kHz",
        ))
    }
}

fn build<T: SizedSample + FromSample<f32> + Send + 'static>(
    device: &cpal::Device,
    name: &str,
    config: StreamConfig,
    blocks: Receiver<Vec<f32>>,
    shared: Arc<Shared>,
) -> Result<cpal::Stream, PreviewError> {
    let errors = Arc::clone(&shared);
    let mut player = Player {
        blocks,
        current: Vec::new(),
        position: 0,
        shared,
    };
    let on_error = move |e: cpal::Error| {
        if let Ok(mut slot) = errors.error.lock() {
            slot.get_or_insert_with(|| e.to_string());
        }
    };
    device
        .build_output_stream(
            config,
            move |data: &mut [T], _: &_| player.play(data),
            on_error,
            None,
        )
        .map_err(|e| device_error(name, e))
}

/// The device thread's end of the channel.
struct Player {
    blocks: Receiver<Vec<f32>>,
    current: Vec<f32>,
    position: usize,
    shared: Arc<Shared>,
}

impl Player {
    /// Fills the device's buffer from the queued blocks; silence on underrun and at the end.
    fn play<T: SizedSample + FromSample<f32>>(&mut self, data: &mut [T]) {
        let mut written = 0;
        while written < data.len() {
            if self.position >= self.current.len() && !self.next_block() {
                break;
            }
            let rest = self.current.get(self.position..).unwrap_or(&[]);
            let n = rest.len().min(data.len() - written);
            for (d, s) in data[written..written + n].iter_mut().zip(rest) {
                *d = T::from_sample(*s);
            }
            self.position += n;
            written += n;
        }
        for d in &mut data[written..] {
            *d = T::EQUILIBRIUM;
        }
        self.shared
            .played
            .fetch_add(written as u64 / 2, Ordering::AcqRel);
    }

    fn next_block(&mut self) -> bool {
        // Waiting a little here turns a short stall of the mixer into a late callback rather
        // than a gap of silence; a device with no clock (ALSA's null) then gets every sample.
        match self.blocks.recv_timeout(UNDERRUN_WAIT) {
            Ok(block) => {
                self.current = block;
                self.position = 0;
                true
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => {
                self.shared.finished.store(true, Ordering::Release);
                false
            }
        }
    }
}

/// Mixes the whole timeline into the channel, a block at a time (one allocation per block,
/// about 12 a second).
fn feed(
    mixer: &mut Mixer,
    open: &mut SourceOpener,
    sender: &SyncSender<Vec<f32>>,
    shared: &Shared,
    name: &str,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(), PreviewError> {
    let total = mixer.total_frames();
    let mut last_report = Instant::now();
    loop {
        let mut block = vec![0.0f32; BLOCK_FRAMES * 2];
        let frames = mixer.fill(&mut block, open)?;
        if frames == 0 {
            return Ok(());
        }
        block.truncate(frames * 2);
        let mut pending = block;
        loop {
            match sender.try_send(pending) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) => pending = back,
                Err(TrySendError::Disconnected(_)) => return shared.check(name),
            }
            shared.check(name)?;
            if last_report.elapsed() > Duration::from_millis(250) {
                progress(shared.played.load(Ordering::Acquire).min(total), total);
                last_report = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Waits for the device to play out what is queued (plus its own buffer).
fn wait_until_played(
    shared: &Shared,
    name: &str,
    total: u64,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(), PreviewError> {
    // A device that stops asking for samples for 5 s is reported, not waited on forever.
    let (mut last_played, mut last_change) = (u64::MAX, Instant::now());
    while !shared.finished.load(Ordering::Acquire) {
        shared.check(name)?;
        let played = shared.played.load(Ordering::Acquire);
        if played != last_played {
            (last_played, last_change) = (played, Instant::now());
        } else if last_change.elapsed() > Duration::from_secs(5) {
            return Err(device_error(name, "the device stopped asking for samples"));
        }
        std::thread::sleep(Duration::from_millis(20));
        progress(played.min(total), total);
    }

    // Let the device drain its own buffer (typically tens of milliseconds).
    std::thread::sleep(Duration::from_millis(200));
    progress(total, total);
    Ok(())
}
