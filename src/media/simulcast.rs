//! Simulcast (docs/VOICE.md "Simulcast"): a camera may reach the media server as up to three
//! layers, rids `h`, `m` and `l` (full, half and quarter resolution). Each receiver gets one
//! layer of each camera, chosen from its own estimated downlink. This file owns those rules:
//! what each layer costs (`LayerMeter`), how a receiver's bandwidth is estimated
//! (`Downlink`), which layer fits (`pick`), and when a receiver switches and how its RTP
//! times stay continuous across the switch (`LayerChoice`). The media thread (`thread.rs`)
//! feeds it frames and stats and does what it says; nothing here does I/O.
//!
//! The estimate is loss based (the loss half of Google congestion control): the receiver's
//! transport-wide feedback (TWCC) says what share of what we sent it arrived. str0m's own
//! delay-based estimator is not used: it paces every packet (audio too) behind its estimate,
//! and on a policed link (coturn `max-bps`) it was measured over-estimating 0.3 → 1.9 Mbit/s.

use std::time::{Duration, Instant};

use str0m::media::{MediaTime, Rid};

/// The rids a browser is asked to send, best first; a layer is its index here. How each is
/// scaled and capped is the browser's side (`assets/voice/video.js` `SIMULCAST`).
pub const RIDS: [&str; 3] = ["h", "m", "l"];
pub const LAYERS: usize = RIDS.len();

/// The layer a rid names, if it is one of ours.
pub fn layer_of(rid: &Rid) -> Option<usize> {
    RIDS.iter().position(|r| **rid == **r)
}

/// The rid of a layer.
pub fn rid(layer: usize) -> Rid {
    Rid::from(RIDS[layer])
}

/// A layer's rate is measured over windows of this length and smoothed (a new window counts
/// `METER_WEIGHT`): a keyframe is several times a frame's share, and one window holding it
/// must not push the layer past a receiver's budget …
const METER_WINDOW: Duration = Duration::from_millis(1000);
const METER_WEIGHT: f64 = 0.3;
/// … and a layer not seen for this long is gone (the browser stops sending its top layers
/// when its own upload is short, or the camera went off). Not shorter: an encoder short of
/// bits drops frames, and a top layer measured at one frame a second flapped in and out at
/// 1 s (28 switches in 24 s, each costing a keyframe).
const PRESENT_FOR: Duration = Duration::from_millis(2500);

#[derive(Debug, Clone, Copy, Default)]
struct Layer {
    /// Payload bits per second, smoothed over windows; 0 until one window is complete.
    rate: f64,
    bytes: u64,
    since: Option<Instant>,
    last_seen: Option<Instant>,
}

/// What one camera's layers cost as they arrive, and which of them are arriving.
#[derive(Debug, Clone, Copy, Default)]
pub struct LayerMeter {
    layers: [Layer; LAYERS],
}

impl LayerMeter {
    /// A frame of `bytes` arrived on `layer` at `now`.
    pub fn record(&mut self, layer: usize, bytes: usize, now: Instant) {
        let l = &mut self.layers[layer];
        l.last_seen = Some(now);
        let since = *l.since.get_or_insert(now);
        let elapsed = now.saturating_duration_since(since);
        if elapsed >= METER_WINDOW {
            // The window holds the frames from `since` up to this one; this one opens the next.
            let rate = l.bytes as f64 * 8.0 / elapsed.as_secs_f64();
            l.rate = if l.rate == 0.0 {
                rate
            } else {
                (1.0 - METER_WEIGHT) * l.rate + METER_WEIGHT * rate
            };
            l.bytes = 0;
            l.since = Some(now);
        }
        l.bytes += bytes as u64;
    }

    pub fn present(&self, layer: usize, now: Instant) -> bool {
        self.layers[layer]
            .last_seen
            .is_some_and(|t| now.saturating_duration_since(t) < PRESENT_FOR)
    }

    /// Whether this camera sends simulcast at all (any layer ever seen).
    pub fn simulcast(&self) -> bool {
        self.layers.iter().any(|l| l.last_seen.is_some())
    }

    pub fn any_present(&self, now: Instant) -> bool {
        (0..LAYERS).any(|l| self.present(l, now))
    }

    /// The layer's measured rate in bit/s (0: not measured yet).
    pub fn rate(&self, layer: usize) -> f64 {
        self.layers[layer].rate
    }
}

/// An upgrade needs this much headroom over the better layer's rate, so a budget close to a
/// layer's rate does not flip the choice at every re-pick.
const UPGRADE_MARGIN: f64 = 1.15;

/// The layer to send a receiver whose share of its downlink for this camera is `budget`
/// bit/s: the best present, measured layer that fits, else the lowest present one (a
/// receiver always sees something). `current` is what it gets now. `None`: nothing arrives.
pub fn pick(
    meter: &LayerMeter,
    budget: f64,
    current: Option<usize>,
    now: Instant,
) -> Option<usize> {
    let present: Vec<usize> = (0..LAYERS).filter(|&l| meter.present(l, now)).collect();
    let lowest = *present.last()?;
    for &l in &present {
        let rate = meter.rate(l);
        if rate <= 0.0 {
            continue; // not measured yet: not chosen on a guess
        }
        let upgrade = current.is_some_and(|c| l < c);
        let need = if upgrade { rate * UPGRADE_MARGIN } else { rate };
        if need <= budget {
            return Some(l);
        }
    }
    Some(lowest)
}

/// Where a receiver's estimate starts: enough for one camera's best layer (800 kbit/s at
/// most) and a room's audio; more cameras start lower and climb.
pub const START_BPS: f64 = 1_000_000.0;
/// The estimate never falls below this (audio for a room still fits) …
const MIN_BPS: f64 = 100_000.0;
/// … nor climbs past this.
const MAX_BPS: f64 = 20_000_000.0;
/// Loss above this share means the downlink is full: cut to what got through …
const HIGH_LOSS: f32 = 0.10;
/// … and below this it is not: grow by `GROWTH` a report (about a second).
const LOW_LOSS: f32 = 0.02;
const GROWTH: f64 = 1.08;
/// After a cut the estimate holds this long before it grows again; a cut soon after the
/// last one doubles the hold (up to `HOLD_MAX`), so a link that cannot take the next layer
/// is probed less and less often.
const HOLD_MIN: Duration = Duration::from_secs(2);
const HOLD_MAX: Duration = Duration::from_secs(30);
/// A cut this long after the previous one starts again from `HOLD_MIN`.
const CALM: Duration = Duration::from_secs(30);

/// One receiver's downlink as the media server sees it: what we send it, what share of it
/// arrives, and the estimate that follows from both.
#[derive(Debug, Clone)]
pub struct Downlink {
    estimate: f64,
    sent: f64,
    last: Option<(Instant, u64)>,
    hold_until: Option<Instant>,
    hold: Duration,
    last_cut: Option<Instant>,
}

impl Default for Downlink {
    fn default() -> Self {
        Downlink {
            estimate: START_BPS,
            sent: 0.0,
            last: None,
            hold_until: None,
            hold: HOLD_MIN,
            last_cut: None,
        }
    }
}

impl Downlink {
    /// A stats report (str0m's `PeerStats`, about once a second): `bytes_tx` is all we have
    /// sent this peer so far, `loss` the share of the last second's packets its feedback
    /// says were lost (`None`: no feedback).
    pub fn report(&mut self, at: Instant, bytes_tx: u64, loss: Option<f32>) {
        if let Some((t0, b0)) = self.last {
            let dt = at.saturating_duration_since(t0).as_secs_f64();
            if dt > 0.2 {
                self.sent = bytes_tx.saturating_sub(b0) as f64 * 8.0 / dt;
            }
        }
        self.last = Some((at, bytes_tx));
        let Some(loss) = loss else {
            return;
        };
        if loss > HIGH_LOSS {
            // What got through (the first report has no sent rate yet: cut the estimate).
            let sent = if self.sent > 0.0 {
                self.sent
            } else {
                self.estimate
            };
            let through = sent * (1.0 - 0.5 * f64::from(loss));
            self.estimate = self.estimate.min(through).max(MIN_BPS);
            let soon = self
                .last_cut
                .is_some_and(|t| at.saturating_duration_since(t) < CALM);
            self.hold = if soon {
                (self.hold * 2).min(HOLD_MAX)
            } else {
                HOLD_MIN
            };
            self.hold_until = Some(at + self.hold);
            self.last_cut = Some(at);
        } else if loss < LOW_LOSS && self.hold_until.is_none_or(|h| at >= h) {
            // Growth is bounded by what is sent: a receiver only ever fed small layers has
            // not shown it can take twice that (`START_BPS` lets it reach a first upgrade).
            let cap = (2.0 * self.sent).clamp(START_BPS, MAX_BPS);
            self.estimate = (self.estimate * GROWTH).min(cap.max(self.estimate));
        }
    }

    /// The estimated downlink in bit/s.
    pub fn estimate(&self) -> f64 {
        self.estimate
    }

    /// What we sent it over the last report's interval, in bit/s (all kinds, with headers).
    pub fn sent(&self) -> f64 {
        self.sent
    }
}

/// Which layer of one camera one receiver gets, and the offset that keeps its RTP times
/// continuous: each layer has its own RTP clock origin, and a receiver's decoder would see a
/// jump in time at a switch.
#[derive(Debug, Clone, Copy, Default)]
pub struct LayerChoice {
    /// The layer forwarded now (`None`: none yet).
    pub current: Option<usize>,
    /// The layer it should get; a switch happens at that layer's next keyframe.
    pub target: Option<usize>,
    /// Added to the current layer's RTP time.
    offset: i64,
    /// The last RTP time forwarded, and when.
    last_out: Option<(u64, Instant)>,
}

impl LayerChoice {
    /// A frame of `layer` (RTP time `time`, arrived `at`): the time to forward it with, or
    /// `None` if this receiver does not get it.
    pub fn admit(
        &mut self,
        layer: usize,
        keyframe: bool,
        time: MediaTime,
        at: Instant,
    ) -> Option<MediaTime> {
        if keyframe && self.target == Some(layer) && self.current != Some(layer) {
            self.offset = match self.last_out {
                Some((ticks, then)) => {
                    let gap =
                        at.saturating_duration_since(then).as_secs_f64() * f64::from(time.denom());
                    (ticks as i64 + (gap as i64).max(1)) - time.numer() as i64
                }
                None => 0,
            };
            self.current = Some(layer);
        }
        if self.current != Some(layer) {
            return None;
        }
        let ticks = (time.numer() as i64 + self.offset).max(0) as u64;
        self.last_out = Some((ticks, at));
        Some(MediaTime::new(ticks, time.frequency()))
    }

    /// The layer it waits to switch to (a keyframe of it is needed), if any.
    pub fn waiting(&self) -> Option<usize> {
        self.target.filter(|t| self.current != Some(*t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A meter fed `rates` (bit/s per layer; 0: layer absent) for two seconds of 30 fps.
    fn meter(rates: [f64; LAYERS], start: Instant) -> (LayerMeter, Instant) {
        let mut m = LayerMeter::default();
        let mut now = start;
        for _ in 0..60 {
            now += Duration::from_millis(33);
            for (l, r) in rates.iter().enumerate() {
                if *r > 0.0 {
                    m.record(l, (r / 8.0 / 30.0) as usize, now);
                }
            }
        }
        (m, now)
    }

    #[test]
    fn the_meter_measures_each_layer() {
        let (m, now) = meter([600_000.0, 200_000.0, 0.0], Instant::now());
        assert!((m.rate(0) - 600_000.0).abs() < 60_000.0, "{}", m.rate(0));
        assert!((m.rate(1) - 200_000.0).abs() < 20_000.0, "{}", m.rate(1));
        assert!(m.present(0, now) && m.present(1, now) && !m.present(2, now));
        assert!(!m.present(0, now + PRESENT_FOR));
    }

    #[test]
    fn pick_takes_the_best_layer_that_fits_else_the_lowest() {
        let (m, now) = meter([600_000.0, 200_000.0, 70_000.0], Instant::now());
        assert_eq!(pick(&m, 1_000_000.0, None, now), Some(0));
        assert_eq!(pick(&m, 300_000.0, None, now), Some(1));
        assert_eq!(pick(&m, 100_000.0, None, now), Some(2));
        assert_eq!(
            pick(&m, 10_000.0, None, now),
            Some(2),
            "the lowest when none fits"
        );
        // An upgrade needs headroom; staying does not.
        assert_eq!(pick(&m, 640_000.0, Some(1), now), Some(1));
        assert_eq!(pick(&m, 640_000.0, Some(0), now), Some(0));
        assert_eq!(pick(&m, 700_000.0, Some(1), now), Some(0));
        // Nothing arriving: nothing to pick. The top layer gone: the next one.
        assert_eq!(pick(&m, 1e9, None, now + PRESENT_FOR), None);
        let (m, now) = meter([0.0, 200_000.0, 70_000.0], Instant::now());
        assert_eq!(pick(&m, 1e9, Some(0), now), Some(1));
    }

    #[test]
    fn an_unmeasured_layer_is_not_chosen_on_a_guess() {
        let now = Instant::now();
        let mut m = LayerMeter::default();
        m.record(0, 5_000, now);
        m.record(2, 300, now);
        assert_eq!(pick(&m, 1e9, None, now), Some(2));
    }

    /// A link that delivers `capacity` bit/s of whatever is sent, fed by a sender that sends
    /// the best of three layers the estimate allows: the estimate settles under the capacity
    /// (mostly on the layer that fits), and a clean link climbs to the best layer.
    fn run_link(capacity: f64, seconds: u64) -> (Downlink, Vec<usize>) {
        let rates = [600_000.0, 200_000.0, 70_000.0];
        let audio = 80_000.0;
        let mut d = Downlink::default();
        let start = Instant::now();
        let mut total = 0u64;
        let mut chosen = Vec::new();
        let mut layer = 2;
        for s in 0..seconds {
            let budget = d.estimate() - audio;
            layer = (0..3).find(|&l| rates[l] <= budget).unwrap_or(2);
            chosen.push(layer);
            let send = rates[layer] + audio;
            total += (send / 8.0) as u64;
            let loss = if send > capacity {
                (1.0 - capacity / send) as f32
            } else {
                0.0
            };
            d.report(start + Duration::from_secs(s + 1), total, Some(loss));
        }
        let _ = layer;
        (d, chosen)
    }

    #[test]
    fn the_estimate_follows_a_policed_link_and_backs_off_its_probes() {
        let (d, chosen) = run_link(200_000.0, 120);
        assert!(d.estimate() < 400_000.0, "{}", d.estimate());
        let last_minute = &chosen[60..];
        let on_low = last_minute.iter().filter(|l| **l == 2).count();
        assert!(on_low >= 50, "mostly the low layer: {chosen:?}");
        assert!(!last_minute.contains(&0), "never the top layer: {chosen:?}");

        let (_, chosen) = run_link(400_000.0, 120);
        let on_mid = chosen[60..].iter().filter(|l| **l == 1).count();
        assert!(on_mid >= 50, "mostly the middle layer: {chosen:?}");
    }

    #[test]
    fn a_clean_link_climbs_to_the_top_layer_and_stays() {
        let (_, chosen) = run_link(10_000_000.0, 30);
        assert_eq!(chosen.last(), Some(&0), "{chosen:?}");
        assert!(chosen[5..].iter().all(|l| *l == 0), "{chosen:?}");
    }

    #[test]
    fn a_switch_keeps_rtp_time_continuous_and_waits_for_a_keyframe() {
        let t0 = Instant::now();
        let mut c = LayerChoice {
            target: Some(2),
            ..LayerChoice::default()
        };
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let l_time =
            |ms: u64| MediaTime::new(1_000_000 + ms * 90, str0m::media::Frequency::NINETY_KHZ);
        let h_time =
            |ms: u64| MediaTime::new(7_000_000 + ms * 90, str0m::media::Frequency::NINETY_KHZ);
        assert_eq!(c.admit(2, false, l_time(0), at(0)), None, "no keyframe yet");
        assert_eq!(c.waiting(), Some(2));
        let first = c.admit(2, true, l_time(33), at(33)).unwrap();
        assert_eq!(
            first.numer(),
            l_time(33).numer(),
            "the first layer keeps its times"
        );
        assert_eq!(c.waiting(), None);
        assert!(
            c.admit(0, true, h_time(33), at(33)).is_none(),
            "h is not wanted"
        );
        let last = c.admit(2, false, l_time(66), at(66)).unwrap();

        c.target = Some(0);
        assert!(
            c.admit(0, false, h_time(99), at(99)).is_none(),
            "waits for h's keyframe"
        );
        assert!(
            c.admit(2, false, l_time(99), at(99)).is_some(),
            "l until then"
        );
        let switched = c.admit(0, true, h_time(132), at(132)).unwrap();
        assert!(
            c.admit(2, false, l_time(132), at(132)).is_none(),
            "l stops at the switch"
        );
        let step = switched.numer() - last.numer();
        assert!(
            (5_000..=7_000).contains(&step),
            "66 ms later in RTP time: {step}"
        );
        let next = c.admit(0, false, h_time(165), at(165)).unwrap();
        assert_eq!(next.numer() - switched.numer(), 33 * 90);
    }
}
