//! mini-discord: a small self-hosted Discord-style chat and voice server.
//!
//! One process, plain threads, no async runtime. The folders are the capabilities, and the
//! threads and who owns what:
//! - the **accept loop** (`http/server.rs`) admits connections (`http/limits.rs`) and gives
//!   each its own thread, which reads HTTP (`http/`) and, after an upgrade, WebSocket frames
//!   (`realtime/ws.rs`, with the chat ops in `realtime/chat.rs` and the signaling rules in
//!   `voice/signaling.rs`);
//! - the **store thread** (`store/`) owns the SQLite connection;
//! - the **router thread** (`realtime/router.rs`) owns realtime state and fans events out;
//! - the **writer thread** (`realtime/writer.rs`) owns every upgraded socket's write side;
//! - the **media thread** (`media/`), when `SFU_UDP_PORT` is set, owns the media port, every
//!   peer connection of the `sfu` voice rooms and the forwarding between them;
//! - the **image workers** and the **sweeper** (`files/`) decode images and drop old uploads;
//!   the bytes under `DATA_DIR/files` are written and read by connection threads.
//!
//! Shared by all of them and owned by none: `model.rs` (the wire types), `config.rs`,
//! `error.rs`, `metrics.rs`, `memory.rs`, `validate.rs`, `ratelimit.rs`, `sched.rs` (the
//! scheduler slice the message path's threads ask for).
//! docs/ARCHITECTURE.md draws the picture; `App` below is what every thread shares.

pub mod community;
pub mod config;
pub mod data;
pub mod error;
pub mod files;
pub mod http;
pub mod media;
pub mod memory;
pub mod metrics;
pub mod model;
pub mod push;
pub mod ratelimit;
pub mod realtime;
pub mod sched;
pub mod social;
pub mod store;
pub mod validate;
pub mod voice;

// The paths the integration and fuzz tests name (`mini_discord::ws::MAX_MESSAGE_BYTES`, …)
// from before the code was grouped into folders.
pub use http::{assets, limits};
pub use realtime::{protocol, ws};

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use config::Config;

/// What every connection thread shares: settings and handles to the owning threads.
pub struct App {
    pub config: Config,
    pub store: store::Store,
    pub router: realtime::router::RouterHandle,
    pub writer: realtime::writer::Writer,
    pub admission: Arc<http::limits::Admission>,
    pub throttles: http::auth::Throttles,
    pub send_limit: ratelimit::PerUser,
    /// Searches per user, all tabs together (`SEARCH_RATE`, `SEARCH_BURST`).
    pub search_limit: ratelimit::PerUser,
    /// History and search responses in flight per user and per address.
    pub heavy: Arc<http::heavy::HeavyGate>,
    /// The realtime sockets' per-user budgets (`realtime/ws.rs`).
    pub ws_budgets: realtime::ws::Budgets,
    /// Uploads, stored bytes, the image pool (`files/`).
    pub files: files::upload::Files,
    /// The Web Push worker (`push/`).
    pub push: push::Push,
    /// `read` and `status` ops per user, all tabs together (`social/ops.rs`).
    pub social_ops: ratelimit::PerUser,
    /// The published permission snapshot and slow-mode clocks (`community/`).
    pub community: Arc<community::Community>,
}

// Compile-time checks: `App` is shared across threads.
const _: fn() = || {
    fn shared<T: Send + Sync>() {}
    shared::<App>();
    shared::<realtime::writer::Outbox>();
};

/// Starts every thread and serves until the process is stopped.
pub fn run(config: Config) -> Result<(), String> {
    let started = Instant::now();
    simple_logger::SimpleLogger::new()
        .with_level(config.log_level)
        .init()
        .map_err(|e| format!("cannot start logging: {e}"))?;

    memory::return_big_allocations_to_the_os();
    // Held until the process ends: `import-discord` refuses to write while we run (and we
    // refuse to start while it does).
    let _lock = data::lock::take(&config.data_dir, "the server")?;
    // Before the threads of the message path start: each asks for this slice (`sched.rs`).
    sched::configure(config.sched_slice);
    let store = store::Store::open(&config.data_dir, &config.db_synchronous, config.store_batch)?;
    let (channels, last_ids, snapshot) = store
        .call(|c| {
            Ok((
                store::list_channels(c)?,
                store::last_ids(c)?,
                community::Snapshot::load(c)?,
            ))
        })
        .map_err(|e| format!("cannot read the database: {e}"))?;
    let community = Arc::new(community::Community::new(snapshot));
    let files = files::upload::Files::open(
        &config.data_dir,
        config.max_upload_mb * 1024 * 1024,
        config.upload_quota_mb * 1024 * 1024,
    )?;
    files::sweep::start(store.clone(), files.blobs.clone());
    if let Some(dir) = &config.backup_dir {
        data::schedule::start(
            config.data_dir.clone(),
            dir.clone(),
            std::time::Duration::from_secs_f64(config.backup_every_h * 3600.0),
            config.backup_keep,
        );
    }
    let writer = realtime::writer::Writer::start()
        .map_err(|e| format!("cannot start the writer thread: {e}"))?;
    // The media server (issue 16) binds first, so the router can be given its handle and
    // the thread the router's.
    let media = match config.sfu_udp_port {
        Some(port) => Some(
            media::bind(config.listen_addr.ip(), port, config.sfu_public_ip)
                .map_err(|e| format!("cannot bind the media port udp {port}: {e}"))?,
        ),
        None => None,
    };
    let router = realtime::router::start(
        channels,
        last_ids,
        community.snapshot(),
        voice::RoomLimits::from_config(&config),
        writer.clone(),
        media.as_ref().map(|(handle, _)| handle.clone()),
    )
    .map_err(|e| format!("cannot start the router thread: {e}"))?;
    if let Some((_, bound)) = media {
        bound
            .run(router.clone(), config.sfu_max_peers)
            .map_err(|e| format!("cannot start the media thread: {e}"))?;
    }
    let push = push::start(
        store.clone(),
        router.clone(),
        push::Settings {
            subject: config.push_subject.clone(),
            policy: push::endpoint::Policy {
                allow_loopback: config.push_allow_loopback,
            },
            can_view: {
                let community = community.clone();
                Box::new(move |user, channel| community.snapshot().can_view(user, channel))
            },
        },
    )?;
    let ceiling = http::limits::derive(config.max_connections);
    log::info!(
        "max connections: {} (derived from {})",
        ceiling.max_connections,
        ceiling.explanation
    );

    let listener = http::server::bind(config.listen_addr)
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen_addr))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    warn_about_risky_settings(&config, local);
    let app = Arc::new(App {
        admission: http::limits::Admission::new(
            ceiling.max_connections,
            config.max_connections_per_ip,
            config.trusted_proxies.clone(),
        ),
        throttles: http::auth::Throttles::default(),
        send_limit: ratelimit::PerUser::new(config.send_rate, config.send_burst),
        search_limit: ratelimit::PerUser::new(config.search_rate, config.search_burst),
        heavy: Arc::new(http::heavy::HeavyGate::default()),
        ws_budgets: realtime::ws::Budgets::default(),
        push,
        social_ops: social::ops::budget(),
        files,
        community,
        config,
        store,
        router,
        writer,
    });
    log::info!(
        "mini-discord {} listening on {local} (data in {}, started in {} ms)",
        env!("CARGO_PKG_VERSION"),
        app.config.data_dir.display(),
        started.elapsed().as_millis()
    );
    start_sweeper(app.clone()).map_err(|e| format!("cannot start the sweeper thread: {e}"))?;
    community::expiry::start(app.clone())
        .map_err(|e| format!("cannot start the timeout clock thread: {e}"))?;
    http::server::accept_loop(listener, app);
    Ok(())
}

/// How often the sweeper runs. Expired throttle entries and sessions cost only memory and
/// rows until then, and both are bounded anyway; a minute keeps them from piling up.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// The sweeper thread: on a timer, drops expired login and registration throttle entries
/// (issue 19, finding 3: they used to be pruned only past 50,000 keys) and deletes expired
/// sessions (they used to go only when someone logged out). It owns nothing: it calls the
/// throttles' own locks and submits one job to the store thread.
fn start_sweeper(app: Arc<App>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("sweeper".into())
        .spawn(move || loop {
            std::thread::sleep(SWEEP_EVERY);
            app.throttles.sweep();
            let _ = app.store.submit(store::delete_expired_sessions, |result| {
                if let Ok(n @ 1..) = result {
                    log::debug!("swept {n} expired sessions");
                }
            });
        })
        .map(drop)
}

/// Settings that work but leave the server open: said loudly in the log at start.
fn warn_about_risky_settings(config: &Config, local: SocketAddr) {
    if config.turn_secret.as_deref() == Some(config::PLACEHOLDER_TURN_SECRET)
        && !local.ip().is_loopback()
    {
        log::warn!("!!! TURN_SECRET is still the placeholder from .env.example while listening on {local}.");
        log::warn!("!!! Anyone can mint TURN credentials for your relay. Generate one: openssl rand -hex 32");
    }
    for wide in config.trusted_proxies.wide_entries() {
        log::warn!(
            "TRUSTED_PROXIES entry {wide} is a very wide network: any client in it can claim any address in X-Forwarded-For. List only your proxies."
        );
    }
}

/// `mini-discord healthcheck`: exit 0 if the server on `LISTEN_ADDR`'s port answers
/// `/healthz` with 200 within 3 s, else 1. Needs no shell or curl in the image.
pub fn healthcheck() -> i32 {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("healthcheck: {e}");
            return 1;
        }
    };
    let mut addr = config.listen_addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => IpAddr::from([127, 0, 0, 1]),
            IpAddr::V6(_) => IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
        });
    }
    let check = || -> std::io::Result<bool> {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
        s.set_read_timeout(Some(Duration::from_secs(3)))?;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
        let mut out = Vec::new();
        s.take(4096).read_to_end(&mut out)?;
        Ok(out.starts_with(b"HTTP/1.1 200"))
    };
    match check() {
        Ok(true) => 0,
        Ok(false) => {
            eprintln!("healthcheck: {addr} answered, but not 200");
            1
        }
        Err(e) => {
            eprintln!("healthcheck: {addr}: {e}");
            1
        }
    }
}
