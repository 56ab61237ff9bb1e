//! Reading from smol's sockets into hyper's buffers.
//!
//! smol-hyper's `FuturesIo` works but zeroes hyper's whole read buffer before every read
//! and does not tell hyper it can write vectored, so hyper copies every body into its
//! own buffer first. Both cost real throughput on a Pi; [`super::conn`]'s adapter avoids
//! them, with this read.

use futures_lite::AsyncRead;
use hyper::rt::ReadBufCursor;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Reads from `socket` into the unfilled part of `buf` without zeroing it first, and
/// advances `buf` by what was read; the count (0: end of stream).
pub fn poll_read_cursor<S: AsyncRead + ?Sized>(
    socket: Pin<&mut S>,
    cx: &mut Context<'_>,
    buf: &mut ReadBufCursor<'_>,
) -> Poll<io::Result<usize>> {
    // SAFETY: the slice is only handed to the kernel's read(2) (through `Async`, or to
    // rustls's read through futures-rustls, which copies plaintext into it), which
    // writes into it and never reads it; we then advance the cursor by exactly the
    // number of bytes written, so no uninitialised byte is ever observed. This is what
    // tokio's ReadBuf does too.
    let n = unsafe {
        let uninit = buf.as_mut();
        let slice = std::slice::from_raw_parts_mut(uninit.as_mut_ptr() as *mut u8, uninit.len());
        match socket.poll_read(cx, slice) {
            Poll::Ready(Ok(n)) => n,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        }
    };
    // SAFETY: see above; `n` bytes were written by the read.
    unsafe { buf.advance(n) };
    Poll::Ready(Ok(n))
}
