//! The in-memory cache of expensive reads: serialized representations with their entity tags.
//!
//! This is v4's `MemoryCache` + `cached_response_with_etag`, on moka: per-entry TTL, a memory
//! bound (entries are weighed by their body), single-flight loading (a burst of identical
//! misses runs the loader once), prefix/pattern invalidation and statistics.
//!
//! Invalidation must never let a stale value survive a write that finished before a read
//! began, even when a load that started before the write is still running (its result, and
//! every request that joined it, would be stale). So every invalidation gets a generation
//! number and is remembered for a while; a loaded value carries the generation its load
//! started at, and a value older than a matching invalidation is dropped and loaded again.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use moka::notification::RemovalCause;
use moka::Expiry;
use serde::Serialize;
use timelapser_core::keys::{CacheKey, KeyPattern};
use timelapser_core::EntityTag;

use crate::error::{Error, Result};

/// A representation ready to send: body bytes and entity tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Representation {
    /// The body.
    pub body: Bytes,
    /// Its entity tag.
    pub etag: EntityTag,
}

impl Representation {
    /// Serializes `value` as JSON with the given tag.
    pub fn json(value: &impl Serialize, etag: EntityTag) -> Result<Self> {
        let body = serde_json::to_vec(value).map_err(|e| Error::Internal(e.into()))?;
        Ok(Self {
            body: Bytes::from(body),
            etag,
        })
    }
}

#[derive(Clone)]
struct Entry {
    value: Arc<Representation>,
    ttl: Duration,
    generation: u64,
}

struct PerEntryTtl;

impl Expiry<String, Entry> for PerEntryTtl {
    fn expire_after_create(&self, _key: &String, entry: &Entry, _at: Instant) -> Option<Duration> {
        Some(entry.ttl)
    }
}

/// Counters of the cache, as `/api/cache/stats` shows them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct CacheStats {
    /// Reads answered from memory.
    pub hits: u64,
    /// Reads that had to load.
    pub misses: u64,
    /// Loader runs (fewer than misses when identical misses coalesce).
    pub loads: u64,
    /// Entries now.
    pub entries: u64,
    /// Bytes of bodies now.
    pub weighted_bytes: u64,
    /// Entries removed by the memory bound or their TTL.
    pub evictions: u64,
    /// Entries removed by invalidation.
    pub invalidations: u64,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    loads: AtomicU64,
    evictions: AtomicU64,
    invalidations: AtomicU64,
}

/// How many recent invalidations are remembered to catch loads that raced them.
const REMEMBERED_INVALIDATIONS: usize = 1024;

/// The response cache.
#[derive(Clone)]
pub struct ResponseCache {
    inner: moka::future::Cache<String, Entry>,
    counters: Arc<Counters>,
    generation: Arc<AtomicU64>,
    recent: Arc<Mutex<VecDeque<(u64, KeyPattern)>>>,
}

impl ResponseCache {
    /// A cache holding at most `max_bytes` of bodies.
    pub fn new(max_bytes: u64) -> Self {
        let counters = Arc::new(Counters::default());
        let listener_counters = counters.clone();
        let inner = moka::future::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|key: &String, entry: &Entry| {
                let weight = key.len() + entry.value.body.len() + 128;
                u32::try_from(weight).unwrap_or(u32::MAX)
            })
            .expire_after(PerEntryTtl)
            .support_invalidation_closures()
            .eviction_listener(move |_key, _value, cause| match cause {
                RemovalCause::Expired | RemovalCause::Size => {
                    listener_counters.evictions.fetch_add(1, Ordering::Relaxed);
                }
                RemovalCause::Explicit => {
                    listener_counters
                        .invalidations
                        .fetch_add(1, Ordering::Relaxed);
                }
                RemovalCause::Replaced => {}
            })
            .build();
        Self {
            inner,
            counters,
            generation: Arc::new(AtomicU64::new(0)),
            recent: Arc::new(Mutex::new(VecDeque::new())),
        }
    }

    /// Returns the cached representation of `key`, or runs `loader` (once for all concurrent
    /// callers) and keeps its result for `ttl`. Errors are not cached.
    pub async fn get_or_load<F, Fut>(
        &self,
        key: &CacheKey,
        ttl: Duration,
        loader: F,
    ) -> Result<Arc<Representation>>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Representation>>,
    {
        if let Some(entry) = self.inner.get(key.as_str()).await {
            if !self.invalidated_since(key, entry.generation) {
                self.counters.hits.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("cache_hits_total").increment(1);
                return Ok(entry.value);
            }
            self.inner.invalidate(key.as_str()).await;
        }
        self.counters.misses.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("cache_misses_total").increment(1);
        // Two rounds at most: the second only when a write invalidated the key while the
        // first load was running.
        for _ in 0..2 {
            let generation = self.generation.load(Ordering::SeqCst);
            let entry = self
                .inner
                .try_get_with(key.as_str().to_owned(), async {
                    self.counters.loads.fetch_add(1, Ordering::Relaxed);
                    let value = loader().await?;
                    Ok::<_, Error>(Entry {
                        value: Arc::new(value),
                        ttl,
                        generation,
                    })
                })
                .await
                .map_err(Error::from_shared)?;
            if !self.invalidated_since(key, entry.generation) {
                return Ok(entry.value);
            }
            self.inner.invalidate(key.as_str()).await;
        }
        // Invalidated twice during loads: the writes are that frequent, so do not cache.
        Ok(Arc::new(loader().await?))
    }

    /// Whether an invalidation newer than `generation` matches `key`.
    fn invalidated_since(&self, key: &CacheKey, generation: u64) -> bool {
        if self.generation.load(Ordering::SeqCst) == generation {
            return false;
        }
        let recent = self.recent.lock().expect("invalidation log lock");
        match recent.front() {
            // Older than anything remembered: assume the worst.
            Some((oldest, _)) if *oldest > generation + 1 => true,
            _ => recent
                .iter()
                .any(|(g, pattern)| *g > generation && key.matches(pattern)),
        }
    }

    /// Drops every key matching `pattern` (e.g. `camera:*:5`).
    pub fn invalidate(&self, pattern: &KeyPattern) {
        {
            let mut recent = self.recent.lock().expect("invalidation log lock");
            let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
            recent.push_back((generation, pattern.clone()));
            while recent.len() > REMEMBERED_INVALIDATIONS {
                recent.pop_front();
            }
        }
        let pattern = pattern.clone();
        let prefix = pattern.prefix();
        let predicate =
            move |key: &String, _: &Entry| key.starts_with(&prefix) && pattern.matches(key);
        if let Err(e) = self.inner.invalidate_entries_if(predicate) {
            tracing::error!(error = %e, "cache invalidation predicate rejected; clearing the cache");
            self.inner.invalidate_all();
        }
    }

    /// The counters.
    pub async fn stats(&self) -> CacheStats {
        self.inner.run_pending_tasks().await;
        let c = &self.counters;
        CacheStats {
            hits: c.hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            loads: c.loads.load(Ordering::Relaxed),
            entries: self.inner.entry_count(),
            weighted_bytes: self.inner.weighted_size(),
            evictions: c.evictions.load(Ordering::Relaxed),
            invalidations: c.invalidations.load(Ordering::Relaxed),
        }
    }

    /// Whether `key` is cached now (for tests and diagnostics).
    pub async fn contains(&self, key: &CacheKey) -> bool {
        match self.inner.get(key.as_str()).await {
            Some(entry) => !self.invalidated_since(key, entry.generation),
            None => false,
        }
    }
}
