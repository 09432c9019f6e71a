//! What a stored file is, decided from its first bytes only, and whether it may be shown inline.
//!
//! The uploader's `Content-Type` and filename are never consulted: an HTML page named
//! `cat.png` is octet-stream. Only the types a browser renders without running anything
//! (raster images, and media for the players) are ever served inline; SVG, HTML and every
//! unknown type are `application/octet-stream` with `Content-Disposition: attachment`.

/// How many leading bytes [`sniff`] looks at (the longest signature is the WebM doctype).
pub const SNIFF_LEN: usize = 64;

/// A stored file's type, from its magic number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Png,
    Jpeg,
    Gif,
    WebP,
    Mp4,
    WebM,
    Ogg,
    Mp3,
    /// Anything else, SVG and HTML included.
    Other,
}

/// How a file is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Shown by the browser with its real type.
    Inline,
    /// `application/octet-stream` and `Content-Disposition: attachment`: saved, never rendered.
    Attachment,
}

impl Kind {
    /// The type a file of this kind is served with.
    pub fn content_type(self) -> &'static str {
        match self {
            Kind::Png => "image/png",
            Kind::Jpeg => "image/jpeg",
            Kind::Gif => "image/gif",
            Kind::WebP => "image/webp",
            Kind::Mp4 => "video/mp4",
            Kind::WebM => "video/webm",
            Kind::Ogg => "audio/ogg",
            Kind::Mp3 => "audio/mpeg",
            Kind::Other => "application/octet-stream",
        }
    }

    /// The kind a stored content type names (attachment rows keep the type as text).
    pub fn from_content_type(content_type: &str) -> Kind {
        [
            Kind::Png,
            Kind::Jpeg,
            Kind::Gif,
            Kind::WebP,
            Kind::Mp4,
            Kind::WebM,
            Kind::Ogg,
            Kind::Mp3,
        ]
        .into_iter()
        .find(|k| k.content_type() == content_type)
        .unwrap_or(Kind::Other)
    }

    /// Raster images the image pool can decode for dimensions and a thumbnail.
    pub fn is_image(self) -> bool {
        matches!(self, Kind::Png | Kind::Jpeg | Kind::Gif | Kind::WebP)
    }

    /// The one rule for inline versus attachment (API.md: only PNG, JPEG, GIF, WebP and the
    /// players' MP4/WebM/Ogg/MP3 inline, with their real type; everything else attachment).
    pub fn disposition(self) -> Disposition {
        match self {
            Kind::Other => Disposition::Attachment,
            _ => Disposition::Inline,
        }
    }
}

/// The kind of a file from its first bytes (pass at least [`SNIFF_LEN`] when the file has them).
pub fn sniff(head: &[u8]) -> Kind {
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Kind::Png
    } else if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Kind::Jpeg
    } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        Kind::Gif
    } else if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        Kind::WebP
    } else if is_mp4(head) {
        Kind::Mp4
    } else if head.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) && contains(head, b"webm") {
        // An EBML header whose DocType is "webm"; other Matroska files are not for players.
        Kind::WebM
    } else if head.starts_with(b"OggS") {
        Kind::Ogg
    } else if is_mp3(head) {
        Kind::Mp3
    } else {
        Kind::Other
    }
}

/// An ISO base media file whose major brand is one of the MP4 family browsers play
/// (HEIC and QuickTime share the `ftyp` box but are not for the `<video>` player).
fn is_mp4(head: &[u8]) -> bool {
    const BRANDS: [&[u8; 4]; 10] = [
        b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"M4V ", b"dash",
    ];
    head.len() >= 12 && &head[4..8] == b"ftyp" && BRANDS.iter().any(|b| &head[8..12] == *b)
}

/// An ID3v2 tag, or an MPEG-1/2 Layer III frame header (11 sync bits, a valid version, layer 3).
fn is_mp3(head: &[u8]) -> bool {
    if head.starts_with(b"ID3") {
        return true;
    }
    head.len() >= 2 && head[0] == 0xFF && head[1] & 0xE0 == 0xE0 && {
        let version = (head[1] >> 3) & 0b11;
        let layer = (head[1] >> 1) & 0b11;
        version != 0b01 && layer == 0b01
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_numbers_decide_the_kind() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Kind::Png);
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Kind::Jpeg);
        assert_eq!(sniff(b"GIF89a\x01\0"), Kind::Gif);
        assert_eq!(sniff(b"RIFF\x10\0\0\0WEBPVP8 "), Kind::WebP);
        assert_eq!(sniff(b"\0\0\0\x20ftypisom\0\0\x02\0"), Kind::Mp4);
        assert_eq!(
            sniff(b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm"),
            Kind::WebM
        );
        assert_eq!(sniff(b"OggS\0\x02"), Kind::Ogg);
        assert_eq!(sniff(b"ID3\x04\0"), Kind::Mp3);
        assert_eq!(sniff(&[0xFF, 0xFB, 0x90, 0x64]), Kind::Mp3);
    }

    #[test]
    fn html_svg_heic_and_matroska_are_not_inline() {
        for head in [
            &b"<!DOCTYPE html><script>alert(1)</script>"[..],
            b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script/></svg>",
            b"<?xml version=\"1.0\"?><svg/>",
            b"\0\0\0\x18ftypheic\0\0\0\0",
            b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x88matroska",
            b"",
            b"\xFF",
        ] {
            let kind = sniff(head);
            assert_eq!(kind, Kind::Other, "{head:?}");
            assert_eq!(kind.disposition(), Disposition::Attachment);
            assert_eq!(kind.content_type(), "application/octet-stream");
        }
    }

    #[test]
    fn a_gif_html_polyglot_is_a_gif_served_as_image_gif() {
        // Served as image/gif with nosniff, the browser never runs its HTML part.
        let kind = sniff(b"GIF89a<html><script>alert(1)</script>");
        assert_eq!(kind, Kind::Gif);
        assert_eq!(kind.content_type(), "image/gif");
    }

    #[test]
    fn content_type_round_trips() {
        for k in [
            Kind::Png,
            Kind::Jpeg,
            Kind::Gif,
            Kind::WebP,
            Kind::Mp4,
            Kind::Other,
        ] {
            assert_eq!(Kind::from_content_type(k.content_type()), k);
        }
        assert_eq!(Kind::from_content_type("image/svg+xml"), Kind::Other);
    }
}
