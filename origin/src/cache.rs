//! The in-memory cache of expensive reads: typed values with their serialized representations
//! and entity tags, so the API sends the bytes and the pages use the values, and neither
//! serialises or parses again.
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

use std::any::Any;
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

/// A value, its representation ready to send, and the representation's entity tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Represented<T> {
    /// The value (for pages and services).
    pub value: T,
    /// The body (for the API).
    pub body: Bytes,
    /// Its entity tag.
    pub etag: EntityTag,
}

impl<T: Serialize> Represented<T> {
    /// `value`, serialized as JSON, with the given tag.
    pub fn json(value: T, etag: EntityTag) -> Result<Self> {
        let body = serde_json::to_vec(&value).map_err(|e| Error::Internal(e.into()))?;
        Ok(Self {
            value,
            body: Bytes::from(body),
            etag,
        })
    }
}

impl<T: Serialize> Represented<T> {
    /// `value` as JSON, tagged by a SHA-256 of the body (equal values revalidate).
    pub fn json_tagged_by_content(value: T) -> Result<Self> {
        let body = serde_json::to_vec(&value).map_err(|e| Error::Internal(e.into()))?;
        let etag = EntityTag::from_content(&body, timelapser_core::etag::HashAlgorithm::Sha256);
        Ok(Self {
            value,
            body: Bytes::from(body),
            etag,
        })
    }
}

/// One cached value, type-erased: each key is loaded by one service with one type.
#[derive(Clone)]
struct Entry {
    value: Arc<dyn Any + Send + Sync>,
    weight: usize,
    ttl: Duration,
    generation: u64,
}

impl Entry {
    fn typed<T: Send + Sync + 'static>(&self) -> Arc<Represented<T>> {
        self.value
            .clone()
            .downcast::<Represented<T>>()
            .expect("a cache key always holds the type its service loads")
    }
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

struct Counters {
    hits_total: metrics::Counter,
    misses_total: metrics::Counter,
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
    /// A cache holding at most `max_bytes` of bodies, counting hits and misses into
    /// `metrics` too.
    pub fn new(max_bytes: u64, metrics: &crate::metrics::Metrics) -> Self {
        let counters = Arc::new(Counters {
            hits_total: metrics.record(|| metrics::counter!("cache_hits_total")),
            misses_total: metrics.record(|| metrics::counter!("cache_misses_total")),
            hits: AtomicU64::default(),
            misses: AtomicU64::default(),
            loads: AtomicU64::default(),
            evictions: AtomicU64::default(),
            invalidations: AtomicU64::default(),
        });
        let listener_counters = counters.clone();
        let inner = moka::future::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|key: &String, entry: &Entry| {
                let weight = key.len() + entry.weight + 128;
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
    pub async fn get_or_load<T, F, Fut>(
        &self,
        key: &CacheKey,
        ttl: Duration,
        loader: F,
    ) -> Result<Arc<Represented<T>>>
    where
        T: Send + Sync + 'static,
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Represented<T>>>,
    {
        if let Some(entry) = self.inner.get(key.as_str()).await {
            if !self.invalidated_since(key, entry.generation) {
                self.counters.hits.fetch_add(1, Ordering::Relaxed);
                self.counters.hits_total.increment(1);
                return Ok(entry.typed());
            }
            self.inner.invalidate(key.as_str()).await;
        }
        self.counters.misses.fetch_add(1, Ordering::Relaxed);
        self.counters.misses_total.increment(1);
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
                        weight: value.body.len(),
                        value: Arc::new(value),
                        ttl,
                        generation,
                    })
                })
                .await
                .map_err(Error::from_shared)?;
            if !self.invalidated_since(key, entry.generation) {
                return Ok(entry.typed());
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
