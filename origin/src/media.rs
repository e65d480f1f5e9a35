//! Media: content-addressed, write-once files, on the local disk or in an S3-compatible
//! object store (S3, Cloudflare R2, MinIO), chosen by `--media-url`; names that came from a
//! request reach neither without being checked ([`MediaName`] is only ever a validated hash).
//!
//! Layout, under the data directory's `media/` (or a `file://` folder), or under the bucket's
//! prefix:
//! ```text
//! images/<sha256>.jpg       originals
//! thumbnails/<sha256>.jpg   thumbnails (named by the original's hash)
//! videos/<sha256>.mp4       rendered videos
//! ```
//! and always on the local disk, `tmp/` under the data directory: files being written, frames
//! a render reads from the object store, emptied at start-up.
//!
//! A file is visible only complete and durable. On disk it is written in `tmp/`, fsynced,
//! renamed into place and the directory fsynced; in an object store a PUT (or a multipart
//! upload's completion) makes the whole object visible at once, and a failed one leaves
//! nothing. The database row that refers to a file is committed after that, so a crash can
//! leave an unreferenced file (swept later, `services::media_sweep`) but never a row without
//! its file, and never a partial file where a reader can see it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context;
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientConfigKey, GetOptions, GetRange, ObjectStore, PutPayload, RetryConfig,
    WriteMultipart,
};
use tokio::io::AsyncReadExt;

pub use timelapser_core::paths::{is_sha256_hex, MediaKind, MediaName};

/// Where media lives, from `--media-url`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MediaLocation {
    /// A folder on the local disk (`file:///path`; default: `media/` in the data directory).
    Disk(PathBuf),
    /// An S3-compatible bucket (`s3://bucket/prefix`), with the usual `AWS_*` environment
    /// variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, and
    /// `AWS_ENDPOINT_URL` for R2, MinIO or any other S3-compatible server).
    S3 {
        /// The bucket.
        bucket: String,
        /// The key prefix (no leading or trailing `/`; may be empty).
        prefix: String,
        /// `object_store`'s S3 settings (`aws_endpoint`, `aws_access_key_id`,
        /// `aws_secret_access_key`, `aws_region`, `aws_allow_http`, ...) applied over the
        /// environment's: what an embedding (the tests) sets without touching the process's
        /// environment.
        settings: Vec<(String, String)>,
    },
}

impl MediaLocation {
    /// Reads a `--media-url`: `file:///absolute/path` or `s3://bucket[/prefix]`.
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        if let Some(path) = url.strip_prefix("file://") {
            anyhow::ensure!(
                path.starts_with('/'),
                "--media-url file:// needs an absolute path (file:///srv/media), not {url:?}"
            );
            return Ok(Self::Disk(PathBuf::from(path)));
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            anyhow::ensure!(
                !bucket.is_empty()
                    && bucket
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)),
                "--media-url s3:// needs a bucket name (s3://bucket/prefix), not {url:?}"
            );
            let prefix = prefix.trim_matches('/').to_owned();
            anyhow::ensure!(
                !prefix.split('/').any(|part| part == ".." || part == "."),
                "--media-url's prefix may not contain . or .. segments: {url:?}"
            );
            return Ok(Self::S3 {
                bucket: bucket.to_owned(),
                prefix,
                settings: Vec::new(),
            });
        }
        anyhow::bail!("--media-url must be file:///path or s3://bucket/prefix, not {url:?}")
    }
}

/// A request to the object store failed: it is down, unreachable, or refused. Writers that
/// meet it answer 503 (try again later); nothing was stored.
#[derive(Debug, thiserror::Error)]
#[error("the media store {url} failed: {source}")]
pub struct StoreUnavailable {
    /// The store.
    pub url: String,
    /// What the client said.
    #[source]
    pub source: object_store::Error,
}

/// Uploads of larger files go in parts of this size (S3's minimum part is 5 MiB).
const UPLOAD_PART: usize = 8 * 1024 * 1024;

/// Retries of a failed request to the object store, within [`STORE_RETRY_TIMEOUT`].
const STORE_RETRIES: usize = 3;

/// How long a request to the object store is retried.
const STORE_RETRY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Parts of one upload in flight at once.
const UPLOADS_IN_FLIGHT: usize = 4;

/// The media store.
#[derive(Clone, Debug)]
pub struct MediaStore {
    backend: Backend,
    tmp: PathBuf,
}

#[derive(Clone, Debug)]
enum Backend {
    Disk(PathBuf),
    Objects(Objects),
}

#[derive(Clone, Debug)]
struct Objects {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    url: String,
}

impl Objects {
    fn key(&self, name: &MediaName) -> ObjectPath {
        self.folder_key(name.kind, &name.file_name())
    }

    fn folder_key(&self, kind: MediaKind, file: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(format!("{}/{file}", kind.folder()))
        } else {
            ObjectPath::from(format!("{}/{}/{file}", self.prefix, kind.folder()))
        }
    }

    /// A GET of `name`, whole or of `range`.
    async fn get(
        &self,
        name: &MediaName,
        range: Option<GetRange>,
    ) -> std::io::Result<object_store::GetResult> {
        let options = GetOptions {
            range,
            ..GetOptions::default()
        };
        self.store
            .get_opts(&self.key(name), options)
            .await
            .map_err(io_error)
    }

    fn folder(&self, kind: MediaKind) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(kind.folder())
        } else {
            ObjectPath::from(format!("{}/{}", self.prefix, kind.folder()))
        }
    }
}

fn io_error(e: object_store::Error) -> std::io::Error {
    match e {
        object_store::Error::NotFound { .. } => {
            std::io::Error::new(std::io::ErrorKind::NotFound, e)
        }
        other => std::io::Error::other(other),
    }
}

impl MediaStore {
    /// Opens the media `location` (default: `media/` under `data_dir`), creating its folders
    /// on disk or checking that the bucket answers, and empties `tmp/` under `data_dir` of
    /// what a crash left half-written.
    pub async fn open(data_dir: &Path, location: Option<&MediaLocation>) -> anyhow::Result<Self> {
        let tmp = data_dir.join("tmp");
        std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let mut removed = 0;
        for entry in std::fs::read_dir(&tmp)? {
            let path = entry?.path();
            if path.is_file() {
                std::fs::remove_file(&path)
                    .with_context(|| format!("removing {}", path.display()))?;
                removed += 1;
            } else if path.is_dir() {
                std::fs::remove_dir_all(&path)
                    .with_context(|| format!("removing {}", path.display()))?;
                removed += 1;
            }
        }
        if removed > 0 {
            tracing::warn!(
                removed,
                "removed partial files left by an interrupted write"
            );
        }
        let backend = match location {
            None => Backend::Disk(data_dir.join("media")),
            Some(MediaLocation::Disk(path)) => Backend::Disk(path.clone()),
            Some(MediaLocation::S3 {
                bucket,
                prefix,
                settings,
            }) => Backend::Objects(Self::connect_s3(bucket, prefix, settings).await?),
        };
        if let Backend::Disk(media) = &backend {
            for kind in MediaKind::ALL {
                std::fs::create_dir_all(media.join(kind.folder()))
                    .with_context(|| format!("creating {}", media.join(kind.folder()).display()))?;
            }
        }
        Ok(Self { backend, tmp })
    }

    async fn connect_s3(
        bucket: &str,
        prefix: &str,
        settings: &[(String, String)],
    ) -> anyhow::Result<Objects> {
        // A store that does not answer fails a capture within seconds (503, try again)
        // rather than holding it for the client's default three minutes of retries.
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: STORE_RETRIES,
                retry_timeout: STORE_RETRY_TIMEOUT,
            })
            .with_config(
                AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
                "5s",
            )
            .with_config(AmazonS3ConfigKey::Client(ClientConfigKey::Timeout), "60s");
        let mut endpoint = std::env::var("AWS_ENDPOINT_URL")
            .or_else(|_| std::env::var("AWS_ENDPOINT"))
            .ok()
            .filter(|e| !e.is_empty());
        for (key, value) in settings {
            let key: AmazonS3ConfigKey = key
                .parse()
                .with_context(|| format!("{key:?} is not an S3 setting"))?;
            if key == AmazonS3ConfigKey::Endpoint {
                endpoint = Some(value.clone());
            }
            builder = builder.with_config(key, value);
        }
        if let Some(endpoint) = &endpoint {
            // An endpoint on plain HTTP (MinIO or s3s on loopback) is allowed as named.
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        let url = match &endpoint {
            Some(endpoint) => format!("s3://{bucket}/{prefix} at {endpoint}"),
            None => format!("s3://{bucket}/{prefix}"),
        };
        let store = builder
            .build()
            .with_context(|| format!("configuring the media bucket {url}"))?;
        let objects = Objects {
            store: Arc::new(store),
            prefix: prefix.to_owned(),
            url,
        };
        // One request now, so a wrong bucket, endpoint or key is a clear error at start-up
        // rather than a 500 at the first capture.
        let probe = objects.folder_key(MediaKind::Image, "timelapser-start-up-probe");
        match objects.store.head(&probe).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(objects),
            Err(e) => Err(anyhow::anyhow!(
                "the media bucket {} does not answer: {e}",
                objects.url
            )),
        }
    }

    /// Where the media is, for logs.
    pub fn describe(&self) -> String {
        match &self.backend {
            Backend::Disk(path) => path.display().to_string(),
            Backend::Objects(objects) => objects.url.clone(),
        }
    }

    /// Whether the media is on the local disk (which has a free-space threshold to keep).
    pub fn is_disk(&self) -> bool {
        matches!(self.backend, Backend::Disk(_))
    }

    fn disk_path(media: &Path, name: &MediaName) -> PathBuf {
        media.join(name.kind.folder()).join(name.file_name())
    }

    /// Every media file of a kind, with its modification time (for the orphan sweep); names
    /// that are not media names (a stray file) are skipped.
    pub async fn list(&self, kind: MediaKind) -> anyhow::Result<Vec<(MediaName, SystemTime)>> {
        match &self.backend {
            Backend::Disk(media) => {
                let folder = media.join(kind.folder());
                tokio::task::spawn_blocking(move || list_folder(&folder, kind))
                    .await
                    .context("listing media panicked")?
            }
            Backend::Objects(objects) => {
                let listed: Vec<object_store::ObjectMeta> = objects
                    .store
                    .list(Some(&objects.folder(kind)))
                    .try_collect()
                    .await
                    .with_context(|| format!("listing {}", objects.url))?;
                Ok(listed
                    .into_iter()
                    .filter_map(|meta| {
                        let file = meta.location.filename()?;
                        let name = MediaName::parse(kind.folder(), file)?;
                        (objects.key(&name) == meta.location)
                            .then(|| (name, SystemTime::from(meta.last_modified)))
                    })
                    .collect())
            }
        }
    }

    /// Whether a media file is present (an object store that cannot say counts as absent,
    /// with a warning: writers then write again, readers fail clearly).
    pub async fn exists(&self, name: &MediaName) -> bool {
        match self.stat(name).await {
            Ok(found) => found.is_some(),
            Err(e) => {
                tracing::warn!(file = %name, error = %e, "cannot tell whether a media file exists");
                false
            }
        }
    }

    /// A file's length and modification time, or `None` when there is no such file.
    pub async fn stat(&self, name: &MediaName) -> std::io::Result<Option<(u64, SystemTime)>> {
        match &self.backend {
            Backend::Disk(media) => match tokio::fs::metadata(Self::disk_path(media, name)).await {
                Ok(m) if m.is_file() => Ok(Some((m.len(), m.modified()?))),
                Ok(_) => Ok(None),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            },
            Backend::Objects(objects) => match objects.store.head(&objects.key(name)).await {
                Ok(meta) => Ok(Some((meta.size, SystemTime::from(meta.last_modified)))),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(io_error(e)),
            },
        }
    }

    /// A whole file (for small ones).
    pub async fn read(&self, name: &MediaName) -> std::io::Result<Bytes> {
        match &self.backend {
            Backend::Disk(media) => tokio::fs::read(Self::disk_path(media, name))
                .await
                .map(Bytes::from),
            Backend::Objects(objects) => objects
                .get(name, None)
                .await?
                .bytes()
                .await
                .map_err(io_error),
        }
    }

    /// `len` bytes of a file from `first`, streamed (from the disk, or as a ranged GET of
    /// the object).
    pub async fn read_range(
        &self,
        name: &MediaName,
        first: u64,
        len: u64,
    ) -> std::io::Result<BoxStream<'static, std::io::Result<Bytes>>> {
        match &self.backend {
            Backend::Disk(media) => {
                use tokio::io::AsyncSeekExt;
                let mut file = tokio::fs::File::open(Self::disk_path(media, name)).await?;
                file.seek(std::io::SeekFrom::Start(first)).await?;
                Ok(tokio_util::io::ReaderStream::with_capacity(file.take(len), 64 * 1024).boxed())
            }
            Backend::Objects(objects) => {
                let got = objects
                    .get(name, Some(GetRange::Bounded(first..first + len)))
                    .await?;
                Ok(got.into_stream().map_err(io_error).boxed())
            }
        }
    }

    /// The temp folder (on the local disk, whatever holds the media), for writers that
    /// stream (video renders) and for frames a render reads from an object store.
    pub fn tmp_dir(&self) -> &Path {
        &self.tmp
    }

    /// Writes `bytes` as `name` atomically and durably, unless it already exists (the name
    /// is the content's hash, so an existing file already has these bytes).
    pub async fn write(&self, name: &MediaName, bytes: Bytes) -> anyhow::Result<()> {
        match &self.backend {
            Backend::Disk(media) => {
                let (media, tmp, name) = (media.clone(), self.tmp.clone(), name.clone());
                tokio::task::spawn_blocking(move || write_blocking(&media, &tmp, &name, &bytes))
                    .await
                    .context("media writer panicked")?
            }
            Backend::Objects(objects) => {
                let failed = |source| StoreUnavailable {
                    url: objects.url.clone(),
                    source,
                };
                let key = objects.key(name);
                match objects.store.head(&key).await {
                    Ok(_) => return Ok(()),
                    Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(failed(e).into()),
                }
                objects
                    .store
                    .put(&key, PutPayload::from_bytes(bytes))
                    .await
                    .map_err(failed)?;
                Ok(())
            }
        }
    }

    /// Stores a finished temp file as `name` (on disk: fsync, rename, fsync the folder; in an
    /// object store: uploaded, in parts when large, then the temp file is removed).
    pub async fn write_file(&self, temp: &Path, name: &MediaName) -> anyhow::Result<()> {
        match &self.backend {
            Backend::Disk(media) => {
                let (media, temp, name) = (media.clone(), temp.to_owned(), name.clone());
                tokio::task::spawn_blocking(move || {
                    let target = Self::disk_path(&media, &name);
                    std::fs::File::open(&temp)?.sync_all()?;
                    std::fs::rename(&temp, &target).with_context(|| {
                        format!("moving {} into {}", temp.display(), target.display())
                    })?;
                    sync_dir(target.parent().expect("media files live in a folder"))
                })
                .await
                .context("media writer panicked")?
            }
            Backend::Objects(objects) => {
                let stored = async {
                    if self.stat(name).await?.is_some() {
                        return Ok(());
                    }
                    let mut file = tokio::fs::File::open(temp).await?;
                    let upload = objects.store.put_multipart(&objects.key(name)).await?;
                    let mut writer = WriteMultipart::new_with_chunk_size(upload, UPLOAD_PART);
                    let mut buffer = vec![0; 256 * 1024];
                    loop {
                        let read = match file.read(&mut buffer).await {
                            Ok(read) => read,
                            Err(e) => {
                                // Nothing becomes visible: the parts go with the upload.
                                let _ = writer.abort().await;
                                return Err(e.into());
                            }
                        };
                        if read == 0 {
                            break;
                        }
                        // At most a few parts in flight: a large video is never all in memory.
                        writer.wait_for_capacity(UPLOADS_IN_FLIGHT).await?;
                        writer.write(&buffer[..read]);
                    }
                    writer.finish().await?;
                    anyhow::Ok(())
                }
                .await
                .with_context(|| format!("storing {name} in {}", objects.url));
                let _ = tokio::fs::remove_file(temp).await;
                stored
            }
        }
    }

    /// A local file with `name`'s bytes, for a program that reads files (ffmpeg): the media
    /// file itself on disk, or a copy downloaded into `scratch` (made when missing) from an
    /// object store.
    pub async fn local_file(&self, name: &MediaName, scratch: &Path) -> std::io::Result<PathBuf> {
        match &self.backend {
            Backend::Disk(media) => {
                let path = Self::disk_path(media, name);
                if tokio::fs::try_exists(&path).await? {
                    Ok(path)
                } else {
                    Err(std::io::ErrorKind::NotFound.into())
                }
            }
            Backend::Objects(objects) => {
                let mut stream = objects.get(name, None).await?.into_stream();
                tokio::fs::create_dir_all(scratch).await?;
                let path = scratch.join(name.file_name());
                let mut file = tokio::fs::File::create(&path).await?;
                while let Some(chunk) = stream.next().await {
                    tokio::io::AsyncWriteExt::write_all(&mut file, &chunk.map_err(io_error)?)
                        .await?;
                }
                tokio::io::AsyncWriteExt::flush(&mut file).await?;
                Ok(path)
            }
        }
    }

    /// Removes a media file if present; whether it was.
    pub async fn remove(&self, name: &MediaName) -> anyhow::Result<bool> {
        match &self.backend {
            Backend::Disk(media) => {
                match tokio::fs::remove_file(Self::disk_path(media, name)).await {
                    Ok(()) => Ok(true),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                    Err(e) => Err(e.into()),
                }
            }
            Backend::Objects(objects) => {
                // S3 deletes a missing key without complaint: ask first, to say whether.
                if self.stat(name).await?.is_none() {
                    return Ok(false);
                }
                match objects.store.delete(&objects.key(name)).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(true),
                    Err(e) => Err(e.into()),
                }
            }
        }
    }

    /// Free and total bytes of the file system holding the media (free: for unprivileged
    /// writers, `f_bavail`); an object store has no such figure (`Unsupported`).
    pub fn disk_space(&self) -> std::io::Result<(u64, u64)> {
        match &self.backend {
            Backend::Disk(media) => {
                let s = rustix::fs::statvfs(media)?;
                Ok((
                    s.f_bavail.saturating_mul(s.f_frsize),
                    s.f_blocks.saturating_mul(s.f_frsize),
                ))
            }
            Backend::Objects(_) => Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "the media is in an object store, which has no free-space figure",
            )),
        }
    }
}

fn list_folder(folder: &Path, kind: MediaKind) -> anyhow::Result<Vec<(MediaName, SystemTime)>> {
    let mut files = Vec::new();
    for entry in
        std::fs::read_dir(folder).with_context(|| format!("listing {}", folder.display()))?
    {
        let entry = entry?;
        let Some(name) = entry
            .file_name()
            .to_str()
            .and_then(|file| MediaName::parse(kind.folder(), file))
        else {
            continue;
        };
        match entry.metadata() {
            Ok(metadata) if metadata.is_file() => files.push((name, metadata.modified()?)),
            _ => {}
        }
    }
    Ok(files)
}

fn write_blocking(media: &Path, tmp: &Path, name: &MediaName, bytes: &[u8]) -> anyhow::Result<()> {
    let target = MediaStore::disk_path(media, name);
    if target.exists() {
        return Ok(());
    }
    let mut temp = tempfile::Builder::new()
        .prefix(&format!("{}-", name.kind.folder()))
        .tempfile_in(tmp)
        .context("creating a temp file")?;
    temp.write_all(bytes).context("writing media")?;
    temp.as_file().sync_all().context("syncing media")?;
    temp.persist(&target)
        .with_context(|| format!("moving media into {}", target.display()))?;
    sync_dir(target.parent().expect("media files live in a folder"))?;
    Ok(())
}

fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[tokio::test]
    async fn writes_are_atomic_and_tmp_is_cleaned_at_open() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("tmp/render-1-frames")).unwrap();
        std::fs::write(dir.path().join("tmp/leftover"), b"partial").unwrap();
        let store = MediaStore::open(dir.path(), None).await.unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
        let name = MediaName::new(MediaKind::Thumbnail, HASH).unwrap();
        store
            .write(&name, bytes::Bytes::from_static(b"abc"))
            .await
            .unwrap();
        let path = dir.path().join("media/thumbnails").join(name.file_name());
        assert_eq!(std::fs::read(&path).unwrap(), b"abc");
        assert_eq!(store.stat(&name).await.unwrap().unwrap().0, 3);
        assert_eq!(store.read(&name).await.unwrap(), &b"abc"[..]);
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
        assert!(store.remove(&name).await.unwrap());
        assert!(!path.exists());
        assert!(!store.remove(&name).await.unwrap());
        assert!(store.stat(&name).await.unwrap().is_none());
    }

    #[test]
    fn media_urls_are_a_folder_or_a_bucket() {
        assert_eq!(
            MediaLocation::parse("file:///srv/media").unwrap(),
            MediaLocation::Disk(PathBuf::from("/srv/media"))
        );
        assert_eq!(
            MediaLocation::parse("s3://frames/site-a/").unwrap(),
            MediaLocation::S3 {
                bucket: "frames".into(),
                prefix: "site-a".into(),
                settings: Vec::new(),
            }
        );
        assert_eq!(
            MediaLocation::parse("s3://frames").unwrap(),
            MediaLocation::S3 {
                bucket: "frames".into(),
                prefix: String::new(),
                settings: Vec::new(),
            }
        );
        for bad in [
            "file://relative",
            "s3://",
            "s3:///prefix",
            "s3://frames/../x",
            "http://x",
            "/srv",
        ] {
            assert!(MediaLocation::parse(bad).is_err(), "{bad}");
        }
    }
}
