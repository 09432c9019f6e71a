//! Admission control: how many connections this process can hold without running out of
//! file descriptors, threads or memory mappings, and the per-connection tickets that keep
//! the count.
//!
//! A thread-per-connection server must never die of exhaustion: when `pthread_create` fails
//! the Rust runtime can abort the whole process (seen on these machines at ~8,180 sockets
//! with two threads each, and at ~16,350 with one even though spawn errors were handled).
//! So at start we derive a ceiling from the machine's limits with a margin, and refuse past
//! it (503) before spawning anything.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use crate::http::proxy::{ClientNet, TrustedProxies};

/// The stack of a connection thread. Only virtual size: RSS is what is touched (measured:
/// 64 KiB, 128 KiB and 2 MiB stacks gave the same RSS per socket). 256 KiB leaves ample room
/// for Argon2, serde_json (whose depth we cap at 16 before parsing) and tungstenite.
pub const CONNECTION_STACK_BYTES: usize = 256 * 1024;
/// File descriptors kept back for SQLite (db, WAL, shm), the listener, logs and refusals.
const RESERVED_FDS: u64 = 128;
/// Share of `vm.max_map_count` kept back for the allocator, SQLite and libraries.
const MAP_MARGIN: f64 = 0.05;
/// Threads kept back for the rest of the machine and our own fixed threads.
const RESERVED_THREADS: u64 = 512;

/// The ceiling, and how it was derived (logged at start).
#[derive(Debug, Clone)]
pub struct Ceiling {
    pub max_connections: usize,
    pub explanation: String,
}

fn read_number(path: &str) -> Option<u64> {
    std::fs::read_to_string(path)
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn count_maps() -> u64 {
    std::fs::read_to_string("/proc/self/maps")
        .map(|s| s.lines().count() as u64)
        .unwrap_or(0)
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and returns the soft limit in force.
pub fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    lim.rlim_cur
}

/// Measures how many memory mappings one connection thread adds (stack, guard page, signal
/// stack and its guard: 4 on these machines). The allocator's per-thread arenas also add
/// mappings, but only for the first few threads; so a few threads are started first to
/// warm them up, and then the cost of `PROBE` more is measured.
fn maps_per_thread() -> u64 {
    const WARM: usize = 24;
    const PROBE: usize = 16;
    let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
    let (ready_tx, ready_rx) = crossbeam_channel::unbounded::<()>();
    let spawn = |n: usize| -> Vec<std::thread::JoinHandle<()>> {
        (0..n)
            .filter_map(|_| {
                let (ready, stop) = (ready_tx.clone(), stop_rx.clone());
                std::thread::Builder::new()
                    .stack_size(CONNECTION_STACK_BYTES)
                    .spawn(move || {
                        // Allocate, as a connection thread would, so its arena exists now.
                        let v = vec![0u8; 64];
                        let _ = ready.send(());
                        let _ = stop.recv();
                        drop(v);
                    })
                    .ok()
            })
            .collect()
    };
    let mut handles = spawn(WARM);
    for _ in 0..handles.len() {
        let _ = ready_rx.recv();
    }
    let before = count_maps();
    let probe = spawn(PROBE);
    for _ in 0..probe.len() {
        let _ = ready_rx.recv();
    }
    let after = count_maps();
    let n = probe.len().max(1) as u64;
    handles.extend(probe);
    drop(stop_tx);
    for h in handles {
        let _ = h.join();
    }
    after.saturating_sub(before).div_ceil(n).clamp(2, 16)
}

/// Derives the ceiling; `configured` (`MAX_CONNECTIONS`) may lower it, never raise it.
pub fn derive(configured: Option<usize>) -> Ceiling {
    let nofile = raise_nofile();
    let by_fds = nofile.saturating_sub(RESERVED_FDS);

    let max_maps = read_number("/proc/sys/vm/max_map_count").unwrap_or(65530);
    let per_thread = maps_per_thread();
    let usable_maps = (max_maps as f64 * (1.0 - MAP_MARGIN)) as u64;
    let by_maps = usable_maps.saturating_sub(count_maps()) / per_thread;

    let threads_max = read_number("/proc/sys/kernel/threads-max").unwrap_or(u64::MAX);
    let pid_max = read_number("/proc/sys/kernel/pid_max").unwrap_or(32768);
    let cgroup_pids = read_number("/sys/fs/cgroup/pids.max").unwrap_or(u64::MAX);
    let running = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(3)?
                .split('/')
                .nth(1)?
                .parse::<u64>()
                .ok()
        })
        .unwrap_or(0);
    let by_threads = threads_max
        .min(pid_max)
        .min(cgroup_pids)
        .saturating_sub(running + RESERVED_THREADS);

    let derived = by_fds.min(by_maps).min(by_threads).max(16) as usize;
    let explanation = format!(
        "fds {by_fds} (RLIMIT_NOFILE {nofile}), maps {by_maps} (vm.max_map_count {max_maps}, {per_thread} per thread), \
         threads {by_threads} (threads-max {threads_max}, pid_max {pid_max}, {running} running)"
    );
    let max_connections = match configured {
        Some(n) if n > derived => {
            log::warn!(
                "MAX_CONNECTIONS={n} is above what this machine can hold safely; using {derived}"
            );
            derived
        }
        Some(n) => n,
        None => derived,
    };
    Ceiling {
        max_connections,
        explanation,
    }
}

/// Counts open connections, globally and per client address.
pub struct Admission {
    max: usize,
    per_ip: usize,
    /// Reverse proxies (`TRUSTED_PROXIES`): every client behind one shares its address, so
    /// only the global ceiling applies to them.
    exempt: TrustedProxies,
    open: AtomicUsize,
    /// Open connections per client network: an IPv4 address or an IPv6 /64, the same unit as
    /// the login throttles (one IPv6 host usually holds a whole /64, issue 19).
    by_ip: Mutex<HashMap<ClientNet, usize>>,
}

/// Held by a connection's thread; frees the connection's place when dropped.
pub struct Ticket {
    admission: Arc<Admission>,
    /// `None` for a trusted proxy, which is not counted per address.
    net: Option<ClientNet>,
}

impl Admission {
    pub fn new(max: usize, per_ip: usize, exempt: TrustedProxies) -> Arc<Admission> {
        Arc::new(Admission {
            max,
            per_ip,
            exempt,
            open: AtomicUsize::new(0),
            by_ip: Mutex::new(HashMap::new()),
        })
    }

    pub fn max(&self) -> usize {
        self.max
    }

    pub fn open(&self) -> usize {
        self.open.load(SeqCst)
    }

    /// A ticket when both caps have room, else `None` (the caller answers 503).
    pub fn try_admit(self: &Arc<Self>, ip: IpAddr) -> Option<Ticket> {
        let mut by_ip = self.by_ip.lock().unwrap_or_else(|e| e.into_inner());
        if self.open.load(SeqCst) >= self.max {
            return None;
        }
        let net = (!self.exempt.contains(ip)).then(|| ClientNet::of(ip));
        if let Some(net) = net {
            let n = by_ip.get(&net).copied().unwrap_or(0);
            if n >= self.per_ip {
                return None;
            }
            by_ip.insert(net, n + 1);
        }
        self.open.fetch_add(1, SeqCst);
        Some(Ticket {
            admission: self.clone(),
            net,
        })
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut by_ip = self
            .admission
            .by_ip
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(net) = self.net {
            if let Some(n) = by_ip.get_mut(&net) {
                *n -= 1;
                if *n == 0 {
                    by_ip.remove(&net);
                }
            }
        }
        self.admission.open.fetch_sub(1, SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_and_tickets() {
        let a = Admission::new(3, 2, TrustedProxies::default());
        let ip1: IpAddr = "127.0.0.1".parse().unwrap();
        let ip2: IpAddr = "127.0.0.2".parse().unwrap();
        let t1 = a.try_admit(ip1).unwrap();
        let _t2 = a.try_admit(ip1).unwrap();
        assert!(a.try_admit(ip1).is_none(), "per-IP cap");
        let _t3 = a.try_admit(ip2).unwrap();
        assert!(a.try_admit(ip2).is_none(), "global cap");
        drop(t1);
        assert!(a.try_admit(ip1).is_some());
    }

    #[test]
    fn the_per_address_cap_counts_an_ipv6_slash_64_as_one_address() {
        let a = Admission::new(100, 2, TrustedProxies::default());
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        let _t1 = a.try_admit(ip("2001:db8:1:2::1")).unwrap();
        let _t2 = a.try_admit(ip("2001:db8:1:2:ffff::2")).unwrap();
        assert!(
            a.try_admit(ip("2001:db8:1:2:abcd::3")).is_none(),
            "a third address of the same /64"
        );
        assert!(a.try_admit(ip("2001:db8:1:3::1")).is_some(), "another /64");
    }

    #[test]
    fn trusted_proxies_meet_only_the_global_cap() {
        let proxy: IpAddr = "127.0.0.1".parse().unwrap();
        let a = Admission::new(3, 1, TrustedProxies::parse("127.0.0.1").unwrap());
        let _t: Vec<Ticket> = (0..3).map(|_| a.try_admit(proxy).unwrap()).collect();
        assert!(a.try_admit(proxy).is_none(), "global cap");
        let b = Admission::new(3, 1, TrustedProxies::parse("127.0.0.1").unwrap());
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        let _u = b.try_admit(other).unwrap();
        assert!(b.try_admit(other).is_none(), "others keep the per-IP cap");
    }

    #[test]
    fn derived_ceiling_is_positive_and_respects_a_lower_setting() {
        let c = derive(None);
        assert!(c.max_connections >= 16, "{c:?}");
        assert_eq!(derive(Some(10)).max_connections, 10);
        assert!(
            derive(Some(usize::MAX / 2)).max_connections < usize::MAX / 2,
            "never raised past the machine"
        );
    }
}
