//! WebSocket frames the server writes, encoded by hand (RFC 6455 §5.2) so that one encoded
//! frame can be shared by every recipient of a broadcast.
//!
//! "A server MUST NOT mask any frames that it sends to the client" (RFC 6455 §5.1), so a
//! server frame does not depend on its recipient: we encode a broadcast once and hand the
//! same reference-counted bytes to every connection's outbox. tungstenite still reads and
//! validates the client's frames; it writes nothing after the handshake (see `ws.rs`).

use std::sync::Arc;

/// One complete, encoded frame; cloning is a reference-count increment.
pub type Frame = Arc<[u8]>;

const OP_TEXT: u8 = 0x1;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

fn encode(opcode: u8, payload: &[u8]) -> Frame {
    let len = payload.len();
    let mut out = Vec::with_capacity(len + 10);
    out.push(0x80 | opcode); // FIN, no extensions
    if len < 126 {
        out.push(len as u8);
    } else if len <= u16::MAX as usize {
        out.push(126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(payload);
    out.into()
}

pub fn text(json: &str) -> Frame {
    encode(OP_TEXT, json.as_bytes())
}

/// Serializes `value` once and frames it.
pub fn json<T: serde::Serialize>(value: &T) -> Frame {
    text(&serde_json::to_string(value).expect("server events always serialize"))
}

/// "The application MUST NOT send more than 125 bytes of payload in a control frame"
/// (RFC 6455 §5.5): reasons are cut to fit.
pub fn close(code: u16, reason: &str) -> Frame {
    let mut p = code.to_be_bytes().to_vec();
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let r = &reason[..end];
    p.extend_from_slice(r.as_bytes());
    encode(OP_CLOSE, &p)
}

pub fn ping(payload: &[u8]) -> Frame {
    encode(OP_PING, &payload[..payload.len().min(125)])
}

pub fn pong(payload: &[u8]) -> Frame {
    encode(OP_PONG, &payload[..payload.len().min(125)])
}

/// Close codes we use (RFC 6455 §7.4 and API.md).
pub mod code {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const PROTOCOL: u16 = 1002;
    pub const INVALID_DATA: u16 = 1007;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    /// API.md: a client that does not read its queue is closed with 4008.
    pub const SLOW_CONSUMER: u16 = 4008;
    /// API.md v2: the session ended (logout, expiry).
    pub const SESSION_ENDED: u16 = 4001;
    /// API.md v2: the user was removed (kick, ban).
    pub const REMOVED: u16 = 4003;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_use_the_right_encoding() {
        assert_eq!(&text("hi")[..], &[0x81, 2, b'h', b'i']);
        let f = text(&"x".repeat(300));
        assert_eq!(&f[..4], &[0x81, 126, 1, 44]);
        let f = text(&"x".repeat(70_000));
        assert_eq!(f[1], 127);
        assert_eq!(f.len(), 70_000 + 10);
    }

    #[test]
    fn close_reason_fits_a_control_frame() {
        let f = close(4008, &"é".repeat(200));
        assert!(f.len() <= 127);
        assert_eq!(&f[2..4], &4008u16.to_be_bytes());
    }
}
