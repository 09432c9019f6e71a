//! Memory tuning of a thread-per-connection process: what keeps an idle socket's resident
//! memory small. Runs once at start (`main` and `run`, before other threads exist) and once
//! per connection thread when it becomes a WebSocket reader; owns no state.
//!
//! The figures, from docs/PERFORMANCE.md: an idle `/ws` socket costs 15.6 KiB of RSS
//! (15,523 idle sockets, the "idle" rows), of which 12 KiB is its reader's resident stack
//! ("Resident stack per idle socket", 2,000 idle sockets, /proc/PID/smaps).
//!
//! Environment: the re-exec below needs to know whether the operator set `GLIBC_TUNABLES`;
//! it asks `config::glibc_tunables_set`, so config.rs stays the only reader of the
//! environment. It passes the environment on unchanged (plus that one variable) and reads
//! the process's own path and arguments, which are not settings.

/// Headroom kept resident below the current stack pointer when trimming a reader's stack:
/// the reader loop (tungstenite read, serde_json, the store call of a send) stays within it.
const STACK_HEADROOM_BYTES: usize = 4 * 1024;

/// Gives back to the kernel the pages of this thread's stack that lie below the current
/// stack pointer (minus headroom). Called once a connection has become an idle-mostly
/// WebSocket reader: the handshake (Argon2 on a keep-alive login, JSON, SQL) may have touched
/// deep stack that the reader loop never needs again. Those pages are zero-filled on demand if
/// they are ever touched again, so this is always safe; it only lowers RSS per idle socket
/// (see the figure in the header above).
pub fn release_unused_stack() {
    #[cfg(all(target_os = "linux", any(target_env = "gnu", target_env = "musl")))]
    // SAFETY: we only read our own thread's stack bounds and madvise pages strictly below
    // the live part of the stack (the current frame's address minus STACK_HEADROOM_BYTES);
    // MADV_DONTNEED on anonymous private memory makes those pages read back as zero.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return;
        }
        let mut addr: *mut libc::c_void = std::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let ok = libc::pthread_attr_getstack(&attr, &mut addr, &mut size) == 0;
        libc::pthread_attr_destroy(&mut attr);
        if !ok || addr.is_null() {
            return;
        }
        let page = 4096usize;
        let marker = 0u8;
        let sp = std::ptr::addr_of!(marker) as usize;
        let low = (addr as usize).div_ceil(page) * page;
        let high = sp.saturating_sub(STACK_HEADROOM_BYTES) / page * page;
        if high > low && sp < addr as usize + size {
            libc::madvise(low as *mut libc::c_void, high - low, libc::MADV_DONTNEED);
        }
    }
}

/// glibc keeps up to 7 freed blocks per size class in a cache per thread (tcache). With a
/// thread per connection, what the HTTP phase freed stays parked in every idle reader's cache.
/// Turning it off took RSS per idle socket from 18.08 to 15.58 KiB, with CPU per delivery
/// unchanged (docs/PERFORMANCE.md, the runs at `fe3734c` and `e95897d`). The cache can only be
/// turned off through `GLIBC_TUNABLES`, which glibc reads when a process starts, so the server
/// re-executes itself once with it set. An operator who sets `GLIBC_TUNABLES` keeps their own.
pub fn reexec_without_thread_caches() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;
        if crate::config::glibc_tunables_set() {
            return;
        }
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        // `exec` only returns if it failed; then we simply run with the cache on.
        let _ = std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .env("GLIBC_TUNABLES", "glibc.malloc.tcache_count=0")
            .exec();
    }
}

/// glibc raises its mmap threshold each time a large block is freed, after which Argon2's
/// 19 MiB blocks come from the heap arenas and stay resident after the hash is done (seen:
/// ~600 MiB kept after a burst of logins). A fixed 1 MiB threshold keeps every large block
/// an mmap that is returned to the OS when freed.
pub fn return_big_allocations_to_the_os() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; it is called before other threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}
