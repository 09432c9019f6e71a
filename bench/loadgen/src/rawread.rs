//! `fanout --reader epoll` (the default): the fan-out's receiving sockets on one thread with
//! one level-triggered epoll, each read's frames parsed in place.
//!
//! Why: with the tokio + tungstenite reader, the load generator used 14–15 s of CPU in a
//! 15 s run of 200 msg/s × 1,000 sockets on its one pinned core (docs/PERFORMANCE.md,
//! issue 20), about 4.9 µs a frame. A saturated instrument adds its own queue to every
//! latency it reports. Here a frame costs a header parse and the same `Tally` as the tokio
//! reader; the kernel's share (one `recvmsg` per readiness, and the ACK it sends) stays.
//!
//! Each read also takes the kernel's receive timestamp (`stamp`), so that a frame's latency
//! is also counted to when its bytes reached this socket's receive queue (`kernel_p50_ms`),
//! and `read_lag_*` (the reader's clock minus the stamp, per read) says how far behind the
//! reader was.
//!
//! The sockets are opened and upgraded here too, with a hand-written HTTP/1.1 upgrade, so
//! that every byte after the response head goes through one parser (no bytes are left
//! behind in another library's buffer). The senders keep the tokio path (`fanout.rs`).

use crate::fanout::{open_each, Shared, SockStats, Tally};
use crate::stamp::{recv_stamped, stamp_receives};
use crate::util::*;
use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One upgraded socket and the bytes read past the last whole frame.
pub struct RawSock {
    sock: std::net::TcpStream,
    pending: Vec<u8>,
}

/// A whole frame: its opcode, its payload, and its length with the header.
type Frame<'a> = (u8, &'a [u8], usize);

/// One frame from the server at the start of `b`; `None` while incomplete, an error for
/// bytes this reader does not take. Server frames are never masked (RFC 6455 5.1).
fn frame(b: &[u8]) -> Option<Result<Frame<'_>, &'static str>> {
    if b.len() < 2 {
        return None;
    }
    if b[0] & 0x80 == 0 {
        return Some(Err("fragmented frame"));
    }
    if b[1] & 0x80 != 0 {
        return Some(Err("masked frame from the server"));
    }
    let (len, head) = match b[1] & 0x7f {
        126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
        127 if b.len() >= 10 => (
            u64::from_be_bytes(b[2..10].try_into().unwrap()) as usize,
            10,
        ),
        126 | 127 => return None,
        n => (n as usize, 2),
    };
    if b.len() < head + len {
        return None;
    }
    Some(Ok((b[0] & 0x0f, &b[head..head + len], head + len)))
}

/// Connects, upgrades `/ws` with the token and reads until `ready`.
async fn connect(addr: SocketAddr, src: Option<Ipv4Addr>, token: &str) -> Result<RawSock, String> {
    let mut st = tcp_connect(addr, src)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let req = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: bG9hZGdlbiByYXcgcmVhZA==\r\nSec-WebSocket-Version: 13\r\n\
         Authorization: Bearer {token}\r\n\r\n"
    );
    st.write_all(req.as_bytes())
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = st
            .read(&mut chunk)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        if n == 0 {
            return Err("closed during the handshake".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = memchr::memmem::find(&buf, b"\r\n\r\n") {
            break p + 4;
        }
        if buf.len() > 16 * 1024 {
            return Err("response head too long".into());
        }
    };
    let status = std::str::from_utf8(&buf[..head_end])
        .ok()
        .and_then(|h| h.split(' ').nth(1))
        .unwrap_or("?")
        .to_string();
    if status != "101" {
        return Err(format!("http {status}"));
    }
    buf.drain(..head_end);
    // Until `ready`: everything before it (presence, say) is not counted, as in the tokio path.
    let dl = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        while let Some(f) = frame(&buf) {
            let (op, payload, len) = f.map_err(String::from)?;
            let is_ready = op == 1 && memchr::memmem::find(payload, br#""type":"ready""#).is_some();
            if op == 8 {
                return Err("close before ready".into());
            }
            buf.drain(..len);
            if is_ready {
                let sock = st.into_std().map_err(|e| e.to_string())?;
                return Ok(RawSock { sock, pending: buf });
            }
        }
        let n = tokio::time::timeout_at(dl, st.read(&mut chunk))
            .await
            .map_err(|_| "ready timeout".to_string())?
            .map_err(|e| format!("error before ready: {e}"))?;
        if n == 0 {
            return Err("closed before ready".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Opens sockets `range` (socket i is user i % tokens.len(), source address i % src_ips), at
/// most `conc` at a time; the first `senders` would be senders (not opened here).
pub async fn open_all(
    addr: SocketAddr,
    tokens: &[String],
    range: std::ops::Range<usize>,
    src_ips: usize,
    conc: usize,
) -> (Vec<(usize, RawSock)>, HashMap<String, u64>) {
    open_each(range, conc, |i| {
        let tok = tokens[i % tokens.len()].clone();
        async move { connect(addr, src_ip(i, src_ips), &tok).await }
    })
    .await
}

/// The reading threads (`threads` of them, the sockets dealt out in turn): until `stop`,
/// each reads every socket of its share that is readable and tallies its frames. `join`
/// gives each socket's stats, in the order given.
pub fn spawn(
    socks: Vec<RawSock>,
    stop: Arc<AtomicBool>,
    shared: Arc<Shared>,
    senders: u64,
    threads: usize,
) -> Readers {
    let threads = threads.max(1);
    let total = socks.len();
    let mut shares: Vec<Vec<RawSock>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, s) in socks.into_iter().enumerate() {
        shares[i % threads].push(s);
    }
    let handles = shares
        .into_iter()
        .enumerate()
        .map(|(k, share)| {
            let (stop, shared) = (stop.clone(), shared.clone());
            std::thread::Builder::new()
                .name(format!("rawread{k}"))
                .spawn(move || run(share, &stop, &shared, senders))
                .unwrap()
        })
        .collect();
    Readers { handles, total }
}

/// The running reader threads of `spawn`.
pub struct Readers {
    handles: Vec<std::thread::JoinHandle<Vec<SockStats>>>,
    total: usize,
}

impl Readers {
    /// Waits for every thread (after `stop`); the stats in the sockets' order.
    pub fn join(self) -> Vec<SockStats> {
        let threads = self.handles.len();
        let mut out: Vec<Option<SockStats>> = (0..self.total).map(|_| None).collect();
        for (k, h) in self.handles.into_iter().enumerate() {
            for (j, st) in h
                .join()
                .expect("a raw reader thread panicked")
                .into_iter()
                .enumerate()
            {
                out[j * threads + k] = Some(st);
            }
        }
        out.into_iter()
            .map(|s| s.expect("every socket has its stats"))
            .collect()
    }
}

fn run(
    mut socks: Vec<RawSock>,
    stop: &AtomicBool,
    shared: &Shared,
    senders: u64,
) -> Vec<SockStats> {
    let mut tallies: Vec<Tally> = socks.iter().map(|_| Tally::new(None, senders)).collect();
    for s in &socks {
        if let Err(e) = stamp_receives(s.sock.as_raw_fd()) {
            eprintln!("# SO_TIMESTAMPING refused ({e}): no kernel-stamped latencies");
            break;
        }
    }
    // SAFETY: plain syscalls on descriptors this function owns (through `socks`), with
    // buffers that outlive each call.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    assert!(ep >= 0, "epoll_create1: {}", io::Error::last_os_error());
    for (i, s) in socks.iter().enumerate() {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: i as u64,
        };
        let r = unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, s.sock.as_raw_fd(), &mut ev) };
        assert!(r == 0, "epoll_ctl: {}", io::Error::last_os_error());
    }
    // Frames read before the thread started (after `ready`, in the same read).
    for (s, t) in socks.iter_mut().zip(tallies.iter_mut()) {
        if s.feed(&[], None, t, shared) {
            unsafe {
                libc::epoll_ctl(
                    ep,
                    libc::EPOLL_CTL_DEL,
                    s.sock.as_raw_fd(),
                    std::ptr::null_mut(),
                )
            };
        }
    }
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let mut scratch = vec![0u8; 256 * 1024];
    while !stop.load(Ordering::Relaxed) {
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, 20) };
        if n < 0 {
            let e = io::Error::last_os_error();
            assert!(e.kind() == io::ErrorKind::Interrupted, "epoll_wait: {e}");
            continue;
        }
        for ev in &events[..n as usize] {
            let i = ev.u64 as usize;
            let (s, t) = (&mut socks[i], &mut tallies[i]);
            let fd = s.sock.as_raw_fd();
            let ended = match recv_stamped(fd, &mut scratch) {
                Ok((0, _)) => {
                    t.st.closed = Some("eof".into());
                    true
                }
                Err(e) => match e.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => false,
                    _ => {
                        t.st.closed = Some(format!("error: {e}"));
                        true
                    }
                },
                Ok((n, stamp)) => {
                    if let Some(k) = stamp {
                        let lag = now_micros().saturating_sub(k).max(1);
                        let _ = t.st.lag.get_or_insert_with(hist).record(lag);
                    }
                    s.feed(&scratch[..n], stamp, t, shared)
                }
            };
            if ended {
                unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_DEL, fd, std::ptr::null_mut()) };
            }
        }
    }
    unsafe { libc::close(ep) };
    tallies.into_iter().map(|t| t.st).collect()
}

impl RawSock {
    /// Adds `new` to the bytes pending and tallies every whole frame; `true` when the socket
    /// has ended (`closed` says why).
    /// `stamp` is the read's kernel timestamp: a frame is whole once its last bytes are in.
    fn feed(&mut self, new: &[u8], stamp: Option<u64>, t: &mut Tally, shared: &Shared) -> bool {
        let fd = self.sock.as_raw_fd();
        if self.pending.is_empty() {
            // The usual case: whole frames straight from the read buffer, not copied.
            let (used, ended) = consume(new, stamp, fd, t, shared);
            self.pending.extend_from_slice(&new[used..]);
            ended
        } else {
            self.pending.extend_from_slice(new);
            let (used, ended) = consume(&self.pending, stamp, fd, t, shared);
            self.pending.drain(..used);
            ended
        }
    }
}

/// Tallies the whole frames at the start of `b`; returns how many bytes they took, and
/// whether the socket has ended: a close frame, or bytes that are no frame (`closed`).
fn consume(
    b: &[u8],
    stamp: Option<u64>,
    fd: RawFd,
    t: &mut Tally,
    shared: &Shared,
) -> (usize, bool) {
    let mut at = 0;
    let mut delivered = 0u64;
    let ended = loop {
        match frame(&b[at..]) {
            None => break false,
            Some(Err(e)) => {
                t.st.closed = Some(format!("error: {e}"));
                break true;
            }
            Some(Ok((op, payload, len))) => {
                at += len;
                match op {
                    1 => delivered += t.text(payload, shared, stamp) as u64,
                    8 => {
                        let code = (payload.len() >= 2)
                            .then(|| u16::from_be_bytes([payload[0], payload[1]]));
                        t.st.closed = Some(format!("close {code:?}"));
                        break true;
                    }
                    9 => pong(fd, payload),
                    _ => {}
                }
            }
        }
    };
    if delivered > 0 {
        shared.delivered.fetch_add(delivered, Ordering::Relaxed);
    }
    (at, ended)
}

/// Answers a ping (a client frame is masked; a zero mask leaves the payload as it is).
fn pong(fd: RawFd, payload: &[u8]) {
    let mut f = vec![0x8a, 0x80 | payload.len().min(125) as u8, 0, 0, 0, 0];
    f.extend_from_slice(&payload[..payload.len().min(125)]);
    // SAFETY: `f` is a live buffer of `f.len()` bytes; `fd` is an open socket.
    unsafe {
        libc::send(
            fd,
            f.as_ptr().cast(),
            f.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
}

#[cfg(test)]
mod tests {
    use super::frame;

    #[test]
    fn frames_are_cut_at_their_lengths_and_incomplete_ones_wait() {
        // A text frame of 3 bytes, then the start of a 300-byte one (16-bit length).
        let mut b = vec![0x81, 3, b'a', b'b', b'c', 0x81, 126, 1, 44];
        assert_eq!(frame(&b), Some(Ok((1, &b"abc"[..], 5))));
        assert_eq!(frame(&b[5..]), None, "header read, payload not yet");
        assert_eq!(frame(&b[5..7]), None, "16-bit length not read yet");
        b.extend(std::iter::repeat(b'x').take(300));
        let (op, payload, len) = frame(&b[5..]).unwrap().unwrap();
        assert_eq!((op, payload.len(), len), (1, 300, 304));
        // A 64-bit length, a close frame, and what this reader refuses.
        let mut big = vec![0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0];
        big.extend(std::iter::repeat(0).take(65536));
        assert_eq!(frame(&big).unwrap().unwrap().2, 65546);
        assert_eq!(frame(&[0x88, 2, 3, 232]), Some(Ok((8, &[3u8, 232][..], 4))));
        assert!(frame(&[0x01, 1, b'a']).unwrap().is_err(), "fragmented");
        assert!(
            frame(&[0x81, 0x81, 0, 0, 0, 0, b'a']).unwrap().is_err(),
            "masked"
        );
    }
}
