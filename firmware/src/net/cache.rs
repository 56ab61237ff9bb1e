//! In-memory caches on the serving path, so a hot request touches no SQLite.
//!
//! - [`SiteCache`]: the current file table of each app, replaced whole on deploy (an
//!   `Arc` swap: a request holds the old table or the new one, never a mix).
//! - [`BlobCache`]: file bodies by (content hash, encoding), bounded in bytes. A content
//!   hash never changes meaning, so entries need no invalidation, only eviction.

use crate::fs::site::{Encoding, Site};
use bytes::Bytes;
use quick_cache::sync::Cache;
use quick_cache::Weighter;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Current sites by app name.
#[derive(Debug, Default)]
pub struct SiteCache {
    sites: RwLock<HashMap<String, Arc<Site>>>,
    /// Bumped by every invalidation. A load that read the database before a deploy
    /// committed must not cache its (old) result after the deploy invalidated: it
    /// notes the generation before reading and inserts only if nothing changed since.
    generation: AtomicU64,
}

impl SiteCache {
    /// The current generation, to pass to [`SiteCache::insert_if_current`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Caches a site loaded while the cache was at `generation`, unless it was
    /// invalidated meanwhile.
    pub fn insert_if_current(&self, site: Arc<Site>, generation: u64) {
        let mut sites = self.sites.write().unwrap_or_else(|e| e.into_inner());
        // Checked under the write lock, which invalidate also takes.
        if self.generation.load(Ordering::Acquire) == generation {
            sites.insert(site.app_name.clone(), site);
        }
    }

    /// The cached site of `app`, if loaded.
    pub fn get(&self, app: &str) -> Option<Arc<Site>> {
        self.sites.read().unwrap_or_else(|e| e.into_inner()).get(app).cloned()
    }

    /// Forgets `app` (after a deploy or a delete) so the next request loads it anew.
    pub fn invalidate(&self, app: &str) {
        let mut sites = self.sites.write().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        sites.remove(app);
    }
}

/// A blob cache key: a content hash and an encoding.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct BlobKey(String, Encoding);

/// The borrowed form of [`BlobKey`], so lookups on the hot path allocate nothing. It
/// hashes exactly like the owned key (same fields, same order).
#[derive(Hash)]
struct BlobKeyRef<'a>(&'a str, Encoding);

impl quick_cache::Equivalent<BlobKey> for BlobKeyRef<'_> {
    fn equivalent(&self, key: &BlobKey) -> bool {
        self.0 == key.0 && self.1 == key.1
    }
}

#[derive(Clone)]
struct ByteWeighter;

impl Weighter<BlobKey, Bytes> for ByteWeighter {
    fn weight(&self, key: &BlobKey, val: &Bytes) -> u64 {
        // Count the key and bookkeeping too, so many tiny files cannot exceed the budget.
        (val.len() + key.0.len() + 64) as u64
    }
}

/// Hot file bodies, bounded by total bytes.
pub struct BlobCache {
    cache: Cache<BlobKey, Bytes, ByteWeighter>,
    capacity_bytes: u64,
    max_entry_bytes: u64,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl std::fmt::Debug for BlobCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobCache").field("capacity_bytes", &self.capacity_bytes).finish_non_exhaustive()
    }
}

/// Numbers for the health endpoint.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct CacheStats {
    /// Bodies held.
    pub entries: u64,
    /// Bytes held.
    pub bytes: u64,
    /// Budget in bytes.
    pub capacity_bytes: u64,
    /// Requests answered from memory.
    pub hits: u64,
    /// Requests that read SQLite.
    pub misses: u64,
}

impl BlobCache {
    /// A cache of at most `capacity_bytes`, keeping bodies up to `max_entry_bytes`.
    pub fn new(capacity_bytes: u64, max_entry_bytes: u64) -> Self {
        // The estimate only sizes internal tables: assume 8 KB per item on average.
        let estimated_items = (capacity_bytes / 8192).clamp(16, 1 << 20) as usize;
        BlobCache {
            cache: Cache::with_weighter(estimated_items, capacity_bytes.max(1), ByteWeighter),
            capacity_bytes,
            max_entry_bytes,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// A cached body.
    pub fn get(&self, hash: &str, encoding: Encoding) -> Option<Bytes> {
        let found = self.cache.get(&BlobKeyRef(hash, encoding));
        let counter = if found.is_some() { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// The largest body this cache keeps; larger ones are streamed from the database.
    pub fn max_entry_bytes(&self) -> u64 {
        self.max_entry_bytes
    }

    /// Keeps a body if it is small enough to be worth memory.
    pub fn insert(&self, hash: &str, encoding: Encoding, body: Bytes) {
        if self.capacity_bytes > 0 && body.len() as u64 <= self.max_entry_bytes {
            self.cache.insert(BlobKey(hash.to_string(), encoding), body);
        }
    }

    /// Current numbers.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            entries: self.cache.len() as u64,
            bytes: self.cache.weight(),
            capacity_bytes: self.capacity_bytes,
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_cache_stays_within_budget() {
        let cache = BlobCache::new(100_000, 50_000);
        for i in 0..100 {
            cache.insert(&format!("{i:064}"), Encoding::Identity, Bytes::from(vec![0u8; 10_000]));
        }
        assert!(cache.stats().bytes <= 100_000, "{:?}", cache.stats());
        cache.insert("big", Encoding::Identity, Bytes::from(vec![0u8; 60_000]));
        assert!(cache.get("big", Encoding::Identity).is_none());
    }
}
