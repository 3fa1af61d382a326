//! Loopback servers that misbehave on purpose, written on raw sockets so that every byte
//! and every pause is under the test's control, and tiny files that lie about themselves.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the server answers a request.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// A 200 with no length that never ends (bytes as fast as the client reads).
    Forever,
    /// A 200 announcing `length` bytes, then one byte every `every`.
    Trickle { length: usize, every: Duration },
    /// A 200 announcing `body.len() * 4` bytes, sends `body`, then closes the socket.
    DiesMidway { body: Vec<u8> },
    /// The n-th request (from 0) gets `bodies[min(n, last)]` in full.
    Changing { bodies: Vec<Vec<u8>> },
}

pub struct Hostile {
    pub base: String,
    pub requests: Arc<AtomicUsize>,
}

impl Hostile {
    pub fn count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

pub async fn serve(behaviour: Behaviour) -> Hostile {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&requests);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let behaviour = behaviour.clone();
            tokio::spawn(async move {
                let _ = answer(socket, behaviour, n).await;
            });
        }
    });
    Hostile { base, requests }
}

async fn read_head(socket: &mut TcpStream) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        let n = socket.read(&mut byte).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&byte[..n]);
    }
    Ok(())
}

async fn answer(mut socket: TcpStream, behaviour: Behaviour, n: usize) -> std::io::Result<()> {
    read_head(&mut socket).await?;
    let ok = |length: Option<usize>| {
        let length = length.map_or(String::new(), |l| format!("Content-Length: {l}\r\n"));
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n{length}\
             Connection: close\r\n\r\n"
        )
    };
    match behaviour {
        Behaviour::Forever => {
            socket.write_all(ok(None).as_bytes()).await?;
            // An MP4 `ftyp` box first, so the bytes look like media, then zeros.
            socket.write_all(&mp4_head()).await?;
            let chunk = vec![0u8; 64 * 1024];
            loop {
                socket.write_all(&chunk).await?;
            }
        }
        Behaviour::Trickle { length, every } => {
            socket.write_all(ok(Some(length)).as_bytes()).await?;
            let head = mp4_head();
            for i in 0..length {
                let byte = head.get(i).copied().unwrap_or(0);
                socket.write_all(&[byte]).await?;
                socket.flush().await?;
                tokio::time::sleep(every).await;
            }
            Ok(())
        }
        Behaviour::DiesMidway { body } => {
            socket
                .write_all(ok(Some(body.len() * 4)).as_bytes())
                .await?;
            socket.write_all(&body).await?;
            socket.flush().await?;
            // Dropping the socket closes it with three quarters of the body unsent.
            Ok(())
        }
        Behaviour::Changing { bodies } => {
            let Some(body) = bodies.get(n.min(bodies.len().saturating_sub(1))) else {
                return Ok(());
            };
            socket.write_all(ok(Some(body.len())).as_bytes()).await?;
            socket.write_all(body).await
        }
    }
}

/// An MP4 `ftyp` box: what a real MP4 starts with.
pub fn mp4_head() -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&24u32.to_be_bytes());
    b.extend_from_slice(b"ftypisom");
    b.extend_from_slice(&512u32.to_be_bytes());
    b.extend_from_slice(b"isomiso2avc1");
    b
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xedb8_8320 & mask);
        }
    }
    !crc
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32(&body).to_be_bytes());
}

/// A decompression bomb: a PNG of a few dozen bytes whose header claims `width`x`height`
/// RGBA pixels (a 20000x12000 one would need 960 MB decoded).
pub fn png_bomb(width: u32, height: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    // 8 bits, colour type 6 (RGBA), deflate, adaptive filter, no interlace.
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    png_chunk(&mut png, b"IHDR", &ihdr);
    // A zlib stream of one empty stored block: valid, and far too short.
    png_chunk(
        &mut png,
        b"IDAT",
        &[0x78, 0x01, 0x01, 0x00, 0x00, 0xff, 0xff, 0, 0, 0, 1],
    );
    png_chunk(&mut png, b"IEND", &[]);
    png
}

/// Runs the ffmpeg CLI in `dir`; panics with the arguments on failure.
pub fn ffmpeg(dir: &std::path::Path, args: &[&str]) {
    let status = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .current_dir(dir)
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "ffmpeg {args:?}");
}

/// A small H.264 test clip: testsrc2 at `size`, `seconds` long, 30 fps, no audio.
pub fn small_video(dir: &std::path::Path, name: &str, size: &str, seconds: u32) {
    let src = format!("testsrc2=size={size}:rate=30:duration={seconds}");
    ffmpeg(
        dir,
        &[
            "-f",
            "lavfi",
            "-i",
            &src,
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            name,
        ],
    );
}

/// The frame count ffprobe reads by decoding the whole file (`None` when it cannot).
pub fn ffprobe_frames(path: &std::path::Path) -> Option<u64> {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}
