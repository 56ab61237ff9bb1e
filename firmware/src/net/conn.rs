//! One connection after accept (and after the TLS handshake): HTTP/1.1 served by hyper
//! with hyper's buffers given back while the connection is idle, or HTTP/2.
//!
//! hyper keeps an 8 KB read buffer and an 8 KB header buffer for an HTTP/1 connection
//! for as long as the connection lives, whether a request is coming or not. With the
//! task and hyper-util's version-sniffing connection around them, an idle keep-alive
//! connection cost about 25 KB (32 KB over TLS; `MEMORY_ONLY=1 bash bench/tls.sh`).
//!
//! So between requests a connection *idles*: when hyper asks for bytes while no request
//! is in flight, its last answer is flushed and the socket has nothing to read, the
//! adapter ([`Watched`]) answers "end of stream". hyper then ends gracefully and hands
//! back the socket and any bytes it read but did not use
//! ([`http1::Connection::into_parts`]). The connection then waits for the socket to
//! become readable holding only the socket (and the TLS session), and a new hyper
//! connection carries on with those bytes in front. An idle connection keeps what the
//! kernel and rustls hold for it, and nothing of hyper's.
//!
//! A connection that has sent a request with a body never idles: hyper may still be
//! draining a body the handler did not read, and must not be cut off in the middle.
//!
//! Every phase is timed ([`HttpLimits`]): the first bytes and each request's headers
//! (`http.header_timeout_secs`), an idle keep-alive or an HTTP/2 connection without open
//! requests (`http.idle_timeout_secs`), bodies where they are read (`net::body`). An idle
//! connection also closes when the node needs its slot for a new client
//! ([`super::clients`]).

use super::clients::Admission;
use super::limits::{self, HttpLimits};
use super::response::Body;
use super::Web;
use async_io::{Async, Timer};
use bytes::{Buf, Bytes};
use futures_lite::{future, AsyncRead, AsyncWrite, AsyncWriteExt};
use http::{Request, Response};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::rt::ReadBufCursor;
use hyper::server::conn::{http1, http2};
use smol::Executor;
use smol_hyper::rt::{SmolExecutor, SmolTimer};
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Closing a connection (a TLS close_notify, a FIN) gives up after this long.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// A lingering close ends when the client sends nothing for this long (nginx:
/// `lingering_timeout` 5 s)...
const LINGER_TIMEOUT: Duration = Duration::from_secs(2);
/// ...or after this long in all (nginx: `lingering_time` 30 s).
const LINGER_TIME: Duration = Duration::from_secs(10);

/// The HTTP/2 connection preface a client speaking h2c by prior knowledge starts with.
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The hyper builders every connection of a listener shares, and the limits.
pub struct Protocols {
    h1: http1::Builder,
    h2: http2::Builder<SmolExecutor<Arc<Executor<'static>>>>,
    limits: HttpLimits,
}

impl std::fmt::Debug for Protocols {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Protocols").finish_non_exhaustive()
    }
}

impl Protocols {
    /// HTTP/1.1 with keep-alive and a header timeout, and HTTP/2 with bounded streams,
    /// windows and keep-alive pings, on `executor`.
    pub fn new(executor: Arc<Executor<'static>>, limits: HttpLimits) -> Protocols {
        let mut h1 = http1::Builder::new();
        h1.timer(SmolTimer::new()).header_read_timeout(limits.header_timeout).keep_alive(true);
        let mut h2 = http2::Builder::new(SmolExecutor::new(executor));
        h2.timer(SmolTimer::new())
            .max_concurrent_streams(limits::H2_MAX_STREAMS)
            .initial_stream_window_size(limits::H2_STREAM_WINDOW)
            .initial_connection_window_size(limits::H2_CONNECTION_WINDOW)
            .keep_alive_interval(limits::H2_PING_INTERVAL)
            .keep_alive_timeout(limits::H2_PING_TIMEOUT);
        Protocols { h1, h2, limits }
    }
}

/// A connection's socket: a TCP stream, or a TLS stream over one.
pub trait Socket: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// The TCP socket underneath, to wait for bytes without reading them.
    fn tcp(&self) -> &Async<TcpStream>;
}

impl Socket for Async<TcpStream> {
    fn tcp(&self) -> &Async<TcpStream> {
        self
    }
}

impl Socket for futures_rustls::server::TlsStream<Async<TcpStream>> {
    fn tcp(&self) -> &Async<TcpStream> {
        self.get_ref().0
    }
}

/// A TLS stream is about 1.2 KB, and an async fn keeps room for every place a value
/// passes through (moved-from locals included), so the connection boxes it once.
impl<S: Socket> Socket for Box<S> {
    fn tcp(&self) -> &Async<TcpStream> {
        (**self).tcp()
    }
}

/// The protocol a connection speaks, when the caller knows it (TLS ALPN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Not known: HTTP/1.1, or HTTP/2 if the client starts with its preface.
    Sniff,
    /// HTTP/1.1 (ALPN `http/1.1`).
    Http1,
    /// HTTP/2 (ALPN `h2`).
    Http2,
}

/// Serves `socket` until the client leaves, an error, a timeout, or the node closes it
/// to make room; `admission` counts it among its client's connections.
pub async fn serve<S: Socket>(
    protocols: Arc<Protocols>,
    web: Arc<Web>,
    peer: SocketAddr,
    secure: bool,
    mut socket: S,
    protocol: Protocol,
    admission: Admission,
) {
    // A connection is idle whenever it has no request in flight: before its first
    // request, between requests, and while a request's headers are still arriving (a
    // slow client's, or a slowloris'). When the node is out of slots, the one idle for
    // longest is closed; a connection whose request is being answered never is.
    admission.idle();
    let mut prefix = Bytes::new();
    let protocol = match protocol {
        Protocol::Sniff => {
            let presence = admission.presence().clone();
            let sniffed = future::or(sniff(&mut socket), async {
                future::or(Timer::after(protocols.limits.header_timeout), async {
                    presence.until_evicted().await;
                    Instant::now()
                })
                .await;
                Err(io::ErrorKind::TimedOut.into())
            })
            .await;
            match sniffed {
                Ok((is_h2, bytes)) => {
                    prefix = bytes;
                    if is_h2 {
                        Protocol::Http2
                    } else {
                        Protocol::Http1
                    }
                }
                Err(err) => {
                    tracing::debug!(error = %err, %peer, "connection ended before a request");
                    return;
                }
            }
        }
        known => known,
    };
    let h2 = protocol == Protocol::Http2;
    let watch = Arc::new(Watch { in_flight: AtomicUsize::new(0), keep: AtomicBool::new(h2), admission });
    let service = Service { web, peer, secure, watch: watch.clone() };
    let io = Watched { socket, prefix, dirty: false, idled: false, watch };
    if h2 {
        serve_http2(&protocols, io, service, peer).await;
        return;
    }
    serve_http1(&protocols, io, service, peer).await;
}

/// HTTP/2 until the client leaves, or no request is open for the idle timeout, or the
/// node needs the slot; boxed by a plain function: a future built inside an async fn
/// keeps its room in that fn's state even after it is moved into a box, and HTTP/2's is
/// several KB that an HTTP/1 connection's task would carry for nothing.
fn serve_http2<S: Socket>(
    protocols: &Protocols,
    io: Watched<S>,
    service: Service,
    peer: SocketAddr,
) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    let watch = io.watch.clone();
    let idle_timeout = protocols.limits.idle_timeout;
    let mut conn = Box::pin(protocols.h2.serve_connection(io, service));
    Box::pin(async move {
        watch.admission.idle();
        let ended = future::or(async { Some(conn.as_mut().await) }, async {
            until_idle_too_long(&watch, idle_timeout).await;
            None
        })
        .await;
        let result = match ended {
            Some(result) => result,
            // No request open: nothing to finish, so the socket closes now. hyper's
            // graceful shutdown would wait for the client to answer a PING, which a
            // hostile client never does, and the slot the node needs stays taken.
            None if watch.in_flight.load(Ordering::SeqCst) == 0 => return,
            None => {
                // A request raced in: GOAWAY, and let it finish (bounded).
                conn.as_mut().graceful_shutdown();
                match future::or(async { Some(conn.as_mut().await) }, async {
                    Timer::after(CLOSE_TIMEOUT).await;
                    None
                })
                .await
                {
                    Some(result) => result,
                    None => return,
                }
            }
        };
        if let Err(err) = result {
            tracing::debug!(error = %err, %peer, "connection ended with an error");
        }
    })
}

/// Returns once an HTTP/2 connection has had no open request for `idle`, or the node
/// asked it to make room.
async fn until_idle_too_long(watch: &Watch, idle: Duration) {
    let presence = watch.admission.presence().clone();
    let timed = async {
        loop {
            match watch.admission.idle_for() {
                Some(quiet) if quiet >= idle => return,
                Some(quiet) => Timer::after(idle - quiet).await,
                // Busy: look again in a while (the idle time starts when it goes idle).
                None => Timer::after((idle / 4).max(Duration::from_millis(250))).await,
            };
        }
    };
    future::or(timed, presence.until_evicted()).await
}

/// HTTP/1.1: hyper connection after hyper connection, idling in between.
async fn serve_http1<S: Socket>(
    protocols: &Protocols,
    mut io: Watched<S>,
    service: Service,
    peer: SocketAddr,
) {
    let limits = protocols.limits;
    // The time by which a request that has begun must have all its headers: a client
    // trickling a request in pieces cannot restart hyper's header timer by idling.
    let mut head_deadline = Some(Instant::now() + limits.header_timeout);
    loop {
        // Boxed: while idle, the task holds none of hyper's connection state.
        let mut conn = Box::new(protocols.h1.serve_connection(io, service.clone()));
        let result = future::poll_fn(|cx| conn.poll_without_shutdown(cx)).await;
        let parts = conn.into_parts();
        io = parts.io;
        // Copied out, and the rest of `parts` dropped now, not at the end of this
        // iteration: hyper's read buffer (8-16 KB) would otherwise stay alive while idle.
        let unread =
            if parts.read_buf.is_empty() { Bytes::new() } else { Bytes::copy_from_slice(&parts.read_buf) };
        drop(parts.read_buf);
        drop(parts.service);
        if !io.idled {
            // Ended for real: the client left, `Connection: close`, or an error.
            match result {
                Ok(()) => {
                    close(&mut io.socket).await;
                    // A request body may be left unread (an early 413 or 503): without
                    // this, the client still sending it gets a reset instead of our answer.
                    if io.watch.keep.load(Ordering::Relaxed) {
                        Box::pin(linger(io.socket.tcp())).await;
                    }
                }
                Err(err) => tracing::debug!(error = %err, %peer, "connection ended with an error"),
            }
            return;
        }
        match result {
            Ok(()) => {}
            // Our "end of stream" arrived in the middle of a request hyper had begun
            // to read (a pipelined one, or a slow client); its bytes are in read_buf.
            Err(err) if err.is_incomplete_message() => {}
            Err(err) => {
                tracing::debug!(error = %err, %peer, "connection ended with an error");
                return;
            }
        }
        io.idled = false;
        io.prefix = unread;
        let now = Instant::now();
        if io.prefix.is_empty() {
            head_deadline = None;
        } else if head_deadline.is_none() {
            head_deadline = Some(now + limits.header_timeout);
        }
        let deadline = head_deadline.unwrap_or(now + limits.idle_timeout);
        let presence = io.watch.admission.presence().clone();
        let readable = future::or(async { io.socket.tcp().readable().await.is_ok() }, async {
            future::or(Timer::at(deadline), async {
                presence.until_evicted().await;
                Instant::now()
            })
            .await;
            false
        })
        .await;
        if !readable {
            close(&mut io.socket).await;
            return;
        }
    }
}

/// Closes `socket` (TLS close_notify, then FIN), giving up after [`CLOSE_TIMEOUT`].
async fn close<S: Socket>(socket: &mut S) {
    let _ = future::or(async { socket.close().await.is_ok() }, async {
        Timer::after(CLOSE_TIMEOUT).await;
        false
    })
    .await;
}

/// nginx's lingering close: after our FIN, reads and drops what the client still sends,
/// until it stops for [`LINGER_TIMEOUT`] or [`LINGER_TIME`] has passed in all. Memory
/// stays one small buffer; the connection keeps its slot meanwhile, as in nginx.
async fn linger(tcp: &Async<TcpStream>) {
    use futures_lite::AsyncReadExt;
    // async-io's close only flushes: the FIN that tells the client the answer is
    // complete is sent here.
    if tcp.get_ref().shutdown(std::net::Shutdown::Write).is_err() {
        return;
    }
    let deadline = Instant::now() + LINGER_TIME;
    let mut buf = vec![0u8; 4096];
    let mut reader = tcp;
    loop {
        let wait = deadline.min(Instant::now() + LINGER_TIMEOUT);
        let read = future::or(async { Some(reader.read(&mut buf).await) }, async {
            Timer::at(wait).await;
            None
        })
        .await;
        match read {
            Some(Ok(n)) if n > 0 => {}
            _ => return,
        }
    }
}

/// Reads the first bytes, as long as they match the HTTP/2 preface; true when all 24
/// did. An empty answer means the client left without a byte.
async fn sniff<S: AsyncRead + Unpin>(socket: &mut S) -> io::Result<(bool, Bytes)> {
    use futures_lite::AsyncReadExt;
    let mut buf = [0u8; 24];
    let mut n = 0;
    while n < buf.len() {
        let got = socket.read(&mut buf[n..]).await?;
        if got == 0 {
            break;
        }
        n += got;
        if buf[..n] != H2_PREFACE[..n] {
            return Ok((false, Bytes::copy_from_slice(&buf[..n])));
        }
    }
    if n == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok((n == H2_PREFACE.len(), Bytes::copy_from_slice(&buf[..n])))
}

/// What the adapter needs to know of the requests: whether one is in flight.
#[derive(Debug)]
struct Watch {
    /// Requests whose answer has not been sent yet.
    in_flight: AtomicUsize,
    /// Never idle (HTTP/2, or a request with a body was seen).
    keep: AtomicBool,
    /// The connection as its client's count and the node's idle list know it.
    admission: Admission,
}

/// One request in flight, until its answer's body is dropped (sent, or abandoned).
#[derive(Debug)]
struct InFlight(Arc<Watch>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let watch = &self.0;
        if watch.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            watch.admission.idle();
            // A request that began meanwhile marked the connection busy before this
            // marked it idle, or will after: look again, so busy wins either way.
            if watch.in_flight.load(Ordering::SeqCst) > 0 {
                watch.admission.busy();
            }
        }
    }
}

/// An answer's body that counts as in flight until hyper drops it.
#[derive(Debug)]
pub struct Tracked {
    body: Body,
    _in_flight: InFlight,
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The hyper service of one connection.
#[derive(Clone)]
struct Service {
    web: Arc<Web>,
    peer: SocketAddr,
    secure: bool,
    watch: Arc<Watch>,
}

type ServiceFuture = Pin<Box<dyn Future<Output = Result<Response<Tracked>, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for Service {
    type Response = Response<Tracked>;
    type Error = Infallible;
    type Future = ServiceFuture;

    fn call(&self, req: Request<Incoming>) -> ServiceFuture {
        // Counted here, synchronously, before hyper can read again.
        if !hyper::body::Body::is_end_stream(req.body()) {
            self.watch.keep.store(true, Ordering::Relaxed);
        }
        self.watch.in_flight.fetch_add(1, Ordering::SeqCst);
        self.watch.admission.busy();
        let in_flight = InFlight(self.watch.clone());
        let (web, peer, secure) = (self.web.clone(), self.peer, self.secure);
        Box::pin(async move {
            let resp = super::server::handle(web, peer, req, secure).await;
            Ok(resp.map(|body| Tracked { body, _in_flight: in_flight }))
        })
    }
}

/// The socket as hyper sees it: bytes read ahead first, then the socket; "end of
/// stream" when the connection may idle (see the module doc).
struct Watched<S> {
    socket: S,
    /// Bytes a previous hyper connection read and did not use, or the sniffed ones.
    prefix: Bytes,
    /// Written since the last completed flush.
    dirty: bool,
    /// This adapter ended the stream to idle (not the client).
    idled: bool,
    watch: Arc<Watch>,
}

impl<S> Watched<S> {
    /// No request in flight, and the connection may idle at all.
    fn may_idle(&self) -> bool {
        !self.watch.keep.load(Ordering::Relaxed) && self.watch.in_flight.load(Ordering::Acquire) == 0
    }
}

impl<S: AsyncRead + Unpin> hyper::rt::Read for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix[..n]);
            this.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        match super::io::poll_read_cursor(Pin::new(&mut this.socket), cx, &mut buf) {
            Poll::Pending if !this.dirty && this.may_idle() => {
                this.idled = true;
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Ok(_)) => Poll::Ready(Ok(())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncWrite + Unpin> hyper::rt::Write for Watched<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.dirty = true;
        Pin::new(&mut self.socket).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.dirty = true;
        Pin::new(&mut self.socket).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        // writev(2): headers and body leave in one syscall without being copied together.
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.socket).poll_flush(cx);
        if let Poll::Ready(Ok(())) = result {
            // An answer just left and nothing is in flight: hyper will not ask for
            // bytes again until the socket wakes it, so wake it now, to idle.
            if self.dirty && self.may_idle() {
                cx.waker().wake_by_ref();
            }
            self.dirty = false;
        }
        result
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.socket).poll_close(cx)
    }
}
