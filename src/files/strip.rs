//! Personal metadata removed from JPEG and PNG, streaming, without re-encoding a pixel.
//!
//! A phone photo carries where and when it was taken (EXIF GPS, XMP, IPTC, maker notes,
//! thumbnails of the uncropped original). The contract wants it gone before the file is
//! hashed and stored, so that what is stored, served and backed up is one file. Like
//! Discord, we keep the one tag that changes how the picture looks: EXIF Orientation, written
//! back as a minimal EXIF block holding only that tag.
//!
//! Both formats are a sequence of length-prefixed segments, so each is copied or skipped
//! segment by segment with bounded memory (one segment of at most 64 KiB is held, only to read
//! the orientation). Data after the image's end marker is dropped too: phones append extra
//! images and trailers there (MPF, Samsung's), and those carry their own metadata.

use std::io::{self, BufRead, Read, Write};

use super::FileError;

/// The largest PNG `eXIf` chunk read to find the orientation; a bigger one is dropped whole.
/// The same as a JPEG segment's ceiling (its length field is 16 bits), which bounds APP1.
const MAX_EXIF_BYTES: u32 = 65_535;

/// Copies the JPEG in `r` to `w`, leaving out every APPn and COM segment except JFIF (APP0),
/// the ICC colour profile (APP2) and Adobe's colour transform (APP14), which decoding needs.
/// An EXIF Orientation other than "normal" is kept as a minimal EXIF APP1.
pub fn strip_jpeg(r: &mut impl BufRead, w: &mut impl Write) -> Result<(), FileError> {
    let mut soi = [0u8; 2];
    read_header(r, &mut soi)?;
    if soi != [0xFF, 0xD8] {
        return Err(FileError::Malformed("jpeg without start marker"));
    }
    w.write_all(&soi)?;
    let mut marker = next_marker(r)?;
    loop {
        match marker {
            // End of image: anything after it is a trailer, dropped.
            0xD9 => {
                w.write_all(&[0xFF, 0xD9])?;
                return Ok(());
            }
            // Markers without a length.
            0x01 | 0xD0..=0xD7 => {
                w.write_all(&[0xFF, marker])?;
                marker = next_marker(r)?;
            }
            _ => {
                let mut len = [0u8; 2];
                read_header(r, &mut len)?;
                let len = u16::from_be_bytes(len);
                if len < 2 {
                    return Err(FileError::Malformed("jpeg segment length"));
                }
                let body = u64::from(len - 2);
                match marker {
                    // APP1: EXIF (only its orientation survives) or XMP (dropped).
                    0xE1 => {
                        let exif = read_segment(r, body)?;
                        if let Some(o) = exif.strip_prefix(b"Exif\0\0").and_then(exif_orientation) {
                            let tiff = minimal_exif(o);
                            w.write_all(&[0xFF, 0xE1])?;
                            w.write_all(&(2 + 6 + tiff.len() as u16).to_be_bytes())?;
                            w.write_all(b"Exif\0\0")?;
                            w.write_all(&tiff)?;
                        }
                    }
                    // APP2: the ICC colour profile is kept; the MPF index of appended images
                    // (and FlashPix data) is not.
                    0xE2 => {
                        let app2 = read_segment(r, body)?;
                        if app2.starts_with(b"ICC_PROFILE\0") {
                            w.write_all(&[0xFF, marker])?;
                            w.write_all(&len.to_be_bytes())?;
                            w.write_all(&app2)?;
                        }
                    }
                    // Other APPn (IPTC, maker data, …) and comments. APP0 (JFIF) and APP14
                    // (Adobe's colour transform) are needed to decode and are kept below.
                    0xE3..=0xED | 0xEF | 0xFE => skip_exact(r, body)?,
                    _ => {
                        w.write_all(&[0xFF, marker])?;
                        w.write_all(&len.to_be_bytes())?;
                        copy_exact(r, w, body)?;
                    }
                }
                marker = if marker != 0xDA {
                    next_marker(r)?
                } else if let Some(next) = copy_entropy_data(r, w)? {
                    next
                } else {
                    // The scan data ran to the end of the file: a truncated JPEG. What is
                    // there is kept (it is stored as a plain file if it does not decode).
                    return Ok(());
                };
            }
        }
    }
}

/// Reads up to the next marker: skips fill bytes and returns the marker code.
fn next_marker(r: &mut impl BufRead) -> Result<u8, FileError> {
    let mut b = [0u8; 1];
    read_header(r, &mut b)?;
    if b[0] != 0xFF {
        return Err(FileError::Malformed("jpeg marker expected"));
    }
    while b[0] == 0xFF {
        read_header(r, &mut b)?;
    }
    Ok(b[0])
}

/// Copies entropy-coded scan data up to the next real marker, which it returns (`None` at the
/// end of the file). Inside scan data a 0xFF byte is followed by 0x00 (a stuffed byte) or a
/// restart marker, which belong to the data.
fn copy_entropy_data(r: &mut impl BufRead, w: &mut impl Write) -> Result<Option<u8>, FileError> {
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(None);
        }
        let Some(pos) = buf.iter().position(|&b| b == 0xFF) else {
            let n = buf.len();
            w.write_all(buf)?;
            r.consume(n);
            continue;
        };
        w.write_all(&buf[..pos])?;
        r.consume(pos + 1);
        let mut next = [0xFFu8; 1];
        while next[0] == 0xFF {
            if r.read(&mut next)? == 0 {
                w.write_all(&[0xFF])?;
                return Ok(None);
            }
        }
        match next[0] {
            0x00 | 0xD0..=0xD7 => w.write_all(&[0xFF, next[0]])?,
            marker => return Ok(Some(marker)),
        }
    }
}

/// Copies the PNG in `r` to `w` without its text (`tEXt`, `zTXt`, `iTXt`), time (`tIME`) and
/// EXIF (`eXIf`) chunks; an EXIF orientation other than "normal" is kept as a minimal `eXIf`.
/// A file cut short keeps what is there (it then fails to decode and is stored as a plain file).
pub fn strip_png(r: &mut impl BufRead, w: &mut impl Write) -> Result<(), FileError> {
    let mut sig = [0u8; 8];
    read_header(r, &mut sig)?;
    if &sig != b"\x89PNG\r\n\x1a\n" {
        return Err(FileError::Malformed("png without signature"));
    }
    w.write_all(&sig)?;
    loop {
        let mut head = [0u8; 8];
        match read_header(r, &mut head) {
            Ok(()) => {}
            Err(FileError::Malformed(_)) => return Ok(()),
            Err(e) => return Err(e),
        }
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let kind: [u8; 4] = [head[4], head[5], head[6], head[7]];
        // PNG: lengths are below 2^31 and chunk types are four ASCII letters.
        if len > i32::MAX as u32 || !kind.iter().all(u8::is_ascii_alphabetic) {
            return Err(FileError::Malformed("png chunk header"));
        }
        let body = u64::from(len) + 4; // data, then CRC
        match &kind {
            b"tEXt" | b"zTXt" | b"iTXt" | b"tIME" => skip_exact(r, body)?,
            b"eXIf" if len <= MAX_EXIF_BYTES => {
                let mut exif = vec![0u8; len as usize];
                read_header(r, &mut exif)?;
                skip_exact(r, 4)?;
                if let Some(o) = exif_orientation(&exif) {
                    let tiff = minimal_exif(o);
                    w.write_all(&(tiff.len() as u32).to_be_bytes())?;
                    let mut crc = Crc32::new();
                    crc.update(b"eXIf");
                    crc.update(&tiff);
                    w.write_all(b"eXIf")?;
                    w.write_all(&tiff)?;
                    w.write_all(&crc.finish().to_be_bytes())?;
                }
            }
            b"eXIf" => skip_exact(r, body)?,
            _ => {
                w.write_all(&head)?;
                copy_exact(r, w, body)?;
                if &kind == b"IEND" {
                    return Ok(());
                }
            }
        }
    }
}

/// The EXIF Orientation (tag 0x0112 in IFD0) of a TIFF-structured EXIF block, when it is one
/// of the seven values that change the picture (2–8).
pub fn exif_orientation(tiff: &[u8]) -> Option<u16> {
    let big = match tiff.get(..4)? {
        b"MM\0*" => true,
        b"II*\0" => false,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b: [u8; 2] = tiff.get(at..at + 2)?.try_into().ok()?;
        Some(if big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b: [u8; 4] = tiff.get(at..at + 4)?.try_into().ok()?;
        Some(if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    };
    let ifd = u32_at(4)? as usize;
    let count = u16_at(ifd)? as usize;
    (0..count).find_map(|i| {
        let entry = ifd + 2 + 12 * i;
        // Tag 0x0112, type SHORT (3), count 1: the value sits in the entry itself.
        if u16_at(entry)? == 0x0112 && u16_at(entry + 2)? == 3 && u32_at(entry + 4)? == 1 {
            u16_at(entry + 8).filter(|o| (2..=8).contains(o))
        } else {
            None
        }
    })
}

/// A big-endian TIFF block whose IFD0 holds only Orientation.
pub fn minimal_exif(orientation: u16) -> [u8; 26] {
    let mut t = [0u8; 26];
    t[..8].copy_from_slice(b"MM\0*\0\0\0\x08"); // byte order, magic, IFD0 at offset 8
    t[8..10].copy_from_slice(&1u16.to_be_bytes()); // one entry
    t[10..12].copy_from_slice(&0x0112u16.to_be_bytes());
    t[12..14].copy_from_slice(&3u16.to_be_bytes()); // SHORT
    t[14..18].copy_from_slice(&1u32.to_be_bytes()); // count
    t[18..20].copy_from_slice(&orientation.to_be_bytes());
    // t[20..22] padding of the value field, t[22..26] "no next IFD": zero.
    t
}

/// Fills `buf` exactly; a file that ends first is malformed (its structure promised more).
fn read_header(r: &mut impl Read, buf: &mut [u8]) -> Result<(), FileError> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => FileError::Malformed("file ends inside a header"),
        _ => FileError::Io(e),
    })
}

/// A whole segment body (at most 64 KiB: JPEG lengths are 16 bits).
fn read_segment(r: &mut impl Read, body: u64) -> Result<Vec<u8>, FileError> {
    let mut buf = vec![0u8; body as usize];
    read_header(r, &mut buf)?;
    Ok(buf)
}

/// Copies `n` bytes; stops quietly at the end of the file (a truncated image keeps what it has).
fn copy_exact(r: &mut impl Read, w: &mut impl Write, n: u64) -> Result<(), FileError> {
    io::copy(&mut r.take(n), w)?;
    Ok(())
}

fn skip_exact(r: &mut impl Read, n: u64) -> Result<(), FileError> {
    io::copy(&mut r.take(n), &mut io::sink())?;
    Ok(())
}

/// CRC-32 (ISO 3309, as PNG uses), bitwise: it only ever covers the 30-byte `eXIf` we write.
struct Crc32(u32);

impl Crc32 {
    fn new() -> Self {
        Crc32(0xFFFF_FFFF)
    }
    fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u32::from(b);
            for _ in 0..8 {
                self.0 = if self.0 & 1 == 1 {
                    (self.0 >> 1) ^ 0xEDB8_8320
                } else {
                    self.0 >> 1
                };
            }
        }
    }
    fn finish(self) -> u32 {
        !self.0
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A little-endian EXIF block with Orientation and a GPS IFD pointer plus a fake
    /// "GPS" payload, like a phone writes.
    pub(crate) fn phone_exif(orientation: u16) -> Vec<u8> {
        let mut t = b"II*\0\x08\0\0\0".to_vec();
        t.extend_from_slice(&2u16.to_le_bytes());
        // Orientation
        t.extend_from_slice(&0x0112u16.to_le_bytes());
        t.extend_from_slice(&3u16.to_le_bytes());
        t.extend_from_slice(&1u32.to_le_bytes());
        t.extend_from_slice(&orientation.to_le_bytes());
        t.extend_from_slice(&[0, 0]);
        // GPSInfo IFD pointer, to offset 38
        t.extend_from_slice(&0x8825u16.to_le_bytes());
        t.extend_from_slice(&4u16.to_le_bytes());
        t.extend_from_slice(&1u32.to_le_bytes());
        t.extend_from_slice(&38u32.to_le_bytes());
        t.extend_from_slice(&0u32.to_le_bytes());
        t.extend_from_slice(b"GPS 48.8584N 2.2945E SECRET-PLACE");
        t
    }

    fn segment(marker: u8, body: &[u8]) -> Vec<u8> {
        let mut s = vec![0xFF, marker];
        s.extend_from_slice(&(body.len() as u16 + 2).to_be_bytes());
        s.extend_from_slice(body);
        s
    }

    fn strip_jpeg_bytes(input: &[u8]) -> Result<Vec<u8>, FileError> {
        let mut out = Vec::new();
        strip_jpeg(&mut io::BufReader::with_capacity(7, input), &mut out)?;
        Ok(out)
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn jpeg_loses_exif_xmp_and_comments_but_keeps_orientation_and_pixels() {
        let mut exif = b"Exif\0\0".to_vec();
        exif.extend(phone_exif(6));
        let scan = [0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD3, 0x56]; // stuffed byte and a restart
        let mut jpeg = vec![0xFF, 0xD8];
        jpeg.extend(segment(0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"));
        jpeg.extend(segment(0xE1, &exif));
        jpeg.extend(segment(
            0xE1,
            b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta>GPS</x:xmpmeta>",
        ));
        jpeg.extend(segment(0xED, b"Photoshop 3.0\0IPTC city"));
        jpeg.extend(segment(0xE2, b"MPF\0index"));
        jpeg.extend(segment(0xE2, b"ICC_PROFILE\0\x01\x01profile"));
        jpeg.extend(segment(0xFE, b"a comment"));
        jpeg.extend(segment(0xDB, &[0u8; 65]));
        jpeg.extend(segment(0xDA, &[1, 2, 3]));
        jpeg.extend(scan);
        jpeg.extend([0xFF, 0xD9]);
        jpeg.extend(b"SEFH trailer with GPS");

        let out = strip_jpeg_bytes(&jpeg).unwrap();
        for secret in [
            &b"SECRET-PLACE"[..],
            b"xmpmeta",
            b"IPTC",
            b"MPF",
            b"comment",
            b"SEFH",
        ] {
            assert!(
                !contains(&out, secret),
                "{}",
                String::from_utf8_lossy(secret)
            );
        }
        assert!(contains(&out, b"JFIF"));
        assert!(contains(&out, b"ICC_PROFILE"));
        assert!(out.ends_with(&[&scan[..], &[0xFF, 0xD9]].concat()));
        // The orientation survives as a minimal EXIF block.
        let mut expected = b"Exif\0\0".to_vec();
        expected.extend(minimal_exif(6));
        assert!(contains(&out, &segment(0xE1, &expected)));
        assert_eq!(exif_orientation(&minimal_exif(6)), Some(6));
    }

    #[test]
    fn jpeg_with_normal_orientation_keeps_no_exif_at_all() {
        let mut exif = b"Exif\0\0".to_vec();
        exif.extend(phone_exif(1));
        let mut jpeg = vec![0xFF, 0xD8];
        jpeg.extend(segment(0xE1, &exif));
        jpeg.extend(segment(0xDA, &[0]));
        jpeg.extend([9, 9, 0xFF, 0xD9]);
        let out = strip_jpeg_bytes(&jpeg).unwrap();
        assert_eq!(
            out,
            [&[0xFF, 0xD8][..], &segment(0xDA, &[0]), &[9, 9, 0xFF, 0xD9]].concat()
        );
    }

    #[test]
    fn truncated_scan_data_is_kept_but_a_truncated_header_is_refused() {
        let mut jpeg = vec![0xFF, 0xD8];
        jpeg.extend(segment(0xDA, &[0]));
        jpeg.extend([1, 2, 3]);
        assert_eq!(strip_jpeg_bytes(&jpeg).unwrap(), jpeg);

        let mut cut = vec![0xFF, 0xD8];
        cut.extend(&segment(0xE1, b"Exif\0\0lots of gps here")[..10]);
        assert!(matches!(
            strip_jpeg_bytes(&cut),
            Err(FileError::Malformed(_))
        ));
        assert!(matches!(
            strip_jpeg_bytes(b"\xFF\xD8junk"),
            Err(FileError::Malformed(_))
        ));
    }

    fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut c = (data.len() as u32).to_be_bytes().to_vec();
        c.extend_from_slice(kind);
        c.extend_from_slice(data);
        let mut crc = Crc32::new();
        crc.update(kind);
        crc.update(data);
        c.extend_from_slice(&crc.finish().to_be_bytes());
        c
    }

    #[test]
    fn png_loses_text_time_and_exif_but_keeps_orientation() {
        let ihdr = chunk(b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0]);
        let idat = chunk(b"IDAT", b"pixels");
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend(&ihdr);
        png.extend(chunk(b"tEXt", b"Author\0Alice Secret"));
        png.extend(chunk(b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0GPS"));
        png.extend(chunk(b"zTXt", b"Comment\0\0zz"));
        png.extend(chunk(b"tIME", &[7, 234, 12, 1, 10, 0, 0]));
        png.extend(chunk(b"eXIf", &phone_exif(8)));
        png.extend(&idat);
        png.extend(chunk(b"IEND", b""));
        png.extend(b"trailing secret");

        let mut out = Vec::new();
        strip_png(&mut io::BufReader::with_capacity(5, &png[..]), &mut out).unwrap();
        let expected = [
            &b"\x89PNG\r\n\x1a\n"[..],
            &ihdr,
            &chunk(b"eXIf", &minimal_exif(8)),
            &idat,
            &chunk(b"IEND", b""),
        ]
        .concat();
        assert_eq!(out, expected);
    }

    #[test]
    fn crc32_matches_the_reference_value() {
        let mut c = Crc32::new();
        c.update(b"123456789");
        assert_eq!(c.finish(), 0xCBF4_3926);
    }

    #[test]
    fn a_png_with_a_lying_chunk_header_is_refused() {
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend([0xFF, 0xFF, 0xFF, 0xFF]);
        png.extend(b"IDAT");
        let mut out = Vec::new();
        let got = strip_png(&mut io::BufReader::new(&png[..]), &mut out);
        assert!(matches!(got, Err(FileError::Malformed(_))));
    }
}
