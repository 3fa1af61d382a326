//! Audio decoding: a source's sound as the mixer takes it, 48 kHz interleaved stereo f32.
//!
//! swresample does the rate change and the channel mapping. Mono is resampled as mono and
//! copied to both sides at unity gain (so [`AudioSource::is_mono`] can tell the mixer to
//! pan it with constant power). Everything else goes through swresample's standard
//! downmix to stereo, which for 5.1 is `L = FL + 0.707 C + 0.707 SL` (and likewise on the
//! right; the LFE is dropped), so a voice in the centre channel is kept on both sides.
//!
//! Reading starts exactly at the requested time: the container is sought to the packet
//! before it and the samples before the start are dropped; a stream that begins after the
//! start is preceded by silence, so the audio never shifts against the video. Reading ends
//! at the stream's length as the container states it, which trims the encoder padding an
//! AAC stream carries at its end (a 2.00 s clip decodes to about 2.02 s otherwise). Past
//! the end the reader reports that it has ended; it never loops.
//!
//! Gaps in the middle of a stream (missing packets) are not filled: frames are taken as
//! contiguous after the first one.

use std::path::Path;

use ffmpeg::media::Type as MediaType;
use ffmpeg_next as ffmpeg;

use super::decode::{container_start, seek_before};
use super::error::MediaError;
use super::probe;
use crate::audio::source::{AudioSource, SAMPLE_RATE};

/// Reads one source's audio for one clip; see the module docs.
pub struct AudioReader {
    input: ffmpeg::format::context::Input,
    decoder: ffmpeg::decoder::Audio,
    stream_index: usize,
    field: String,
    time_base: f64,
    container_start: f64,
    /// Where reading starts, in seconds of source time.
    start: f64,
    mono: bool,
    resampler: Option<Resampler>,
    decoded: ffmpeg::frame::Audio,
    /// Resampled stereo samples not yet read, from `read_pos` on.
    buffer: Vec<f32>,
    read_pos: usize,
    /// Stereo frames still to drop before `start`, once the first frame placed it.
    skip: u64,
    placed: bool,
    /// Stereo frames handed out or buffered so far, and the most there are.
    produced: u64,
    limit: Option<u64>,
    demuxer_done: bool,
    decoder_done: bool,
    flushed: bool,
}

/// swresample to 48 kHz f32 packed, mono or stereo, with its reused output buffer.
struct Resampler {
    context: ffmpeg::software::resampling::Context,
    channels: usize,
    scratch: Vec<f32>,
}

impl AudioReader {
    /// Opens the best audio stream of `path`, positioned at `start` seconds. `None` when the
    /// file has no audio stream.
    pub fn open(path: &Path, field: &str, start: f64) -> Result<Option<AudioReader>, MediaError> {
        let mut input = probe::open_input(path, field)?;
        let Some(stream) = input.streams().best(MediaType::Audio) else {
            return Ok(None);
        };
        let stream_index = stream.index();
        let time_base = f64::from(stream.time_base());
        let decoder = ffmpeg::codec::Context::from_parameters(stream.parameters())
            .and_then(|c| c.decoder().audio())
            .map_err(|e| MediaError::source(field, format!("cannot decode the audio: {e}")))?;
        let mono = decoder.channels() == 1;
        let container_start = container_start(&input);
        let limit = stream_end(&input, &stream, container_start)
            .map(|end| ((end - start).max(0.0) * f64::from(SAMPLE_RATE)).round() as u64);

        let start = start.max(0.0);
        if start > 0.0 {
            seek_before(&mut input, container_start + start, field)?;
        }
        Ok(Some(AudioReader {
            input,
            decoder,
            stream_index,
            field: field.to_string(),
            time_base,
            container_start,
            start,
            mono,
            resampler: None,
            decoded: ffmpeg::frame::Audio::empty(),
            buffer: Vec::new(),
            read_pos: 0,
            skip: 0,
            placed: false,
            produced: 0,
            limit,
            demuxer_done: false,
            decoder_done: false,
            flushed: false,
        }))
    }

    /// Decodes until some samples are buffered or the stream is over; false at the end.
    fn refill(&mut self) -> Result<bool, MediaError> {
        self.buffer.clear();
        self.read_pos = 0;
        while self.buffer.is_empty() {
            if self.limit.is_some_and(|l| self.produced >= l) || self.flushed {
                return Ok(false);
            }
            match self.decoder.receive_frame(&mut self.decoded) {
                Ok(()) => self.take_decoded()?,
                Err(ffmpeg::Error::Eof) => {
                    self.decoder_done = true;
                    self.flush_resampler()?;
                }
                Err(ffmpeg::Error::Other { errno }) if errno == ffmpeg::error::EAGAIN => {
                    self.feed_decoder()?;
                }
                Err(e) => return Err(self.error(format!("decoding the audio failed: {e}"))),
            }
        }
        Ok(true)
    }

    /// Sends the next packet of our stream to the decoder, or the end-of-stream mark.
    fn feed_decoder(&mut self) -> Result<(), MediaError> {
        let input = &mut self.input;
        super::demux::feed_decoder(
            input,
            self.stream_index,
            &mut self.demuxer_done,
            &mut self.decoder,
        )
        .map_err(|reason| MediaError::source(&self.field, format!("audio: {reason}")))
    }

    /// Places the first frame against `start`, then resamples the frame into the buffer.
    fn take_decoded(&mut self) -> Result<(), MediaError> {
        if !self.placed {
            self.placed = true;
            let at = self.decoded.timestamp().map_or(self.start, |ts| {
                ts as f64 * self.time_base - self.container_start
            });
            let offset = ((self.start - at) * f64::from(SAMPLE_RATE)).round();
            if offset > 0.0 {
                self.skip = offset as u64;
            } else {
                self.push_silence((-offset) as u64);
            }
        }
        if self.resampler.is_none() {
            self.resampler = Some(self.new_resampler()?);
        }
        let samples = self.decoded.samples();
        // SAFETY: extended_data points to one plane pointer per channel (planar) or one
        // (packed), each holding `samples` samples of the frame's format, as the decoder
        // wrote them; the resampler was built for this format and channel count.
        let input = unsafe { (*self.decoded.as_ptr()).extended_data as *mut *const u8 };
        self.resample(input, samples)
    }

    /// Runs the resampler on `count` input samples (none: flush) and appends its output.
    fn resample(&mut self, input: *mut *const u8, count: usize) -> Result<(), MediaError> {
        let Some(r) = self.resampler.as_mut() else {
            return Ok(());
        };
        // SAFETY: the context is initialised; swr_get_out_samples only reads it.
        let room =
            unsafe { ffmpeg::ffi::swr_get_out_samples(r.context.as_mut_ptr(), count as i32) };
        let room = room.max(0) as usize + 16;
        if r.scratch.len() < room * r.channels {
            // Grows a few times at the start, then is reused.
            r.scratch.resize(room * r.channels, 0.0);
        }
        let mut output = r.scratch.as_mut_ptr().cast::<u8>();
        // SAFETY: `output` has room for `room` packed f32 samples of `channels` channels;
        // `input` is valid for `count` samples (or null with count 0 to flush).
        let written = unsafe {
            ffmpeg::ffi::swr_convert(
                r.context.as_mut_ptr(),
                &mut output,
                room as i32,
                input,
                count as i32,
            )
        };
        if written < 0 {
            let e = ffmpeg::Error::from(written);
            return Err(self.error(format!("resampling the audio failed: {e}")));
        }
        self.append(written as usize);
        Ok(())
    }

    /// Moves `frames` resampled frames from the scratch buffer to the stereo buffer,
    /// dropping those before the start and those past the end.
    fn append(&mut self, frames: usize) {
        let Some(r) = self.resampler.as_ref() else {
            return;
        };
        let dropped = (self.skip.min(frames as u64)) as usize;
        self.skip -= dropped as u64;
        let room = self
            .limit
            .map_or(u64::MAX, |l| l.saturating_sub(self.produced));
        let kept = ((frames - dropped) as u64).min(room) as usize;
        let samples = r
            .scratch
            .get(dropped * r.channels..(dropped + kept) * r.channels);
        let samples = samples.unwrap_or_default();
        if r.channels == 1 {
            self.buffer.extend(samples.iter().flat_map(|&s| [s, s]));
        } else {
            self.buffer.extend_from_slice(samples);
        }
        self.produced += kept as u64;
    }

    fn push_silence(&mut self, frames: u64) {
        let room = self
            .limit
            .map_or(u64::MAX, |l| l.saturating_sub(self.produced));
        let frames = frames.min(room);
        self.buffer
            .resize(self.buffer.len() + 2 * frames as usize, 0.0);
        self.produced += frames;
    }

    /// Drains what the resampler still holds once the decoder is done.
    fn flush_resampler(&mut self) -> Result<(), MediaError> {
        if self.resampler.is_some() {
            self.resample(std::ptr::null_mut(), 0)?;
        }
        self.flushed = true;
        Ok(())
    }

    fn new_resampler(&self) -> Result<Resampler, MediaError> {
        use ffmpeg::ChannelLayout;
        use ffmpeg::format::{Sample, sample::Type};
        let frame = &self.decoded;
        let channels = frame.channels();
        let layout = frame.channel_layout();
        let layout = if layout.is_empty() || layout.channels() != i32::from(channels) {
            ChannelLayout::default(i32::from(channels))
        } else {
            layout
        };
        let (out_layout, out_channels) = if self.mono {
            (ChannelLayout::MONO, 1)
        } else {
            (ChannelLayout::STEREO, 2)
        };
        let context = ffmpeg::software::resampling::Context::get(
            frame.format(),
            layout,
            frame.rate(),
            Sample::F32(Type::Packed),
            out_layout,
            SAMPLE_RATE,
        )
        .map_err(|e| {
            self.error(format!(
                "cannot resample {channels} channels at {} Hz: {e}",
                frame.rate()
            ))
        })?;
        Ok(Resampler {
            context,
            channels: out_channels,
            scratch: Vec::new(),
        })
    }

    fn error(&self, reason: String) -> MediaError {
        MediaError::source(&self.field, reason)
    }
}

impl AudioSource for AudioReader {
    fn read(&mut self, out: &mut [f32]) -> Result<usize, MediaError> {
        let wanted = out.len() / 2 * 2;
        let mut filled = 0;
        while filled < wanted {
            if self.read_pos >= self.buffer.len() && !self.refill()? {
                break;
            }
            let available = &self.buffer[self.read_pos..];
            let n = available.len().min(wanted - filled);
            out[filled..filled + n].copy_from_slice(&available[..n]);
            filled += n;
            self.read_pos += n;
        }
        Ok(filled / 2)
    }

    fn is_mono(&self) -> bool {
        self.mono
    }
}

/// Where the audio stream ends, in seconds of source time, as the container states it.
fn stream_end(
    input: &ffmpeg::format::context::Input,
    stream: &ffmpeg::format::stream::Stream,
    container_start: f64,
) -> Option<f64> {
    let time_base = f64::from(stream.time_base());
    if stream.duration() > 0 {
        let first = if stream.start_time() == ffmpeg::ffi::AV_NOPTS_VALUE {
            container_start
        } else {
            stream.start_time() as f64 * time_base
        };
        return Some(first + stream.duration() as f64 * time_base - container_start);
    }
    (input.duration() > 0).then(|| input.duration() as f64 / f64::from(ffmpeg::ffi::AV_TIME_BASE))
}
