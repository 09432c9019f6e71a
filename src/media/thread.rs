//! The media thread's loop: the one UDP socket, every peer (`peer.rs`), the rooms, and the
//! forwarding between them. str0m is sans-IO: after each change to a peer's `Rtc` (a
//! datagram, a timeout, a command, a forwarded frame) the thread drains `poll_output` until
//! `Timeout`, sending what it gives and queueing what must reach other peers (`Work`).
//!
//! It never blocks on a peer: the socket is non-blocking (a full kernel buffer drops the
//! datagram and counts it), the loop waits at most `MAX_WAIT` for input, and what a peer is
//! sent is bounded by str0m's send buffers (`SEND_BUFFER_*`).

use std::collections::{HashMap, VecDeque};
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};
use str0m::media::{KeyframeRequestKind, MediaData};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};

use super::peer::{Peer, Slot};
use super::simulcast::{self, LayerMeter, LAYERS};
use super::{MediaCmd, MediaEvent, MediaFlags, MAX_ROOMS};
use crate::metrics::METRICS;
use crate::realtime::router::{Cmd, RouterHandle};

/// The longest the loop waits for a datagram before it looks at commands and timers again:
/// commands (joins, answers) wait at most this long.
const MAX_WAIT: Duration = Duration::from_millis(5);
/// With no peer at all the thread only waits for commands.
const IDLE_WAIT: Duration = Duration::from_millis(500);
/// Datagrams read per round before commands and timers get a turn.
const READ_BURST: usize = 256;
/// Commands handled per round.
const COMMAND_BURST: usize = 256;
/// A datagram larger than this is not WebRTC from a browser (MTU-sized packets).
const MAX_DATAGRAM: usize = 2048;
/// A peer whose connection is not up this long after it joined is dropped: the answer and
/// ICE + DTLS take well under a second on a working path, and a few seconds through TURN.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// A connected peer from which nothing arrived for this long is gone: a browser sends
/// audio at 50 packets a second (also when muted: silence), RTCP every second and ICE
/// consent checks every few seconds, so 8 s of nothing means the page or its network went
/// away. This is our ICE timeout; it is shorter than a browser's own `failed` (~30 s).
pub const SILENCE_TIMEOUT: Duration = Duration::from_secs(8);
/// How often the thread checks for silent peers and speaking holds.
const SWEEP_EVERY: Duration = Duration::from_millis(100);
/// How often every receiver's simulcast layers are chosen again from its estimate (a layer
/// that stops arriving is replaced at once, at its next frame).
const REPICK_EVERY: Duration = Duration::from_millis(500);
/// How often str0m reports a peer's stats (`PeerStats`: bytes sent, loss from its feedback),
/// the input of its downlink estimate.
const STATS_EVERY: Duration = Duration::from_secs(1);
/// Speaking: an audio level (RFC 6464, dBov) at or above this is loud (about −36 dBFS,
/// the browser's own meter threshold in `assets/voice/audio.js`) …
const SPEAKING_LEVEL: i8 = -36;
/// … and speaking ends this long after the last loud packet.
const SPEAKING_HOLD: Duration = Duration::from_millis(300);
/// str0m's per-m-line send buffers (packets waiting for the pacer). Past them the oldest
/// are overwritten: a receiver that cannot take its packets loses them, nobody waits.
const SEND_BUFFER_AUDIO: usize = 50;
const SEND_BUFFER_VIDEO: usize = 1000;

/// What one peer's output asks of the others. The queue is emptied every round, so the big
/// variant costs no memory to speak of; boxing it would cost an allocation per media frame.
#[allow(clippy::large_enum_variant)]
enum Work {
    /// A frame `source` sent on `slot`: forward it to the room.
    Media {
        source: u64,
        slot: Slot,
        data: MediaData,
    },
    /// Someone needs a keyframe of `source`'s `slot` (of simulcast `layer`; `None`: of
    /// whatever it sends).
    Keyframe {
        source: u64,
        slot: Slot,
        layer: Option<usize>,
    },
}

pub struct MediaThread {
    socket: UdpSocket,
    candidate: SocketAddr,
    router: RouterHandle,
    max_peers: usize,
    peers: HashMap<u64, Peer>,
    /// room → its peers, in join order.
    rooms: HashMap<String, Vec<u64>>,
    /// remote address → the peer it last belonged to (demultiplexing without asking every
    /// `Rtc`).
    by_addr: HashMap<SocketAddr, u64>,
    work: VecDeque<Work>,
    next_sweep: Instant,
    next_repick: Instant,
}

impl MediaThread {
    pub fn new(
        socket: UdpSocket,
        candidate: SocketAddr,
        router: RouterHandle,
        max_peers: usize,
    ) -> MediaThread {
        MediaThread {
            socket,
            candidate,
            router,
            max_peers,
            peers: HashMap::new(),
            rooms: HashMap::new(),
            by_addr: HashMap::new(),
            work: VecDeque::new(),
            next_sweep: Instant::now(),
            next_repick: Instant::now(),
        }
    }

    pub fn run(mut self, rx: Receiver<MediaCmd>) {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            if self.peers.is_empty() {
                match rx.recv_timeout(IDLE_WAIT) {
                    Ok(cmd) => self.command(cmd),
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
            for _ in 0..COMMAND_BURST {
                match rx.try_recv() {
                    Ok(cmd) => self.command(cmd),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return,
                }
            }
            self.propagate();
            let now = Instant::now();
            let next = self
                .peers
                .values()
                .map(|p| p.next_timeout)
                .min()
                .unwrap_or(now + MAX_WAIT)
                .min(self.next_sweep);
            let wait = next.saturating_duration_since(now).min(MAX_WAIT);
            if self.wait_readable(wait) {
                self.read_burst(&mut buf);
            }
            let now = Instant::now();
            let due: Vec<u64> = self
                .peers
                .values()
                .filter(|p| p.next_timeout <= now)
                .map(|p| p.id)
                .collect();
            for id in due {
                if let Some(p) = self.peers.get_mut(&id) {
                    if let Err(e) = p.rtc.handle_input(Input::Timeout(now)) {
                        log::debug!("media peer {id}: {e}");
                        p.dead = Some("media connection failed");
                    }
                }
                self.drain(id);
            }
            self.propagate();
            if now >= self.next_sweep {
                self.next_sweep = now + SWEEP_EVERY;
                self.sweep(now);
            }
            if now >= self.next_repick {
                self.next_repick = now + REPICK_EVERY;
                self.repick(now);
            }
        }
    }

    /// Waits up to `wait` for the socket to become readable.
    fn wait_readable(&self, wait: Duration) -> bool {
        let mut fd = libc::pollfd {
            fd: self.socket.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // `ppoll`, not `poll`: poll's whole milliseconds turned every wait under 1 ms (the
        // next str0m timeout is often that close) into 0, a busy loop until it was due.
        let ts = libc::timespec {
            tv_sec: wait.as_secs() as libc::time_t,
            tv_nsec: wait.subsec_nanos() as libc::c_long,
        };
        // SAFETY: one valid pollfd for a socket we own, the length we pass, a timespec we
        // own, and no signal mask.
        let n = unsafe { libc::ppoll(&mut fd, 1, &ts, std::ptr::null()) };
        n > 0
    }

    fn read_burst(&mut self, buf: &mut [u8]) {
        for _ in 0..READ_BURST {
            let (n, source) = match self.socket.recv_from(buf) {
                Ok(r) => r,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    // ICMP errors of an earlier send (port unreachable) surface here.
                    log::debug!("media socket: {e}");
                    continue;
                }
            };
            let now = Instant::now();
            let Ok(contents) = buf[..n].try_into() else {
                METRICS.sfu_dropped.fetch_add(1, Relaxed);
                continue;
            };
            let input = Input::Receive(
                now,
                Receive {
                    proto: Protocol::Udp,
                    source,
                    destination: self.candidate,
                    contents,
                },
            );
            let known = self
                .by_addr
                .get(&source)
                .copied()
                .filter(|id| self.peers.get(id).is_some_and(|p| p.rtc.accepts(&input)));
            let owner = known.or_else(|| {
                self.peers
                    .values()
                    .find(|p| p.rtc.accepts(&input))
                    .map(|p| p.id)
            });
            let Some(id) = owner else {
                // Usually STUN of a peer whose answer has not arrived yet; it retries.
                continue;
            };
            self.by_addr.insert(source, id);
            if let Some(p) = self.peers.get_mut(&id) {
                p.last_heard = Some(now);
                if let Err(e) = p.rtc.handle_input(input) {
                    log::debug!("media peer {id}: {e}");
                    p.dead = Some("media connection failed");
                }
            }
            self.drain(id);
        }
    }

    /// Drains `id`'s output until its next timeout: sends datagrams, queues work.
    fn drain(&mut self, id: u64) {
        let Some(p) = self.peers.get_mut(&id) else {
            return;
        };
        loop {
            if p.dead.is_some() || !p.rtc.is_alive() {
                if p.dead.is_none() {
                    p.dead = Some("media connection closed");
                }
                p.next_timeout = Instant::now() + IDLE_WAIT;
                return;
            }
            let out = match p.rtc.poll_output() {
                Ok(o) => o,
                Err(e) => {
                    log::debug!("media peer {id}: {e}");
                    p.dead = Some("media connection failed");
                    continue;
                }
            };
            match out {
                Output::Timeout(t) => {
                    p.next_timeout = t;
                    return;
                }
                Output::Transmit(t) => {
                    if let Err(e) = self.socket.send_to(&t.contents, t.destination) {
                        // Non-blocking: a full socket buffer drops this datagram.
                        log::trace!("media send to {}: {e}", t.destination);
                        METRICS.sfu_dropped.fetch_add(1, Relaxed);
                    }
                }
                Output::Event(ev) => match ev {
                    Event::Connected => {
                        p.connected = true;
                        // Video it was given before it could receive: ask for fresh
                        // keyframes now that it can.
                        for t in p.out.iter().filter(|t| t.slot != Slot::Audio) {
                            self.work.push_back(Work::Keyframe {
                                source: t.source,
                                slot: t.slot,
                                layer: p.wanted_layer(t.source, t.slot),
                            });
                        }
                    }
                    Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                        // ICE-lite only hears the browser's checks; silence decides
                        // (`SILENCE_TIMEOUT`), since a browser may recover by itself.
                        log::debug!("media peer {id}: ICE disconnected");
                    }
                    Event::MediaData(data) => {
                        let Some(slot) = p.slot_of(data.mid) else {
                            continue;
                        };
                        METRICS.sfu_in[slot.index()].fetch_add(1, Relaxed);
                        if slot == Slot::Audio {
                            if let Some(level) = data.ext_vals.audio_level {
                                if level >= SPEAKING_LEVEL && !p.flags.muted {
                                    p.last_loud = Some(data.network_time);
                                }
                            }
                        } else if !data.contiguous
                            && p.may_ask_keyframe(
                                slot,
                                data.rid.as_ref().and_then(simulcast::layer_of),
                                Instant::now(),
                            )
                        {
                            // Frames were lost on the way in: ask the source for a fresh
                            // start rather than forward a broken picture.
                            if let Some(mut w) = p.recv[slot.index()].and_then(|m| p.rtc.writer(m))
                            {
                                let _ = w.request_keyframe(data.rid, KeyframeRequestKind::Fir);
                            }
                        }
                        self.work.push_back(Work::Media {
                            source: id,
                            slot,
                            data,
                        });
                    }
                    Event::KeyframeRequest(req) => {
                        if let Some(t) = p.out.iter().find(|t| t.mid == Some(req.mid)) {
                            self.work.push_back(Work::Keyframe {
                                source: t.source,
                                slot: t.slot,
                                layer: p.wanted_layer(t.source, t.slot),
                            });
                        }
                    }
                    Event::PeerStats(s) => {
                        p.downlink
                            .report(s.timestamp, s.peer_bytes_tx, s.egress_loss_fraction);
                    }
                    Event::Closed if p.dead.is_none() => {
                        p.dead = Some("media connection closed");
                    }
                    _ => {}
                },
            }
        }
    }

    /// Runs the queued work until none is left (forwarding can queue more: keyframe
    /// requests from receivers).
    fn propagate(&mut self) {
        while let Some(w) = self.work.pop_front() {
            match w {
                Work::Media { source, slot, data } => self.forward(source, slot, &data),
                Work::Keyframe {
                    source,
                    slot,
                    layer,
                } => self.ask_keyframe(source, slot, layer),
            }
        }
    }

    /// Forwards one frame of `source` to everyone else in its room who should get it. A
    /// simulcast camera's frame goes only to those whose chosen layer it is (`simulcast.rs`).
    fn forward(&mut self, source: u64, slot: Slot, data: &MediaData) {
        let Some(src) = self.peers.get_mut(&source) else {
            return;
        };
        let layer = match (&data.rid, slot) {
            (Some(rid), Slot::Camera) => {
                let Some(layer) = simulcast::layer_of(rid) else {
                    METRICS.sfu_dropped.fetch_add(1, Relaxed);
                    return; // a rid we did not offer
                };
                src.meter.record(layer, data.data.len(), data.network_time);
                Some(layer)
            }
            _ => None,
        };
        let meter = src.meter;
        let now = Instant::now();
        let mut keyframes = [false; LAYERS];
        let gated = match slot {
            Slot::Audio => src.flags.muted,
            Slot::Camera => !src.flags.video,
            Slot::Screen => !src.flags.screen,
        };
        if gated {
            METRICS.sfu_dropped.fetch_add(1, Relaxed);
            return;
        }
        let Some(room) = self.rooms.get(&src.room) else {
            return;
        };
        let receivers: Vec<u64> = room.iter().copied().filter(|r| *r != source).collect();
        for r in receivers {
            let Some(p) = self.peers.get_mut(&r) else {
                continue;
            };
            if slot == Slot::Screen && !p.watching.contains(&source) {
                continue;
            }
            let Some(mid) = p.open_mid(source, slot) else {
                continue;
            };
            let mut time = data.time;
            if let Some(layer) = layer {
                let budget = p.camera_budget;
                let choice = p.layers.entry(source).or_default();
                if choice.target.is_none_or(|t| !meter.present(t, now)) {
                    let before = choice.target;
                    choice.target = simulcast::pick(&meter, budget, choice.current, now);
                    if choice.target != before && before.is_some() {
                        METRICS.sfu_layer_switches.fetch_add(1, Relaxed);
                    }
                }
                let admitted =
                    choice.admit(layer, data.is_keyframe(), data.time, data.network_time);
                if let Some(wait) = choice.waiting() {
                    keyframes[wait] = true;
                }
                match admitted {
                    Some(t) => time = t,
                    None => continue,
                }
            }
            let Some(writer) = p.rtc.writer(mid) else {
                continue;
            };
            let Some(pt) = writer.match_params(data.params) else {
                METRICS.sfu_dropped.fetch_add(1, Relaxed);
                continue;
            };
            match writer.write(pt, data.network_time, time, data.data.clone()) {
                Ok(()) => {
                    METRICS.sfu_out[slot.index()].fetch_add(1, Relaxed);
                    if let Some(layer) = layer {
                        METRICS.sfu_layer_out[layer].fetch_add(1, Relaxed);
                    }
                }
                Err(e) => {
                    log::debug!("media peer {r}: write: {e}");
                    METRICS.sfu_dropped.fetch_add(1, Relaxed);
                }
            }
            self.drain(r);
        }
        for (layer, _) in keyframes.iter().enumerate().filter(|(_, k)| **k) {
            self.work.push_back(Work::Keyframe {
                source,
                slot,
                layer: Some(layer),
            });
        }
    }

    /// Chooses every receiver's simulcast layers again from its downlink estimate: the
    /// estimate less what is not camera video (audio, screen shares), shared equally by the
    /// cameras it receives.
    fn repick(&mut self, now: Instant) {
        let meters: HashMap<u64, LayerMeter> = self
            .peers
            .values()
            .filter(|p| p.meter.simulcast())
            .map(|p| (p.id, p.meter))
            .collect();
        for p in self.peers.values_mut() {
            p.layers.retain(|source, _| meters.contains_key(source));
            let cameras = p
                .layers
                .keys()
                .filter(|s| meters[s].any_present(now))
                .count();
            let camera_sent: f64 = p
                .layers
                .iter()
                .filter_map(|(s, c)| c.current.map(|l| meters[s].rate(l)))
                .sum();
            let other = (p.downlink.sent() - camera_sent).max(0.0);
            p.camera_budget = (p.downlink.estimate() - other).max(0.0) / cameras.max(1) as f64;
            for (s, c) in p.layers.iter_mut() {
                let target = simulcast::pick(&meters[s], p.camera_budget, c.current, now);
                if target != c.target && c.target.is_some() {
                    METRICS.sfu_layer_switches.fetch_add(1, Relaxed);
                }
                c.target = target;
            }
        }
    }

    /// Asks `source` for a keyframe on `slot` (PLI), of simulcast `layer` if given, at most
    /// once per `KEYFRAME_INTERVAL` each. With no layer given, a simulcast camera is asked on
    /// every layer (a receiver that just opened or connected takes whichever it is given).
    fn ask_keyframe(&mut self, source: u64, slot: Slot, layer: Option<usize>) {
        let Some(p) = self.peers.get_mut(&source) else {
            return;
        };
        if slot == Slot::Audio {
            return;
        }
        let layers: Vec<Option<usize>> = match layer {
            None if slot == Slot::Camera && p.meter.simulcast() => (0..LAYERS).map(Some).collect(),
            _ => vec![layer],
        };
        let now = Instant::now();
        for layer in layers {
            if !p.may_ask_keyframe(slot, layer, now) {
                continue;
            }
            let Some(mut w) = p.recv[slot.index()].and_then(|m| p.rtc.writer(m)) else {
                return;
            };
            let rid = layer.map(simulcast::rid);
            if let Err(e) = w.request_keyframe(rid, KeyframeRequestKind::Pli) {
                log::trace!("media peer {source}: keyframe request: {e}");
            }
        }
        self.drain(source);
    }

    fn command(&mut self, cmd: MediaCmd) {
        match cmd {
            MediaCmd::Join { peer, room, flags } => self.join(peer, room, flags),
            MediaCmd::Leave { peer } => self.remove(peer, None),
            MediaCmd::Answer { peer, sdp } => self.answer(peer, &sdp),
            MediaCmd::Offer { peer } => {
                self.error(peer, "bad_request", "the media server makes the offers");
            }
            MediaCmd::Candidate { peer, candidate } => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.add_candidate(&candidate);
                }
                self.drain(peer);
            }
            MediaCmd::Watch { peer, source, on } => self.watch(peer, source, on),
            MediaCmd::State { peer, flags } => self.state(peer, flags),
        }
    }

    fn join(&mut self, id: u64, room: String, flags: MediaFlags) {
        if self.peers.contains_key(&id) {
            return;
        }
        let full = self.rooms.get(&room).map_or(0, Vec::len) >= self.max_peers;
        if full || (!self.rooms.contains_key(&room) && self.rooms.len() >= MAX_ROOMS) {
            self.gone(id, "the media server is full");
            return;
        }
        let now = Instant::now();
        let mut rtc = new_rtc(now);
        match Candidate::host(self.candidate, "udp") {
            Ok(c) => {
                let _ = rtc.add_local_candidate(c);
            }
            Err(e) => {
                log::warn!("media candidate {}: {e}", self.candidate);
                self.gone(id, "the media server has no usable address");
                return;
            }
        }
        let mut peer = Peer::new(id, room.clone(), rtc, flags, now);
        let others: Vec<u64> = self.rooms.get(&room).cloned().unwrap_or_default();
        for o in &others {
            peer.want(*o, Slot::Audio);
            if self.peers.get(o).is_some_and(|p| p.flags.video) {
                peer.want(*o, Slot::Camera);
            }
        }
        self.peers.insert(id, peer);
        self.rooms.entry(room).or_default().push(id);
        METRICS.sfu_peers.store(self.peers.len() as u64, Relaxed);
        METRICS.sfu_rooms.store(self.rooms.len() as u64, Relaxed);
        self.renegotiate(id);
        for o in others {
            let wanted = self.peers.get_mut(&o).is_some_and(|p| {
                let audio = p.want(id, Slot::Audio);
                let camera = flags.video && p.want(id, Slot::Camera);
                audio || camera
            });
            if wanted {
                self.renegotiate(o);
            }
        }
    }

    /// Sends `id` its next offer, if it has changes and none is in flight.
    fn renegotiate(&mut self, id: u64) {
        let Some(p) = self.peers.get_mut(&id) else {
            return;
        };
        if let Some(text) = p.negotiate() {
            self.router
                .send(Cmd::Media(MediaEvent::Signal { peer: id, text }));
        }
        self.drain(id);
    }

    fn answer(&mut self, id: u64, sdp: &str) {
        let Some(p) = self.peers.get_mut(&id) else {
            return;
        };
        match p.accept_answer(sdp) {
            Ok(opened) => {
                self.drain(id);
                for (source, slot) in opened {
                    if slot != Slot::Audio {
                        self.ask_keyframe(source, slot, None);
                    }
                }
                // What changed while this offer was in flight goes in the next one.
                self.renegotiate(id);
            }
            Err(e) => {
                log::debug!("media peer {id}: {e}");
                self.error(id, "bad_request", &e);
            }
        }
    }

    fn watch(&mut self, id: u64, source: u64, on: bool) {
        let same_room = match (self.peers.get(&id), self.peers.get(&source)) {
            (Some(a), Some(b)) => a.room == b.room && id != source,
            _ => false,
        };
        if !same_room {
            return;
        }
        let Some(p) = self.peers.get_mut(&id) else {
            return;
        };
        if !on {
            // Forwarding stops at once; the m-line stays for the next watch.
            p.watching.remove(&source);
            return;
        }
        p.watching.insert(source);
        if p.want(source, Slot::Screen) {
            self.renegotiate(id);
        } else {
            self.ask_keyframe(source, Slot::Screen, None);
        }
    }

    fn state(&mut self, id: u64, flags: MediaFlags) {
        let Some(p) = self.peers.get_mut(&id) else {
            return;
        };
        let before = p.flags;
        p.flags = flags;
        if flags.muted {
            p.last_loud = None;
        }
        let room: Vec<u64> = self.rooms.get(&p.room).cloned().unwrap_or_default();
        if flags.video && !before.video {
            for r in room.iter().copied().filter(|r| *r != id) {
                if self
                    .peers
                    .get_mut(&r)
                    .is_some_and(|p| p.want(id, Slot::Camera))
                {
                    self.renegotiate(r);
                }
            }
            self.ask_keyframe(id, Slot::Camera, None);
        }
        if flags.screen && !before.screen {
            self.ask_keyframe(id, Slot::Screen, None);
        }
    }

    /// Drops peer `id` (`why`: tell the router; `None`: the router asked) and stops its
    /// tracks at everyone else in its room.
    fn remove(&mut self, id: u64, why: Option<&'static str>) {
        let Some(p) = self.peers.remove(&id) else {
            return;
        };
        self.by_addr.retain(|_, v| *v != id);
        let room = p.room.clone();
        drop(p);
        let others = match self.rooms.get_mut(&room) {
            Some(list) => {
                list.retain(|x| *x != id);
                list.clone()
            }
            None => Vec::new(),
        };
        if others.is_empty() {
            self.rooms.remove(&room);
        }
        for o in others {
            if self.peers.get_mut(&o).is_some_and(|p| p.forget(id)) {
                self.renegotiate(o);
            }
        }
        METRICS.sfu_peers.store(self.peers.len() as u64, Relaxed);
        METRICS.sfu_rooms.store(self.rooms.len() as u64, Relaxed);
        if let Some(why) = why {
            self.gone(id, why);
        }
    }

    fn gone(&self, peer: u64, why: &'static str) {
        self.router.send(Cmd::Media(MediaEvent::Gone { peer, why }));
    }

    fn error(&self, peer: u64, code: &str, message: &str) {
        let text = serde_json::json!({"type":"error","code":code,"message":message}).to_string();
        self.router
            .send(Cmd::Media(MediaEvent::Signal { peer, text }));
    }

    /// Drops dead and silent peers, and ends speaking holds.
    fn sweep(&mut self, now: Instant) {
        let mut dropped = Vec::new();
        let mut speaking = Vec::new();
        for p in self.peers.values_mut() {
            let silent = match p.last_heard {
                Some(t) if p.connected => now.duration_since(t) >= SILENCE_TIMEOUT,
                _ => !p.connected && now.duration_since(p.joined) >= CONNECT_TIMEOUT,
            };
            if let Some(why) = p.dead {
                dropped.push((p.id, why));
            } else if silent {
                dropped.push((p.id, "no media from you within the ICE timeout"));
            }
            let loud = p
                .last_loud
                .is_some_and(|t| now.saturating_duration_since(t) < SPEAKING_HOLD);
            if loud != p.speaking {
                p.speaking = loud;
                speaking.push((p.id, loud));
            }
        }
        for (peer, speaking) in speaking {
            self.router
                .send(Cmd::Media(MediaEvent::Speaking { peer, speaking }));
        }
        for (id, why) in dropped {
            log::debug!("media peer {id} dropped: {why}");
            self.remove(id, Some(why));
        }
    }
}

/// A peer connection as the media server makes them: ICE-lite (the server has a fixed
/// address and only answers the browser's checks), Opus for audio and VP8 for video: every
/// browser encodes and decodes both, and one codec per kind keeps each m-line short (a full
/// room has ~150 of them; str0m's H.264 profiles would double a video m-line). One codec
/// also means no receiver ever needs a codec its source does not send.
pub(super) fn new_rtc(now: Instant) -> Rtc {
    Rtc::builder()
        .set_ice_lite(true)
        .clear_codecs()
        .enable_opus(true, false)
        .enable_vp8(true)
        .set_send_buffer_audio(SEND_BUFFER_AUDIO)
        .set_send_buffer_video(SEND_BUFFER_VIDEO)
        .set_stats_interval(Some(STATS_EVERY))
        .build(now)
}
