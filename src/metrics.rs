//! Process-wide counters for `GET /metrics` (Prometheus text format). Plain atomics: any
//! thread may bump them without a lock, and reading them is never on a hot path. The
//! per-stage delivery histograms are `realtime/trace.rs`'s, appended here.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

#[derive(Default)]
pub struct Metrics {
    pub http_connections_open: AtomicU64,
    pub ws_connections_open: AtomicU64,
    pub voice_connections_open: AtomicU64,
    pub connections_refused: AtomicU64,
    pub http_requests: AtomicU64,
    pub messages_stored: AtomicU64,
    pub deliveries: AtomicU64,
    pub writer_syscalls: AtomicU64,
    pub slow_clients_dropped: AtomicU64,
    pub store_batches: AtomicU64,
    pub store_jobs: AtomicU64,
    pub store_batch_max: AtomicU64,
    pub store_commit_micros_total: AtomicU64,
    pub store_commit_micros_max: AtomicU64,
    pub handler_panics: AtomicU64,
    pub reads_over_budget: AtomicU64,
    pub heavy_refused: AtomicU64,
    /// Media server (issue 16), per `media::peer::Slot` (audio, camera, screen): frames
    /// received from browsers and written to receivers. A frame is one audio packet or one
    /// video frame (str0m depacketizes and repacketizes).
    pub sfu_in: [AtomicU64; 3],
    pub sfu_out: [AtomicU64; 3],
    /// Frames or datagrams dropped: muted or gated sources, full socket buffers, failed writes.
    pub sfu_dropped: AtomicU64,
    pub sfu_peers: AtomicU64,
    pub sfu_rooms: AtomicU64,
    /// Simulcast (`media::simulcast`): camera frames forwarded per layer (h, m, l), and how
    /// often a receiver's chosen layer changed.
    pub sfu_layer_out: [AtomicU64; 3],
    pub sfu_layer_switches: AtomicU64,
}

pub static METRICS: Metrics = Metrics {
    http_connections_open: AtomicU64::new(0),
    ws_connections_open: AtomicU64::new(0),
    voice_connections_open: AtomicU64::new(0),
    connections_refused: AtomicU64::new(0),
    http_requests: AtomicU64::new(0),
    messages_stored: AtomicU64::new(0),
    deliveries: AtomicU64::new(0),
    writer_syscalls: AtomicU64::new(0),
    slow_clients_dropped: AtomicU64::new(0),
    store_batches: AtomicU64::new(0),
    store_jobs: AtomicU64::new(0),
    store_batch_max: AtomicU64::new(0),
    store_commit_micros_total: AtomicU64::new(0),
    store_commit_micros_max: AtomicU64::new(0),
    handler_panics: AtomicU64::new(0),
    reads_over_budget: AtomicU64::new(0),
    heavy_refused: AtomicU64::new(0),
    sfu_in: [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
    sfu_out: [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
    sfu_dropped: AtomicU64::new(0),
    sfu_layer_out: [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
    sfu_layer_switches: AtomicU64::new(0),
    sfu_peers: AtomicU64::new(0),
    sfu_rooms: AtomicU64::new(0),
};

impl Metrics {
    pub fn observe_batch(&self, jobs: usize, took: Duration) {
        let micros = took.as_micros() as u64;
        self.store_batches.fetch_add(1, Relaxed);
        self.store_jobs.fetch_add(jobs as u64, Relaxed);
        self.store_batch_max.fetch_max(jobs as u64, Relaxed);
        self.store_commit_micros_total.fetch_add(micros, Relaxed);
        self.store_commit_micros_max.fetch_max(micros, Relaxed);
    }

    /// The Prometheus text exposition of every counter.
    pub fn render(&self, max_connections: usize) -> String {
        let g = |a: &AtomicU64| a.load(Relaxed).to_string();
        let secs = |a: &AtomicU64| format!("{:.6}", a.load(Relaxed) as f64 / 1e6);
        let rows: [(&str, &str, &str, String); 32] = [
            (
                "md_connections_open",
                "gauge",
                "Open TCP connections of every kind.",
                g(&self.http_connections_open),
            ),
            (
                "md_ws_connections_open",
                "gauge",
                "Open /ws connections.",
                g(&self.ws_connections_open),
            ),
            (
                "md_voice_connections_open",
                "gauge",
                "Open /ws/voice connections.",
                g(&self.voice_connections_open),
            ),
            (
                "md_max_connections",
                "gauge",
                "The connection ceiling in force.",
                max_connections.to_string(),
            ),
            (
                "md_connections_refused_total",
                "counter",
                "Connections refused by the caps.",
                g(&self.connections_refused),
            ),
            (
                "md_http_requests_total",
                "counter",
                "HTTP requests answered.",
                g(&self.http_requests),
            ),
            (
                "md_messages_stored_total",
                "counter",
                "Messages committed.",
                g(&self.messages_stored),
            ),
            (
                "md_deliveries_total",
                "counter",
                "Frames queued to WebSocket clients.",
                g(&self.deliveries),
            ),
            (
                "md_writer_sends_total",
                "counter",
                "sendmsg calls by the writer thread (deliveries / sends = frames per call).",
                g(&self.writer_syscalls),
            ),
            (
                "md_slow_clients_dropped_total",
                "counter",
                "Clients closed for not reading (4008).",
                g(&self.slow_clients_dropped),
            ),
            (
                "md_store_batches_total",
                "counter",
                "Store transactions committed.",
                g(&self.store_batches),
            ),
            (
                "md_store_jobs_total",
                "counter",
                "Store jobs run.",
                g(&self.store_jobs),
            ),
            (
                "md_store_batch_size_max",
                "gauge",
                "Largest group-commit batch seen.",
                g(&self.store_batch_max),
            ),
            (
                "md_store_commit_seconds_total",
                "counter",
                "Time spent running and committing store batches.",
                secs(&self.store_commit_micros_total),
            ),
            (
                "md_store_commit_seconds_max",
                "gauge",
                "Slowest store batch seen.",
                secs(&self.store_commit_micros_max),
            ),
            (
                "md_handler_panics_total",
                "counter",
                "Handler panics answered with 500.",
                g(&self.handler_panics),
            ),
            (
                "md_store_reads_over_budget_total",
                "counter",
                "Store reads stopped at their time budget (answered 503).",
                g(&self.reads_over_budget),
            ),
            (
                "md_heavy_requests_refused_total",
                "counter",
                "History and search requests refused (429): too many in flight per user or address.",
                g(&self.heavy_refused),
            ),
            (
                "md_sfu_audio_frames_in_total",
                "counter",
                "Media server: audio frames received from browsers.",
                g(&self.sfu_in[0]),
            ),
            (
                "md_sfu_audio_frames_out_total",
                "counter",
                "Media server: audio frames forwarded to receivers.",
                g(&self.sfu_out[0]),
            ),
            (
                "md_sfu_camera_frames_in_total",
                "counter",
                "Media server: camera frames received from browsers.",
                g(&self.sfu_in[1]),
            ),
            (
                "md_sfu_camera_frames_out_total",
                "counter",
                "Media server: camera frames forwarded to receivers.",
                g(&self.sfu_out[1]),
            ),
            (
                "md_sfu_screen_frames_in_total",
                "counter",
                "Media server: screen frames received from browsers.",
                g(&self.sfu_in[2]),
            ),
            (
                "md_sfu_screen_frames_out_total",
                "counter",
                "Media server: screen frames forwarded to receivers.",
                g(&self.sfu_out[2]),
            ),
            (
                "md_sfu_dropped_total",
                "counter",
                "Media server: frames or datagrams dropped (muted or gated sources, full buffers).",
                g(&self.sfu_dropped),
            ),
            (
                "md_sfu_layer_h_frames_out_total",
                "counter",
                "Media server: simulcast camera frames forwarded from the full-size layer (h).",
                g(&self.sfu_layer_out[0]),
            ),
            (
                "md_sfu_layer_m_frames_out_total",
                "counter",
                "Media server: simulcast camera frames forwarded from the half-size layer (m).",
                g(&self.sfu_layer_out[1]),
            ),
            (
                "md_sfu_layer_l_frames_out_total",
                "counter",
                "Media server: simulcast camera frames forwarded from the quarter-size layer (l).",
                g(&self.sfu_layer_out[2]),
            ),
            (
                "md_sfu_layer_switches_total",
                "counter",
                "Media server: times a receiver's chosen simulcast layer changed.",
                g(&self.sfu_layer_switches),
            ),
            (
                "md_sfu_peers",
                "gauge",
                "Media server: peer connections held.",
                g(&self.sfu_peers),
            ),
            (
                "md_sfu_rooms",
                "gauge",
                "Media server: rooms with peers.",
                g(&self.sfu_rooms),
            ),
            (
                "md_up",
                "gauge",
                "Always 1 while the server answers.",
                "1".to_string(),
            ),
        ];
        let mut out = String::new();
        for (name, kind, help, v) in rows {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n"
            ));
        }
        crate::realtime::trace::render(&mut out);
        out
    }
}
