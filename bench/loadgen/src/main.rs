//! mini-discord load generator. See bench/README.md and docs/PERFORMANCE.md.
//!
//! loadgen <mode> [--key value]...   modes: fanout, idle, acks, seed, history, startup
//! Common: --addr IP:PORT (default 127.0.0.1:8000), --server-pid PID (CPU/RSS sampling),
//!         --json FILE (append the result line), --label TEXT, --threads N (tokio workers, 2).
//! fanout: --reader epoll|tokio (default epoll: the receiving sockets on --raw-threads (1) epoll
//!         threads, rawread.rs).

mod fanout;
mod history;
mod idle;
mod pump;
mod rawread;
mod stamp;
mod startup;
mod util;

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some(mode) = argv.first().cloned() else {
        eprintln!("usage: loadgen fanout|idle|acks|seed|history|startup [--key value]...  (see bench/README.md)");
        std::process::exit(2);
    };
    let args = util::Args::parse(&argv[1..]);
    if mode == "startup" {
        startup::run(args);
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.num("threads", 2))
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        match mode.as_str() {
            "fanout" => fanout::run(args).await,
            "idle" => idle::run(args).await,
            "acks" => pump::run(args, false).await,
            "seed" => pump::run(args, true).await,
            "history" => history::run(args).await,
            m => {
                eprintln!("unknown mode {m}");
                std::process::exit(2);
            }
        }
    });
}
