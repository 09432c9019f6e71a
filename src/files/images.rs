//! The image worker pool: the only threads that decode images.
//!
//! Decoding is the one step where a few hostile bytes can cost a lot: a 100,000 × 100,000
//! PNG is 40 GB of pixels. So it happens here, off the store, router and writer threads, on
//! a fixed number of workers behind a bounded queue (a full queue is "busy": 503, never a
//! growing backlog), and under explicit [`image::Limits`]: dimensions are checked from the
//! header before any pixel buffer exists. A file that fails any check gets no thumbnail and
//! is stored as a plain file. A panic inside a decoder costs that one job, not the worker.

use std::io::{BufReader, Cursor};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use crossbeam_channel::{bounded, Sender, TrySendError};
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};

use super::FileError;

/// Longest side of a thumbnail (API.md: "at most 400 px on its longest side").
pub const THUMB_MAX_SIDE: u32 = 400;
/// Widest and tallest image decoded. Beyond any camera (a 200 MP sensor is 16,320 px wide),
/// and it refuses pixel bombs from their header alone.
pub const MAX_SIDE: u32 = 16_384;
/// Most bytes one decode may allocate: a 32-megapixel RGBA picture. With [`DEFAULT_WORKERS`]
/// decodes at once, the pool's worst case stays a few hundred MiB.
pub const MAX_DECODE_BYTES: u64 = 128 * 1024 * 1024;
/// Decoder threads: two, one per core of the small box this runs on; uploads are rarely
/// simultaneous and a decode takes well under a second.
pub const DEFAULT_WORKERS: usize = 2;
/// Jobs that may wait for a worker before uploads are told "busy".
pub const DEFAULT_QUEUE: usize = 16;
/// JPEG quality of thumbnails: small files, no visible blocking at 400 px.
const THUMB_JPEG_QUALITY: u8 = 80;

/// What the pool found out about an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// Width and height as displayed, after EXIF orientation.
    pub width: u32,
    pub height: u32,
    /// The thumbnail: JPEG, or PNG when the image has transparency.
    pub thumb: Vec<u8>,
}

struct Job {
    path: PathBuf,
    reply: Sender<Option<ImageInfo>>,
}

/// A handle to the pool; cloning it shares the same workers.
#[derive(Clone)]
pub struct ImagePool {
    jobs: Sender<Job>,
}

impl ImagePool {
    /// Starts `workers` decoder threads behind a queue of `queue` waiting jobs.
    pub fn start(workers: usize, queue: usize) -> ImagePool {
        let (jobs, rx) = bounded::<Job>(queue);
        for i in 0..workers.max(1) {
            let rx = rx.clone();
            thread::Builder::new()
                .name(format!("image-{i}"))
                .spawn(move || {
                    for job in rx {
                        let path = job.path;
                        let info = catch_unwind(AssertUnwindSafe(|| analyze(&path)))
                            .unwrap_or_else(|_| {
                                log::warn!("files: an image decoder panicked");
                                None
                            });
                        let _ = job.reply.send(info);
                    }
                })
                .expect("spawn image worker");
        }
        ImagePool { jobs }
    }

    /// Measures the image at `path` and makes its thumbnail, waiting at most `wait`.
    /// `Ok(None)`: not a decodable image within the limits (or it took too long).
    pub fn analyze(&self, path: &Path, wait: Duration) -> Result<Option<ImageInfo>, FileError> {
        let (reply, answer) = bounded(1);
        let job = Job {
            path: path.to_path_buf(),
            reply,
        };
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(FileError::Busy),
            Err(TrySendError::Disconnected(_)) => return Err(FileError::Busy),
        }
        Ok(answer.recv_timeout(wait).ok().flatten())
    }
}

/// The decoder's limits: dimensions and allocation, checked before pixels are allocated.
fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    limits
}

/// Decodes one image under [`limits`], applies its orientation, and makes the thumbnail.
/// Runs on a worker; public so tests can call it directly.
pub fn analyze(path: &Path) -> Option<ImageInfo> {
    let file = std::fs::File::open(path).ok()?;
    let mut reader = ImageReader::new(BufReader::new(file))
        .with_guessed_format()
        .ok()?;
    if !matches!(
        reader.format(),
        Some(ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::Gif | ImageFormat::WebP)
    ) {
        return None;
    }
    reader.limits(limits());
    let mut decoder = reader.into_decoder().map_err(log_refusal).ok()?;
    // `into_decoder` checked the dimensions; this checks the pixel buffer before it exists.
    if decoder.total_bytes() > MAX_DECODE_BYTES {
        log::info!(
            "files: image refused: {} decoded bytes",
            decoder.total_bytes()
        );
        return None;
    }
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder)
        .map_err(log_refusal)
        .ok()?;
    img.apply_orientation(orientation);
    let (width, height) = (img.width(), img.height());
    let small = if width.max(height) > THUMB_MAX_SIDE {
        img.thumbnail(THUMB_MAX_SIDE, THUMB_MAX_SIDE)
    } else {
        img
    };
    let mut thumb = Cursor::new(Vec::new());
    if small.color().has_alpha() {
        small
            .to_rgba8()
            .write_to(&mut thumb, ImageFormat::Png)
            .ok()?;
    } else {
        let rgb = small.to_rgb8();
        let encoder =
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut thumb, THUMB_JPEG_QUALITY);
        rgb.write_with_encoder(encoder).ok()?;
    }
    Some(ImageInfo {
        width,
        height,
        thumb: thumb.into_inner(),
    })
}

fn log_refusal(e: image::ImageError) {
    log::info!("files: image not decoded: {e}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage, Rgba, RgbaImage};
    use std::fs;

    fn tmp(name: &str, bytes: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("md-images-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        fs::write(&p, bytes).unwrap();
        p
    }

    fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    fn gradient(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| Rgb([(x % 256) as u8, (y % 256) as u8, 128]))
    }

    fn dims_of(bytes: &[u8]) -> (u32, u32) {
        image::load_from_memory(bytes)
            .unwrap()
            .into_rgb8()
            .dimensions()
    }

    #[test]
    fn png_jpeg_gif_and_webp_are_measured_and_thumbnailed() {
        let img = DynamicImage::ImageRgb8(gradient(1200, 600));
        for format in [
            ImageFormat::Png,
            ImageFormat::Jpeg,
            ImageFormat::Gif,
            ImageFormat::WebP,
        ] {
            let p = tmp(&format!("g.{format:?}"), &encode(&img, format));
            let info = analyze(&p).unwrap_or_else(|| panic!("{format:?}"));
            assert_eq!((info.width, info.height), (1200, 600), "{format:?}");
            assert_eq!(dims_of(&info.thumb), (400, 200), "{format:?}");
        }
    }

    #[test]
    fn transparent_images_get_png_thumbnails() {
        let img = DynamicImage::ImageRgba8(RgbaImage::from_pixel(50, 80, Rgba([1, 2, 3, 0])));
        let info = analyze(&tmp("alpha.png", &encode(&img, ImageFormat::Png))).unwrap();
        assert!(info.thumb.starts_with(b"\x89PNG"));
        assert_eq!(dims_of(&info.thumb), (50, 80));
    }

    #[test]
    fn exif_orientation_is_applied() {
        // A 300×100 JPEG whose EXIF says "rotate 90° clockwise" (6) is shown 100×300.
        let jpeg = encode(
            &DynamicImage::ImageRgb8(gradient(300, 100)),
            ImageFormat::Jpeg,
        );
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend(crate::files::strip::minimal_exif(6));
        let mut with_exif = jpeg[..2].to_vec();
        with_exif.extend([0xFF, 0xE1]);
        with_exif.extend((app1.len() as u16 + 2).to_be_bytes());
        with_exif.extend(&app1);
        with_exif.extend(&jpeg[2..]);
        let info = analyze(&tmp("rot.jpg", &with_exif)).unwrap();
        assert_eq!((info.width, info.height), (100, 300));
        assert_eq!(dims_of(&info.thumb), (100, 300));
    }

    /// A PNG header claiming `w`×`h` pixels, with one tiny IDAT: a decompression bomb's shape.
    fn lying_png(w: u32, h: u32) -> Vec<u8> {
        let img = DynamicImage::ImageRgb8(gradient(1, 1));
        let mut png = encode(&img, ImageFormat::Png);
        png[16..20].copy_from_slice(&w.to_be_bytes());
        png[20..24].copy_from_slice(&h.to_be_bytes());
        png
    }

    #[test]
    fn bombs_truncated_and_lying_files_are_refused() {
        assert_eq!(
            analyze(&tmp("bomb.png", &lying_png(100_000, 100_000))),
            None
        );
        // Within MAX_SIDE on each side, but 16384² RGB is 768 MiB: over the allocation limit.
        assert_eq!(analyze(&tmp("wide.png", &lying_png(16_384, 16_384))), None);
        let jpeg = encode(
            &DynamicImage::ImageRgb8(gradient(640, 480)),
            ImageFormat::Jpeg,
        );
        // A JPEG cut at a quarter: decoders may fill in grey or refuse; either way no panic,
        // and any thumbnail has the declared shape.
        if let Some(info) = analyze(&tmp("cut.jpg", &jpeg[..jpeg.len() / 4])) {
            assert_eq!((info.width, info.height), (640, 480));
        }
        assert_eq!(analyze(&tmp("head.jpg", &jpeg[..40])), None);
        assert_eq!(analyze(&tmp("svg.png", b"<svg onload=alert(1)/>")), None);
        // A 10,000 × 10,000 PNG made honestly is a real encode of 300 MB of pixels, so the
        // bomb is a small IDAT whose header lies; its decode must fail fast, not allocate.
        let mut small_lie = lying_png(10_000, 1);
        small_lie.truncate(small_lie.len() - 12);
        assert_eq!(analyze(&tmp("lie.png", &small_lie)), None);
    }

    #[test]
    fn a_full_queue_is_busy() {
        // One worker and one waiting slot: of six jobs sent at once, the worker holds one,
        // the slot another, and the rest must be told "busy" at once rather than queue.
        let pool = ImagePool::start(1, 1);
        let big = DynamicImage::ImageRgb8(gradient(3000, 3000));
        let p = tmp("slow.png", &encode(&big, ImageFormat::Png));
        let results: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..6)
                .map(|_| s.spawn(|| pool.analyze(&p, Duration::from_secs(60))))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let busy = results
            .iter()
            .filter(|r| matches!(r, Err(FileError::Busy)))
            .count();
        let done = results.iter().filter(|r| matches!(r, Ok(Some(_)))).count();
        assert!(busy >= 1, "six jobs at once into one worker and one slot");
        assert_eq!(busy + done, 6);
    }
}
