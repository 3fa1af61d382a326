//! Packets from a file to a decoder: the loop both decoders share.

use ffmpeg_next as ffmpeg;

/// Sends the next packet of `stream` to `decoder`, or the end-of-stream mark once the file
/// is read (`done` records that). A damaged packet is skipped, as players do: the decoder
/// resynchronises on the next one. The error is the reason, for the caller to name its clip.
pub(crate) fn feed_decoder(
    input: &mut ffmpeg::format::context::Input,
    stream: usize,
    done: &mut bool,
    decoder: &mut ffmpeg::decoder::Opened,
) -> Result<(), String> {
    if *done {
        return match decoder.send_eof() {
            Ok(()) | Err(ffmpeg::Error::Eof) => Ok(()),
            Err(e) => Err(format!("flushing the decoder failed: {e}")),
        };
    }
    let packet = loop {
        // A fresh packet each time: `av_read_frame` does not release what a packet held, so
        // reading into a reused one would leak every packet of the other streams.
        let mut packet = ffmpeg::Packet::empty();
        match packet.read(input) {
            Ok(()) if packet.stream() == stream => break packet,
            Ok(()) => continue,
            Err(ffmpeg::Error::Eof) => {
                *done = true;
                return Ok(());
            }
            Err(e) => return Err(format!("reading the file failed: {e}")),
        }
    };
    match decoder.send_packet(&packet) {
        Ok(()) | Err(ffmpeg::Error::InvalidData) => Ok(()),
        Err(e) => Err(format!("decoding failed: {e}")),
    }
}
