//! Scheduler hints for the threads a chat message hops through (issue 20). A message wakes,
//! in turn, the sender's reader, the store, the router and the writer. On a busy core each
//! of those wake-ups otherwise waits for whatever is running (the writer's pass over a
//! thousand sockets, a neighbour's build) to use up its time slice: 1.4 ms by default on the
//! project's 2-core box (`se.slice` in `/proc/PID/sched`). So each of these threads asks for
//! a short one.
//!
//! Linux's EEVDF scheduler (6.6; a per-thread slice for ordinary threads since 6.12) takes
//! the requested slice from `sched_attr.sched_runtime` of `sched_setattr(2)`: a thread with a
//! shorter slice gets an earlier virtual deadline, so it is picked sooner after a wake-up,
//! and a waking thread with a shorter slice than the running one may preempt it at once. It
//! runs in shorter turns for the same share of the CPU: nothing here gives a thread more
//! CPU. The kernel clamps the slice to 0.1–100 ms; no privilege is needed to set one's own.
//! Where the call is refused or ignored (an older kernel, a seccomp filter, not Linux)
//! nothing changes: a hint, never a requirement. `SCHED_SLICE_US=0` turns it off.
//!
//! Owns only the setting (`configure`, once at start, before the threads it concerns
//! start); each of those threads calls `hop_thread` once, for itself.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// `SCHED_SLICE_US` when unset: well under the kernel's default slice (1.4 ms on 2 cores),
/// above its 0.1 ms floor.
pub const DEFAULT_SLICE_US: u64 = 300;

/// The slice the message path's threads ask for, in µs; 0: none (the kernel's default).
static SLICE_US: AtomicU64 = AtomicU64::new(0);

/// Sets the slice that `hop_thread` asks for (`None`: leave every thread at the default).
pub fn configure(slice: Option<Duration>) {
    SLICE_US.store(slice.map_or(0, |s| s.as_micros() as u64), Relaxed);
}

/// The calling thread is on the message path (the store, the router, the writer, a `/ws`
/// reader): ask for the configured slice. `name` logs the outcome once for a named thread;
/// `None` (a reader, one per socket) logs nothing.
pub fn hop_thread(name: Option<&str>) {
    let us = SLICE_US.load(Relaxed);
    if us == 0 {
        return;
    }
    let result = set_slice(Duration::from_micros(us));
    let Some(name) = name else {
        return;
    };
    match result {
        // Kernels 6.6–6.11 take the call but have one slice for all (and report 0).
        Ok(got) if got.is_zero() => log::debug!("{name} thread: no per-thread slice here"),
        Ok(got) => log::info!("{name} thread: scheduler slice {} µs", got.as_micros()),
        Err(e) => log::debug!("{name} thread: scheduler slice not set ({e}); kernel default"),
    }
}

/// `sched_setattr` of the calling thread with `sched_runtime = slice`, keeping its policy
/// and nice value; returns the slice the kernel reports afterwards.
#[cfg(target_os = "linux")]
fn set_slice(slice: Duration) -> std::io::Result<Duration> {
    let size = std::mem::size_of::<libc::sched_attr>() as libc::c_uint;
    let get = |attr: &mut libc::sched_attr| {
        // SAFETY: `attr` is a valid, writable `sched_attr` of `size` bytes; pid 0 is the
        // calling thread; flags must be 0.
        let r = unsafe {
            libc::syscall(
                libc::SYS_sched_getattr,
                0,
                attr as *mut libc::sched_attr,
                size,
                0,
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    // SAFETY: `sched_attr` is plain data; all zeroes is a valid value.
    let mut attr: libc::sched_attr = unsafe { std::mem::zeroed() };
    get(&mut attr)?;
    let policy = attr.sched_policy as libc::c_int;
    if policy != libc::SCHED_OTHER && policy != libc::SCHED_BATCH {
        return Err(std::io::Error::other("not an ordinary (fair) thread"));
    }
    attr.size = size;
    attr.sched_flags = 0;
    attr.sched_runtime = slice.as_nanos() as u64;
    attr.sched_deadline = 0;
    attr.sched_period = 0;
    // SAFETY: `attr` is a valid `sched_attr` whose `size` field is its size; pid 0 is the
    // calling thread; flags must be 0.
    let r = unsafe {
        libc::syscall(
            libc::SYS_sched_setattr,
            0,
            &attr as *const libc::sched_attr,
            0,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    get(&mut attr)?;
    Ok(Duration::from_nanos(attr.sched_runtime))
}

#[cfg(not(target_os = "linux"))]
fn set_slice(_: Duration) -> std::io::Result<Duration> {
    Err(std::io::Error::other("not Linux"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a kernel with per-thread slices, the slice asked for is the one reported; on
    /// one before 6.12 the call is taken and 0 reported; elsewhere it fails cleanly. On a
    /// thread of its own, so that the test runner's thread keeps its default.
    #[test]
    fn a_requested_slice_is_applied_or_cleanly_refused() {
        std::thread::spawn(|| match set_slice(Duration::from_micros(300)) {
            Ok(got) => assert!(
                got == Duration::from_micros(300) || got.is_zero(),
                "asked for 300 µs, the kernel reports {got:?}"
            ),
            Err(e) => eprintln!("refused here: {e}"),
        })
        .join()
        .unwrap();
    }
}
