//! The writer thread and the per-connection outboxes: the only code that writes to an
//! upgraded WebSocket.
//!
//! Design (chosen in docs/ARCHITECTURE.md, from measurements kept in the project's notes,
//! `../shared/notes/realtime-design-measurements.md`, outside this repository): a socket costs one thread, its reader. Writes need no thread per
//! socket. Whoever has a frame for a connection — the router for broadcasts, the reader for
//! its pongs and replies — appends the whole frame to that connection's `Outbox` under its
//! one mutex, and, if the outbox was idle, wakes the single writer thread. The writer sends
//! everything queued with one non-blocking `sendmsg(MSG_DONTWAIT)` (one iovec per frame), so
//! it never waits for a slow peer; what the kernel does not take stays queued and is retried
//! on the next wake-up or a short tick. An outbox holding more than `MAX_QUEUED_BYTES` is a
//! slow consumer: it is closed with 4008 and its socket reset, and nobody else waits.
//!
//! `MSG_DONTWAIT` makes only that one call non-blocking, so the reader's blocking reads on
//! the same socket are untouched.

use std::collections::{HashMap, VecDeque};
use std::mem::MaybeUninit;
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver, RecvTimeoutError, Sender};
use socket2::SockRef;

use crate::metrics::METRICS;
use crate::realtime::frame::{self, Frame};
use crate::realtime::trace::{Stage, Trace};

/// A client that lets this much pile up (on top of what the kernel already holds) is not
/// reading: about a thousand typical chat events.
pub const MAX_QUEUED_BYTES: usize = 256 * 1024;
/// The kernel send buffer of an upgraded socket. Small, so a stalled reader is noticed
/// within about a second instead of after several MiB (measured in the design notes named
/// above).
pub const SOCKET_SNDBUF: usize = 64 * 1024;
/// How often the writer retries sockets whose kernel buffer was full.
const RETRY_TICK: Duration = Duration::from_millis(5);
/// The most frames handed to one `sendmsg` (the kernel's IOV_MAX is 1024).
const MAX_IOVECS: usize = 64;

/// Why a push was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum PushError {
    /// The connection is closing or closed.
    Closed,
    /// The queue passed `MAX_QUEUED_BYTES`; the connection is now being dropped.
    SlowConsumer,
}

#[derive(Default)]
struct Queue {
    frames: VecDeque<Frame>,
    /// Bytes of the front frame already sent.
    sent_of_front: usize,
    bytes: usize,
    /// Handed to the writer and not yet drained.
    scheduled: bool,
    /// No more frames are accepted.
    closed: bool,
    /// After the queue drains, shut the socket down.
    shutdown_after: bool,
    /// Reset the socket now (slow consumer or write error).
    kill: bool,
}

/// The write half of one upgraded connection.
pub struct Outbox {
    pub id: u64,
    /// `sock`'s descriptor, kept beside the queue's lock: the writer visits every outbox in
    /// turn, and following the `Arc` to the stream was a cache miss per send (measured with
    /// perf: the hottest instruction of the writer's own code).
    fd: RawFd,
    sock: Arc<TcpStream>,
    queue: Mutex<Queue>,
    writer: Writer,
}

impl Outbox {
    pub fn new(id: u64, sock: Arc<TcpStream>, writer: Writer) -> Arc<Outbox> {
        let _ = SockRef::from(&*sock).set_send_buffer_size(SOCKET_SNDBUF);
        Arc::new(Outbox {
            id,
            fd: sock.as_raw_fd(),
            sock,
            queue: Mutex::new(Queue::default()),
            writer,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues one whole frame and wakes the writer if needed. Never blocks on the network.
    pub fn push(self: &Arc<Self>, f: Frame) -> Result<(), PushError> {
        let mut wake = Vec::new();
        let result = self.push_deferred(f, &mut wake);
        if result.is_ok() {
            Self::count_deliveries(1);
        }
        if !wake.is_empty() {
            self.writer.wake_all(wake);
        }
        result
    }

    /// Adds `n` frames queued with `push_deferred` to `md_deliveries_total`. The router
    /// counts a fan-out's pushes and adds them once, instead of one atomic add per
    /// connection on a counter other threads bump too.
    pub fn count_deliveries(n: u64) {
        if n > 0 {
            METRICS.deliveries.fetch_add(n, Relaxed);
        }
    }

    /// Queues one whole frame; if the writer must be woken for it, adds this outbox to `wake`
    /// instead of waking it at once. The router fans one event out to every connection and
    /// then wakes the writer once for all of them (`Writer::wake_all`). The caller counts
    /// what it queued (`count_deliveries`).
    pub fn push_deferred(
        self: &Arc<Self>,
        f: Frame,
        wake: &mut Vec<Arc<Outbox>>,
    ) -> Result<(), PushError> {
        let mut q = self.lock();
        if q.closed {
            return Err(PushError::Closed);
        }
        let result = if q.bytes + f.len() > MAX_QUEUED_BYTES {
            q.closed = true;
            q.kill = true;
            METRICS.slow_clients_dropped.fetch_add(1, Relaxed);
            log::info!("connection {} is not reading; closing it (4008)", self.id);
            Err(PushError::SlowConsumer)
        } else {
            q.bytes += f.len();
            q.frames.push_back(f);
            Ok(())
        };
        if !q.scheduled {
            q.scheduled = true;
            wake.push(self.clone());
        }
        result
    }

    /// Queues a close frame; once the queue drains the socket is shut down.
    pub fn close(self: &Arc<Self>, code: u16, reason: &str) {
        let mut q = self.lock();
        if q.closed {
            return;
        }
        let f = frame::close(code, reason);
        q.bytes += f.len();
        q.frames.push_back(f);
        q.closed = true;
        q.shutdown_after = true;
        if !q.scheduled {
            q.scheduled = true;
            drop(q);
            self.writer.wake_all(vec![self.clone()]);
        }
    }

    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Sends what the kernel will take right now; `true` when nothing is left to do.
    ///
    /// Only the writer thread calls this, so only it removes frames. The queue's lock is held
    /// just to copy out (reference-count) the frames to send and, after the syscall, to drop
    /// what was sent and see whether anything else arrived meanwhile: never during `sendmsg`
    /// itself, so the router's pushes never wait for the kernel.
    fn flush(&self, batch: &mut Vec<Frame>, sends: &mut u64) -> bool {
        let mut skip = {
            let mut q = self.lock();
            match self.take_batch(&mut q, batch) {
                Some(skip) => skip,
                None => return true,
            }
        };
        loop {
            let sent = self.send_batch(batch, skip);
            *sends += 1;
            let mut q = self.lock();
            match sent {
                Ok(mut n) => {
                    q.bytes -= n;
                    while n > 0 {
                        let left = q.frames[0].len() - q.sent_of_front;
                        if n >= left {
                            n -= left;
                            q.frames.pop_front();
                            q.sent_of_front = 0;
                        } else {
                            q.sent_of_front += n;
                            n = 0;
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => {
                    // The peer is gone; its reader will notice and clean up.
                    q.frames.clear();
                    q.bytes = 0;
                    q.closed = true;
                    q.scheduled = false;
                    let _ = self.sock.shutdown(Shutdown::Both);
                    return true;
                }
            }
            // Under the same lock: anything left (a partial send, or frames pushed while we
            // were in the kernel) goes out in the next round of this loop.
            match self.take_batch(&mut q, batch) {
                Some(s) => skip = s,
                None => return true,
            }
        }
    }

    /// With the queue locked: copies out up to `MAX_IOVECS` frames to send and returns how many
    /// bytes of the first are already sent, or `None` when the outbox is done (empty, shut
    /// down after draining, or reset as a slow consumer) and no longer scheduled.
    fn take_batch(&self, q: &mut Queue, batch: &mut Vec<Frame>) -> Option<usize> {
        if q.kill {
            // A slow consumer: tell it why if no frame is half-sent, then reset the
            // connection. SO_LINGER 0 frees the kernel buffers at once instead of leaving a
            // FIN-WAIT socket holding megabytes for a peer that is not reading.
            let sock = SockRef::from(&*self.sock);
            if q.sent_of_front == 0 {
                let f = frame::close(frame::code::SLOW_CONSUMER, "slow consumer");
                let _ = sock.send_with_flags(&f, libc::MSG_DONTWAIT);
            }
            let _ = sock.set_linger(Some(Duration::ZERO));
            let _ = self.sock.shutdown(Shutdown::Both);
            q.frames.clear();
            q.bytes = 0;
            q.kill = false;
            q.scheduled = false;
            return None;
        }
        if q.frames.is_empty() {
            q.scheduled = false;
            if q.shutdown_after {
                q.shutdown_after = false;
                let _ = self.sock.shutdown(Shutdown::Write);
            }
            return None;
        }
        batch.clear();
        batch.extend(q.frames.iter().take(MAX_IOVECS).cloned());
        Some(q.sent_of_front)
    }

    /// One non-blocking `sendmsg` of `batch` (one iovec per frame, the first from `skip`).
    fn send_batch(&self, batch: &[Frame], skip: usize) -> std::io::Result<usize> {
        // Only the first `used` entries are written and handed to the kernel, so the array
        // is not cleared first: that was 1 KiB of stores per call for, at 200 msg/s, about
        // two frames.
        let mut iov = [const { MaybeUninit::<libc::iovec>::uninit() }; MAX_IOVECS];
        let used = batch.len().min(MAX_IOVECS);
        for (v, (i, f)) in iov.iter_mut().zip(batch.iter().enumerate()) {
            let bytes = if i == 0 { &f[skip..] } else { &f[..] };
            v.write(libc::iovec {
                iov_base: bytes.as_ptr() as *mut libc::c_void,
                iov_len: bytes.len(),
            });
        }
        // SAFETY: a zeroed msghdr is valid (no address, no control data); `msg_iov` points at
        // `used` iovecs, each written just above and describing bytes of a frame in `batch`,
        // which outlives the call; `self.fd` belongs to `self.sock`, which `self` keeps open.
        let n = unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = iov.as_mut_ptr().cast::<libc::iovec>();
            msg.msg_iovlen = used as _;
            libc::sendmsg(self.fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
        };
        if n < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }
}

/// What wakes the writer: outboxes that have frames to send, and for a new message's
/// fan-out the `Trace` of its path (its pass over them is timed, `trace.rs`).
struct Wake {
    outboxes: Vec<Arc<Outbox>>,
    trace: Option<Trace>,
}

/// A handle that wakes the writer thread.
#[derive(Clone)]
pub struct Writer {
    wake: Sender<Wake>,
}

impl Writer {
    /// Starts the writer thread.
    pub fn start() -> std::io::Result<Writer> {
        let (tx, rx) = unbounded::<Wake>();
        std::thread::Builder::new()
            .name("writer".into())
            .spawn(move || {
                crate::sched::hop_thread(Some("writer"));
                run(rx)
            })?;
        Ok(Writer { wake: tx })
    }

    /// Hands the writer outboxes that have frames to send (each at most once until drained).
    pub fn wake_all(&self, outboxes: Vec<Arc<Outbox>>) {
        let _ = self.wake.send(Wake {
            outboxes,
            trace: None,
        });
    }

    /// `wake_all` for a new message's fan-out, sent even when every outbox was already
    /// scheduled (its frames then ride the pass in progress): the writer records the
    /// `sendmsg_first` and `sendmsg_last` stages of `trace` (`trace.rs`).
    pub fn wake_traced(&self, outboxes: Vec<Arc<Outbox>>, trace: Trace) {
        let _ = self.wake.send(Wake {
            outboxes,
            trace: Some(trace),
        });
    }
}

fn run(wake: Receiver<Wake>) {
    // Outboxes whose kernel buffer was full last time, retried on every tick.
    let mut waiting: HashMap<u64, Arc<Outbox>> = HashMap::new();
    let mut batch: Vec<Frame> = Vec::with_capacity(MAX_IOVECS);
    loop {
        // Counted here and published once per round, so that the writer never shares a
        // cache line with the router's per-push counters.
        let mut sends = 0u64;
        let timeout = if waiting.is_empty() {
            Duration::from_secs(3600)
        } else {
            RETRY_TICK
        };
        match wake.recv_timeout(timeout) {
            Ok(first) => {
                // Take everything else that is ready too before going back to the retry list.
                for w in std::iter::once(first).chain(wake.try_iter()) {
                    let mut first_done = false;
                    for ob in w.outboxes {
                        if !ob.flush(&mut batch, &mut sends) {
                            waiting.insert(ob.id, ob);
                        }
                        if let (Some(t), false) = (&w.trace, first_done) {
                            t.stage(Stage::SendmsgFirst);
                            first_done = true;
                        }
                    }
                    if let Some(t) = &w.trace {
                        if !first_done {
                            t.stage(Stage::SendmsgFirst);
                        }
                        t.stage(Stage::SendmsgLast);
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        waiting.retain(|_, ob| !ob.flush(&mut batch, &mut sends));
        batch.clear();
        METRICS.writer_syscalls.fetch_add(sends, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    /// Many frames of mixed sizes through a real loopback socket whose reader is slower than
    /// the producer, so that the kernel buffers fill and `sendmsg` keeps taking only part of a
    /// batch: the bytes that arrive must be exactly the frames, in order, none split apart or
    /// repeated. The producer stays under `MAX_QUEUED_BYTES` by waiting for the reader to catch
    /// up, as a reading client does.
    #[test]
    fn partial_sends_keep_every_frame_whole_and_in_order() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        SockRef::from(&client)
            .set_recv_buffer_size(32 * 1024)
            .unwrap();
        let writer = Writer::start().unwrap();
        let outbox = Outbox::new(1, Arc::new(server), writer);

        let frames: Vec<Frame> = (0..2000u32)
            .map(|i| {
                let len = [3usize, 120, 1500, 20_000][(i % 4) as usize] + (i as usize % 7);
                (0..len)
                    .map(|j| (i as usize * 31 + j) as u8)
                    .collect::<Vec<u8>>()
                    .into()
            })
            .collect();
        let expected: Vec<u8> = frames.iter().flat_map(|f| f.iter().copied()).collect();
        let total = expected.len();

        let received = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = received.clone();
        let reader = std::thread::spawn(move || {
            let mut client = client;
            client
                .set_read_timeout(Some(Duration::from_secs(20)))
                .unwrap();
            let mut got = Vec::with_capacity(total);
            let mut buf = [0u8; 1000];
            while got.len() < total {
                let n = match client.read(&mut buf) {
                    Ok(n) => n,
                    Err(e) => panic!("stuck after {} of {total} bytes: {e}", got.len()),
                };
                assert!(n > 0, "closed after {} of {total} bytes", got.len());
                got.extend_from_slice(&buf[..n]);
                seen.store(got.len(), Relaxed);
                if got.len() % 7 == 0 {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
            got
        });
        let mut pushed = 0usize;
        let mut most_queued = 0;
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        for f in frames {
            most_queued = most_queued.max(outbox.lock().bytes);
            while pushed - received.load(Relaxed) > MAX_QUEUED_BYTES / 2 {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the writer stopped sending"
                );
                std::thread::sleep(Duration::from_micros(100));
            }
            pushed += f.len();
            outbox.push(f).expect("a reading client is never dropped");
        }
        let got = reader.join().unwrap();
        assert!(got == expected, "the byte stream differs from the frames");
        // Frames did wait in the outbox, so the kernel refused some: partial sends happened.
        assert!(
            most_queued > 20_000,
            "the kernel never pushed back ({most_queued} B)"
        );
        assert!(!outbox.is_closed());
    }
}
