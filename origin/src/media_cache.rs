//! Media file facts (length, modification time, entity tag) and the bytes of small files, kept
//! in memory. Media is content-addressed and immutable, so nothing here can go stale except by
//! deletion, which calls [`MediaCache::forget`].

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::HeaderValue;
use timelapser_core::conditional::last_modified_value;
use timelapser_core::EntityTag;

use crate::media::{MediaName, MediaStore};

/// Files up to this size are kept in memory (thumbnails, most originals).
pub const MAX_IN_MEMORY_FILE: u64 = 1024 * 1024;

/// What is known of one media file.
#[derive(Debug)]
pub struct MediaFile {
    /// Length in bytes.
    pub len: u64,
    /// Modification time (Last-Modified).
    pub modified: SystemTime,
    /// The strong tag: the content hash the file is named by.
    pub etag: EntityTag,
    /// The bytes, for small files.
    pub bytes: Option<Bytes>,
    /// `ETag`, formatted once.
    pub etag_header: HeaderValue,
    /// `Last-Modified`, formatted once.
    pub last_modified_header: HeaderValue,
}

/// The cache.
#[derive(Clone)]
pub struct MediaCache {
    inner: moka::future::Cache<MediaName, Arc<MediaFile>>,
}

impl MediaCache {
    /// A cache holding up to `max_bytes` of file contents.
    pub fn new(max_bytes: u64) -> Self {
        let inner = moka::future::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|_name: &MediaName, file: &Arc<MediaFile>| {
                let held = file.bytes.as_ref().map_or(0, Bytes::len) + 256;
                u32::try_from(held).unwrap_or(u32::MAX)
            })
            .build();
        Self { inner }
    }

    /// The file's facts (and bytes when small), or `None` when there is no such file.
    pub async fn open(
        &self,
        store: &MediaStore,
        name: &MediaName,
    ) -> std::io::Result<Option<Arc<MediaFile>>> {
        if let Some(file) = self.inner.get(name).await {
            return Ok(Some(file));
        }
        let Some((len, modified)) = store.stat(name).await? else {
            return Ok(None);
        };
        let bytes = if len <= MAX_IN_MEMORY_FILE {
            Some(store.read(name).await?)
        } else {
            None
        };
        let etag = EntityTag::strong(name.sha256()).expect("hex is etagc");
        let file = Arc::new(MediaFile {
            len: bytes.as_ref().map_or(len, |b| b.len() as u64),
            modified,
            etag_header: etag.to_header_value(),
            last_modified_header: last_modified_value(modified),
            etag,
            bytes,
        });
        self.inner.insert(name.clone(), file.clone()).await;
        Ok(Some(file))
    }

    /// Drops what is known of a file about to be deleted.
    pub async fn forget(&self, name: &MediaName) {
        self.inner.invalidate(name).await;
    }
}
