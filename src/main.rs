//! The `mini-discord` binary: thin glue. `mini-discord` runs the server;
//! `mini-discord healthcheck` asks a running server's `/healthz` (for Docker's
//! HEALTHCHECK in an image that has no shell or curl); `mini-discord check-db [PATH]` runs
//! SQLite's integrity check on a database. Everything else lives in the library.

/// What `--help` prints: every subcommand, so an operator never has to read the source.
const USAGE: &str = "\
usage: mini-discord [COMMAND]

With no command, runs the server (settings come from the environment; see .env.example).

commands:
  healthcheck       ask the running server's /healthz; exit 0 if healthy, 1 if not
  check-db [PATH]   run SQLite's integrity check on a database (default data/chat.db)
  --version, -V     print the version
  --help, -h        print this help
";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => {}
        Some("healthcheck") => std::process::exit(mini_discord::healthcheck()),
        Some("check-db") => {
            let path = args.get(1).map(String::as_str).unwrap_or("data/chat.db");
            std::process::exit(mini_discord::store::check_db(std::path::Path::new(path)))
        }
        Some("--help") | Some("-h") => {
            print!("{USAGE}");
            return;
        }
        Some("--version") | Some("-V") => {
            println!("mini-discord {}", env!("CARGO_PKG_VERSION"));
            return;
        }
        Some(other) => {
            eprint!("mini-discord: unknown argument {other:?}\n\n{USAGE}");
            std::process::exit(2);
        }
    }
    mini_discord::memory::reexec_without_thread_caches();
    let config = match mini_discord::config::Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mini-discord: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = mini_discord::run(config) {
        eprintln!("mini-discord: {e}");
        std::process::exit(1);
    }
}
