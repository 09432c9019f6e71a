//! The media server (issue 16, docs/VOICE.md "Media server mode"): a selective forwarding
//! unit for voice channels in `sfu` mode. One **media thread** owns the one UDP socket
//! (`SFU_UDP_PORT`), every peer's `str0m::Rtc` (ICE, DTLS, SRTP, RTP/RTCP; sans-IO, so
//! nothing else runs for it) and the forwarding table: who receives whose audio, camera and
//! screen share.
//!
//! It talks to the router like every other thread, over crossbeam channels carrying the
//! documented commands below: the router sends `MediaCmd`s with `try_send` into a bounded
//! queue (it never blocks), and the media thread answers with `MediaEvent`s inside
//! `router::Cmd::Media`. The rules of who is in which room stay the router's
//! (`voice/rooms.rs`); this thread only mirrors the `sfu` rooms it is told of.
//!
//! Signaling stays on `/ws/voice`: the server makes every offer (one peer connection per
//! browser, renegotiated as sources come and go), the browser only answers, so offers never
//! collide. Files: `thread.rs` (the loop, the socket, forwarding), `peer.rs` (one peer's
//! `Rtc` and what it sends and receives), `simulcast.rs` (which camera layer each receiver
//! gets, from its estimated downlink).

mod peer;
mod simulcast;
mod thread;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};

use crate::realtime::router::RouterHandle;

/// Commands queued to the media thread. Bounded: a burst of joins, answers and watches for
/// a few full rooms fits many times over; past it the router refuses (`unavailable`) rather
/// than wait.
pub const COMMAND_QUEUE: usize = 4096;
/// Rooms the media thread holds at once. Each room costs nothing until peers join; the cap
/// bounds the forwarding table (peers per room are capped by `SFU_MAX_PEERS`).
pub const MAX_ROOMS: usize = 256;

/// What the router asks of the media thread. `peer` is the `/ws/voice` connection id (its
/// decimal string is the peer id on the wire).
#[derive(Debug)]
pub enum MediaCmd {
    /// A peer joined the `sfu` room `room`: make its `Rtc` and send it the first offer
    /// (`MediaEvent::Signal`). `flags` are its (muted, video, screen) at join.
    Join {
        peer: u64,
        room: String,
        flags: MediaFlags,
    },
    /// The peer left (socket closed, joined elsewhere, removed): drop its `Rtc` and stop
    /// its tracks at everyone else.
    Leave { peer: u64 },
    /// The browser's answer to the media server's last offer.
    Answer { peer: u64, sdp: String },
    /// A browser offer: refused (the server offers; see docs/VOICE.md), kept so the router
    /// can hand every frame over and the media thread answers with one error.
    Offer { peer: u64 },
    /// A trickled ICE candidate of the browser (`a=candidate` value without the prefix).
    /// Optional: the server is ICE-lite and learns the browser's address from its checks.
    Candidate { peer: u64, candidate: String },
    /// `peer` wants (`on`) or no longer wants the screen share of `source`.
    Watch { peer: u64, source: u64, on: bool },
    /// The peer's flags changed (`state`, already checked against `speak` and `stream`).
    State { peer: u64, flags: MediaFlags },
}

impl MediaCmd {
    /// The command's name, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            MediaCmd::Join { .. } => "join",
            MediaCmd::Leave { .. } => "leave",
            MediaCmd::Answer { .. } => "answer",
            MediaCmd::Offer { .. } => "offer",
            MediaCmd::Candidate { .. } => "candidate",
            MediaCmd::Watch { .. } => "watch",
            MediaCmd::State { .. } => "state",
        }
    }
}

/// What a peer may have forwarded: muted audio is dropped, video and screen are forwarded
/// only while their flag is on (so `stream` is enforced here too: the router refuses those
/// flags without it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaFlags {
    pub muted: bool,
    pub video: bool,
    pub screen: bool,
}

/// What the media thread tells the router (inside `router::Cmd::Media`).
#[derive(Debug)]
pub enum MediaEvent {
    /// Send this JSON text (an `offer` from `"sfu"`, or an `error`) to the peer's `/ws/voice`.
    Signal { peer: u64, text: String },
    /// The peer's speaking state from the audio level its browser puts in each packet
    /// (RFC 6464), for the room's `speaking` frames.
    Speaking { peer: u64, speaking: bool },
    /// The media thread dropped the peer (no packets within the ICE timeout, a refused
    /// answer, a DTLS failure): the router removes it from the room (`peer_left`).
    Gone { peer: u64, why: &'static str },
}

/// The router's handle on the media thread.
#[derive(Clone)]
pub struct MediaHandle {
    tx: Sender<MediaCmd>,
    /// The address browsers are told to send media to (the one ICE candidate).
    pub candidate: SocketAddr,
}

impl MediaHandle {
    /// Queues `cmd` without waiting; `false` when the queue is full (or the thread is gone).
    pub fn send(&self, cmd: MediaCmd) -> bool {
        match self.tx.try_send(cmd) {
            Ok(()) => true,
            Err(TrySendError::Full(c)) => {
                // Only the kind: an answer carries ICE credentials, which stay out of logs.
                log::warn!("media thread queue full; dropped a {} command", c.kind());
                false
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }
}

/// The media server bound and ready to start: `bind` first, start the router with the
/// handle, then `run` the thread with the router's handle.
pub struct Bound {
    socket: UdpSocket,
    rx: Receiver<MediaCmd>,
    candidate: SocketAddr,
}

/// Binds the media port on `listen_ip` (the app's listen address) and works out the
/// address to advertise: `public_ip` if set, else the bound address, else (bound on
/// 0.0.0.0) the address this host would use to reach the internet, else loopback.
pub fn bind(
    listen_ip: IpAddr,
    port: u16,
    public_ip: Option<IpAddr>,
) -> std::io::Result<(MediaHandle, Bound)> {
    let socket = UdpSocket::bind(SocketAddr::new(listen_ip, port))?;
    socket.set_nonblocking(true)?;
    let local = socket.local_addr()?;
    let ip = public_ip.unwrap_or_else(|| {
        if local.ip().is_unspecified() {
            outward_ip().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
        } else {
            local.ip()
        }
    });
    let candidate = SocketAddr::new(ip, local.port());
    let (tx, rx) = bounded(COMMAND_QUEUE);
    log::info!("media server on udp {local}, advertised as {candidate}");
    Ok((
        MediaHandle { tx, candidate },
        Bound {
            socket,
            rx,
            candidate,
        },
    ))
}

/// The local address of the route to a public address. `connect` on UDP sends nothing.
fn outward_ip() -> Option<IpAddr> {
    let s = UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?; // TEST-NET-1: never answered, only routed
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

impl Bound {
    /// Starts the media thread; `max_peers` is `SFU_MAX_PEERS`.
    pub fn run(self, router: RouterHandle, max_peers: usize) -> std::io::Result<()> {
        // str0m needs a process-wide crypto provider; ours is the pure-Rust one.
        str0m::crypto::from_feature_flags().install_process_default();
        let media = thread::MediaThread::new(self.socket, self.candidate, router, max_peers);
        std::thread::Builder::new()
            .name("media".into())
            .spawn(move || media.run(self.rx))?;
        Ok(())
    }
}
