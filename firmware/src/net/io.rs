//! The adapter between smol's sockets and hyper's I/O traits.
//!
//! smol-hyper's `FuturesIo` works but zeroes hyper's whole read buffer before every read
//! and does not tell hyper it can write vectored, so hyper copies every body into its
//! own buffer first. Both cost real throughput on a Pi; this adapter avoids them.

use async_io::Async;
use futures_lite::{AsyncRead, AsyncWrite};
use hyper::rt::ReadBufCursor;
use std::io;
use std::net::TcpStream;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A TCP connection (or a TLS stream over one) usable by hyper.
#[derive(Debug)]
pub struct SmolIo<S = Async<TcpStream>>(pub S);

impl<S: AsyncRead + Unpin> hyper::rt::Read for SmolIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        // SAFETY: the slice is only handed to the kernel's read(2) through
        // `Async::poll_read`, which writes into it and never reads it; we then advance
        // the cursor by exactly the number of bytes the kernel wrote, so no
        // uninitialised byte is ever observed. This is what tokio's ReadBuf does too.
        let n = unsafe {
            let uninit = buf.as_mut();
            let slice = std::slice::from_raw_parts_mut(uninit.as_mut_ptr() as *mut u8, uninit.len());
            match Pin::new(&mut self.0).poll_read(cx, slice) {
                Poll::Ready(Ok(n)) => n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        };
        // SAFETY: see above; `n` bytes were written by the read.
        unsafe { buf.advance(n) };
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> hyper::rt::Write for SmolIo<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        // writev(2): headers and body leave in one syscall without being copied together.
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_close(cx)
    }
}
