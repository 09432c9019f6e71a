//! Files and images (API.md "Files and images") against the real server: uploads streamed and
//! fetched back byte-identical, image dimensions and thumbnails, metadata stripped, hostile
//! files, the limits, attaching, who may fetch, deleting, search, avatars and a restart.
//! Every fixture is made here (encoded with the `image` crate or built by hand).

mod common;

use std::io::{Cursor, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use common::{HttpResponse, Server};
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use serde_json::{json, Value};

/// POSTs `bytes` to `/api/attachments?filename=<name>` (the name percent-encoded here).
fn upload(s: &Server, token: &str, name: &str, content_type: &str, bytes: &[u8]) -> HttpResponse {
    let path = format!("/api/attachments?filename={}", pct(name));
    send_body(s, "POST", &path, token, content_type, bytes)
}

fn send_body(
    s: &Server,
    method: &str,
    path: &str,
    token: &str,
    content_type: &str,
    bytes: &[u8],
) -> HttpResponse {
    let mut raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        s.addr,
        bytes.len()
    )
    .into_bytes();
    raw.extend_from_slice(bytes);
    s.raw(&raw)
}

/// Uploads and returns the attachment object (asserting 201).
fn uploaded(s: &Server, token: &str, name: &str, bytes: &[u8]) -> Value {
    let r = upload(s, token, name, "application/octet-stream", bytes);
    assert_eq!(r.status, 201, "upload {name}: {}", r.text());
    r.json()["attachment"].clone()
}

fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn get(s: &Server, token: &str, url: &str, extra: &[(&str, &str)]) -> HttpResponse {
    let auth = format!("Bearer {token}");
    let mut headers = vec![("Authorization", auth.as_str())];
    headers.extend_from_slice(extra);
    s.request("GET", url, &headers, None)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

fn picture(w: u32, h: u32) -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
        Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    }))
}

/// A phone-style EXIF APP1: Orientation, and a GPS IFD holding a recognisable latitude tag.
fn exif_app1(orientation: u16) -> Vec<u8> {
    let mut t = b"II*\0\x08\0\0\0".to_vec();
    t.extend(2u16.to_le_bytes());
    t.extend(0x0112u16.to_le_bytes()); // Orientation, SHORT, 1
    t.extend(3u16.to_le_bytes());
    t.extend(1u32.to_le_bytes());
    t.extend(orientation.to_le_bytes());
    t.extend([0, 0]);
    t.extend(0x8825u16.to_le_bytes()); // GPSInfo IFD at offset 38
    t.extend(4u16.to_le_bytes());
    t.extend(1u32.to_le_bytes());
    t.extend(38u32.to_le_bytes());
    t.extend(0u32.to_le_bytes());
    // GPS IFD: one entry, GPSLatitudeRef "N", then a marker string we look for.
    t.extend(1u16.to_le_bytes());
    t.extend(0x0001u16.to_le_bytes());
    t.extend(2u16.to_le_bytes());
    t.extend(2u32.to_le_bytes());
    t.extend(b"N\0\0\0");
    t.extend(0u32.to_le_bytes());
    t.extend(b"GPS-SECRET-48.8584N-2.2945E");
    let mut body = b"Exif\0\0".to_vec();
    body.extend(t);
    let mut seg = vec![0xFF, 0xE1];
    seg.extend((body.len() as u16 + 2).to_be_bytes());
    seg.extend(body);
    seg
}

/// A JPEG of `w`×`h` whose EXIF says `orientation` and carries GPS.
fn phone_jpeg(w: u32, h: u32, orientation: u16) -> Vec<u8> {
    let jpeg = encode(&picture(w, h), ImageFormat::Jpeg);
    let mut out = jpeg[..2].to_vec();
    out.extend(exif_app1(orientation));
    out.extend(&jpeg[2..]);
    out
}

fn files_on_disk(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| {
            if e.path().is_dir() {
                files_on_disk(&e.path())
            } else {
                1
            }
        })
        .sum()
}

fn assert_healthy(s: &Server) {
    let r = s.request("GET", "/healthz", &[], None);
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "ok"),
        "server still up"
    );
}

#[test]
fn a_multi_megabyte_file_round_trips_byte_identical_with_safe_headers() {
    let s = Server::start(&[]);
    let alice = s.register("alice");
    let data: Vec<u8> = (0..6_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let a = uploaded(&s, &alice, "backup.tar", &data);
    assert_eq!(a["filename"], "backup.tar");
    assert_eq!(a["size"], data.len());
    assert_eq!(a["content_type"], "application/octet-stream");
    assert!(a["thumb_url"].is_null() && a["width"].is_null() && a["height"].is_null());
    assert!(a["id"].as_str().unwrap().len() >= 32, "opaque id: {a}");

    let url = a["url"].as_str().unwrap();
    let r = get(&s, &alice, url, &[]);
    assert_eq!(r.status, 200);
    assert!(
        r.body == data,
        "byte-identical ({} bytes back)",
        r.body.len()
    );
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert!(r
        .header("content-disposition")
        .unwrap()
        .starts_with("attachment"));
    assert!(r
        .header("content-security-policy")
        .unwrap()
        .contains("sandbox"));
    assert!(r.header("cache-control").unwrap().contains("immutable"));
    let etag = r.header("etag").unwrap().to_string();

    let r = get(&s, &alice, url, &[("Range", "bytes=1000-1999")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some("bytes 1000-1999/6000000"));
    assert_eq!(r.body, &data[1000..2000]);
    let r = get(&s, &alice, url, &[("Range", "bytes=-10")]);
    assert_eq!(
        (r.status, r.body.as_slice()),
        (206, &data[data.len() - 10..])
    );
    let r = get(&s, &alice, url, &[("Range", "bytes=6000000-")]);
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */6000000"));
    let r = get(&s, &alice, url, &[("If-None-Match", &etag)]);
    assert_eq!((r.status, r.body.len()), (304, 0));

    // Nothing half-written is left behind, and the same bytes are stored once.
    uploaded(&s, &alice, "again.tar", &data);
    assert_eq!(files_on_disk(&s.data_dir.join("files/tmp")), 0);
    assert_eq!(files_on_disk(&s.data_dir.join("files/blobs")), 1);
}

#[test]
fn png_jpeg_gif_and_webp_get_dimensions_and_small_thumbnails() {
    let s = Server::start(&[]);
    let alice = s.register("alice");
    let img = picture(1000, 500);
    for (format, ct) in [
        (ImageFormat::Png, "image/png"),
        (ImageFormat::Jpeg, "image/jpeg"),
        (ImageFormat::Gif, "image/gif"),
        (ImageFormat::WebP, "image/webp"),
    ] {
        let a = uploaded(
            &s,
            &alice,
            &format!("pic.{format:?}"),
            &encode(&img, format),
        );
        assert_eq!(
            (a["width"].as_u64(), a["height"].as_u64()),
            (Some(1000), Some(500)),
            "{a}"
        );
        assert_eq!(a["content_type"], ct);
        let r = get(&s, &alice, a["url"].as_str().unwrap(), &[]);
        assert_eq!(r.header("content-type"), Some(ct));
        assert!(r
            .header("content-disposition")
            .unwrap()
            .starts_with("inline"));
        let t = get(&s, &alice, a["thumb_url"].as_str().unwrap(), &[]);
        assert_eq!(t.status, 200, "{format:?} thumb");
        assert_eq!(t.header("x-content-type-options"), Some("nosniff"));
        let thumb = image::load_from_memory(&t.body).unwrap();
        assert_eq!((thumb.width(), thumb.height()), (400, 200), "{format:?}");
    }
}

#[test]
fn exif_gps_is_gone_from_the_served_jpeg_and_orientation_is_kept() {
    let s = Server::start(&[]);
    let alice = s.register("alice");
    let photo = phone_jpeg(600, 300, 6);
    assert!(contains(&photo, b"GPS-SECRET"));
    let a = uploaded(&s, &alice, "IMG_0001.jpg", &photo);
    // Orientation 6 turns the 600×300 sensor image upright: 300×600 as shown.
    assert_eq!(
        (a["width"].as_u64(), a["height"].as_u64()),
        (Some(300), Some(600))
    );
    let r = get(&s, &alice, a["url"].as_str().unwrap(), &[]);
    assert!(!contains(&r.body, b"GPS-SECRET"), "GPS removed");
    assert_eq!(
        a["size"],
        r.body.len(),
        "size is that of the stored, stripped file"
    );
    // The stored file still turns the same way, and is still the same picture.
    let mut reader = image::ImageReader::new(Cursor::new(r.body.clone()))
        .with_guessed_format()
        .unwrap()
        .into_decoder()
        .unwrap();
    use image::ImageDecoder;
    assert_eq!(
        reader.orientation().unwrap(),
        image::metadata::Orientation::Rotate90
    );
    let t = get(&s, &alice, a["thumb_url"].as_str().unwrap(), &[]);
    let thumb = image::load_from_memory(&t.body).unwrap();
    assert_eq!((thumb.width(), thumb.height()), (200, 400));
    // What is stored on disk is what is served.
    let on_disk = std::fs::read_dir(s.data_dir.join("files/blobs"))
        .unwrap()
        .flatten()
        .flat_map(|d| std::fs::read_dir(d.path()).unwrap().flatten())
        .map(|f| std::fs::read(f.path()).unwrap())
        .collect::<Vec<_>>();
    assert_eq!(on_disk, vec![r.body]);
}

#[test]
fn png_text_chunks_are_removed() {
    let s = Server::start(&[]);
    let alice = s.register("alice");
    let png = encode(&picture(20, 10), ImageFormat::Png);
    // tEXt after IHDR (8-byte signature + 25-byte IHDR chunk).
    let text = b"Comment\0taken at home, 12 Secret Street";
    let mut chunk = (text.len() as u32).to_be_bytes().to_vec();
    chunk.extend(b"tEXt");
    chunk.extend(text);
    chunk.extend([0, 0, 0, 0]); // the CRC is not checked by the stripper: the chunk goes
    let mut with_text = png[..33].to_vec();
    with_text.extend(chunk);
    with_text.extend(&png[33..]);
    let a = uploaded(&s, &alice, "map.png", &with_text);
    assert_eq!(a["width"], 20);
    let r = get(&s, &alice, a["url"].as_str().unwrap(), &[]);
    assert!(!contains(&r.body, b"Secret Street"));
    assert_eq!(r.body, png, "exactly the original PNG without the chunk");
}

/// A PNG whose header declares `w`×`h` (the one IDAT is for a 1×1 picture).
fn lying_png(w: u32, h: u32) -> Vec<u8> {
    let mut png = encode(&picture(1, 1), ImageFormat::Png);
    png[16..20].copy_from_slice(&w.to_be_bytes());
    png[20..24].copy_from_slice(&h.to_be_bytes());
    png
}

#[test]
fn hostile_files_are_never_served_inline_as_pages_and_the_server_stays_up() {
    let s = Server::start(&[]);
    let alice = s.register("alice");

    // A decompression bomb's header: refused by the decoder, kept as a plain file.
    let bomb = uploaded(&s, &alice, "bomb.png", &lying_png(100_000, 100_000));
    assert!(
        bomb["thumb_url"].is_null() && bomb["width"].is_null(),
        "{bomb}"
    );
    assert_eq!(bomb["content_type"], "application/octet-stream");

    // A truncated JPEG: stored, and no thumbnail claims more than it has.
    let jpeg = encode(&picture(800, 600), ImageFormat::Jpeg);
    let cut = uploaded(&s, &alice, "cut.jpg", &jpeg[..jpeg.len() / 3]);
    if !cut["width"].is_null() {
        assert_eq!(
            (cut["width"].as_u64(), cut["height"].as_u64()),
            (Some(800), Some(600))
        );
    }

    // An HTML page named cat.png, declared image/png.
    let html = b"<!DOCTYPE html><html><script>alert(document.cookie)</script></html>";
    let r = upload(&s, &alice, "cat.png", "image/png", html);
    assert_eq!(r.status, 201, "{}", r.text());
    let cat = &r.json()["attachment"];
    assert_eq!(cat["content_type"], "application/octet-stream");
    assert!(cat["thumb_url"].is_null());

    // An SVG with a script, and a GIF/HTML polyglot.
    let svg = uploaded(
        &s,
        &alice,
        "logo.svg",
        b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"><script>alert(2)</script></svg>",
    );
    let mut poly = encode(&picture(4, 4), ImageFormat::Gif);
    poly.extend(b"<html><script>alert(3)</script></html>");
    let poly = uploaded(&s, &alice, "poly.gif.html", &poly);

    for a in [&bomb, cat, &svg, &poly] {
        let r = get(&s, &alice, a["url"].as_str().unwrap(), &[]);
        assert_eq!(r.status, 200);
        let ct = r.header("content-type").unwrap();
        assert!(
            !ct.contains("html") && !ct.contains("svg") && !ct.contains("xml"),
            "{ct}"
        );
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert!(r
            .header("content-security-policy")
            .unwrap()
            .contains("sandbox"));
        if ct == "application/octet-stream" {
            assert!(r
                .header("content-disposition")
                .unwrap()
                .starts_with("attachment"));
        } else {
            assert_eq!(ct, "image/gif", "only the real GIF is inline");
        }
    }

    // Names: path parts, backslashes, NUL, an RTL override, 300 characters.
    for (raw, want) in [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\win.ini", "win.ini"),
        ("nul\0byte.txt", "nulbyte.txt"),
        ("invoice\u{202E}fdp.exe", "invoicefdp.exe"),
    ] {
        let a = uploaded(&s, &alice, raw, b"name test");
        assert_eq!(a["filename"], want, "{raw:?}");
    }
    let long = uploaded(&s, &alice, &"a".repeat(300), b"long name");
    assert_eq!(long["filename"].as_str().unwrap().len(), 128);
    for bad in ["", "../", "\u{202E}"] {
        let r = upload(&s, &alice, bad, "text/plain", b"x");
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (400, "bad_request"),
            "{bad:?}"
        );
    }
    // No name escaped the store.
    assert!(!s.data_dir.join("passwd").exists() && !s.data_dir.join("etc").exists());
    assert_healthy(&s);
}

#[test]
fn size_limits_quota_and_missing_length_refuse_and_keep_nothing() {
    let s = Server::start(&[("MAX_UPLOAD_MB", "1"), ("UPLOAD_QUOTA_MB", "2")]);
    let alice = s.register("alice");
    let big = vec![1u8; 1024 * 1024 + 1];
    let r = upload(&s, &alice, "big.bin", "application/octet-stream", &big);
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (413, "too_large"),
        "{}",
        r.text()
    );
    assert_eq!(files_on_disk(&s.data_dir.join("files")), 0, "nothing kept");

    let r = upload(&s, &alice, "empty.bin", "application/octet-stream", b"");
    assert_eq!((r.status, r.error_code().as_str()), (400, "bad_request"));
    let raw = format!(
        "POST /api/attachments?filename=x HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {alice}\r\nConnection: close\r\n\r\n",
        s.addr
    );
    let r = s.raw(raw.as_bytes());
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "bad_request"),
        "no length"
    );

    // The 1 MiB JSON limit still holds for everything else.
    let r = send_body(
        &s,
        "POST",
        "/api/channels",
        &alice,
        "application/json",
        &big,
    );
    assert_eq!(r.status, 413);

    // Quota: 2 MiB a day. Two files of 0.9 MiB fit, the third does not.
    let chunk: Vec<u8> = (0..943_718u32).map(|i| (i % 253) as u8).collect();
    uploaded(&s, &alice, "one.bin", &chunk);
    let mut other = chunk.clone();
    other[0] ^= 1;
    uploaded(&s, &alice, "two.bin", &other);
    other[1] ^= 1;
    let r = upload(&s, &alice, "three.bin", "application/octet-stream", &other);
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (429, "rate_limited"),
        "{}",
        r.text()
    );
    assert!(r.header("retry-after").is_some());
    // Someone else's quota is their own.
    let bob = s.register("bob");
    uploaded(&s, &bob, "bobs.bin", &other);
    assert_healthy(&s);
}

#[test]
fn a_fourth_upload_in_flight_gets_429() {
    let s = Server::start(&[]);
    let alice = s.register("alice");
    // Three uploads that send their head and a little of the body, then wait.
    let stalled: Vec<TcpStream> = (0..3)
        .map(|i| {
            let mut c = TcpStream::connect(s.addr).unwrap();
            let head = format!(
                "POST /api/attachments?filename=slow{i}.bin HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {alice}\r\nContent-Length: 1000000\r\n\r\npartial",
                s.addr
            );
            c.write_all(head.as_bytes()).unwrap();
            c
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let r = upload(
        &s,
        &alice,
        "fourth.bin",
        "application/octet-stream",
        b"hello",
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (429, "rate_limited"),
        "{}",
        r.text()
    );
    // Another user is not held up, and the slots come back when the uploads go away.
    let bob = s.register("bob");
    uploaded(&s, &bob, "bob.bin", b"hello");
    drop(stalled);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = upload(
            &s,
            &alice,
            "fifth.bin",
            "application/octet-stream",
            b"hello",
        );
        if r.status == 201 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "slots never freed: {}",
            r.text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        files_on_disk(&s.data_dir.join("files/tmp")),
        0,
        "the cut uploads left nothing"
    );
}

#[test]
fn messages_carry_their_attachments_and_only_own_unattached_uploads_attach() {
    let s = Server::start(&[]);
    let alice = s.register("alice");
    let bob = s.register("bob");
    let (mut a, _) = s.ws(&alice);
    let (mut b, _) = s.ws(&bob);

    let pic = uploaded(
        &s,
        &alice,
        "pic.png",
        &encode(&picture(50, 40), ImageFormat::Png),
    );
    let doc = uploaded(&s, &alice, "notes.txt", b"some notes");
    let bobs = uploaded(&s, &bob, "bobs.txt", b"bob's");

    // Before it is attached, only the uploader may fetch it; without a session nobody may.
    let url = pic["url"].as_str().unwrap();
    assert_eq!(get(&s, &bob, url, &[]).status, 404);
    assert_eq!(s.request("GET", url, &[], None).status, 401);
    assert_eq!(
        get(
            &s,
            &alice,
            "/api/attachments/0123456789abcdef0123456789abcdef",
            &[]
        )
        .status,
        404
    );

    a.send(json!({"type":"send","channel":"general","content":"","attachments":[pic["id"], doc["id"]],"nonce":"n1"}));
    let m = a.recv_type("message");
    assert_eq!(m["message"]["content"], "");
    assert_eq!(m["message"]["attachments"], json!([pic, doc]));
    let seen = b.recv_type("message");
    assert_eq!(seen["message"]["attachments"], json!([pic, doc]));
    // Now bob can read it, with its thumbnail.
    assert_eq!(get(&s, &bob, url, &[]).status, 200);
    assert_eq!(
        get(&s, &bob, pic["thumb_url"].as_str().unwrap(), &[]).status,
        200
    );

    // A retry with the same nonce gives the stored message back, attachments included.
    a.send(json!({"type":"send","channel":"general","content":"","attachments":[pic["id"]],"nonce":"n1"}));
    assert_eq!(
        a.recv_type("message")["message"]["attachments"],
        json!([pic, doc])
    );

    let refused = |c: &mut common::WsClient, ids: Value| {
        c.send(json!({"type":"send","channel":"general","content":"x","attachments":ids}));
        let e = c.recv_type("error");
        assert_eq!(e["code"], "bad_request", "{e}");
    };
    refused(&mut a, json!([pic["id"]])); // already attached
    refused(&mut a, json!([bobs["id"]])); // someone else's
    refused(&mut a, json!(["no-such-id"]));
    let many: Vec<Value> = (0..11)
        .map(|i| {
            uploaded(
                &s,
                &alice,
                &format!("f{i}.txt"),
                format!("file {i}").as_bytes(),
            )["id"]
                .clone()
        })
        .collect();
    refused(&mut a, json!(many));
    // Refused sends stored nothing: bob's upload is still his to attach.
    b.send(json!({"type":"send","channel":"general","content":"mine","attachments":[bobs["id"]]}));
    assert_eq!(
        b.recv_type("message")["message"]["attachments"][0]["id"],
        bobs["id"]
    );

    // History and search show attachments; search finds the filename.
    let h = get(&s, &bob, "/api/history?channel=general", &[]).json();
    assert_eq!(h[0]["attachments"], json!([pic, doc]));
    assert_eq!(h[1]["attachments"][0]["filename"], "bobs.txt");
    let found = get(&s, &bob, "/api/search?q=notes", &[]).json();
    assert_eq!(found.as_array().unwrap().len(), 1, "{found}");
    assert_eq!(found[0]["id"], m["message"]["id"]);
    // Empty content needs attachments.
    a.send(json!({"type":"send","channel":"general","content":""}));
    assert_eq!(a.recv_type("error")["code"], "bad_request");
}

#[test]
fn deleting_a_message_deletes_its_bytes_unless_another_message_has_them() {
    let s = Server::start(&[]);
    let alice = s.register("alice");
    let (mut a, _) = s.ws(&alice);
    let one = uploaded(&s, &alice, "one.txt", b"shared content");
    let two = uploaded(&s, &alice, "two.txt", b"shared content");
    a.send(json!({"type":"send","channel":"general","content":"first","attachments":[one["id"]]}));
    let first = a.recv_type("message")["message"]["id"].clone();
    a.send(json!({"type":"send","channel":"general","content":"second","attachments":[two["id"]]}));
    let second = a.recv_type("message")["message"]["id"].clone();
    let blobs = s.data_dir.join("files/blobs");
    assert_eq!(files_on_disk(&blobs), 1);

    a.send(json!({"type":"delete","id":first}));
    a.recv_type("message_delete");
    assert_eq!(
        get(&s, &alice, one["url"].as_str().unwrap(), &[]).status,
        404
    );
    assert_eq!(
        get(&s, &alice, two["url"].as_str().unwrap(), &[]).status,
        200
    );
    assert_eq!(
        files_on_disk(&blobs),
        1,
        "the second message still has the bytes"
    );
    a.send(json!({"type":"delete","id":second}));
    a.recv_type("message_delete");
    assert_eq!(files_on_disk(&blobs), 0);
}

#[test]
fn avatars_show_on_user_objects_and_files_survive_a_restart() {
    let mut s = Server::start(&[]);
    let alice = s.register("alice");
    let bob = s.register("bob");
    let me = get(&s, &alice, "/api/me", &[]).json();
    assert!(
        me["user"]["avatar_url"].is_null() && me["user"]["display_name"].is_null(),
        "{me}"
    );
    assert!(me["user"].as_object().unwrap().contains_key("display_name"));

    let r = send_body(
        &s,
        "PUT",
        "/api/me/avatar",
        &alice,
        "text/plain",
        b"not an image",
    );
    assert_eq!((r.status, r.error_code().as_str()), (400, "bad_request"));
    let png = encode(&picture(640, 640), ImageFormat::Png);
    let r = send_body(&s, "PUT", "/api/me/avatar", &alice, "image/png", &png);
    assert_eq!(r.status, 200, "{}", r.text());
    let avatar = r.json()["user"]["avatar_url"].as_str().unwrap().to_string();
    let r = get(&s, &bob, &avatar, &[]);
    assert_eq!(r.status, 200, "any signed-in user sees an avatar");
    assert!(image::load_from_memory(&r.body).unwrap().width() <= 400);
    let users = get(&s, &bob, "/api/users", &[]).json();
    let listed = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "alice")
        .unwrap();
    assert_eq!(listed["avatar_url"], avatar.as_str());
    let (_, ready) = s.ws(&alice);
    assert_eq!(ready["user"]["avatar_url"], avatar.as_str());

    let doc = uploaded(&s, &alice, "keep.txt", b"kept across a restart");
    s.restart(true);
    let r = get(&s, &alice, doc["url"].as_str().unwrap(), &[]);
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, &b"kept across a restart"[..])
    );
    assert_eq!(get(&s, &bob, &avatar, &[]).status, 200);
}

#[test]
fn an_upload_cut_off_mid_body_leaves_no_file() {
    let s = Server::start(&[]);
    let alice = s.register("alice");
    let mut c = TcpStream::connect(s.addr).unwrap();
    let head = format!(
        "POST /api/attachments?filename=cut.bin HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {alice}\r\nContent-Length: 5000000\r\n\r\n",
        s.addr
    );
    c.write_all(head.as_bytes()).unwrap();
    c.write_all(&vec![7u8; 2_000_000]).unwrap();
    drop(c);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while files_on_disk(&s.data_dir.join("files/tmp")) > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "temporary never removed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(files_on_disk(&s.data_dir.join("files/blobs")), 0);
    assert_healthy(&s);
}

/// The server's resident memory, from /proc.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Sends one upload over a raw socket without panicking on a dead server; the status, or 0.
fn try_upload(addr: std::net::SocketAddr, token: &str, name: &str, body: &[u8]) -> u16 {
    let Ok(mut c) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else {
        return 0;
    };
    let _ = c.set_read_timeout(Some(Duration::from_secs(60)));
    let _ = c.set_write_timeout(Some(Duration::from_secs(60)));
    let head = format!(
        "POST /api/attachments?filename={name} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    if c.write_all(head.as_bytes()).is_err() || c.write_all(body).is_err() {
        return 0;
    }
    let mut out = Vec::new();
    let _ = std::io::Read::read_to_end(&mut c, &mut out);
    HttpResponse::parse(&out).status
}

#[test]
fn twenty_concurrent_uploads_keep_the_servers_memory_flat() {
    // 10 users × 2 uploads of 10 MB at once: 200 MB through the server. Streaming holds a few
    // 64 KiB buffers per upload; a server that buffered bodies would grow by 200 MB.
    let s = Server::start(&[]);
    let tokens: Vec<String> = (0..10).map(|i| s.register(&format!("user{i}"))).collect();
    let before = rss_kib(s.pid());
    assert!(before > 0, "VmRSS readable");
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let peak = {
        let (done, pid) = (done.clone(), s.pid());
        std::thread::spawn(move || {
            let mut peak = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(rss_kib(pid));
                std::thread::sleep(Duration::from_millis(20));
            }
            peak
        })
    };
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..20)
            .map(|i| {
                let (token, addr) = (tokens[i % 10].clone(), s.addr);
                scope.spawn(move || {
                    let body: Vec<u8> = (0..10_000_000u32)
                        .map(|j| (j.wrapping_mul(31).wrapping_add(i as u32 * 7) >> 3) as u8)
                        .collect();
                    try_upload(addr, &token, &format!("big{i}.bin"), &body)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak = peak.join().unwrap();
    assert!(statuses.iter().all(|&st| st == 201), "{statuses:?}");
    let growth_mib = peak.saturating_sub(before) / 1024;
    assert!(
        growth_mib < 64,
        "RSS grew {growth_mib} MiB for 200 MB of uploads (before {before} KiB, peak {peak} KiB)"
    );
}

/// `mini-discord check-db` on the server's database: its exit code and output.
fn check_db(s: &Server) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mini-discord"))
        .arg("check-db")
        .arg(s.data_dir.join("chat.db"))
        .output()
        .expect("run check-db");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
    )
}

#[test]
fn kill_9_during_uploads_leaves_no_partial_file_and_no_message_without_its_file() {
    let mut s = Server::start(&[]);
    let alice = s.register("alice");
    let (mut a, _) = s.ws(&alice);
    for i in 0..3 {
        let f = uploaded(
            &s,
            &alice,
            &format!("f{i}.bin"),
            format!("file number {i}").as_bytes(),
        );
        a.send(json!({"type":"send","channel":"general","content":"","attachments":[f["id"]]}));
        a.recv_type("message");
    }
    // Uploads still going when the process dies: two half-sent, and a thread that keeps
    // uploading.
    let stalled: Vec<TcpStream> = (0..2)
        .map(|i| {
            let mut c = TcpStream::connect(s.addr).unwrap();
            let head = format!(
                "POST /api/attachments?filename=half{i}.bin HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {alice}\r\nContent-Length: 4000000\r\n\r\n",
                s.addr
            );
            c.write_all(head.as_bytes()).unwrap();
            c.write_all(&vec![i as u8; 1_500_000]).unwrap();
            c
        })
        .collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let busy = {
        let (stop, addr, token) = (stop.clone(), s.addr, alice.clone());
        std::thread::spawn(move || {
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let body: Vec<u8> = (0..800_000u32).map(|j| (j ^ n) as u8).collect();
                if try_upload(addr, &token, &format!("busy{n}.bin"), &body) == 0 {
                    std::thread::sleep(Duration::from_millis(20));
                }
                n += 1;
            }
        })
    };
    std::thread::sleep(Duration::from_millis(700));
    let tmp = s.data_dir.join("files/tmp");
    assert!(
        files_on_disk(&tmp) > 0,
        "uploads were in flight when killed"
    );
    s.restart(true);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    busy.join().unwrap();
    drop(stalled);
    assert_eq!(files_on_disk(&tmp), 0, "temporaries swept at start");

    // Every message's every file is there, whole.
    let h = get(&s, &alice, "/api/history?channel=general", &[]).json();
    let mut seen = 0;
    for m in h.as_array().unwrap() {
        for f in m["attachments"].as_array().unwrap() {
            let r = get(&s, &alice, f["url"].as_str().unwrap(), &[]);
            assert_eq!(
                (r.status, r.body.len() as u64),
                (200, f["size"].as_u64().unwrap())
            );
            seen += 1;
        }
    }
    assert!(seen >= 3);
    assert_eq!(check_db(&s), (0, "ok\n".to_string()));

    // check-db notices a stored file whose bytes changed.
    let blob = std::fs::read_dir(s.data_dir.join("files/blobs"))
        .unwrap()
        .flatten()
        .flat_map(|d| std::fs::read_dir(d.path()).unwrap().flatten())
        .next()
        .unwrap()
        .path();
    std::fs::write(&blob, b"tampered").unwrap();
    let (code, out) = check_db(&s);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("do not match"), "{out}");
}
