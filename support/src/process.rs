//! Process groups, free ports, and waiting for a child's HTTP endpoint.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// How long a group has after SIGTERM before it gets SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// How often a readiness wait asks again.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// The longest one readiness request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A free TCP port on loopback: the kernel's choice, free when this returns (a child that
/// binds it shortly after gets it unless another process takes it first).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A child started as the leader of its own process group, so that what it starts in turn
/// (wrangler's workerd, nginx's workers, the origin's ffmpeg) stops with it. Dropping it stops
/// the whole group: SIGTERM, then SIGKILL if the leader is still running 5 s later.
pub struct ProcessGroup {
    child: Child,
    name: String,
    exited: Option<ExitStatus>,
    /// The group was signalled to stop and the leader reaped.
    stopped: bool,
}

impl ProcessGroup {
    /// Spawns `command` as the leader of a new process group; `name` says what it is in
    /// messages.
    pub fn spawn(name: impl Into<String>, command: &mut Command) -> Result<Self> {
        let name = name.into();
        // The program and its arguments only: the environment may hold a token.
        let shown = std::iter::once(command.get_program())
            .chain(command.get_args())
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ");
        let child = command
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {name}: {shown}"))?;
        Ok(Self {
            child,
            name,
            exited: None,
            stopped: false,
        })
    }

    /// The leader's process id (also the group's id).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// What the process is, as given to [`ProcessGroup::spawn`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The leader's exit status if it has exited, without waiting.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        if self.exited.is_none() {
            self.exited = self
                .child
                .try_wait()
                .with_context(|| format!("waiting for {}", self.name))?;
        }
        Ok(self.exited)
    }

    /// Waits until `GET url` answers with a success status, for at most `within`. Fails with
    /// the last error or status seen when the deadline passes, and at once, with its exit
    /// status, when the process exits first.
    pub async fn wait_until_ok(&mut self, url: &str, within: Duration) -> Result<()> {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + within;
        let mut last_seen = "no answer yet".to_owned();
        loop {
            if let Some(status) = self.try_wait()? {
                bail!(
                    "{} exited ({status}) before {url} answered; last seen: {last_seen}",
                    self.name
                );
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            match client
                .get(url)
                .timeout(remaining.clamp(POLL_INTERVAL, REQUEST_TIMEOUT))
                .send()
                .await
            {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) => last_seen = format!("status {}", response.status()),
                Err(e) => last_seen = format!("{:#}", anyhow::Error::from(e)),
            }
            if Instant::now() >= deadline {
                bail!(
                    "{url} ({}) did not answer with a success within {within:?}; last seen: {last_seen}",
                    self.name
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// SIGKILL to the whole group now (no shutdown code runs), then reaps the leader.
    pub fn kill(mut self) -> Result<ExitStatus> {
        self.signal("KILL");
        self.reap()
    }

    /// Stops the group: SIGTERM, then SIGKILL if the leader is still running after 5 s.
    /// Returns the leader's exit status.
    pub fn stop(mut self) -> Result<ExitStatus> {
        self.terminate()
    }

    fn terminate(&mut self) -> Result<ExitStatus> {
        if let (true, Some(status)) = (self.stopped, self.exited) {
            return Ok(status);
        }
        // Also when the leader has exited by itself: what it started may still run in its
        // group (a group's id is not reused while any member lives).
        self.signal("TERM");
        if let Some(status) = self.exited {
            self.stopped = true;
            return Ok(status);
        }
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if let Some(status) = self.try_wait()? {
                self.stopped = true;
                return Ok(status);
            }
            std::thread::sleep(POLL_INTERVAL);
        }
        eprintln!(
            "    {} still running {STOP_GRACE:?} after SIGTERM: SIGKILL",
            self.name
        );
        self.signal("KILL");
        self.reap()
    }

    /// Waits for the leader, once the group has been told to stop.
    fn reap(&mut self) -> Result<ExitStatus> {
        let status = self
            .child
            .wait()
            .with_context(|| format!("waiting for {}", self.name))?;
        self.exited = Some(status);
        self.stopped = true;
        Ok(status)
    }

    /// Sends `signal` to every process of the group (the group may already be gone).
    fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg("--")
            .arg(format!("-{}", self.child.id()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if let Err(e) = self.terminate() {
            eprintln!("    stopping {}: {e:#}", self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wait_fails_with_the_exit_status_of_a_process_that_stopped() {
        let mut process =
            ProcessGroup::spawn("sh", Command::new("sh").args(["-c", "exit 3"])).unwrap();
        let port = free_port().unwrap();
        let error = process
            .wait_until_ok(
                &format!("http://127.0.0.1:{port}/"),
                Duration::from_secs(30),
            )
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("sh exited (exit status: 3)"), "{error}");
    }

    #[tokio::test]
    async fn a_wait_fails_at_its_deadline_with_the_last_error_seen() {
        let mut process = ProcessGroup::spawn("sleep", Command::new("sleep").arg("60")).unwrap();
        let port = free_port().unwrap();
        let started = Instant::now();
        let error = process
            .wait_until_ok(
                &format!("http://127.0.0.1:{port}/"),
                Duration::from_millis(300),
            )
            .await
            .unwrap_err()
            .to_string();
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(error.contains("last seen: "), "{error}");
        assert!(error.contains("Connection refused"), "{error}");
        // Dropped: the group stops at once on SIGTERM.
        let stopped = Instant::now();
        drop(process);
        assert!(stopped.elapsed() < STOP_GRACE);
    }

    #[test]
    fn stopping_a_group_stops_what_its_leader_started() {
        // The leader starts a child of its own (as wrangler starts workerd) and waits for it.
        let process =
            ProcessGroup::spawn("sh", Command::new("sh").args(["-c", "sleep 60 & wait"])).unwrap();
        let group = process.id().to_string();
        let members = || {
            let pgrep = Command::new("pgrep").args(["-g", &group]).output().unwrap();
            String::from_utf8_lossy(&pgrep.stdout).trim().to_owned()
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while members().is_empty() {
            assert!(Instant::now() < deadline, "the group never started");
            std::thread::sleep(POLL_INTERVAL);
        }
        assert!(!process.kill().unwrap().success());
        // The child is reaped by init, not by us: wait for it to go.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = members();
            if left.is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "still in the group: {left}");
            std::thread::sleep(POLL_INTERVAL);
        }
    }
}
