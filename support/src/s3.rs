//! An S3-protocol server on loopback for the tests and benchmarks: `s3s-fs` from crates.io
//! (the s3s project's file-system backed S3 server), pinned and installed by `cargo xtask`
//! under target/tools. Objects are plain files under its storage folder (`<bucket>/<key>`),
//! so a test can see what the origin stored.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::process::{free_port, ProcessGroup};

/// s3s-fs, pinned: the newest that builds with this machine's Rust (1.95; 0.15 wants 1.96).
pub const VERSION: &str = "0.14.1";

/// The credentials the test server accepts (requests are signed, as against S3).
pub const ACCESS_KEY: &str = "timelapser-test-access";
/// See [`ACCESS_KEY`].
pub const SECRET_KEY: &str = "timelapser-test-secret-key-0123456789";

/// The folder `cargo xtask` installs s3s-fs into, under the workspace `root`.
pub fn install_dir(root: &Path) -> PathBuf {
    root.join(format!("target/tools/s3s-fs-{VERSION}"))
}

/// The server binary.
pub fn binary(root: &Path) -> PathBuf {
    install_dir(root).join("bin/s3s-fs")
}

/// A running s3s-fs; stopped when dropped.
pub struct S3Server {
    process: ProcessGroup,
    endpoint: String,
    storage: PathBuf,
}

impl S3Server {
    /// Starts s3s-fs on a free loopback port, storing under `storage`, with `buckets` made
    /// (a bucket is a folder), and waits until it answers.
    pub async fn start(root: &Path, storage: &Path, buckets: &[&str]) -> Result<Self> {
        let binary = binary(root);
        if !binary.is_file() {
            bail!(
                "the S3 test server is not installed: run `cargo xtask test` (which installs \
                 s3s-fs {VERSION} into {}) first",
                install_dir(root).display()
            );
        }
        for bucket in buckets {
            std::fs::create_dir_all(storage.join(bucket))
                .with_context(|| format!("creating bucket {bucket}"))?;
        }
        let port = free_port()?;
        let mut command = Command::new(&binary);
        command
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(storage)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let process = ProcessGroup::spawn("s3s-fs", &mut command)?;
        let mut server = Self {
            process,
            endpoint: format!("http://127.0.0.1:{port}"),
            storage: storage.to_owned(),
        };
        server.wait_until_answering(Duration::from_secs(30)).await?;
        Ok(server)
    }

    /// Any HTTP answer will do: an unsigned request is refused (403), which is an answer.
    async fn wait_until_answering(&mut self, within: Duration) -> Result<()> {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.process.try_wait()? {
                bail!("s3s-fs exited ({status}) before it answered");
            }
            let last = match client
                .get(&self.endpoint)
                .timeout(Duration::from_secs(2))
                .send()
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) => e.to_string(),
            };
            if Instant::now() >= deadline {
                bail!(
                    "s3s-fs at {} did not answer within {within:?}: {last}",
                    self.endpoint
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The S3 settings of a client of this server, as `object_store`'s configuration keys
    /// (and the `AWS_*` environment variables they are read from, upper-cased).
    pub fn settings(&self) -> Vec<(String, String)> {
        vec![
            ("aws_endpoint".into(), self.endpoint.clone()),
            ("aws_access_key_id".into(), ACCESS_KEY.into()),
            ("aws_secret_access_key".into(), SECRET_KEY.into()),
            ("aws_region".into(), "us-east-1".into()),
            ("aws_allow_http".into(), "true".into()),
        ]
    }

    /// The same as environment variables, for an origin started as a process.
    pub fn env(&self) -> Vec<(String, String)> {
        self.settings()
            .into_iter()
            .map(|(key, value)| (key.to_uppercase(), value))
            .collect()
    }

    /// Where the server keeps `key` of `bucket` (a file when the object exists).
    pub fn object_file(&self, bucket: &str, key: &str) -> PathBuf {
        self.storage.join(bucket).join(key)
    }

    /// Stops it now (SIGKILL): the origin then finds its media store unreachable.
    pub fn kill(self) -> Result<()> {
        self.process.kill()?;
        Ok(())
    }
}
