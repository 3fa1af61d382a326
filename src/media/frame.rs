//! A decoded picture as its planes, in the source's own pixel layout. The CPU never
//! converts or scales these: they are uploaded as they are and the GPU does the rest.

/// How the planes of a [`VideoFrame`] are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelLayout {
    /// Y, U, V planes; chroma at half width and half height (rounded up).
    Yuv420p,
    /// Y, U, V planes; chroma at half width (rounded up), full height.
    Yuv422p,
    /// Y, U, V planes, all full size.
    Yuv444p,
    /// Y plane, then one interleaved UV plane at half width and height.
    Nv12,
    /// One plane of R'G'B'A, 4 bytes per pixel, straight (not premultiplied) alpha.
    Rgba,
}

/// The Y'CbCr → R'G'B' matrix of a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Matrix {
    Bt601,
    #[default]
    Bt709,
}

/// Whether code values span 16..=235 (limited, "TV") or 0..=255 (full, "PC").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Range {
    #[default]
    Limited,
    Full,
}

/// Clockwise rotation to apply for display (from the stream's display matrix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rotation {
    #[default]
    None,
    Cw90,
    Cw180,
    Cw270,
}

/// One plane of pixels: `height` rows of `stride` bytes, of which the first
/// `width * bytes_per_pixel` are picture.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plane {
    pub data: Vec<u8>,
    pub stride: usize,
    pub width: u32,
    pub height: u32,
}

impl Plane {
    pub fn row(&self, y: u32) -> &[u8] {
        let start = y as usize * self.stride;
        &self.data[start..start + self.stride]
    }
}

/// A decoded picture. `width` and `height` are the stored (coded) size; the displayed
/// shape also depends on `rotation` and `sample_aspect`.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoFrame {
    pub width: u32,
    pub height: u32,
    pub layout: PixelLayout,
    pub planes: Vec<Plane>,
    pub matrix: Matrix,
    pub range: Range,
    pub rotation: Rotation,
    /// Pixel aspect ratio (num, den); (1, 1) for square pixels.
    pub sample_aspect: (u32, u32),
    /// Presentation time in the source, in seconds.
    pub pts: f64,
}

impl VideoFrame {
    /// The size the picture is shown at, after rotation and sample aspect: the width is
    /// stretched by the sample aspect (never the height), then the two are swapped for a
    /// quarter turn.
    pub fn display_size(&self) -> (f64, f64) {
        let (num, den) = self.sample_aspect;
        let sar = if num == 0 || den == 0 {
            1.0
        } else {
            f64::from(num) / f64::from(den)
        };
        let w = f64::from(self.width) * sar;
        let h = f64::from(self.height);
        match self.rotation {
            Rotation::Cw90 | Rotation::Cw270 => (h, w),
            Rotation::None | Rotation::Cw180 => (w, h),
        }
    }

    /// Makes `self` a copy of `other`, reusing `self`'s buffers: no allocation once they
    /// are large enough.
    pub fn copy_from(&mut self, other: &VideoFrame) {
        self.planes.resize_with(other.planes.len(), Plane::default);
        for (dst, src) in self.planes.iter_mut().zip(&other.planes) {
            dst.data.clear();
            dst.data.extend_from_slice(&src.data);
            dst.stride = src.stride;
            dst.width = src.width;
            dst.height = src.height;
        }
        self.width = other.width;
        self.height = other.height;
        self.layout = other.layout;
        self.matrix = other.matrix;
        self.range = other.range;
        self.rotation = other.rotation;
        self.sample_aspect = other.sample_aspect;
        self.pts = other.pts;
    }

    /// A tightly packed BT.709 limited-range 4:2:0 frame of even size, all zero: the shape
    /// the compositor writes and the encoder reads.
    pub fn new_output(width: u32, height: u32) -> VideoFrame {
        let plane = |w: u32, h: u32| Plane {
            data: vec![0; (w * h) as usize],
            stride: w as usize,
            width: w,
            height: h,
        };
        VideoFrame {
            width,
            height,
            layout: PixelLayout::Yuv420p,
            planes: vec![
                plane(width, height),
                plane(width / 2, height / 2),
                plane(width / 2, height / 2),
            ],
            matrix: Matrix::Bt709,
            range: Range::Limited,
            rotation: Rotation::None,
            sample_aspect: (1, 1),
            pts: 0.0,
        }
    }
}
