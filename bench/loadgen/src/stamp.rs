//! Kernel receive timestamps for the fan-out's receiving sockets: `SO_TIMESTAMPING` with
//! software receive stamps, read from `recvmsg`'s control data. Both readers count each
//! frame's latency to the stamp of the read that brought it (`kernel_p50_ms`,
//! `kernel_p99_ms`) as well as to their own clock, so a figure exists that the reader's own
//! delay in getting to a socket does not touch: the epoll reader (`rawread`) calls
//! `recv_stamped` itself, the tokio reader reads through `Stamped`.
//!
//! What the stamp is: on loopback it is taken as the server's segment is queued to the
//! receiving side (`netif_rx`, with `net.core.netdev_tstamp_prequeue` = 1), on the server's
//! core, before any reader runs. TCP keeps one stamp per read, the newest of the segments the
//! read joins (and of those it coalesced in the queue), so when a read takes several
//! segments the older frames in it are counted a little late, never early.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// `SO_TIMESTAMPING` (= `SCM_TIMESTAMPING`) in asm-generic and on x86-64, with the
/// 64-bit `timespec` of those targets.
const SO_TIMESTAMPING: libc::c_int = 37;

/// Asks the kernel for software receive timestamps on `fd`.
pub fn stamp_receives(fd: RawFd) -> io::Result<()> {
    let flags =
        (libc::SOF_TIMESTAMPING_RX_SOFTWARE | libc::SOF_TIMESTAMPING_SOFTWARE) as libc::c_int;
    // SAFETY: `flags` is a live c_int for the length given.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            SO_TIMESTAMPING,
            (&flags as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// One `recvmsg` into `buf` without waiting: the byte count (0 at the end of the stream) and
/// the kernel's software receive timestamp in µs since the epoch, when it gave one.
pub fn recv_stamped(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, Option<u64>)> {
    // Room for one cmsg of three timespecs (`struct scm_timestamping`), 8-byte aligned.
    let mut control = [0u64; 16];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: every pointer in `msg` is to a live buffer of the length given, for the call;
    // the cmsg walk stays within `msg_controllen` as the kernel set it.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        let n = libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT);
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut stamp = None;
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == SO_TIMESTAMPING {
                let ts = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::timespec>());
                if ts.tv_sec != 0 || ts.tv_nsec != 0 {
                    stamp = Some(ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000);
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
        Ok((n as usize, stamp))
    }
}

/// A tokio TCP stream whose reads go through `recv_stamped`: `stamp` holds the newest
/// read's kernel timestamp (µs since the epoch; 0 before the first). Writes are the stream's.
pub struct Stamped {
    inner: TcpStream,
    pub stamp: Arc<AtomicU64>,
}

impl Stamped {
    /// Wraps `inner`, asking the kernel for receive stamps on it.
    pub fn new(inner: TcpStream) -> io::Result<Stamped> {
        stamp_receives(inner.as_raw_fd())?;
        Ok(Stamped {
            inner,
            stamp: Arc::new(AtomicU64::new(0)),
        })
    }
}

impl AsyncRead for Stamped {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        let fd = me.inner.as_raw_fd();
        loop {
            ready!(me.inner.poll_read_ready(cx))?;
            let dst = buf.initialize_unfilled();
            match me
                .inner
                .try_io(Interest::READABLE, || recv_stamped(fd, dst))
            {
                Ok((n, stamp)) => {
                    if let Some(k) = stamp {
                        me.stamp.store(k, Ordering::Relaxed);
                    }
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for Stamped {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
