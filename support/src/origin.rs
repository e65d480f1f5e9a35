//! `timelapser-origin serve` as a child process.

use std::ffi::{OsStr, OsString};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::process::{free_port, ProcessGroup};

/// How long an origin has to answer `/healthz` unless told otherwise.
const DEFAULT_READY_WITHIN: Duration = Duration::from_secs(60);

/// How to start `timelapser-origin serve`. By default: on a free loopback port; with no
/// operations listener (its default address, 127.0.0.1:9000, would collide between two
/// origins on one host); on SQLite in the data directory, whatever `DATABASE_URL` the
/// environment has.
pub struct OriginCommand {
    binary: PathBuf,
    cpus: Option<String>,
    data_dir: PathBuf,
    listen: SocketAddr,
    ops_listen: Option<SocketAddr>,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    quiet: bool,
    ready_within: Duration,
}

impl OriginCommand {
    /// The origin `binary` serving from `data_dir`, on a free loopback port.
    pub fn new(binary: impl Into<PathBuf>, data_dir: impl Into<PathBuf>) -> Result<Self> {
        Ok(Self {
            binary: binary.into(),
            cpus: None,
            data_dir: data_dir.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], free_port()?)),
            ops_listen: None,
            args: Vec::new(),
            envs: Vec::new(),
            quiet: false,
            ready_within: DEFAULT_READY_WITHIN,
        })
    }

    /// Listens on `addr` instead of a free port.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Serves `/metrics`, `/api/cache/stats` and `/healthz` without a token on `addr`
    /// (`--ops-listen`).
    pub fn ops_listen(mut self, addr: SocketAddr) -> Self {
        self.ops_listen = Some(addr);
        self
    }

    /// Serves the operations endpoints on a free loopback port.
    pub fn ops_listen_on_free_port(self) -> Result<Self> {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        Ok(self.ops_listen(addr))
    }

    /// The admin token (`TIMELAPSER_ADMIN_TOKEN`, so that it never shows in `ps`).
    pub fn admin_token(self, token: &str) -> Self {
        self.env("TIMELAPSER_ADMIN_TOKEN", token)
    }

    /// The database (`--database-url`), instead of SQLite in the data directory.
    pub fn database_url(self, url: &str) -> Self {
        self.arg("--database-url").arg(url)
    }

    /// One more argument of `serve`.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// More arguments of `serve`.
    pub fn args(mut self, args: impl IntoIterator<Item = impl AsRef<OsStr>>) -> Self {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// One more environment variable.
    pub fn env(mut self, name: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.envs
            .push((name.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Runs the origin under `taskset -c <cpus>`.
    pub fn pinned_to(mut self, cpus: &str) -> Self {
        self.cpus = Some(cpus.to_owned());
        self
    }

    /// Logs warnings and errors only (to stderr) and discards stdout: for benchmarks and
    /// tests, whose output should be their own.
    pub fn quiet(mut self) -> Self {
        self.quiet = true;
        self
    }

    /// How long [`OriginCommand::start`] waits for `/healthz` (60 s unless told).
    pub fn ready_within(mut self, within: Duration) -> Self {
        self.ready_within = within;
        self
    }

    /// The command line this describes.
    pub fn command(&self) -> Command {
        let mut command = match &self.cpus {
            Some(cpus) => {
                let mut taskset = Command::new("taskset");
                taskset.args(["-c", cpus]).arg(&self.binary);
                taskset
            }
            None => Command::new(&self.binary),
        };
        command
            .args(["serve", "--listen", &self.listen.to_string()])
            .arg("--ops-listen")
            .arg(self.ops_listen.map_or("off".to_owned(), |a| a.to_string()))
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(&self.args)
            .env_remove("DATABASE_URL")
            .envs(self.envs.iter().map(|(n, v)| (n, v)))
            .stdin(Stdio::null());
        if self.quiet {
            command.env("RUST_LOG", "warn").stdout(Stdio::null());
        }
        command
    }

    /// Starts the origin in its own process group and waits until its `/healthz` answers
    /// 200; fails with what it last saw, or with the exit status if it stops first.
    pub async fn start(self) -> Result<OriginProcess> {
        let mut process = ProcessGroup::spawn("the origin", &mut self.command())?;
        let health = format!("http://{}/healthz", self.listen);
        process
            .wait_until_ok(&health, self.ready_within)
            .await
            .context("the origin did not become ready")?;
        Ok(OriginProcess {
            process,
            addr: self.listen,
            ops_addr: self.ops_listen,
        })
    }
}

/// A running origin process; dropping it stops it (SIGTERM, then SIGKILL after 5 s).
pub struct OriginProcess {
    /// The process group it leads.
    pub process: ProcessGroup,
    /// Its main listener.
    pub addr: SocketAddr,
    /// Its operations listener, if it has one.
    pub ops_addr: Option<SocketAddr>,
}

impl OriginProcess {
    /// `http://<addr>`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A URL on the main listener.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A URL on the operations listener; an error when it was started without one.
    pub fn ops_url(&self, path: &str) -> Result<String> {
        let ops = self
            .ops_addr
            .context("this origin has no operations listener (--ops-listen off)")?;
        Ok(format!("http://{ops}{path}"))
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.process.id()
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(self) -> Result<ExitStatus> {
        self.process.kill()
    }
}
