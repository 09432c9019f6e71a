//! One browser's peer connection with the media server, owned by the media thread
//! (`thread.rs`): its `str0m::Rtc`, the three m-lines it sends on (microphone, camera,
//! screen), the m-lines we send it (one per source and kind it receives), and the offer in
//! flight. The server makes every offer; `negotiate` turns the wanted changes into the next
//! one, and `accept_answer` completes it. No I/O here: the thread drains `rtc` after every
//! change.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::media::{Direction, MediaKind, Mid, Simulcast, SimulcastLayer};
use str0m::{Candidate, Rtc};

use super::simulcast::{self, Downlink, LayerChoice, LayerMeter, LAYERS};
use super::MediaFlags;

/// What a track carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
    Audio,
    Camera,
    Screen,
}

impl Slot {
    pub const ALL: [Slot; 3] = [Slot::Audio, Slot::Camera, Slot::Screen];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Slot::Audio => "audio",
            Slot::Camera => "camera",
            Slot::Screen => "screen",
        }
    }

    fn kind(self) -> MediaKind {
        match self {
            Slot::Audio => MediaKind::Audio,
            Slot::Camera | Slot::Screen => MediaKind::Video,
        }
    }
}

/// Where an outgoing track is in its negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutState {
    /// Wanted; goes into the next offer.
    ToOpen,
    /// In the offer in flight.
    Negotiating,
    /// Answered: packets may be written to it.
    Open,
    /// Its source left: the next offer parks the m-line (`inactive`) for the next source
    /// of the same kind, rather than stop it: a stopped m-line stays in every later offer
    /// (str0m as the offerer never reuses one), so a long call's SDP would only grow.
    ToStop,
    /// The park is in the offer in flight; moved to `Peer::spare` once answered.
    Stopping,
}

/// A track we send to this peer: `source`'s `slot`.
#[derive(Debug)]
pub struct OutTrack {
    pub source: u64,
    pub slot: Slot,
    pub mid: Option<Mid>,
    pub state: OutState,
}

pub struct Peer {
    pub id: u64,
    pub room: String,
    pub rtc: Rtc,
    pub flags: MediaFlags,
    /// The m-lines this peer sends us on, by `Slot::index` (set by the first offer).
    pub recv: [Option<Mid>; 3],
    pub out: Vec<OutTrack>,
    /// Parked m-lines (inactive, their source gone), by kind: the next source of that kind
    /// this peer receives takes one over before a new m-line is made.
    spare: Vec<(Mid, MediaKind)>,
    /// The offer in flight, if any: one at a time; changes wanted meanwhile wait for it.
    pending: Option<SdpPendingOffer>,
    /// Sources whose screen share this peer asked for (`watch` on).
    pub watching: HashSet<u64>,
    pub joined: Instant,
    /// When a datagram of this peer was last accepted.
    pub last_heard: Option<Instant>,
    pub connected: bool,
    /// When `rtc` next wants `Input::Timeout`.
    pub next_timeout: Instant,
    /// When a keyframe was last asked of this peer, per slot and simulcast layer (index 0:
    /// no layer, then `1 + layer`), to throttle requests.
    pub keyframe_asked: [[Option<Instant>; LAYERS + 1]; 3],
    /// Its camera's simulcast layers as they arrive (`simulcast.rs`).
    pub meter: LayerMeter,
    /// Its downlink estimate, and per camera it receives, which layer it gets.
    pub downlink: Downlink,
    pub layers: HashMap<u64, LayerChoice>,
    /// Its downlink's share per camera it receives, in bit/s (set at every re-pick).
    pub camera_budget: f64,
    /// Speaking, from the audio level of its packets, and when it was last loud.
    pub speaking: bool,
    pub last_loud: Option<Instant>,
    /// Set when `rtc` failed or closed: removed on the next sweep.
    pub dead: Option<&'static str>,
}

/// At most one keyframe request per source track per this interval: a receiver that
/// misses several frames asks once, and a source is not made to send keyframes back to back.
pub const KEYFRAME_INTERVAL: Duration = Duration::from_millis(500);

/// How many times `negotiate` draws a batch of new mids before it gives up for now: a
/// full room's batch repeats a mid about one time in twenty, so eight draws all failing
/// is about one in 10^10.
const MID_DRAWS: usize = 8;

impl Peer {
    pub fn new(id: u64, room: String, rtc: Rtc, flags: MediaFlags, now: Instant) -> Peer {
        Peer {
            id,
            room,
            rtc,
            flags,
            recv: [None; 3],
            out: Vec::new(),
            spare: Vec::new(),
            pending: None,
            watching: HashSet::new(),
            joined: now,
            last_heard: None,
            connected: false,
            next_timeout: now,
            keyframe_asked: [[None; LAYERS + 1]; 3],
            meter: LayerMeter::default(),
            downlink: Downlink::default(),
            layers: HashMap::new(),
            camera_budget: simulcast::START_BPS,
            speaking: false,
            last_loud: None,
            dead: None,
        }
    }

    /// Which of this peer's sending m-lines `mid` is.
    pub fn slot_of(&self, mid: Mid) -> Option<Slot> {
        Slot::ALL
            .into_iter()
            .find(|s| self.recv[s.index()] == Some(mid))
    }

    /// The outgoing track for `source`'s `slot`, if there is one that is not being stopped.
    pub fn out_track(&self, source: u64, slot: Slot) -> Option<&OutTrack> {
        self.out.iter().find(|t| {
            t.source == source
                && t.slot == slot
                && !matches!(t.state, OutState::ToStop | OutState::Stopping)
        })
    }

    /// The open m-line `source`'s `slot` is written to.
    pub fn open_mid(&self, source: u64, slot: Slot) -> Option<Mid> {
        self.out_track(source, slot)
            .filter(|t| t.state == OutState::Open)
            .and_then(|t| t.mid)
    }

    /// The simulcast layer of `source`'s `slot` this peer gets or waits for (`None`: not
    /// simulcast, or not chosen yet), for its keyframe requests.
    pub fn wanted_layer(&self, source: u64, slot: Slot) -> Option<usize> {
        if slot != Slot::Camera {
            return None;
        }
        self.layers
            .get(&source)
            .and_then(|c| c.target.or(c.current))
    }

    /// Wants `source`'s `slot` sent to this peer; `true` if that is new.
    pub fn want(&mut self, source: u64, slot: Slot) -> bool {
        if self.out_track(source, slot).is_some() {
            return false;
        }
        self.out.push(OutTrack {
            source,
            slot,
            mid: None,
            state: OutState::ToOpen,
        });
        true
    }

    /// `source` left: stop every track of it; `true` if a renegotiation is needed.
    pub fn forget(&mut self, source: u64) -> bool {
        self.watching.remove(&source);
        self.layers.remove(&source);
        let mut changed = false;
        self.out.retain_mut(|t| {
            if t.source != source {
                return true;
            }
            match t.state {
                // Never offered: nothing to stop.
                OutState::ToOpen => return false,
                OutState::Negotiating | OutState::Open => {
                    t.state = OutState::ToStop;
                    changed = true;
                }
                OutState::ToStop | OutState::Stopping => {}
            }
            true
        });
        changed
    }

    /// The next offer, as the `/ws/voice` frame's JSON text, if something changed and no
    /// offer is in flight. The first offer also makes the three m-lines the browser sends on.
    pub fn negotiate(&mut self) -> Option<String> {
        if self.pending.is_some() || self.dead.is_some() {
            return None;
        }
        // Tracks to open take a parked m-line of their kind first; the rest get new ones.
        let mut spare = self.spare.clone();
        let (mut reuse, mut make) = (Vec::new(), Vec::new());
        for (i, t) in self.out.iter().enumerate() {
            if t.state != OutState::ToOpen {
                continue;
            }
            match spare.iter().position(|(_, k)| *k == t.slot.kind()) {
                Some(at) => reuse.push((i, spare.swap_remove(at).0)),
                None => make.push(i),
            }
        }
        // str0m (0.24.1) draws each new mid at random and checks it against the session
        // only, not against the mids added before it in the same batch, so a large batch
        // can repeat one (about one full-room offer in twenty) and the browser refuses the
        // offer. A batch with a repeat is dropped unapplied and drawn again. (Nothing that
        // changes the session directly, `set_direction`, runs before the batch is kept.)
        for _ in 0..MID_DRAWS {
            let mut api = self.rtc.sdp_api();
            let mut fresh = Vec::new();
            let recv = if self.recv[0].is_none() {
                // The camera may come as simulcast layers (`simulcast.rs`); the browser
                // answers with the rids it will send, or none.
                let mids = Slot::ALL.map(|slot| {
                    let layers = (slot == Slot::Camera).then(camera_layers);
                    api.add_media(slot.kind(), Direction::RecvOnly, None, None, layers)
                });
                fresh.extend(mids);
                Some(mids)
            } else {
                None
            };
            let mut opened = Vec::new();
            for &i in &make {
                let t = &self.out[i];
                // Audio and camera of one source share a stream (lip sync); the screen share
                // is a stream of its own.
                let stream = match t.slot {
                    Slot::Screen => format!("{}-screen", t.source),
                    _ => t.source.to_string(),
                };
                let track = format!("{}-{}", t.source, t.slot.as_str());
                let mid = api.add_media(
                    t.slot.kind(),
                    Direction::SendOnly,
                    Some(stream),
                    Some(track),
                    None,
                );
                fresh.push(mid);
                opened.push((i, mid));
            }
            let distinct: HashSet<Mid> = fresh.iter().copied().collect();
            if distinct.len() != fresh.len() {
                continue; // `api` is dropped: nothing of this batch reaches the session
            }
            for &(i, mid) in &reuse {
                api.set_direction(mid, Direction::SendOnly);
                opened.push((i, mid));
            }
            for t in &mut self.out {
                if t.state == OutState::ToStop {
                    if let Some(mid) = t.mid {
                        api.set_direction(mid, Direction::Inactive);
                    }
                    t.state = OutState::Stopping;
                }
            }
            if let Some(mids) = recv {
                self.recv = mids.map(Some);
            }
            for (i, mid) in opened {
                self.out[i].mid = Some(mid);
                self.out[i].state = OutState::Negotiating;
            }
            self.spare = spare;
            if !api.has_changes() {
                return None;
            }
            let (offer, pending) = api.apply()?;
            self.pending = Some(pending);
            return Some(self.offer_frame(offer.to_sdp_string()));
        }
        log::warn!("media peer {}: no offer without a repeated mid", self.id);
        None
    }

    /// `{"type":"offer","from":"sfu","sdp","send":{slot: mid},"recv":{mid:{"peer","kind"}}}`:
    /// the SDP and which m-line is which, so the browser needs no SDP parsing.
    fn offer_frame(&self, sdp: String) -> String {
        let mut send = Map::new();
        for slot in Slot::ALL {
            if let Some(mid) = self.recv[slot.index()] {
                send.insert(slot.as_str().into(), Value::String(mid.to_string()));
            }
        }
        let mut recv = Map::new();
        for t in &self.out {
            if let (Some(mid), OutState::Negotiating | OutState::Open) = (t.mid, t.state) {
                recv.insert(
                    mid.to_string(),
                    json!({"peer": t.source.to_string(), "kind": t.slot.as_str()}),
                );
            }
        }
        json!({"type":"offer","from":"sfu","sdp":sdp,"send":send,"recv":recv}).to_string()
    }

    /// Applies the browser's answer to the offer in flight. Returns the tracks that just
    /// opened (source, slot), so the thread can ask their sources for a keyframe.
    pub fn accept_answer(&mut self, sdp: &str) -> Result<Vec<(u64, Slot)>, String> {
        let Some(pending) = self.pending.take() else {
            return Err("no offer is waiting for an answer".into());
        };
        let answer = SdpAnswer::from_sdp_string(sdp).map_err(|e| format!("bad answer: {e}"))?;
        self.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .map_err(|e| format!("answer refused: {e}"))?;
        let mut opened = Vec::new();
        for t in &mut self.out {
            if t.state == OutState::Negotiating {
                t.state = OutState::Open;
                opened.push((t.source, t.slot));
            }
        }
        for t in self.out.iter().filter(|t| t.state == OutState::Stopping) {
            if let Some(mid) = t.mid {
                self.spare.push((mid, t.slot.kind()));
            }
        }
        self.out.retain(|t| t.state != OutState::Stopping);
        Ok(opened)
    }

    /// A trickled candidate of the browser (`candidate:…`, with or without `a=`).
    pub fn add_candidate(&mut self, candidate: &str) {
        let c = candidate.trim().trim_start_matches("a=");
        if c.is_empty() {
            return;
        }
        if let Ok(c) = Candidate::from_sdp_string(c) {
            self.rtc.add_remote_candidate(c);
        }
    }

    /// Whether a keyframe may be asked of this peer's `slot` (of simulcast `layer`) now, and
    /// notes that it was.
    pub fn may_ask_keyframe(&mut self, slot: Slot, layer: Option<usize>, now: Instant) -> bool {
        let last = &mut self.keyframe_asked[slot.index()][layer.map_or(0, |l| l + 1)];
        if last.is_some_and(|t| now.duration_since(t) < KEYFRAME_INTERVAL) {
            return false;
        }
        *last = Some(now);
        true
    }
}

/// The camera m-line's receive layers: `a=rid:h recv`, `m`, `l` and `a=simulcast:recv h;m;l`.
fn camera_layers() -> Simulcast {
    let mut s = Simulcast::new();
    for rid in simulcast::RIDS {
        s.add_recv_layer(SimulcastLayer::new(rid));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The mids of an offer frame's SDP, in order.
    fn mids(frame: &str) -> Vec<String> {
        let v: Value = serde_json::from_str(frame).unwrap();
        v["sdp"]
            .as_str()
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("a=mid:"))
            .map(|m| m.trim().to_string())
            .collect()
    }

    /// str0m 0.24.1 draws each new mid at random (three characters) and checks it only
    /// against the session, not against the mids added earlier in the same batch: a full
    /// room's first offer (3 + 49 × 3 m-lines) repeated a mid in about one offer in twenty,
    /// and the browser refused it. Two hundred such offers all have distinct mids.
    #[test]
    fn a_full_rooms_first_offer_never_repeats_a_mid() {
        let now = Instant::now();
        for round in 0..200 {
            let rtc = super::super::thread::new_rtc(now);
            let mut p = Peer::new(1, "room".into(), rtc, MediaFlags::default(), now);
            for source in 2..=50 {
                for slot in Slot::ALL {
                    assert!(p.want(source, slot));
                }
            }
            let frame = p.negotiate().expect("an offer");
            let m = mids(&frame);
            assert_eq!(m.len(), 3 + 49 * 3);
            let unique: HashSet<&String> = m.iter().collect();
            assert_eq!(
                unique.len(),
                m.len(),
                "round {round}: a mid repeats in {m:?}"
            );
        }
    }

    /// Answers `frame`'s offer as a browser would, with a str0m `Rtc` of its own.
    fn answer(browser: &mut Rtc, frame: &str) -> String {
        let v: Value = serde_json::from_str(frame).unwrap();
        let offer = str0m::change::SdpOffer::from_sdp_string(v["sdp"].as_str().unwrap()).unwrap();
        browser
            .sdp_api()
            .accept_offer(offer)
            .unwrap()
            .to_sdp_string()
    }

    /// Who each receiving m-line of an offer frame carries: (mid, peer, kind), by mid.
    fn recv_map(frame: &str) -> Vec<(String, String, String)> {
        let v: Value = serde_json::from_str(frame).unwrap();
        let mut m: Vec<_> = v["recv"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(mid, i)| {
                let s = |k: &str| i[k].as_str().unwrap().to_string();
                (mid.clone(), s("peer"), s("kind"))
            })
            .collect();
        m.sort();
        m
    }

    /// A source that leaves parks its m-lines, and the next source takes them over: people
    /// coming and going all evening do not grow the SDP (before, every departure left three
    /// stopped m-lines in every later offer).
    #[test]
    fn a_departed_sources_m_lines_are_reused_by_the_next_one() {
        let now = Instant::now();
        let mut p = Peer::new(
            1,
            "room".into(),
            super::super::thread::new_rtc(now),
            MediaFlags::default(),
            now,
        );
        let mut browser = Rtc::new(now);
        for slot in Slot::ALL {
            p.want(2, slot);
        }
        let first = p.negotiate().unwrap();
        p.accept_answer(&answer(&mut browser, &first)).unwrap();
        let before: Vec<String> = recv_map(&first).into_iter().map(|r| r.0).collect();
        assert_eq!(mids(&first).len(), 6);

        assert!(p.forget(2));
        let park = p.negotiate().unwrap();
        assert!(
            recv_map(&park).is_empty(),
            "nothing is received once 2 left"
        );
        p.accept_answer(&answer(&mut browser, &park)).unwrap();

        for round in 3..8 {
            for slot in Slot::ALL {
                p.want(round, slot);
            }
            let next = p.negotiate().unwrap();
            assert_eq!(mids(&next).len(), 6, "round {round}: no m-line was added");
            let now_recv = recv_map(&next);
            assert!(now_recv.iter().all(|r| r.1 == round.to_string()));
            let reused: Vec<String> = now_recv.iter().map(|r| r.0.clone()).collect();
            assert_eq!(
                reused, before,
                "round {round}: the same three m-lines carry the newcomer"
            );
            p.accept_answer(&answer(&mut browser, &next)).unwrap();
            assert!(p.open_mid(round, Slot::Audio).is_some());
            assert!(p.forget(round));
            let park = p.negotiate().unwrap();
            p.accept_answer(&answer(&mut browser, &park)).unwrap();
        }
    }
}
