//! Issue 20: `/metrics` times each stage of a chat message's path
//! (`md_delivery_stage_seconds{stage="…"}`, `src/realtime/trace.rs`): one sample per
//! published message and stage, and the stages in path order, each measured from the read
//! of the sender's frame, so each is at least the one before it.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::Server;
use serde_json::json;

const STAGES: [&str; 5] = ["commit", "router", "push", "sendmsg_first", "sendmsg_last"];

/// One stage's histogram as `/metrics` shows it.
#[derive(Debug, Default)]
struct Hist {
    /// (upper bound in seconds, cumulative count), in order; `+Inf` is `f64::INFINITY`.
    buckets: Vec<(f64, u64)>,
    sum: f64,
    count: u64,
}

fn stages(s: &Server) -> HashMap<String, Hist> {
    let text = s.request("GET", "/metrics", &[], None).text();
    let mut out: HashMap<String, Hist> = HashMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("md_delivery_stage_seconds_") else {
            continue;
        };
        let (kind, rest) = rest.split_once('{').unwrap();
        let (labels, value) = rest.split_once("} ").unwrap();
        let stage = labels
            .split("stage=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let h = out.entry(stage.to_string()).or_default();
        match kind {
            "bucket" => {
                let le = labels.split("le=\"").nth(1).unwrap().trim_end_matches('"');
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap()
                };
                h.buckets.push((le, value.parse().unwrap()));
            }
            "sum" => h.sum = value.parse().unwrap(),
            "count" => h.count = value.parse().unwrap(),
            other => panic!("unexpected series md_delivery_stage_seconds_{other}"),
        }
    }
    out
}

#[test]
fn every_message_is_timed_at_every_stage_in_path_order() {
    let s = Server::start(&[("SEND_RATE", "1000"), ("SEND_BURST", "1000")]);
    let alice = s.register("alice");
    let bob = s.register("bob");
    let (mut a, _) = s.ws(&alice);
    let (mut b, _) = s.ws(&bob);

    // Before any message: every stage is there, empty.
    let before = stages(&s);
    for st in STAGES {
        let h = before
            .get(st)
            .unwrap_or_else(|| panic!("no md_delivery_stage_seconds{{stage=\"{st}\"}}"));
        assert_eq!(h.count, 0, "{st} before any message");
        assert_eq!(h.buckets.last().map(|b| b.0), Some(f64::INFINITY));
    }

    const N: u64 = 30;
    let mut first_id = None;
    for i in 0..N {
        a.send(json!({"type":"send","channel":"general","content":format!("m{i}"),"nonce":format!("n{i}")}));
        let ack = a.recv_type("message");
        first_id.get_or_insert(ack["message"]["id"].as_i64().unwrap());
    }
    for _ in 0..N {
        b.recv_type("message");
    }
    // Not new messages, so not timed: a repeated nonce (answered to the sender only), an
    // edit, and typing.
    a.send(json!({"type":"send","channel":"general","content":"m0","nonce":"n0"}));
    assert_eq!(a.recv_type("message")["nonce"], "n0");
    a.send(json!({"type":"edit","id":first_id.unwrap(),"content":"edited"}));
    a.recv_type("message_update");
    b.recv_type("message_update");
    a.send(json!({"type":"typing","channel":"general"}));
    b.recv_type("typing");

    // The writer records its pass just after the last frame went out: wait for it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let got = loop {
        let got = stages(&s);
        if STAGES.iter().all(|st| got[*st].count >= N) || Instant::now() > deadline {
            break got;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    for st in STAGES {
        let h = &got[st];
        assert_eq!(h.count, N, "stage {st}: one sample per message");
        assert_eq!(h.buckets.last().unwrap().1, N, "stage {st}: +Inf = count");
        assert!(
            h.buckets
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
            "stage {st}: buckets ascend and are cumulative: {:?}",
            h.buckets
        );
        assert!(
            h.sum > 0.0 && h.sum < 10.0 * N as f64,
            "stage {st}: sum {}",
            h.sum
        );
    }
    // Path order. Each message's time at a stage is at least its time at the stage before,
    // so the later stage has no more samples under any bound, and a larger sum.
    for pair in STAGES.windows(2) {
        let (early, late) = (&got[pair[0]], &got[pair[1]]);
        assert!(
            late.sum >= early.sum,
            "{} ({} s) before {} ({} s)",
            pair[1],
            late.sum,
            pair[0],
            early.sum
        );
        for (e, l) in early.buckets.iter().zip(&late.buckets) {
            assert_eq!(e.0, l.0, "the stages share their buckets");
            assert!(
                l.1 <= e.1,
                "le={}: {} has {} samples, more than {} has ({})",
                e.0,
                pair[1],
                l.1,
                pair[0],
                e.1
            );
        }
    }
}

/// One value from `/metrics`.
fn metric(s: &Server, name: &str) -> u64 {
    let text = s.request("GET", "/metrics", &[], None).text();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
        .trim()
        .parse()
        .unwrap()
}

/// While nobody has a Web Push subscription, a message costs the store one job, its own.
/// The push worker used to ask the store (and the router) about every message, on the same
/// cores as the message's fan-out (issue 20).
#[test]
fn a_message_costs_one_store_job_while_nobody_subscribed_to_push() {
    let s = Server::start(&[("SEND_RATE", "1000"), ("SEND_BURST", "1000")]);
    let alice = s.register("alice");
    let (mut a, _) = s.ws(&alice);
    a.send(json!({"type":"send","channel":"general","content":"first","nonce":"f"}));
    a.recv_type("message");
    std::thread::sleep(Duration::from_millis(300));

    const N: u64 = 20;
    let before = metric(&s, "md_store_jobs_total");
    for i in 0..N {
        a.send(json!({"type":"send","channel":"general","content":format!("m{i}"),"nonce":format!("n{i}")}));
        a.recv_type("message");
    }
    // Give the push worker time to make whatever jobs it makes.
    std::thread::sleep(Duration::from_millis(500));
    let jobs = metric(&s, "md_store_jobs_total") - before;
    assert!(
        jobs <= N + 1,
        "{N} messages cost the store {jobs} jobs (the messages' own: {N})"
    );
}
