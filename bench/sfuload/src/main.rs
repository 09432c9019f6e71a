//! sfuload: N synthetic participants in one media-server room, each sending an Opus-sized
//! packet every 20 ms (50 packets/s), one of them also a 2.5 Mbit/s video stream; every
//! participant receives everyone else. Measures, over a window after the calls are up:
//! server CPU per forwarded packet (`/proc/PID/stat` of `--server-pid`), the added
//! forwarding latency (send → receive of the same packet, one clock: both ends are here),
//! p50/p99, and loss. Targets: `janus` (Janus VideoRoom over its WebSocket API: a publisher
//! and a subscriber connection per participant) and `ours` (mini-discord's `/ws/voice` in
//! `sfu` mode: one connection per participant that both sends and receives, every offer made
//! by the server and answered here, also during the measured window).
//!
//! One thread drives every participant's str0m `Rtc` (sans-IO): `poll(2)` over their UDP
//! sockets, timers, and the send schedule. Pin it with `taskset` (bench/sfu.sh) so it never
//! shares the server's core; `RESULT.load_cpu_s` says when this core is the limit.
//!
//! Usage: sfuload --target janus --url ws://127.0.0.1:8188 --n 10 --duration 5
//!        sfuload --target ours --url http://127.0.0.1:8080 --n 10 --duration 5
//!        [--video 1] [--warmup 2] [--server-pid PID] [--json FILE] [--label TEXT]
//!        [--bind IP]  (Janus gathers no loopback candidates: bench/sfu.sh passes the
//!        host's own address, which the kernel still delivers locally)

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{json, Value};
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

const MAGIC: u32 = 0x5346_554c; // "SFUL"
const AUDIO_BYTES: usize = 100; // a 40 kbit/s Opus frame
const AUDIO_EVERY: Duration = Duration::from_millis(20);
const VIDEO_BPS: usize = 2_500_000;
const VIDEO_FPS: u32 = 30;

struct Args {
    target: String,
    url: String,
    n: usize,
    duration: f64,
    warmup: f64,
    video: bool,
    server_pid: Option<u32>,
    json: Option<String>,
    label: String,
    room: u64,
    /// The address every participant's UDP socket binds (and offers as its candidate).
    bind: std::net::IpAddr,
}

fn args() -> Args {
    let mut a = Args {
        target: "janus".into(),
        url: "ws://127.0.0.1:8188".into(),
        n: 10,
        duration: 5.0,
        warmup: 2.0,
        video: true,
        server_pid: None,
        json: None,
        label: String::new(),
        room: 4242,
        bind: "127.0.0.1".parse().unwrap(),
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < v.len() {
        let val = v.get(i + 1).cloned().unwrap_or_default();
        match v[i].as_str() {
            "--target" => a.target = val,
            "--url" => a.url = val,
            "--n" => a.n = val.parse().expect("--n"),
            "--duration" => a.duration = val.parse().expect("--duration"),
            "--warmup" => a.warmup = val.parse().expect("--warmup"),
            "--video" => a.video = val != "0",
            "--server-pid" => a.server_pid = Some(val.parse().expect("--server-pid")),
            "--json" => a.json = Some(val),
            "--label" => a.label = val,
            "--room" => a.room = val.parse().expect("--room"),
            "--bind" => a.bind = val.parse().expect("--bind"),
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    a
}

/// Microseconds since the tool started: the one clock of send and receive stamps.
fn micros(start: Instant, t: Instant) -> u64 {
    t.duration_since(start).as_micros() as u64
}

/// One peer connection: its `Rtc` and the UDP socket it owns.
struct Conn {
    rtc: Rtc,
    sock: UdpSocket,
    local: SocketAddr,
    /// Whose connection (participant index) and whether it publishes.
    who: usize,
    /// The m-lines it sends on (set by its own offer for Janus, by the server's for ours).
    audio: Option<Mid>,
    video: Option<Mid>,
    /// Ours only: what arrives on each m-line, `(peer id, kind)` as the server's offer says.
    recv: HashMap<Mid, (String, String)>,
    next_timeout: Instant,
    connected: bool,
}

impl Conn {
    fn new(who: usize, bind: std::net::IpAddr, now: Instant) -> Conn {
        Conn::with_rtc(who, bind, now, Rtc::builder().build(now))
    }

    fn with_rtc(who: usize, bind: std::net::IpAddr, now: Instant, mut rtc: Rtc) -> Conn {
        let sock = UdpSocket::bind((bind, 0)).expect("bind udp");
        sock.set_nonblocking(true).unwrap();
        let local = sock.local_addr().unwrap();
        rtc.add_local_candidate(Candidate::host(local, "udp").unwrap());
        Conn {
            rtc,
            sock,
            local,
            who,
            audio: None,
            video: None,
            recv: HashMap::new(),
            next_timeout: now,
            connected: false,
        }
    }
}

/// What the receivers counted.
#[derive(Default)]
struct Stats {
    /// Packets received in the window (audio packets, video RTP packets).
    packets: u64,
    audio_rx: u64,
    video_frames: u64,
    lat_audio: Option<Histogram<u64>>,
    lat_video: Option<Histogram<u64>>,
}

/// Janus VideoRoom signaling over its WebSocket API (`janus-protocol`), blocking: used only
/// while the calls are set up, before the measured window.
struct Janus {
    ws: WebSocket<TcpStream>,
    session: u64,
    tx: u64,
    keepalive_at: Instant,
}

impl Janus {
    fn connect(url: &str) -> Janus {
        let mut req = url.into_client_request().unwrap();
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", "janus-protocol".parse().unwrap());
        let host = req.uri().host().unwrap().to_string();
        let port = req.uri().port_u16().unwrap_or(8188);
        let stream = TcpStream::connect((host.as_str(), port)).expect("connect to janus");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let (ws, _) = tungstenite::client(req, stream).expect("janus websocket");
        let mut j = Janus {
            ws,
            session: 0,
            tx: 0,
            keepalive_at: Instant::now() + Duration::from_secs(20),
        };
        let r = j.call(json!({"janus": "create"}));
        j.session = r["data"]["id"].as_u64().expect("session id");
        j
    }

    /// Sends `msg` with a new transaction and returns the first answer to it that is not an
    /// `ack` (a plugin `event` for `message` requests).
    fn call(&mut self, mut msg: Value) -> Value {
        self.tx += 1;
        let tx = format!("t{}", self.tx);
        msg["transaction"] = json!(tx);
        if self.session != 0 {
            msg["session_id"] = json!(self.session);
        }
        self.ws.send(Message::text(msg.to_string())).unwrap();
        loop {
            let m = self.ws.read().expect("janus answer");
            let Message::Text(t) = m else { continue };
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            if v["transaction"] != json!(tx) || v["janus"] == "ack" {
                continue;
            }
            if v["janus"] == "error" || v["plugindata"]["data"]["error"].is_string() {
                panic!("janus refused {msg}: {v}");
            }
            return v;
        }
    }

    fn attach(&mut self) -> u64 {
        let r = self.call(json!({"janus": "attach", "plugin": "janus.plugin.videoroom"}));
        r["data"]["id"].as_u64().expect("handle id")
    }

    fn message(&mut self, handle: u64, body: Value, jsep: Option<Value>) -> Value {
        let mut m = json!({"janus": "message", "handle_id": handle, "body": body});
        if let Some(j) = jsep {
            m["jsep"] = j;
        }
        self.call(m)
    }

    /// Our candidates are in the SDP: tell Janus there are no more. Janus only acks it.
    fn trickle_done(&mut self, handle: u64) {
        self.tx += 1;
        let m = json!({"janus": "trickle", "handle_id": handle, "session_id": self.session,
                       "transaction": format!("t{}", self.tx),
                       "candidate": {"completed": true}});
        self.ws.send(Message::text(m.to_string())).unwrap();
    }

    fn keepalive(&mut self, now: Instant) {
        if now >= self.keepalive_at {
            self.keepalive_at = now + Duration::from_secs(20);
            let m = json!({"janus": "keepalive", "session_id": self.session,
                           "transaction": "ka"});
            let _ = self.ws.send(Message::text(m.to_string()));
        }
    }
}

/// Sets up N participants in a Janus VideoRoom: each publishes (participant 0 with video),
/// then each subscribes to every other publisher with one multistream subscriber handle.
fn setup_janus(a: &Args, now: Instant) -> (Vec<Conn>, Vec<Sig>) {
    // Connections made earlier keep answering ICE while the later ones are negotiated.
    let idle = |conns: &mut Vec<Conn>| {
        let until = Instant::now() + Duration::from_millis(5);
        while Instant::now() < until {
            io_step(conns, until, &mut |_, _, _| {});
        }
    };
    let mut admin = Janus::connect(&a.url);
    let h = admin.attach();
    // bench/sfu.sh starts a fresh Janus per run, so the room never exists yet.
    admin.message(
        h,
        json!({"request": "create", "room": a.room, "publishers": a.n + 1,
               "audiocodec": "opus", "videocodec": "vp8", "bitrate": 4_000_000,
               "audiolevel_event": false, "notify_joining": false}),
        None,
    );
    let mut conns = Vec::new();
    let mut sigs = Vec::new();
    let mut feeds = Vec::new();
    for who in 0..a.n {
        let mut j = Janus::connect(&a.url);
        let h = j.attach();
        let joined = j.message(
            h,
            json!({"request": "join", "ptype": "publisher", "room": a.room,
                   "display": format!("p{who}")}),
            None,
        );
        feeds.push(
            joined["plugindata"]["data"]["id"]
                .as_u64()
                .expect("publisher id"),
        );
        let mut c = Conn::new(who, a.bind, now);
        let mut api = c.rtc.sdp_api();
        c.audio = Some(api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None));
        if a.video && who == 0 {
            c.video = Some(api.add_media(MediaKind::Video, Direction::SendOnly, None, None, None));
        }
        let (offer, pending) = api.apply().expect("an offer");
        let r = j.message(
            h,
            json!({"request": "publish"}),
            Some(json!({"type": "offer", "sdp": offer.to_sdp_string()})),
        );
        let sdp = r["jsep"]["sdp"].as_str().expect("janus answers the offer");
        if std::env::var_os("SFULOAD_DEBUG").is_some() {
            eprintln!("offer:\n{}\nanswer:\n{sdp}", offer.to_sdp_string());
        }
        let answer = SdpAnswer::from_sdp_string(sdp).expect("answer parses");
        c.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .expect("answer accepted");
        j.trickle_done(h);
        conns.push(c);
        sigs.push((j, h));
        idle(&mut conns);
    }
    // Janus lists a feed to subscribers only once its publisher's media is up.
    let deadline = Instant::now() + Duration::from_secs(20);
    while conns.iter().any(|c| !c.connected) && Instant::now() < deadline {
        idle(&mut conns);
    }
    let up = conns.iter().filter(|c| c.connected).count();
    eprintln!("sfuload: {up}/{} publishers connected", conns.len());
    std::thread::sleep(Duration::from_millis(200));
    idle(&mut conns);
    let mut out_sigs = Vec::new();
    for (who, (mut j, _)) in sigs.into_iter().enumerate() {
        let h = j.attach();
        let streams: Vec<Value> = feeds
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != who)
            .map(|(_, f)| json!({"feed": f}))
            .collect();
        let r = j.message(
            h,
            json!({"request": "join", "ptype": "subscriber", "room": a.room,
                   "streams": streams}),
            None,
        );
        let sdp = r["jsep"]["sdp"].as_str().expect("janus offers the streams");
        let mut c = Conn::new(who, a.bind, now);
        let offer = SdpOffer::from_sdp_string(sdp).expect("offer parses");
        let answer = c.rtc.sdp_api().accept_offer(offer).expect("offer accepted");
        j.message(
            h,
            json!({"request": "start"}),
            Some(json!({"type": "answer", "sdp": answer.to_sdp_string()})),
        );
        j.trickle_done(h);
        conns.push(c);
        out_sigs.push(Sig::Janus(j));
        idle(&mut conns);
    }
    (conns, out_sigs)
}

/// One participant's signaling, kept open for the whole run.
enum Sig {
    Janus(Janus),
    Ours(Ours),
}

impl Sig {
    /// Whatever the signaling needs between media rounds: Janus a keepalive, ours reading
    /// (and answering) the server's offers.
    fn tick(&mut self, now: Instant, conns: &mut [Conn]) {
        match self {
            Sig::Janus(j) => j.keepalive(now),
            Sig::Ours(o) => o.tick(now, conns),
        }
    }
}

/// How often each `/ws/voice` socket is read: often enough that an offer is answered at
/// once, rarely enough that 50 idle sockets cost this thread nothing to speak of.
const OURS_READ_EVERY: Duration = Duration::from_millis(2);
/// The escaped SDP of one answer part (mini-discord's `signaling::PART_SDP_BYTES`).
const PART_SDP_BYTES: usize = 60_000;

/// mini-discord `/ws/voice` signaling of one participant (`sfu` mode): the server makes
/// every offer, at any time (a peer joined, a track was added), and this answers it on
/// `conns[conn]`. Non-blocking: read in the tool's loop, never waited on.
struct Ours {
    ws: WebSocket<TcpStream>,
    conn: usize,
    /// Our peer id (from `welcome`).
    id: String,
    /// Whether this participant sends video (`--video` and participant 0).
    video: bool,
    next_read: Instant,
    offers: u64,
    closed: bool,
}

impl Ours {
    /// Joins the voice room `channel` as the user of `token` and reads `welcome`.
    fn join(addr: SocketAddr, channel: &str, token: &str, conn: usize, video: bool) -> Ours {
        let url = format!("ws://{addr}/ws/voice?channel={channel}");
        let mut req = url.as_str().into_client_request().unwrap();
        req.headers_mut()
            .insert("Authorization", format!("Bearer {token}").parse().unwrap());
        let stream = TcpStream::connect(addr).expect("connect to mini-discord");
        stream.set_nodelay(true).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let (mut ws, _) = tungstenite::client(req, stream)
            .unwrap_or_else(|e| panic!("participant {conn}: /ws/voice handshake: {e}"));
        let welcome = loop {
            let m = ws.read().expect("welcome");
            let Message::Text(t) = m else { continue };
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            match v["type"].as_str() {
                Some("welcome") => break v,
                Some("error") => panic!("participant {conn}: refused: {v}"),
                _ => continue,
            }
        };
        if welcome["voice_mode"] != "sfu" {
            panic!(
                "participant {conn}: the room is not in sfu mode (SFU_UDP_PORT unset?): {welcome}"
            );
        }
        ws.get_ref().set_nonblocking(true).unwrap();
        Ours {
            ws,
            conn,
            id: welcome["id"].as_str().expect("peer id").to_string(),
            video,
            next_read: Instant::now(),
            offers: 0,
            closed: false,
        }
    }

    fn send(&mut self, v: Value) {
        // Non-blocking: what does not fit now stays queued in tungstenite; `tick` flushes it.
        match self.ws.send(Message::text(v.to_string())) {
            Ok(()) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => self.close(&format!("send: {e}")),
        }
    }

    fn close(&mut self, why: &str) {
        if !self.closed {
            self.closed = true;
            eprintln!("sfuload: participant {}: /ws/voice ended: {why}", self.conn);
        }
    }

    fn tick(&mut self, now: Instant, conns: &mut [Conn]) {
        if self.closed || now < self.next_read {
            return;
        }
        self.next_read = now + OURS_READ_EVERY;
        match self.ws.flush() {
            Ok(()) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return self.close(&format!("flush: {e}")),
        }
        loop {
            match self.ws.read() {
                Ok(Message::Text(t)) => {
                    let v: Value = match serde_json::from_str(t.as_str()) {
                        Ok(v) => v,
                        Err(e) => return self.close(&format!("bad frame: {e}")),
                    };
                    match v["type"].as_str() {
                        Some("offer") => self.offer(&v, &mut conns[self.conn]),
                        Some("error") => eprintln!("sfuload: participant {}: {v}", self.conn),
                        Some("peer_left") => {
                            eprintln!("sfuload: participant {}: peer_left {}", self.conn, v["id"])
                        }
                        _ => {}
                    }
                }
                Ok(Message::Close(f)) => return self.close(&format!("closed: {f:?}")),
                Ok(_) => {}
                Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) => return self.close(&e.to_string()),
            }
        }
    }

    /// Answers the server's offer: the m-lines to send on (`send`: kind → mid) and what
    /// arrives on each (`recv`: mid → {peer, kind}), then the answer, in parts if it is big.
    fn offer(&mut self, v: &Value, c: &mut Conn) {
        let sdp = v["sdp"].as_str().expect("offer sdp");
        // SFULOAD_DUMP=DIR: every offer frame and answer, for a negotiation that goes wrong.
        let dump = std::env::var_os("SFULOAD_DUMP").map(std::path::PathBuf::from);
        let file = |what: &str| {
            dump.as_ref()
                .map(|d| d.join(format!("p{:02}-{:04}-{what}", self.conn, self.offers + 1)))
        };
        if let Some(f) = file("offer.json") {
            let _ = std::fs::write(f, v.to_string());
        }
        let offer = SdpOffer::from_sdp_string(sdp).expect("offer parses");
        let answer = match c.rtc.sdp_api().accept_offer(offer) {
            Ok(a) => a.to_sdp_string(),
            Err(e) => return self.close(&format!("offer {} refused: {e}", self.offers + 1)),
        };
        if let Some(f) = file("answer.sdp") {
            let _ = std::fs::write(f, &answer);
        }
        let mid = |k: &str| v["send"][k].as_str().map(Mid::from);
        c.audio = mid("audio");
        // Only participant 0 sends video (its camera m-line; the server makes one for all).
        c.video = if self.video { mid("camera") } else { None };
        c.recv.clear();
        if let Some(recv) = v["recv"].as_object() {
            for (m, t) in recv {
                let peer = t["peer"].as_str().unwrap_or("").to_string();
                let kind = t["kind"].as_str().unwrap_or("").to_string();
                c.recv.insert(Mid::from(m.as_str()), (peer, kind));
            }
        }
        self.offers += 1;
        if std::env::var_os("SFULOAD_DEBUG").is_some() {
            eprintln!(
                "participant {}: offer {} ({} m-lines), answer {} B",
                self.conn,
                self.offers,
                sdp.matches("\nm=").count(),
                answer.len()
            );
        }
        for f in answer_frames(&answer) {
            self.send(f);
        }
    }
}

/// The frames of an answer as mini-discord's `sfu.js` sends them (copied from tests/sfu.rs):
/// one if it is small, else parts of at most `PART_SDP_BYTES` of escaped SDP, `part`
/// counting from 0 and `more: true` on all but the last.
fn answer_frames(sdp: &str) -> Vec<Value> {
    let max = PART_SDP_BYTES;
    let mut parts = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, c) in sdp.char_indices() {
        let cost = match c {
            '\r' | '\n' | '"' | '\\' | '\t' => 2,
            c => c.len_utf8(),
        };
        if bytes + cost > max && i > start {
            parts.push(&sdp[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += cost;
    }
    parts.push(&sdp[start..]);
    if parts.len() == 1 {
        return vec![json!({"type":"answer","to":"sfu","sdp":sdp})];
    }
    let last = parts.len() - 1;
    parts
        .into_iter()
        .enumerate()
        .map(|(n, part)| {
            let mut f = json!({"type":"answer","to":"sfu","sdp":part,"part":n});
            if n < last {
                f["more"] = json!(true);
            }
            f
        })
        .collect()
}

/// `POST path` with a JSON body over HTTP/1.1 (`Connection: close`): status and JSON body.
fn post_json(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &Value) -> (u16, Value) {
    let body = body.to_string();
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    let mut s = TcpStream::connect(addr).expect("connect to mini-discord");
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s.write_all(req.as_bytes()).expect("send request");
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..split]);
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    // The server answers with Content-Length (no chunking) and closes.
    let json = serde_json::from_slice(raw.get(split + 4..).unwrap_or(&[])).unwrap_or(Value::Null);
    (status, json)
}

/// Sets up N participants in one mini-discord `sfu` room (the default voice channel,
/// `lounge`): registers N users (from one address: the server must trust 127.0.0.1 as a
/// proxy, `TRUSTED_PROXIES`, and each registration names its own forwarded address, as
/// tests/sfu.rs does), then joins them one at a time, each connecting its media before the
/// next joins (a member whose media is not up 20 s after joining is dropped). Participant 0
/// turns its camera on; the others ask to watch it.
fn setup_ours(a: &Args) -> (Vec<Conn>, Vec<Sig>) {
    let host = a
        .url
        .strip_prefix("http://")
        .unwrap_or(&a.url)
        .trim_end_matches('/');
    let addr = host
        .to_socket_addrs()
        .ok()
        .and_then(|mut i| i.next())
        .unwrap_or_else(|| panic!("--url {} is not http://HOST:PORT", a.url));
    let tokens: Vec<String> = (0..a.n)
        .map(|i| {
            let xff = format!("10.77.{}.{}", i / 250, i % 250 + 1);
            let (status, v) = post_json(
                addr,
                "/api/register",
                &[("X-Forwarded-For", &xff)],
                &json!({"username": format!("load{i}"), "password": "sfuload-password"}),
            );
            if status != 201 {
                panic!("register load{i}: {status} {v} (REGISTRATION=open, TRUSTED_PROXIES=127.0.0.1?)");
            }
            v["token"].as_str().expect("token").to_string()
        })
        .collect();
    let mut conns: Vec<Conn> = Vec::new();
    let mut sigs: Vec<Sig> = Vec::new();
    let idle = |conns: &mut Vec<Conn>, sigs: &mut Vec<Sig>| {
        let until = Instant::now() + Duration::from_millis(5);
        while Instant::now() < until {
            let now = Instant::now();
            for s in sigs.iter_mut() {
                s.tick(now, conns);
            }
            io_step(conns, until.min(now + OURS_READ_EVERY), &mut |_, _, _| {});
        }
    };
    // A bound on the whole setup, so a server that stops connecting cannot hold the run for
    // N × the per-participant wait: past it, the rest join without waiting and RESULT's
    // connections_up says how many made it.
    let setup_deadline = Instant::now() + Duration::from_secs(30 + 2 * a.n as u64);
    let mut first = String::new();
    for (who, token) in tokens.iter().enumerate() {
        let mut o = Ours::join(addr, "lounge", token, who, a.video && who == 0);
        if who == 0 {
            first = o.id.clone();
            if a.video {
                o.send(json!({"type":"state","muted":false,"deafened":false,
                              "video":true,"screen":false}));
            }
        } else if a.video {
            o.send(json!({"type":"watch","id":first,"on":true}));
        }
        let now = Instant::now();
        let rtc = Rtc::builder()
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .build(now);
        conns.push(Conn::with_rtc(who, a.bind, now, rtc));
        sigs.push(Sig::Ours(o));
        let deadline = (Instant::now() + Duration::from_secs(15)).min(setup_deadline);
        while !conns[who].connected && Instant::now() < deadline {
            idle(&mut conns, &mut sigs);
        }
        if !conns[who].connected {
            eprintln!(
                "sfuload: participant {who}: media not connected (15 s, or setup past its bound)"
            );
        }
    }
    // The last joins' renegotiations settle: everyone receives every other's audio (and
    // participant 0's camera).
    let ids: Vec<String> = sigs
        .iter()
        .map(|s| match s {
            Sig::Ours(o) => o.id.clone(),
            Sig::Janus(_) => unreachable!(),
        })
        .collect();
    let settled = |conns: &Vec<Conn>| {
        conns.iter().all(|c| {
            c.connected
                && ids.iter().enumerate().all(|(i, id)| {
                    i == c.who || c.recv.values().any(|(p, k)| p == id && k == "audio")
                })
                && (!a.video
                    || c.who == 0
                    || c.recv.values().any(|(p, k)| *p == first && k == "camera"))
        })
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while !settled(&conns) && Instant::now() < deadline {
        idle(&mut conns, &mut sigs);
    }
    let up = conns.iter().filter(|c| c.connected).count();
    let offers: u64 = sigs
        .iter()
        .map(|s| match s {
            Sig::Ours(o) => o.offers,
            Sig::Janus(_) => 0,
        })
        .sum();
    eprintln!(
        "sfuload: {up}/{} connected, {offers} offers answered{}",
        conns.len(),
        if settled(&conns) {
            ""
        } else {
            ", NOT all tracks negotiated after 15 s"
        }
    );
    (conns, sigs)
}

/// Reads the server's CPU time (user + system, seconds) from /proc.
fn cpu_s(pid: Option<u32>) -> f64 {
    let Some(pid) = pid else { return 0.0 };
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let rest = &s[s.rfind(')').unwrap_or(0) + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (f[11].parse::<f64>().unwrap_or(0.0) + f[12].parse::<f64>().unwrap_or(0.0)) / tick
}

/// Seconds the threads of `pid` (None: this process) spent runnable but waiting for a
/// core (`/proc/…/task/*/schedstat`, second field): near 0 on a quiet machine; when it is
/// not, other work shared the cores and the latency numbers say more about that than about
/// the server.
fn runq_wait_s(pid: Option<u32>) -> f64 {
    let dir = match pid {
        Some(p) => format!("/proc/{p}/task"),
        None => "/proc/self/task".to_string(),
    };
    let Ok(tasks) = std::fs::read_dir(dir) else {
        return 0.0;
    };
    let mut ns = 0u64;
    for t in tasks.flatten() {
        if let Ok(s) = std::fs::read_to_string(t.path().join("schedstat")) {
            ns += s
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    ns as f64 / 1e9
}

fn self_cpu_s() -> f64 {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

fn payload(len: usize, who: usize, seq: u64, sent_us: u64) -> Vec<u8> {
    let mut p = vec![0u8; len];
    p[0..4].copy_from_slice(&MAGIC.to_be_bytes());
    p[4..8].copy_from_slice(&(who as u32).to_be_bytes());
    p[8..16].copy_from_slice(&seq.to_be_bytes());
    p[16..24].copy_from_slice(&sent_us.to_be_bytes());
    p
}

/// The stamp of an audio packet (at 0) or a video frame (after its 1-byte VP8 header).
fn parse(p: &[u8]) -> Option<(usize, u64, u64)> {
    let p = match p.get(0..4) {
        Some(m) if m == MAGIC.to_be_bytes() => p,
        _ => p.get(1..)?,
    };
    if p.len() < 24 || p[0..4] != MAGIC.to_be_bytes() {
        return None;
    }
    let who = u32::from_be_bytes(p[4..8].try_into().ok()?) as usize;
    let seq = u64::from_be_bytes(p[8..16].try_into().ok()?);
    let sent = u64::from_be_bytes(p[16..24].try_into().ok()?);
    Some((who, seq, sent))
}

/// One round of I/O over every connection: drain each `Rtc`'s output (transmits, events;
/// media goes to `on_media(participant, received_at, data)`), then wait in `poll(2)` until
/// a socket is readable, the earliest `Rtc` timeout, or `wake`, and feed what arrived.
fn io_step(
    conns: &mut [Conn],
    wake: Instant,
    on_media: &mut dyn FnMut(usize, Instant, &str0m::media::MediaData),
) {
    let mut wake = wake;
    for c in conns.iter_mut() {
        loop {
            match c.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    c.next_timeout = t;
                    break;
                }
                Ok(Output::Transmit(t)) => {
                    let _ = c.sock.send_to(&t.contents, t.destination);
                }
                Ok(Output::Event(Event::Connected)) => c.connected = true,
                Ok(Output::Event(Event::MediaData(d))) => on_media(c.who, Instant::now(), &d),
                Ok(Output::Event(_)) => {}
                Err(e) => {
                    eprintln!("sfuload: participant {}: {e}", c.who);
                    c.next_timeout = Instant::now() + Duration::from_secs(3600);
                    break;
                }
            }
        }
        wake = wake.min(c.next_timeout);
    }
    let mut pfds: Vec<libc::pollfd> = conns
        .iter()
        .map(|c| libc::pollfd {
            fd: c.sock.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let wait_ms = wake.saturating_duration_since(Instant::now()).as_millis() as i32;
    unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, wait_ms) };
    let now = Instant::now();
    let mut buf = [0u8; 2048];
    for (c, p) in conns.iter_mut().zip(&pfds) {
        if p.revents & libc::POLLIN != 0 {
            loop {
                match c.sock.recv_from(&mut buf) {
                    Ok((n, source)) => {
                        let Ok(contents) = buf[..n].try_into() else {
                            continue;
                        };
                        let input = Input::Receive(
                            now,
                            Receive {
                                proto: Protocol::Udp,
                                source,
                                destination: c.local,
                                contents,
                            },
                        );
                        let _ = c.rtc.handle_input(input);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => break,
                }
            }
        }
        if now >= c.next_timeout {
            let _ = c.rtc.handle_input(Input::Timeout(now));
        }
    }
}

fn main() {
    str0m::crypto::from_feature_flags().install_process_default();
    let a = args();
    let start = Instant::now();
    let (mut conns, mut sigs) = match a.target.as_str() {
        "janus" => setup_janus(&a, start),
        "ours" => setup_ours(&a),
        t => panic!("unknown --target {t}"),
    };
    let setup_s = start.elapsed().as_secs_f64();
    let hist = || Histogram::<u64>::new_with_bounds(1, 10_000_000, 3).unwrap();
    let mut st = Stats {
        lat_audio: Some(hist()),
        lat_video: Some(hist()),
        ..Default::default()
    };
    // Per sender: the sequence numbers sent inside the window (first, last).
    let mut window_seqs: HashMap<usize, (u64, u64)> = HashMap::new();
    // Per receiving participant and sender: packets of the window received.
    let mut got: HashMap<(usize, usize), u64> = HashMap::new();
    let mut seq = vec![0u64; a.n];
    let mut vseq = 0u64;
    let t0 = Instant::now();
    let win_start = t0 + Duration::from_secs_f64(a.warmup);
    let win_end = win_start + Duration::from_secs_f64(a.duration);
    let stop = win_end + Duration::from_secs(1); // drain what is in flight
    let mut next_audio: Vec<Instant> = (0..a.n)
        .map(|i| t0 + AUDIO_EVERY.mul_f64(i as f64 / a.n as f64))
        .collect();
    let frame_every = Duration::from_secs(1) / VIDEO_FPS;
    let frame_bytes = VIDEO_BPS / 8 / VIDEO_FPS as usize;
    let mut next_frame = t0;
    let (mut cpu0, mut self0) = (0.0, 0.0);
    let (mut cpu1, mut self1) = (0.0, 0.0);
    let (mut wait0, mut wait1) = ((0.0, 0.0), (0.0, 0.0));
    let mut in_window = false;
    loop {
        let now = Instant::now();
        if !in_window && now >= win_start {
            in_window = true;
            cpu0 = cpu_s(a.server_pid);
            self0 = self_cpu_s();
            wait0 = (runq_wait_s(a.server_pid), runq_wait_s(None));
        }
        if in_window && now >= win_end && cpu1 == 0.0 {
            cpu1 = cpu_s(a.server_pid);
            self1 = self_cpu_s();
            wait1 = (runq_wait_s(a.server_pid), runq_wait_s(None));
        }
        if now >= stop {
            break;
        }
        for s in &mut sigs {
            s.tick(now, &mut conns);
        }
        // Sends due (only once a publisher's connection is up).
        let sending = now < win_end;
        for c in conns
            .iter_mut()
            .filter(|c| c.audio.is_some() && c.connected)
        {
            let who = c.who;
            if next_audio[who] + AUDIO_EVERY * 5 < now {
                next_audio[who] = now; // connected late, or the loop stalled: no burst
            }
            if sending && now >= next_audio[who] {
                next_audio[who] += AUDIO_EVERY;
                seq[who] += 1;
                if now >= win_start {
                    let e = window_seqs.entry(who).or_insert((seq[who], seq[who]));
                    e.1 = seq[who];
                }
                let mid = c.audio.unwrap();
                if let Some(w) = c.rtc.writer(mid) {
                    let pt = w.payload_params().next().map(|p| p.pt());
                    if let Some(pt) = pt {
                        let rtp = MediaTime::from_micros(micros(t0, now));
                        let data = payload(AUDIO_BYTES, who, seq[who], micros(start, now));
                        let _ = w.write(pt, now, rtp, data);
                    }
                }
            }
            if next_frame + frame_every * 5 < now {
                next_frame = now;
            }
            if let (Some(mid), true) = (c.video, sending && now >= next_frame) {
                next_frame += frame_every;
                vseq += 1;
                if let Some(w) = c.rtc.writer(mid) {
                    let params: Vec<_> = w.payload_params().collect();
                    let pt = params
                        .iter()
                        .find(|p| p.spec().codec == Codec::Vp8)
                        .or(params.first())
                        .map(|p| p.pt());
                    if let Some(pt) = pt {
                        let rtp = MediaTime::from_micros(micros(t0, now));
                        // A first byte with the VP8 keyframe bit (bit 0) clear, so
                        // depacketizers take every frame; our stamp follows it.
                        let mut data = vec![0x10u8];
                        data.extend(payload(frame_bytes - 1, who, vseq, micros(start, now)));
                        let _ = w.write(pt, now, rtp, data);
                    }
                }
            }
        }
        let mut wake = now + Duration::from_millis(5);
        for (i, at) in next_audio.iter().enumerate() {
            if conns
                .iter()
                .any(|c| c.who == i && c.audio.is_some() && c.connected)
            {
                wake = wake.min(*at);
            }
        }
        if a.video {
            wake = wake.min(next_frame);
        }
        io_step(&mut conns, wake, &mut |who, at, d| {
            let Some((from, s, sent)) = parse(&d.data) else {
                return;
            };
            let lat = micros(start, at).saturating_sub(sent).max(1);
            let video = d.data.len() > AUDIO_BYTES;
            let win = window_seqs.get(&from).copied();
            let counted = if video {
                at >= win_start && at < win_end
            } else {
                win.is_some_and(|(lo, hi)| s >= lo && s <= hi)
            };
            if counted {
                st.packets += **d.seq_range.end() - **d.seq_range.start() + 1;
                if video {
                    st.video_frames += 1;
                    let _ = st.lat_video.as_mut().unwrap().record(lat);
                } else {
                    st.audio_rx += 1;
                    *got.entry((who, from)).or_default() += 1;
                    let _ = st.lat_audio.as_mut().unwrap().record(lat);
                }
            }
        });
    }
    if let Some(pid) = a.server_pid {
        if !std::path::Path::new(&format!("/proc/{pid}/stat")).exists() {
            // Its CPU time cannot be read: no RESULT rather than a wrong one.
            eprintln!("sfuload: the server (pid {pid}) exited during the run; no RESULT");
            std::process::exit(1);
        }
    }
    let up = conns.iter().filter(|c| c.connected).count();
    // Ours: participants whose /ws/voice ended (an offer refused, the server closed it).
    let signaling_ended = sigs
        .iter()
        .filter(|s| matches!(s, Sig::Ours(o) if o.closed))
        .count();
    let expected: u64 = (0..a.n)
        .map(|from| window_seqs.get(&from).map_or(0, |(lo, hi)| hi - lo + 1) * (a.n as u64 - 1))
        .sum();
    let lost = expected.saturating_sub(st.audio_rx);
    let la = st.lat_audio.take().unwrap();
    let lv = st.lat_video.take().unwrap();
    let server_cpu = cpu1 - cpu0;
    let result = json!({
        "label": a.label,
        "target": a.target,
        "n": a.n,
        "video": a.video,
        "connections_up": up,
        "connections": conns.len(),
        "signaling_ended": signaling_ended,
        "setup_s": setup_s,
        "window_s": a.duration,
        "forwarded_packets": st.packets,
        "forwarded_pps": st.packets as f64 / a.duration,
        "server_cpu_s": server_cpu,
        "server_cores": server_cpu / a.duration,
        "server_cpu_us_per_packet": if st.packets > 0 { server_cpu * 1e6 / st.packets as f64 } else { 0.0 },
        "audio_expected": expected,
        "audio_received": st.audio_rx,
        "audio_loss": if expected > 0 { lost as f64 / expected as f64 } else { 1.0 },
        "audio_latency_us": {"p50": la.value_at_quantile(0.5), "p99": la.value_at_quantile(0.99), "max": la.max()},
        "video_frames": st.video_frames,
        "video_latency_us": {"p50": lv.value_at_quantile(0.5), "p99": lv.value_at_quantile(0.99), "max": lv.max()},
        "load_cpu_s": self1 - self0,
        "load_cores": (self1 - self0) / a.duration,
        // Time runnable but not running, in the window: the machine was not quiet.
        "server_runq_wait_s": if a.server_pid.is_some() { wait1.0 - wait0.0 } else { 0.0 },
        "load_runq_wait_s": wait1.1 - wait0.1,
    });
    println!("RESULT {result}");
    if let Some(f) = &a.json {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(f)
            .unwrap();
        writeln!(f, "{result}").unwrap();
    }
}
