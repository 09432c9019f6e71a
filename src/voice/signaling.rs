//! The signaling rules of `/ws/voice` (API.md "Voice signaling"): which frames a peer may
//! send (offer, answer, candidate, state, speaking, watch), how big an SDP or an ICE candidate may be, and how fast a user may signal. Pure:
//! `Parts` joins an `sfu` room's answer sent in parts (each frame under the 64 KiB cap),
//! `check` turns a client frame into a `Signal` or an error, and the reader hands the
//! `Signal` to the router, whose `VoiceRooms` (`rooms.rs`) decides who it reaches. Runs on
//! the voice connection's reader thread.

use serde_json::{Map, Value};

use crate::community::Perms;
use crate::error::{ApiError, ApiResult};
use crate::ratelimit::PerUser;
use crate::realtime::protocol::ClientVoice;

/// Signaling frames (offer, answer, candidate, speaking, watch) per user, shared by all of the
/// user's voice sockets: a burst of 200 (ICE candidates to nine peers), then 50 per second.
/// Per user, not per connection (issue 19, finding 2): a reconnect used to buy a fresh 200.
const SIGNAL_BURST: f64 = 200.0;
const SIGNAL_RATE: f64 = 50.0;
/// Voice `state` changes per user: a burst of 20, then 5 a second. People toggle mute and
/// deafen a few times a minute. What other clients see is folded anyway
/// (`realtime/router.rs`); this keeps a flood from costing the router any work.
const STATE_BURST: f64 = 20.0;
const STATE_RATE: f64 = 5.0;
/// `/ws/voice` joins per user: 10 at once, then one every 2 s. A join is a click, and each
/// one makes every peer in the room set up a new call (`peer_joined`): looping it attacks
/// the room. Past the budget the handshake gets 429 before the upgrade.
const JOIN_BURST: f64 = 10.0;
const JOIN_RATE: f64 = 0.5;
/// An SDP offer or answer for an audio call is a few KiB; 16 KiB leaves room for many codecs.
pub const MAX_SDP_BYTES: usize = 16 * 1024;
/// In an `sfu` room one peer connection carries every source: 3 m-lines of its own plus
/// up to 3 per other peer (audio, camera, a watched screen), 150 at `SFU_MAX_PEERS` = 50.
/// A browser's answer spends about 1 KiB per m-line with the codecs the media server
/// offers (measured in `tests/sfu.rs`), so a full room's answer is well under this. It is
/// also the size the media server's own offers must stay under: they go out through the
/// same outbox, which closes past `writer::MAX_QUEUED_BYTES` (256 KiB).
pub const MAX_SFU_SDP_BYTES: usize = 224 * 1024;
/// How much escaped SDP a client puts in one part of an answer (`Parts`): with the JSON
/// around it the frame stays under the 64 KiB cap of every `/ws/voice` socket
/// (`realtime::ws::MAX_MESSAGE_BYTES`). `sfu.js` and the bots of `tests/sfu.rs` split so;
/// the browser's copy and `bench/sfuload`'s are checked against this one by a test below.
pub const PART_SDP_BYTES: usize = 60_000;
// A full room's answer is about 4 parts (a little more with its escapes).
const _: () = assert!(MAX_SFU_SDP_BYTES.div_ceil(PART_SDP_BYTES) <= 4);
/// The parts one answer may come in. Only its first part is charged to the signaling budget
/// (a refused part would lose the whole answer and stall the room's negotiation), so this
/// bounds what one charge buys: a client splitting into tiny parts gets `bad_request`.
pub const MAX_ANSWER_PARTS: u32 = 16;
/// One ICE candidate object is a few hundred bytes.
pub const MAX_CANDIDATE_BYTES: usize = 2 * 1024;
/// Peer ids are decimal connection ids; anything longer cannot name a peer.
const MAX_PEER_ID_BYTES: usize = 32;

/// What a checked signaling frame asks the router to do.
#[derive(Debug, PartialEq)]
pub enum Signal {
    /// Relay `frame` (its `type` and payload; the router adds `from`) to peer `to`.
    Relay {
        to: String,
        frame: Map<String, Value>,
    },
    State {
        muted: bool,
        deafened: bool,
        video: bool,
        screen: bool,
    },
    Speaking {
        speaking: bool,
    },
}

/// The per-user voice budgets, shared by all of a user's voice sockets.
pub struct Budgets {
    joins: PerUser,
    signals: PerUser,
    states: PerUser,
}

impl Default for Budgets {
    fn default() -> Budgets {
        Budgets {
            joins: PerUser::new(JOIN_RATE, JOIN_BURST),
            signals: PerUser::new(SIGNAL_RATE, SIGNAL_BURST),
            states: PerUser::new(STATE_RATE, STATE_BURST),
        }
    }
}

impl Budgets {
    /// One `/ws/voice` join of `user_id`; `Err(ms)` until the next is allowed.
    pub fn join(&self, user_id: i64) -> Result<(), u64> {
        self.joins.take(user_id)
    }

    /// One frame `op` of `user_id`: `state` from its own budget, the rest from signaling's.
    pub fn frame(&self, user_id: i64, op: &ClientVoice) -> Result<(), u64> {
        match op {
            ClientVoice::State { .. } => self.states.take(user_id),
            _ => self.signals.take(user_id),
        }
    }
}

/// Checks one signaling frame of a mesh room. `ping` is answered by the reader itself and
/// never gets here.
pub fn check(op: ClientVoice) -> ApiResult<Signal> {
    check_in(op, MAX_SDP_BYTES)
}

/// `check` with the SDP cap of the room's mode (`MAX_SDP_BYTES` or `MAX_SFU_SDP_BYTES`).
#[inline(never)]
pub fn check_in(op: ClientVoice, max_sdp: usize) -> ApiResult<Signal> {
    match op {
        ClientVoice::Offer { to, sdp } => {
            sdp_ok(&sdp, max_sdp)?;
            relay("offer", to, "sdp", Value::String(sdp))
        }
        ClientVoice::Answer { to, sdp, .. } => {
            sdp_ok(&sdp, max_sdp)?;
            relay("answer", to, "sdp", Value::String(sdp))
        }
        ClientVoice::Candidate { to, candidate } => {
            if !(candidate.is_object() || candidate.is_null()) {
                return Err(ApiError::bad_request("candidate must be an object"));
            }
            if candidate.to_string().len() > MAX_CANDIDATE_BYTES {
                return Err(ApiError::bad_request(format!(
                    "candidate is over {MAX_CANDIDATE_BYTES} bytes"
                )));
            }
            relay("candidate", to, "candidate", candidate)
        }
        // API.md: deafened implies muted.
        ClientVoice::State {
            muted,
            deafened,
            video,
            screen,
        } => Ok(Signal::State {
            muted: muted || deafened,
            deafened,
            video,
            screen,
        }),
        ClientVoice::Speaking { speaking } => Ok(Signal::Speaking { speaking }),
        // Relayed like an offer, and from the same signaling budget: the sharer's client
        // decides whom it sends its screen track to (mesh mode).
        ClientVoice::Watch { id, on } => relay("watch", id, "on", Value::Bool(on)),
        ClientVoice::Ping => Err(ApiError::bad_request("ping is answered elsewhere")),
    }
}

fn relay(kind: &str, to: String, key: &str, value: Value) -> ApiResult<Signal> {
    if to.is_empty() || to.len() > MAX_PEER_ID_BYTES {
        // API.md: `to` must be a peer in the same room; anything else is not_found.
        return Err(ApiError::not_found("no such peer in this room"));
    }
    let mut frame = Map::new();
    frame.insert("type".into(), Value::String(kind.into()));
    frame.insert(key.into(), value);
    Ok(Signal::Relay { to, frame })
}

/// The `speak` and `stream` permissions of API.md applied to a checked frame (`perms`: the
/// sender's in this room, from `community::perms`): without `stream`, `state` with video or
/// screen on is refused (`forbidden`), and so is an offer or answer that would send video;
/// without `speak` the state is forced muted and `speaking` is never true.
pub fn allowed(signal: Signal, perms: Perms) -> ApiResult<Signal> {
    allowed_in(signal, perms, false)
}

/// `allowed` for a room of either mode. In an `sfu` room the browser's answer always has
/// its camera and screen m-lines (the server offered them), so the SDP says nothing about
/// what it will send: there the media thread forwards video only while the peer's `video`
/// / `screen` flag is on, and those flags need `stream` (checked here as in mesh).
pub fn allowed_in(signal: Signal, perms: Perms, sfu: bool) -> ApiResult<Signal> {
    let stream = perms.has(Perms::STREAM);
    let speak = perms.has(Perms::SPEAK);
    match signal {
        Signal::State {
            muted,
            deafened,
            video,
            screen,
        } => {
            if (video || screen) && !stream {
                return Err(ApiError::forbidden("you need stream to share video here"));
            }
            Ok(Signal::State {
                muted: muted || !speak,
                deafened,
                video,
                screen,
            })
        }
        Signal::Speaking { speaking } => Ok(Signal::Speaking {
            speaking: speaking && speak,
        }),
        Signal::Relay { to, frame } => {
            let sdp = frame.get("sdp").and_then(Value::as_str).unwrap_or("");
            if !stream && !sfu && sends_video(sdp) {
                return Err(ApiError::forbidden("you need stream to send video here"));
            }
            Ok(Signal::Relay { to, frame })
        }
    }
}

/// Whether an SDP offers to send video: an `m=video` section with a port other than 0 whose
/// direction lets it send (`sendrecv`, the default, or `sendonly`) and that carries a track
/// (`a=msid:` or `a=ssrc:`; a browser's receive-only transceiver has neither).
fn sends_video(sdp: &str) -> bool {
    let mut sections = sdp.split("\nm=").skip(1);
    sections.any(|m| {
        let m = m.trim_start_matches("m=");
        if !m.starts_with("video ") || m.starts_with("video 0 ") {
            return false;
        }
        let lines: Vec<&str> = m.lines().map(str::trim).collect();
        let sending = !lines
            .iter()
            .any(|l| *l == "a=recvonly" || *l == "a=inactive");
        let track = lines
            .iter()
            .any(|l| l.starts_with("a=msid:") || l.starts_with("a=ssrc:"));
        sending && track
    })
}

/// An `sfu` room's answer arriving in parts (API.md's 64 KiB frame cap holds for every
/// socket, and a full room's answer is up to `MAX_SFU_SDP_BYTES`). One per connection, on
/// its reader: part 0 (or a whole answer) starts afresh and drops an unfinished one; each
/// next part must carry the next `part` number and the same `to`, and the parts together
/// stay within the room's SDP cap. Anything else is `bad_request` and the parts so far are
/// dropped (a later part 0 starts over). The last part (no `more`) gives back the whole
/// answer, which is then checked like any other.
#[derive(Default)]
pub struct Parts {
    /// `(to, next part number, the SDP so far)` of the answer being received.
    pending: Option<(String, u32, String)>,
}

impl Parts {
    /// Feeds one client frame. `Ok(None)`: a part was kept and more are due. `Ok(Some(op))`:
    /// `op` itself (not an answer in parts) or the whole reassembled answer.
    pub fn feed(&mut self, op: ClientVoice, max_sdp: usize) -> ApiResult<Option<ClientVoice>> {
        let (to, sdp, part, more) = match op {
            ClientVoice::Answer {
                to,
                sdp,
                part,
                more,
            } => (to, sdp, part, more),
            op => return Ok(Some(op)),
        };
        let (to, sdp) = match (part.unwrap_or(0), self.pending.take()) {
            (0, _) => (to, sdp),
            (n, Some((pto, next, mut so_far))) if n == next && pto == to => {
                if n >= MAX_ANSWER_PARTS {
                    return Err(ApiError::bad_request(format!(
                        "an answer comes in at most {MAX_ANSWER_PARTS} parts"
                    )));
                }
                if so_far.len() + sdp.len() > max_sdp {
                    return Err(ApiError::bad_request(format!(
                        "sdp is over {max_sdp} bytes"
                    )));
                }
                so_far.push_str(&sdp);
                (to, so_far)
            }
            (n, _) => {
                return Err(ApiError::bad_request(format!(
                    "answer part {n} does not follow the parts before it"
                )))
            }
        };
        if sdp.len() > max_sdp {
            return Err(ApiError::bad_request(format!(
                "sdp is over {max_sdp} bytes"
            )));
        }
        if more {
            self.pending = Some((to, part.unwrap_or(0).saturating_add(1), sdp));
            return Ok(None);
        }
        Ok(Some(ClientVoice::Answer {
            to,
            sdp,
            part: None,
            more: false,
        }))
    }
}

fn sdp_ok(sdp: &str, max: usize) -> ApiResult<()> {
    if sdp.len() > max {
        Err(ApiError::bad_request(format!("sdp is over {max} bytes")))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Code;

    /// The number after `name` up to the end of its line, digits only (`60000`, `60_000`).
    fn constant_in(source: &str, name: &str) -> usize {
        let at = source
            .find(name)
            .unwrap_or_else(|| panic!("{name} not found"));
        let line = source[at + name.len()..].lines().next().unwrap();
        let digits: String = line.chars().filter(char::is_ascii_digit).collect();
        digits
            .parse()
            .unwrap_or_else(|_| panic!("{name}: no number in {line:?}"))
    }

    #[test]
    fn the_copies_of_the_part_size_agree_with_the_servers() {
        // The browser cannot read a Rust constant, nor `bench/` (its own workspace) link the
        // server, so each keeps a copy; a change here must change them too.
        let js = include_str!("../../assets/voice/sfu.js");
        assert_eq!(
            constant_in(js, "export const PART_SDP_BYTES ="),
            PART_SDP_BYTES,
            "assets/voice/sfu.js"
        );
        let bench = include_str!("../../bench/sfuload/src/main.rs");
        assert_eq!(
            constant_in(bench, "const PART_SDP_BYTES: usize ="),
            PART_SDP_BYTES,
            "bench/sfuload"
        );
    }

    #[test]
    fn offers_are_relayed_with_their_type_and_size_capped() {
        let ok = check(ClientVoice::Offer {
            to: "7".into(),
            sdp: "v=0".into(),
        })
        .unwrap();
        let Signal::Relay { to, frame } = ok else {
            panic!("{ok:?}")
        };
        assert_eq!(to, "7");
        assert_eq!(frame["type"], "offer");
        assert_eq!(frame["sdp"], "v=0");
        let big = check(ClientVoice::Answer {
            to: "7".into(),
            sdp: "x".repeat(MAX_SDP_BYTES + 1),
            part: None,
            more: false,
        });
        assert_eq!(big.unwrap_err().code, Code::BadRequest);
    }

    #[test]
    fn candidates_must_be_small_objects_and_peers_plausible() {
        let not_object = check(ClientVoice::Candidate {
            to: "7".into(),
            candidate: Value::String("x".into()),
        });
        assert_eq!(not_object.unwrap_err().code, Code::BadRequest);
        let end_of_candidates = check(ClientVoice::Candidate {
            to: "7".into(),
            candidate: Value::Null,
        });
        assert!(end_of_candidates.is_ok());
        let nobody = check(ClientVoice::Offer {
            to: String::new(),
            sdp: "v=0".into(),
        });
        assert_eq!(nobody.unwrap_err().code, Code::NotFound);
    }

    #[test]
    fn watch_is_a_relay_with_its_flag() {
        let Signal::Relay { to, frame } = check(ClientVoice::Watch {
            id: "7".into(),
            on: true,
        })
        .unwrap() else {
            panic!("watch is relayed")
        };
        assert_eq!(to, "7");
        assert_eq!(
            Value::Object(frame),
            serde_json::json!({"type":"watch","on":true})
        );
        let nobody = check(ClientVoice::Watch {
            id: String::new(),
            on: false,
        });
        assert_eq!(nobody.unwrap_err().code, Code::NotFound);
    }

    #[test]
    fn speak_and_stream_are_enforced() {
        let state = |video| Signal::State {
            muted: false,
            deafened: false,
            video,
            screen: false,
        };
        let no_stream = Perms::EVERYONE_DEFAULT.minus(Perms::STREAM);
        assert_eq!(
            allowed(state(true), no_stream).unwrap_err().code,
            Code::Forbidden
        );
        assert_eq!(allowed(state(false), no_stream).unwrap(), state(false));
        let no_speak = Perms::EVERYONE_DEFAULT.minus(Perms::SPEAK);
        assert_eq!(
            allowed(state(false), no_speak).unwrap(),
            Signal::State {
                muted: true,
                deafened: false,
                video: false,
                screen: false
            }
        );
        assert_eq!(
            allowed(Signal::Speaking { speaking: true }, no_speak).unwrap(),
            Signal::Speaking { speaking: false }
        );
        let offer = |sdp: &str| {
            check(ClientVoice::Offer {
                to: "7".into(),
                sdp: sdp.into(),
            })
            .unwrap()
        };
        let audio = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=sendrecv\r\na=msid:s a\r\n";
        let video_recv = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=recvonly\r\n";
        let video_send = "v=0\r\nm=audio 9 X 111\r\na=msid:s a\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=sendrecv\r\na=msid:s v\r\n";
        assert!(allowed(offer(audio), no_stream).is_ok());
        assert!(allowed(offer(video_recv), no_stream).is_ok());
        assert_eq!(
            allowed(offer(video_send), no_stream).unwrap_err().code,
            Code::Forbidden
        );
        assert!(allowed(offer(video_send), Perms::EVERYONE_DEFAULT).is_ok());
    }

    #[test]
    fn sfu_rooms_take_bigger_sdps_and_judge_video_by_the_flags() {
        let answer = |sdp: String, max| {
            check_in(
                ClientVoice::Answer {
                    to: "sfu".into(),
                    sdp,
                    part: None,
                    more: false,
                },
                max,
            )
        };
        let big = "x".repeat(MAX_SDP_BYTES + 1);
        assert!(answer(big.clone(), MAX_SFU_SDP_BYTES).is_ok());
        assert_eq!(
            answer(big, MAX_SDP_BYTES).unwrap_err().code,
            Code::BadRequest
        );
        assert_eq!(
            answer("x".repeat(MAX_SFU_SDP_BYTES + 1), MAX_SFU_SDP_BYTES)
                .unwrap_err()
                .code,
            Code::BadRequest
        );
        // The browser's answer always carries its camera and screen m-lines in an sfu room.
        let video_send = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=sendonly\r\na=msid:- v\r\n";
        let no_stream = Perms::EVERYONE_DEFAULT.minus(Perms::STREAM);
        let signal = answer(video_send.into(), MAX_SFU_SDP_BYTES).unwrap();
        assert!(allowed_in(signal, no_stream, true).is_ok());
        let signal = answer(video_send.into(), MAX_SFU_SDP_BYTES).unwrap();
        assert_eq!(
            allowed_in(signal, no_stream, false).unwrap_err().code,
            Code::Forbidden
        );
        // The flags still need `stream`.
        let state = Signal::State {
            muted: false,
            deafened: false,
            video: true,
            screen: false,
        };
        assert_eq!(
            allowed_in(state, no_stream, true).unwrap_err().code,
            Code::Forbidden
        );
    }

    #[test]
    fn deafened_implies_muted() {
        assert_eq!(
            check(ClientVoice::State {
                muted: false,
                deafened: true,
                video: true,
                screen: false,
            })
            .unwrap(),
            Signal::State {
                muted: true,
                deafened: true,
                video: true,
                screen: false,
            }
        );
    }

    #[test]
    fn answers_in_parts_are_reassembled_within_the_cap() {
        let part = |sdp: &str, part: u32, more: bool| ClientVoice::Answer {
            to: "sfu".into(),
            sdp: sdp.into(),
            part: Some(part),
            more,
        };
        let whole = |op: Option<ClientVoice>| match op {
            Some(ClientVoice::Answer { to, sdp, .. }) => (to, sdp),
            other => panic!("{other:?}"),
        };
        let mut parts = Parts::default();
        assert!(parts.feed(part("v=0\r\n", 0, true), 100).unwrap().is_none());
        // Other frames may come between the parts.
        assert!(matches!(
            parts.feed(ClientVoice::Ping, 100),
            Ok(Some(ClientVoice::Ping))
        ));
        assert!(parts.feed(part("m=audio", 1, true), 100).unwrap().is_none());
        let (to, sdp) = whole(parts.feed(part(" 9\r\n", 2, false), 100).unwrap());
        assert_eq!((to.as_str(), sdp.as_str()), ("sfu", "v=0\r\nm=audio 9\r\n"));
        // Over the cap: refused, the parts dropped, and what follows them too.
        let x = "x".repeat(60);
        assert!(parts.feed(part(&x, 0, true), 100).unwrap().is_none());
        let over = parts.feed(part(&x, 1, true), 100).unwrap_err();
        assert_eq!(over.code, Code::BadRequest);
        let orphan = parts.feed(part(&x, 2, false), 100).unwrap_err();
        assert_eq!(orphan.code, Code::BadRequest);
        // A new start drops an unfinished answer; a whole answer does too.
        assert!(parts.feed(part("old", 0, true), 100).unwrap().is_none());
        assert!(parts.feed(part("new", 0, true), 100).unwrap().is_none());
        let (_, sdp) = whole(parts.feed(part("!", 1, false), 100).unwrap());
        assert_eq!(sdp, "new!");
        assert!(parts.feed(part("old", 0, true), 100).unwrap().is_none());
        let plain = ClientVoice::Answer {
            to: "sfu".into(),
            sdp: "v=0".into(),
            part: None,
            more: false,
        };
        assert_eq!(whole(parts.feed(plain, 100).unwrap()).1, "v=0");
        assert!(parts.feed(part("?", 1, false), 100).is_err());
        // A part out of order, or to another peer, is refused.
        assert!(parts.feed(part("a", 0, true), 100).unwrap().is_none());
        let mut other = part("b", 1, false);
        if let ClientVoice::Answer { to, .. } = &mut other {
            *to = "7".into();
        }
        assert!(parts.feed(other, 100).is_err());
        // At most MAX_ANSWER_PARTS parts, however small.
        assert!(parts.feed(part("a", 0, true), 100).unwrap().is_none());
        for n in 1..MAX_ANSWER_PARTS {
            assert!(parts.feed(part("a", n, true), 100).unwrap().is_none());
        }
        let many = parts
            .feed(part("a", MAX_ANSWER_PARTS, false), 100)
            .unwrap_err();
        assert_eq!(many.code, Code::BadRequest);
    }
}
