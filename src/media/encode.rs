//! Encoding: rendered frames and mixed samples into the output MP4.
//!
//! Three stages, each meant for a thread of its own and joined by a channel of
//! [`EncodedPacket`]s: a [`VideoEncoder`] (libx264, yuv420p, BT.709 tagged, limited
//! range), an [`AudioEncoder`] (AAC-LC, 48 kHz stereo) and a [`Muxer`] that interleaves
//! their packets into an MP4 whose index is moved to the front (`+faststart`) so players
//! can start before the download ends. [`Mp4Writer`] drives the three on one thread for
//! tests and small uses.
//!
//! The file holds exactly the frames given: libx264 leaves packet durations at 0, which
//! makes MP4 drop the last frame's length, so each packet gets one frame's duration before
//! it is rescaled. The audio is cut or padded with silence to the video's length when
//! [`AudioEncoder::set_length`] is given it, so the two end together (within the last AAC
//! frame's 1024 samples, 21 ms).
//!
//! Frames and samples are copied into one reused FFmpeg frame per encoder; each
//! compressed packet is a fresh FFmpeg allocation that travels to the muxer (one per video
//! frame and one per 1024 audio samples).
//!
//! Defaults: preset `veryfast` (about 95 fps at 720p on one of our 2-core machines) and
//! CRF 23 (libx264's own default: visually clean at a modest size).

use std::path::Path;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};

use ffmpeg::format::Pixel;
use ffmpeg::util::color;
use ffmpeg::{ChannelLayout, Rational};
use ffmpeg_next as ffmpeg;

use super::error::MediaError;
use super::frame::{PixelLayout, VideoFrame};
use super::probe;
use crate::audio::source::SAMPLE_RATE;
use crate::project::Fps;

/// The libx264 preset used unless asked otherwise.
pub const DEFAULT_PRESET: &str = "veryfast";
/// The libx264 constant rate factor used unless asked otherwise.
pub const DEFAULT_CRF: u8 = 23;
/// AAC bit rate for the stereo output.
const AUDIO_BIT_RATE: usize = 192_000;

/// What the output looks like and how hard the encoder works.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodeSettings {
    /// Output size; both even (4:2:0).
    pub width: u32,
    pub height: u32,
    pub fps: Fps,
    /// libx264 preset, `ultrafast` … `veryslow`; default [`DEFAULT_PRESET`].
    pub preset: String,
    /// libx264 constant rate factor, 0..=51 (lower is better); default [`DEFAULT_CRF`].
    pub crf: u8,
}

impl EncodeSettings {
    /// Settings with the default preset and CRF.
    pub fn new(width: u32, height: u32, fps: Fps) -> EncodeSettings {
        EncodeSettings {
            width,
            height,
            fps,
            preset: DEFAULT_PRESET.into(),
            crf: DEFAULT_CRF,
        }
    }

    /// The number of 48 kHz audio samples (per channel) that last as long as `frames`.
    pub fn samples_for_frames(&self, frames: u64) -> u64 {
        let num = u128::from(self.fps.num.max(1));
        let samples = u128::from(frames) * u128::from(SAMPLE_RATE) * u128::from(self.fps.den);
        ((samples + num / 2) / num) as u64
    }

    fn check(&self) -> Result<(), MediaError> {
        if self.width == 0
            || self.height == 0
            || !self.width.is_multiple_of(2)
            || !self.height.is_multiple_of(2)
        {
            return Err(MediaError::Encode(format!(
                "output size: must be even and non-zero, got {}x{}",
                self.width, self.height
            )));
        }
        if self.crf > 51 {
            return Err(MediaError::Encode(format!(
                "crf: must be 0..=51, got {}",
                self.crf
            )));
        }
        if self.fps.num == 0 || self.fps.den == 0 {
            return Err(MediaError::Encode(format!(
                "fps: must be > 0, got {}/{}",
                self.fps.num, self.fps.den
            )));
        }
        Ok(())
    }
}

/// Which output stream a packet belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Video,
    Audio,
}

/// A compressed packet on its way to the muxer, timed in its encoder's time base.
pub struct EncodedPacket {
    pub kind: StreamKind,
    pub packet: ffmpeg::Packet,
    pub time_base: Rational,
}

/// Where encoders put their packets: a bounded channel between threads, or an unbounded
/// one drained by the same thread ([`Mp4Writer`]).
#[derive(Clone)]
pub struct PacketSender(SenderKind);

#[derive(Clone)]
enum SenderKind {
    Bounded(SyncSender<EncodedPacket>),
    Unbounded(Sender<EncodedPacket>),
}

impl PacketSender {
    fn send(&self, packet: EncodedPacket) -> Result<(), MediaError> {
        let sent = match &self.0 {
            SenderKind::Bounded(s) => s.send(packet).is_ok(),
            SenderKind::Unbounded(s) => s.send(packet).is_ok(),
        };
        if sent {
            Ok(())
        } else {
            Err(MediaError::Encode("the muxer has stopped".into()))
        }
    }
}

/// A channel for packets; `bound` packets may wait in it (0: unbounded).
pub fn packet_channel(bound: usize) -> (PacketSender, Receiver<EncodedPacket>) {
    if bound == 0 {
        let (tx, rx) = mpsc::channel();
        (PacketSender(SenderKind::Unbounded(tx)), rx)
    } else {
        let (tx, rx) = mpsc::sync_channel(bound);
        (PacketSender(SenderKind::Bounded(tx)), rx)
    }
}

/// H.264 encoding of output frames (yuv420p, BT.709, limited range, at the settings' size).
pub struct VideoEncoder {
    encoder: ffmpeg::encoder::Video,
    frame: ffmpeg::frame::Video,
    packet: ffmpeg::Packet,
    time_base: Rational,
    next_pts: i64,
    sender: PacketSender,
}

impl VideoEncoder {
    pub fn new(
        settings: &EncodeSettings,
        sender: PacketSender,
    ) -> Result<VideoEncoder, MediaError> {
        probe::init();
        settings.check()?;
        let codec = ffmpeg::encoder::find_by_name("libx264")
            .ok_or_else(|| MediaError::Encode("FFmpeg has no libx264 encoder".into()))?;
        let mut encoder = ffmpeg::codec::Context::new_with_codec(codec)
            .encoder()
            .video()
            .map_err(|e| MediaError::Encode(format!("libx264: {e}")))?;
        let time_base = Rational::new(settings.fps.den as i32, settings.fps.num as i32);
        encoder.set_width(settings.width);
        encoder.set_height(settings.height);
        encoder.set_format(Pixel::YUV420P);
        encoder.set_time_base(time_base);
        encoder.set_frame_rate(Some(Rational::new(
            settings.fps.num as i32,
            settings.fps.den as i32,
        )));
        encoder.set_colorspace(color::Space::BT709);
        encoder.set_color_primaries(color::Primaries::BT709);
        encoder.set_color_transfer_characteristic(color::TransferCharacteristic::BT709);
        encoder.set_color_range(color::Range::MPEG);
        encoder.set_flags(ffmpeg::codec::Flags::GLOBAL_HEADER);

        let mut options = ffmpeg::Dictionary::new();
        options.set("preset", &settings.preset);
        options.set("crf", &settings.crf.to_string());
        let encoder = encoder.open_as_with(codec, options).map_err(|e| {
            MediaError::Encode(format!(
                "libx264 refused preset {:?} / crf {}: {e}",
                settings.preset, settings.crf
            ))
        })?;
        let mut frame = ffmpeg::frame::Video::new(Pixel::YUV420P, settings.width, settings.height);
        frame.set_color_space(color::Space::BT709);
        frame.set_color_range(color::Range::MPEG);
        Ok(VideoEncoder {
            encoder,
            frame,
            packet: ffmpeg::Packet::empty(),
            time_base,
            next_pts: 0,
            sender,
        })
    }

    /// Encodes the next output frame; it must be yuv420p at the settings' size.
    pub fn encode(&mut self, frame: &VideoFrame) -> Result<(), MediaError> {
        if frame.layout != PixelLayout::Yuv420p
            || frame.width != self.frame.width()
            || frame.height != self.frame.height()
        {
            return Err(MediaError::Encode(format!(
                "frame: must be yuv420p {}x{}, got {:?} {}x{}",
                self.frame.width(),
                self.frame.height(),
                frame.layout,
                frame.width,
                frame.height
            )));
        }
        make_writable(&mut self.frame)?;
        for (index, plane) in frame.planes.iter().enumerate().take(3) {
            copy_plane_into(&plane.data, plane.stride, &mut self.frame, index);
        }
        self.frame.set_pts(Some(self.next_pts));
        self.next_pts += 1;
        self.encoder
            .send_frame(&self.frame)
            .map_err(|e| MediaError::Encode(format!("libx264: {e}")))?;
        self.drain()
    }

    /// Flushes the frames libx264 still holds. Returns the number of frames encoded.
    pub fn finish(&mut self) -> Result<u64, MediaError> {
        self.encoder
            .send_eof()
            .map_err(|e| MediaError::Encode(format!("libx264: {e}")))?;
        self.drain()?;
        Ok(self.next_pts as u64)
    }

    /// Sends every packet the encoder has ready, each lasting one frame.
    fn drain(&mut self) -> Result<(), MediaError> {
        while self.encoder.receive_packet(&mut self.packet).is_ok() {
            self.packet.set_duration(1);
            let packet = std::mem::replace(&mut self.packet, ffmpeg::Packet::empty());
            self.sender.send(EncodedPacket {
                kind: StreamKind::Video,
                packet,
                time_base: self.time_base,
            })?;
        }
        Ok(())
    }
}

/// AAC-LC encoding of the mix, 48 kHz interleaved stereo f32 in.
pub struct AudioEncoder {
    encoder: ffmpeg::encoder::Audio,
    frame: ffmpeg::frame::Audio,
    frame_size: usize,
    /// Samples (per channel) waiting in `frame`.
    pending: usize,
    next_pts: i64,
    /// Samples (per channel) accepted so far, and the most to accept.
    accepted: u64,
    length: Option<u64>,
    packet: ffmpeg::Packet,
    sender: PacketSender,
}

impl AudioEncoder {
    pub fn new(sender: PacketSender) -> Result<AudioEncoder, MediaError> {
        use ffmpeg::format::{Sample, sample::Type};
        probe::init();
        let codec = ffmpeg::encoder::find(ffmpeg::codec::Id::AAC)
            .ok_or_else(|| MediaError::Encode("FFmpeg has no AAC encoder".into()))?;
        let mut encoder = ffmpeg::codec::Context::new_with_codec(codec)
            .encoder()
            .audio()
            .map_err(|e| MediaError::Encode(format!("aac: {e}")))?;
        encoder.set_rate(SAMPLE_RATE as i32);
        encoder.set_format(Sample::F32(Type::Planar));
        encoder.set_channel_layout(ChannelLayout::STEREO);
        // FFmpeg 5.1 needs the count as well as the layout.
        encoder.set_channels(2);
        encoder.set_bit_rate(AUDIO_BIT_RATE);
        encoder.set_time_base(Rational::new(1, SAMPLE_RATE as i32));
        encoder.set_flags(ffmpeg::codec::Flags::GLOBAL_HEADER);
        let encoder = encoder
            .open_as(codec)
            .map_err(|e| MediaError::Encode(format!("aac: {e}")))?;
        let frame_size = (encoder.frame_size() as usize).max(1);
        let mut frame =
            ffmpeg::frame::Audio::new(Sample::F32(Type::Planar), frame_size, ChannelLayout::STEREO);
        frame.set_rate(SAMPLE_RATE);
        Ok(AudioEncoder {
            encoder,
            frame,
            frame_size,
            pending: 0,
            next_pts: 0,
            accepted: 0,
            length: None,
            packet: ffmpeg::Packet::empty(),
            sender,
        })
    }

    /// The audio's exact length in samples per channel (see
    /// [`EncodeSettings::samples_for_frames`]): later samples are dropped, and `finish`
    /// pads with silence up to it.
    pub fn set_length(&mut self, samples: u64) {
        self.length = Some(samples);
    }

    /// Encodes interleaved stereo samples (L, R, L, R...).
    pub fn encode(&mut self, samples: &[f32]) -> Result<(), MediaError> {
        let room = self
            .length
            .map_or(u64::MAX, |l| l.saturating_sub(self.accepted));
        let frames = ((samples.len() / 2) as u64).min(room) as usize;
        let mut taken = 0;
        while taken < frames {
            if self.pending == 0 {
                make_writable_audio(&mut self.frame)?;
            }
            let n = (self.frame_size - self.pending).min(frames - taken);
            let source = samples.get(taken * 2..(taken + n) * 2).unwrap_or_default();
            for side in 0..2 {
                let plane = self.frame.plane_mut::<f32>(side);
                let dest = &mut plane[self.pending..self.pending + n];
                for (d, pair) in dest.iter_mut().zip(source.chunks_exact(2)) {
                    *d = pair[side];
                }
            }
            self.pending += n;
            taken += n;
            if self.pending == self.frame_size {
                self.send_pending()?;
            }
        }
        self.accepted += frames as u64;
        Ok(())
    }

    /// Pads to the set length, sends the last partial frame and flushes the encoder.
    pub fn finish(&mut self) -> Result<(), MediaError> {
        if let Some(length) = self.length {
            let silence = [0.0f32; 2048];
            while self.accepted < length {
                let n = (length - self.accepted).min(1024) as usize;
                self.encode(&silence[..n * 2])?;
            }
        }
        if self.pending > 0 {
            self.send_pending()?;
        }
        self.encoder
            .send_eof()
            .map_err(|e| MediaError::Encode(format!("aac: {e}")))?;
        self.drain()
    }

    fn send_pending(&mut self) -> Result<(), MediaError> {
        self.frame.set_samples(self.pending);
        self.frame.set_pts(Some(self.next_pts));
        self.next_pts += self.pending as i64;
        self.encoder
            .send_frame(&self.frame)
            .map_err(|e| MediaError::Encode(format!("aac: {e}")))?;
        self.frame.set_samples(self.frame_size);
        self.pending = 0;
        self.drain()
    }

    fn drain(&mut self) -> Result<(), MediaError> {
        while self.encoder.receive_packet(&mut self.packet).is_ok() {
            let packet = std::mem::replace(&mut self.packet, ffmpeg::Packet::empty());
            self.sender.send(EncodedPacket {
                kind: StreamKind::Audio,
                packet,
                time_base: Rational::new(1, SAMPLE_RATE as i32),
            })?;
        }
        Ok(())
    }
}

/// Writes packets of both encoders into the MP4, interleaved by time.
pub struct Muxer {
    output: ffmpeg::format::context::Output,
    video: (usize, Rational),
    audio: Option<(usize, Rational)>,
    video_packets: u64,
}

impl Muxer {
    /// Creates the file and writes its header, with one stream per encoder. Create the
    /// encoders first, then move each stage to its thread.
    pub fn create(
        path: &Path,
        video: &VideoEncoder,
        audio: Option<&AudioEncoder>,
    ) -> Result<Muxer, MediaError> {
        probe::init();
        let fail = |what: &str, e: ffmpeg::Error| {
            MediaError::Encode(format!("{what} {}: {e}", path.display()))
        };
        let mut output =
            ffmpeg::format::output_as(&path, "mp4").map_err(|e| fail("cannot create", e))?;
        let video_index = add_stream(&mut output, &video.encoder, video.time_base)
            .map_err(|e| fail("cannot add the video stream to", e))?;
        let audio_index = match audio {
            Some(a) => Some(
                add_stream(
                    &mut output,
                    &a.encoder,
                    Rational::new(1, SAMPLE_RATE as i32),
                )
                .map_err(|e| fail("cannot add the audio stream to", e))?,
            ),
            None => None,
        };
        let mut options = ffmpeg::Dictionary::new();
        options.set("movflags", "+faststart");
        output
            .write_header_with(options)
            .map_err(|e| fail("cannot write the header of", e))?;

        let time_base = |i: usize| {
            output
                .stream(i)
                .map_or(Rational::new(1, 90_000), |s| s.time_base())
        };
        let video = (video_index, time_base(video_index));
        let audio = audio_index.map(|i| (i, time_base(i)));
        Ok(Muxer {
            output,
            video,
            audio,
            video_packets: 0,
        })
    }

    /// Writes one packet (buffered by FFmpeg until it can be interleaved).
    pub fn write(&mut self, mut packet: EncodedPacket) -> Result<(), MediaError> {
        let (index, time_base) = match packet.kind {
            StreamKind::Video => self.video,
            StreamKind::Audio => self.audio.ok_or_else(|| {
                MediaError::Encode("an audio packet for an output without audio".into())
            })?,
        };
        packet.packet.set_stream(index);
        packet.packet.rescale_ts(packet.time_base, time_base);
        packet
            .packet
            .write_interleaved(&mut self.output)
            .map_err(|e| MediaError::Encode(format!("writing a packet: {e}")))?;
        if packet.kind == StreamKind::Video {
            self.video_packets += 1;
        }
        Ok(())
    }

    /// Video packets written so far: the frames muxed.
    pub fn video_packets(&self) -> u64 {
        self.video_packets
    }

    /// Writes every packet from `packets` until all senders are gone, calling `progress`
    /// with the frames muxed after each video packet, then finishes the file.
    pub fn run(
        mut self,
        packets: Receiver<EncodedPacket>,
        mut progress: impl FnMut(u64),
    ) -> Result<u64, MediaError> {
        for packet in packets {
            let video = packet.kind == StreamKind::Video;
            self.write(packet)?;
            if video {
                progress(self.video_packets);
            }
        }
        self.finish()
    }

    /// Flushes the interleaving queue and writes the index (moved to the front). Returns
    /// the frames muxed.
    pub fn finish(mut self) -> Result<u64, MediaError> {
        self.output
            .write_trailer()
            .map_err(|e| MediaError::Encode(format!("finishing the file: {e}")))?;
        Ok(self.video_packets)
    }
}

fn add_stream<E: AsRef<ffmpeg::codec::Context>>(
    output: &mut ffmpeg::format::context::Output,
    encoder: &E,
    time_base: Rational,
) -> Result<usize, ffmpeg::Error> {
    let mut stream = output.add_stream(encoder.as_ref().codec())?;
    stream.set_parameters(encoder);
    stream.set_time_base(time_base);
    // SAFETY: clearing the codec tag of a stream we own lets the MP4 muxer pick its own.
    unsafe { (*(*stream.as_mut_ptr()).codecpar).codec_tag = 0 };
    Ok(stream.index())
}

/// The three stages on the calling thread: for tests and small outputs.
pub struct Mp4Writer {
    video: VideoEncoder,
    audio: Option<AudioEncoder>,
    muxer: Muxer,
    packets: Receiver<EncodedPacket>,
    settings: EncodeSettings,
    frames: u64,
    /// Audio written ahead of the video, held until the video reaches it so that the
    /// file's audio can be cut to the video's length at the end.
    audio_ahead: Vec<f32>,
    audio_encoded: u64,
}

impl Mp4Writer {
    /// Creates `path`, with an audio stream when `with_audio`.
    pub fn create(
        path: &Path,
        settings: &EncodeSettings,
        with_audio: bool,
    ) -> Result<Mp4Writer, MediaError> {
        let (sender, packets) = packet_channel(0);
        let video = VideoEncoder::new(settings, sender.clone())?;
        let audio = if with_audio {
            Some(AudioEncoder::new(sender)?)
        } else {
            None
        };
        let muxer = Muxer::create(path, &video, audio.as_ref())?;
        Ok(Mp4Writer {
            video,
            audio,
            muxer,
            packets,
            settings: settings.clone(),
            frames: 0,
            audio_ahead: Vec::new(),
            audio_encoded: 0,
        })
    }

    pub fn write_video(&mut self, frame: &VideoFrame) -> Result<(), MediaError> {
        self.video.encode(frame)?;
        self.frames += 1;
        self.encode_audio_up_to_video()?;
        self.pump()
    }

    /// Interleaved stereo samples; ignored when the writer has no audio stream. Samples
    /// beyond the video written so far wait (in memory) for it.
    pub fn write_audio(&mut self, samples: &[f32]) -> Result<(), MediaError> {
        if self.audio.is_some() {
            self.audio_ahead.extend_from_slice(samples);
            self.encode_audio_up_to_video()?;
        }
        self.pump()
    }

    fn encode_audio_up_to_video(&mut self) -> Result<(), MediaError> {
        let Some(audio) = self.audio.as_mut() else {
            return Ok(());
        };
        let due = self.settings.samples_for_frames(self.frames);
        let wanted = due.saturating_sub(self.audio_encoded);
        let n = (wanted as usize).min(self.audio_ahead.len() / 2);
        if n > 0 {
            audio.encode(&self.audio_ahead[..2 * n])?;
            self.audio_ahead.drain(..2 * n);
            self.audio_encoded += n as u64;
        }
        Ok(())
    }

    /// Ends both streams (the audio cut or padded to the video's length) and finishes the
    /// file. Returns the frames written.
    pub fn finish(mut self) -> Result<u64, MediaError> {
        self.video.finish()?;
        if let Some(audio) = self.audio.as_mut() {
            audio.set_length(self.settings.samples_for_frames(self.frames));
            audio.encode(&self.audio_ahead)?;
            audio.finish()?;
        }
        self.pump()?;
        self.muxer.finish()
    }

    fn pump(&mut self) -> Result<(), MediaError> {
        while let Ok(packet) = self.packets.try_recv() {
            self.muxer.write(packet)?;
        }
        Ok(())
    }
}

/// Makes `frame`'s buffers ours alone before writing into them; copies only if an encoder
/// still holds a reference (libx264 and aac release them at once, so in practice never).
fn make_writable(frame: &mut ffmpeg::frame::Video) -> Result<(), MediaError> {
    // SAFETY: the frame is allocated and owned by us.
    let ret = unsafe { ffmpeg::ffi::av_frame_make_writable(frame.as_mut_ptr()) };
    if ret < 0 {
        return Err(MediaError::Encode(format!(
            "frame buffer: {}",
            ffmpeg::Error::from(ret)
        )));
    }
    Ok(())
}

fn make_writable_audio(frame: &mut ffmpeg::frame::Audio) -> Result<(), MediaError> {
    // SAFETY: the frame is allocated and owned by us.
    let ret = unsafe { ffmpeg::ffi::av_frame_make_writable(frame.as_mut_ptr()) };
    if ret < 0 {
        return Err(MediaError::Encode(format!(
            "frame buffer: {}",
            ffmpeg::Error::from(ret)
        )));
    }
    Ok(())
}

/// Copies rows of a tightly or loosely packed plane into plane `index` of `frame`.
pub(crate) fn copy_plane_into(
    data: &[u8],
    stride: usize,
    frame: &mut ffmpeg::frame::Video,
    index: usize,
) {
    let width = frame.plane_width(index) as usize;
    let rows = frame.plane_height(index) as usize;
    let dest_stride = frame.stride(index);
    let dest = frame.data_mut(index);
    for row in 0..rows {
        let (Some(src), Some(dst)) = (
            data.get(row * stride..row * stride + width),
            dest.get_mut(row * dest_stride..row * dest_stride + width),
        ) else {
            break;
        };
        dst.copy_from_slice(src);
    }
}
