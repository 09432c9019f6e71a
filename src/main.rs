//! The `mini-discord` binary: thin glue. `mini-discord` runs the server;
//! `mini-discord healthcheck` asks a running server's `/healthz` (for Docker's
//! HEALTHCHECK in an image that has no shell or curl); `mini-discord check-db [PATH]` runs
//! SQLite's integrity check on a database; `mini-discord backup FILE` / `restore FILE` write
//! and read a verified backup of `DATA_DIR`, `export DIR` writes DiscordChatExporter JSON
//! and `import-discord EXPORT...` reads DiscordChatExporter JSON (see `src/data`). Everything else lives in the
//! library.

/// What `--help` prints: every subcommand, so an operator never has to read the source.
const USAGE: &str = "\
usage: mini-discord [COMMAND]

With no command, runs the server (settings come from the environment; see .env.example).

commands:
  healthcheck       ask the running server's /healthz; exit 0 if healthy, 1 if not
  check-db [PATH]   run SQLite's integrity check on a database (default data/chat.db), and
                    check every attached file's bytes against its hash
  backup FILE       write a verified backup (database + files) of DATA_DIR, even while the
                    server runs
  restore FILE      fill an empty DATA_DIR from a backup, verifying every hash
  export DIR [--channel NAME]...
                    write channels as DiscordChatExporter JSON, with their files alongside
  import-discord EXPORT... [--media DIR]
                    import DiscordChatExporter JSON files (or directories of them) into a
                    stopped server's DATA_DIR; attachment paths are resolved against DIR
                    (default: each file's own directory)
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
        Some(cmd @ ("backup" | "restore")) => {
            let Some(file) = args.get(1) else {
                eprintln!("usage: mini-discord {cmd} FILE");
                std::process::exit(2);
            };
            let data_dir = match mini_discord::config::Config::from_env() {
                Ok(c) => c.data_dir,
                Err(e) => {
                    eprintln!("mini-discord: {e}");
                    std::process::exit(2);
                }
            };
            let file = std::path::Path::new(file);
            let r = if cmd == "backup" {
                mini_discord::data::backup(&data_dir, file)
            } else {
                mini_discord::data::restore(&data_dir, file)
            };
            std::process::exit(mini_discord::data::exit_code(cmd, r))
        }
        Some("export") => {
            let mut rest = args[1..].iter();
            let mut dir = None;
            let mut only = Vec::new();
            while let Some(a) = rest.next() {
                match (a.as_str(), rest.clone().next()) {
                    ("--channel", Some(name)) => {
                        only.push(name.clone());
                        rest.next();
                    }
                    (d, _) if dir.is_none() && !d.starts_with("--") => dir = Some(d.to_string()),
                    _ => {
                        eprintln!("usage: mini-discord export DIR [--channel NAME]...");
                        std::process::exit(2);
                    }
                }
            }
            let (Some(dir), Ok(config)) = (dir, mini_discord::config::Config::from_env()) else {
                eprintln!(
                    "usage: mini-discord export DIR [--channel NAME]... (with a valid environment)"
                );
                std::process::exit(2);
            };
            let r = mini_discord::data::export(&config.data_dir, std::path::Path::new(&dir), &only);
            std::process::exit(mini_discord::data::exit_code("export", r))
        }
        Some("import-discord") => std::process::exit(import_discord(&args[1..])),
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

/// `import-discord EXPORT... [--media DIR]`: the arguments, then the import; the exit code.
fn import_discord(args: &[String]) -> i32 {
    const USAGE: &str = "usage: mini-discord import-discord EXPORT... [--media DIR]";
    let mut inputs = Vec::new();
    let mut media = None;
    let mut rest = args.iter();
    while let Some(a) = rest.next() {
        match a.as_str() {
            "--media" => match rest.next() {
                Some(d) if media.is_none() => media = Some(std::path::PathBuf::from(d)),
                _ => {
                    eprintln!("{USAGE}");
                    return 2;
                }
            },
            s if s.starts_with("--") => {
                eprintln!("{USAGE}");
                return 2;
            }
            s => inputs.push(std::path::PathBuf::from(s)),
        }
    }
    if inputs.is_empty() {
        eprintln!("{USAGE}");
        return 2;
    }
    let config = match mini_discord::config::Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mini-discord: {e}");
            return 2;
        }
    };
    let r = mini_discord::data::import_discord(
        &config.data_dir,
        &inputs,
        media.as_deref(),
        config.max_upload_mb * 1024 * 1024,
    );
    mini_discord::data::exit_code("import-discord", r)
}
