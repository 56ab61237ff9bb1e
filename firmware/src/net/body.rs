//! Request bodies read into memory (serverless requests, API JSON): bounded per request,
//! timed between pieces, and counted against one node-wide budget, so that many slow or
//! large bodies at once cannot grow the node without bound.
//!
//! Bytes are reserved as they arrive (all at once when a `Content-Length` is declared)
//! and given back when the [`Reservation`] is dropped, which the caller holds for as long
//! as it holds the bytes: a serverless request keeps its reservation while it waits for
//! a worker and while it runs.

use super::response::ApiError;
use async_io::Timer;
use bytes::{Bytes, BytesMut};
use futures_lite::future;
use http::{header, HeaderMap, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Bytes of request bodies the node holds in memory at once.
#[derive(Debug)]
pub struct BodyBudget {
    max: usize,
    used: AtomicUsize,
}

impl BodyBudget {
    /// A budget of `max` bytes.
    pub fn new(max: usize) -> Arc<BodyBudget> {
        Arc::new(BodyBudget { max, used: AtomicUsize::new(0) })
    }

    /// Bytes reserved now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// An empty reservation, to grow as bytes arrive.
    pub fn reservation(self: &Arc<Self>) -> Reservation {
        Reservation { budget: self.clone(), bytes: 0 }
    }

    fn take(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|total| *total <= self.max)
            })
            .is_ok()
    }
}

/// Bytes taken from a [`BodyBudget`], given back on drop.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<BodyBudget>,
    bytes: usize,
}

impl Reservation {
    /// Takes `n` more bytes; false (and nothing taken) when the budget has no room.
    pub fn grow(&mut self, n: usize) -> bool {
        if n == 0 || self.budget.take(n) {
            self.bytes += n;
            true
        } else {
            false
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// Over the endpoint's limit.
    #[error("request body over {0} bytes")]
    TooLarge(usize),
    /// The client paused longer than the body timeout between two pieces.
    #[error("the request body stalled: nothing arrived for {0} s (http.body_timeout_secs)")]
    Stalled(u64),
    /// The node-wide budget for bodies in memory is spent.
    #[error("the node is receiving too many request bodies at once; retry shortly")]
    Busy,
    /// The client broke off, or sent a malformed body.
    #[error("could not read the request body: {0}")]
    Truncated(String),
}

impl From<BodyError> for ApiError {
    fn from(err: BodyError) -> Self {
        match err {
            BodyError::TooLarge(_) => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", err.to_string())
            }
            BodyError::Stalled(_) => {
                ApiError::new(StatusCode::REQUEST_TIMEOUT, "body_timeout", err.to_string())
            }
            BodyError::Busy => {
                let mut api = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", err.to_string());
                api.retry_after = Some(1);
                api
            }
            BodyError::Truncated(_) => ApiError::bad_request("upload_truncated", err.to_string()),
        }
    }
}

/// How one body may be read.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// Largest body, in bytes.
    pub max_bytes: usize,
    /// Longest wait between two pieces.
    pub idle: Duration,
}

/// Reads a whole body into memory within `limits`, its bytes reserved from `budget`.
/// The reservation must be kept for as long as the bytes are.
pub async fn read(
    headers: &HeaderMap,
    body: Incoming,
    limits: BodyLimits,
    budget: &Arc<BodyBudget>,
) -> Result<(Bytes, Reservation), BodyError> {
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_bytes as u64) {
        return Err(BodyError::TooLarge(limits.max_bytes));
    }
    let mut reservation = budget.reservation();
    // A declared length is reserved at once, so a request that cannot be held is
    // refused before any of it is read.
    let declared = declared.unwrap_or(0) as usize;
    if !reservation.grow(declared) {
        return Err(BodyError::Busy);
    }
    let mut buf = BytesMut::with_capacity(declared);
    let mut body = body;
    loop {
        let frame = future::or(async { Some(body.frame().await) }, async {
            Timer::after(limits.idle).await;
            None
        })
        .await;
        let frame = match frame {
            None => return Err(BodyError::Stalled(limits.idle.as_secs())),
            Some(None) => break,
            Some(Some(Err(err))) => return Err(BodyError::Truncated(err.to_string())),
            Some(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else { continue };
        let total = buf.len() + data.len();
        if total > limits.max_bytes {
            return Err(BodyError::TooLarge(limits.max_bytes));
        }
        if total > reservation.bytes() && !reservation.grow(total - reservation.bytes()) {
            return Err(BodyError::Busy);
        }
        buf.extend_from_slice(&data);
    }
    Ok((buf.freeze(), reservation))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_are_bounded_and_given_back() {
        let budget = BodyBudget::new(100);
        let mut a = budget.reservation();
        assert!(a.grow(60));
        let mut b = budget.reservation();
        assert!(!b.grow(41), "over the budget");
        assert_eq!(b.bytes(), 0, "a refused grow takes nothing");
        assert!(b.grow(40));
        assert_eq!(budget.used(), 100);
        drop(a);
        assert_eq!(budget.used(), 40);
        assert!(b.grow(60));
        drop(b);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn concurrent_reservations_never_overshoot() {
        let budget = BodyBudget::new(1000);
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let budget = budget.clone();
                std::thread::spawn(move || {
                    let mut held = Vec::new();
                    for _ in 0..10_000 {
                        let mut r = budget.reservation();
                        if r.grow(7) {
                            assert!(budget.used() <= 1000);
                            held.push(r);
                        }
                        if held.len() > 20 {
                            held.clear();
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(budget.used(), 0);
    }
}
