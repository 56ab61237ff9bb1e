//! Who is connected: connections counted per client and capped, so that one client
//! cannot take the node's connection slots; and which connections are idle, so that a
//! node out of slots closes the longest-idle one instead of turning new clients away.
//!
//! A client is an IPv4 address or an IPv6 /64: a single host usually holds a whole /64,
//! so counting IPv6 addresses one by one would give it 2^64 caps. This is nginx's
//! `limit_conn` keyed on the address, and its reuse of idle keep-alive connections when
//! `worker_connections` run out, in one place.

pub use crate::rules::client::ClientKey;
use event_listener::Event;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// One connection's idle state, shared by the connection and the table.
#[derive(Debug, Default)]
pub struct Presence {
    /// 0 while busy; otherwise 1 + the milliseconds since the table's epoch at which it
    /// became idle.
    idle_since: AtomicU64,
    /// Set when the table asks the connection to close.
    evicted: AtomicBool,
    /// Woken when `evicted` is set.
    wake: Event,
}

impl Presence {
    /// True once the node asked this connection to make room.
    pub fn evicted(&self) -> bool {
        self.evicted.load(Ordering::Acquire)
    }

    /// Waits until the node asks this connection to make room (never returns otherwise).
    pub async fn until_evicted(&self) {
        loop {
            let listener = self.wake.listen();
            if self.evicted() {
                return;
            }
            listener.await;
        }
    }
}

/// The node's connections by client, and their idle states.
#[derive(Debug)]
pub struct Clients {
    /// Most connections one client may hold (0: no cap).
    per_client: u32,
    epoch: Instant,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    counts: HashMap<ClientKey, u32>,
    live: HashMap<u64, Weak<Presence>>,
    next_id: u64,
}

/// Refused: the client already holds its cap of connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverCap {
    /// The cap it reached.
    pub cap: u32,
}

impl Clients {
    /// A table allowing `per_client` connections per client (0: no cap).
    pub fn new(per_client: u32) -> Arc<Clients> {
        Arc::new(Clients { per_client, epoch: Instant::now(), inner: Mutex::new(Inner::default()) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a new connection from `ip`, idle until it marks itself busy; refused when
    /// its client is at the cap.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admission, OverCap> {
        let key = ClientKey::of(ip);
        let presence = Arc::new(Presence::default());
        let mut inner = self.lock();
        let count = inner.counts.entry(key).or_insert(0);
        if self.per_client > 0 && *count >= self.per_client {
            return Err(OverCap { cap: self.per_client });
        }
        *count += 1;
        let id = inner.next_id;
        inner.next_id += 1;
        inner.live.insert(id, Arc::downgrade(&presence));
        drop(inner);
        let admission = Admission { clients: self.clone(), key, id, presence };
        admission.idle();
        Ok(admission)
    }

    /// Connections `ip`'s client holds now.
    pub fn count(&self, ip: IpAddr) -> u32 {
        self.lock().counts.get(&ClientKey::of(ip)).copied().unwrap_or(0)
    }

    /// Asks the connection idle for longest to close; false when none is idle.
    pub fn evict_idle(&self) -> bool {
        let inner = self.lock();
        // Ties (the same millisecond) go to the connection admitted first.
        let oldest = inner
            .live
            .iter()
            .filter_map(|(id, p)| Some((*id, p.upgrade()?)))
            .filter(|(_, p)| !p.evicted())
            .filter_map(|(id, p)| match p.idle_since.load(Ordering::Acquire) {
                0 => None,
                since => Some(((since, id), p)),
            })
            .min_by_key(|(key, _)| *key);
        drop(inner);
        match oldest {
            Some((_, presence)) => {
                presence.evicted.store(true, Ordering::Release);
                presence.wake.notify(usize::MAX);
                true
            }
            None => false,
        }
    }

    fn now_mark(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }
}

/// A counted connection: uncounted when dropped.
#[derive(Debug)]
pub struct Admission {
    clients: Arc<Clients>,
    key: ClientKey,
    id: u64,
    presence: Arc<Presence>,
}

impl Admission {
    /// The connection's idle state, for the connection to watch.
    pub fn presence(&self) -> &Arc<Presence> {
        &self.presence
    }

    /// Marks the connection idle (waiting for a request, nothing in flight); it keeps
    /// the time it first became idle.
    pub fn idle(&self) {
        let _ = self.presence.idle_since.compare_exchange(
            0,
            self.clients.now_mark(),
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    /// Marks the connection busy (a request is being read or answered).
    pub fn busy(&self) {
        self.presence.idle_since.store(0, Ordering::Release);
    }

    /// How long the connection has been idle; `None` while busy.
    pub fn idle_for(&self) -> Option<Duration> {
        match self.presence.idle_since.load(Ordering::Acquire) {
            0 => None,
            since => Some(Duration::from_millis(self.clients.now_mark().saturating_sub(since))),
        }
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut inner = self.clients.lock();
        inner.live.remove(&self.id);
        if let Some(count) = inner.counts.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                inner.counts.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cap_per_client_and_release_on_drop() {
        let clients = Clients::new(2);
        let a = clients.admit(ip("2001:db8::1")).unwrap();
        let _b = clients.admit(ip("2001:db8::2")).unwrap();
        assert_eq!(clients.admit(ip("2001:db8::3")).unwrap_err(), OverCap { cap: 2 });
        // Another client is not affected.
        let _c = clients.admit(ip("10.0.0.1")).unwrap();
        drop(a);
        assert_eq!(clients.count(ip("2001:db8::9")), 1);
        let _d = clients.admit(ip("2001:db8::3")).unwrap();
        assert_eq!(clients.count(ip("2001:db8::9")), 2);
    }

    #[test]
    fn no_cap_when_zero() {
        let clients = Clients::new(0);
        let held: Vec<_> = (0..1000).map(|_| clients.admit(ip("10.0.0.1")).unwrap()).collect();
        assert_eq!(clients.count(ip("10.0.0.1")), 1000);
        drop(held);
        assert_eq!(clients.count(ip("10.0.0.1")), 0);
        assert!(clients.lock().counts.is_empty() && clients.lock().live.is_empty(), "nothing left behind");
    }

    #[test]
    fn eviction_takes_the_longest_idle_and_never_a_busy_one() {
        let clients = Clients::new(0);
        let old = clients.admit(ip("10.0.0.1")).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let busy = clients.admit(ip("10.0.0.2")).unwrap();
        busy.busy();
        std::thread::sleep(Duration::from_millis(5));
        let young = clients.admit(ip("10.0.0.3")).unwrap();
        // Going busy and idle again restarts the idle time.
        old.busy();
        std::thread::sleep(Duration::from_millis(5));
        old.idle();
        assert!(clients.evict_idle());
        assert!(young.presence().evicted(), "the longest idle goes first");
        assert!(!old.presence().evicted() && !busy.presence().evicted());
        assert!(clients.evict_idle());
        assert!(old.presence().evicted());
        assert!(!clients.evict_idle(), "a busy connection is never evicted");
        assert!(!busy.presence().evicted());
        assert!(busy.idle_for().is_none() && old.idle_for().is_some());
    }

    #[test]
    fn eviction_among_equally_idle_goes_by_admission_order() {
        let clients = Clients::new(0);
        let conns: Vec<_> = (0..50).map(|_| clients.admit(ip("10.0.0.1")).unwrap()).collect();
        for conn in &conns {
            assert!(clients.evict_idle());
            assert!(conn.presence().evicted(), "first admitted, first evicted");
        }
    }

    #[test]
    fn eviction_wakes_the_waiting_connection() {
        let clients = Clients::new(0);
        let conn = clients.admit(ip("10.0.0.1")).unwrap();
        let presence = conn.presence().clone();
        let waiter = std::thread::spawn(move || futures_lite::future::block_on(presence.until_evicted()));
        std::thread::sleep(Duration::from_millis(20));
        assert!(clients.evict_idle());
        waiter.join().unwrap();
    }
}
