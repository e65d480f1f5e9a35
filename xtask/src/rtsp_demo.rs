//! The RTSP demo of `cargo xtask dev`: a real RTSP stream (GStreamer's RTSP server, the one the
//! agent's tests use) and `timelapser-agent` recording it into a camera of the dev origin, so a
//! newcomer sees a camera recorded over RTSP beside the synthetic demo cameras.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use timelapser_support::ProcessGroup;

/// Where the demo stream is served.
pub const RTSP_PORT: u16 = 8554;

/// The demo camera's name.
const CAMERA_NAME: &str = "RTSP demo";

/// How long the RTSP server may take to listen.
const RTSP_READY_WITHIN: Duration = Duration::from_secs(20);

/// The admin token of the dev origin: made once, kept in `target/dev-data` (the origin keeps
/// only a hash; the tasks need the token itself to create the demo camera).
pub fn admin_token(data: &Path) -> Result<String> {
    dev_secret(data, "dev-admin-token", "tl_dev_admin")
}

/// A secret of the dev stack, kept in `data/<file>` (made on first use, owner-only).
pub fn dev_secret(data: &Path, file: &str, prefix: &str) -> Result<String> {
    let path = data.join(file);
    if let Ok(token) = std::fs::read_to_string(&path) {
        let token = token.trim().to_owned();
        if token.len() >= 16 {
            return Ok(token);
        }
    }
    let token = format!("{prefix}_{:032x}", random_u128()?);
    write_private(&path, &token)?;
    Ok(token)
}

fn random_u128() -> Result<u128> {
    let mut bytes = [0u8; 16];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut bytes)?;
    Ok(u128::from_le_bytes(bytes))
}

/// Writes a secret readable by its owner only.
fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    std::io::Write::write_all(&mut file, text.as_bytes())?;
    Ok(())
}

/// Starts GStreamer's RTSP server (the agent tests' script) on `port`, with the script's
/// further arguments (variant, picture size), and waits until it listens.
pub async fn start_rtsp_server(root: &Path, port: u16, args: &[&str]) -> Result<ProcessGroup> {
    let script = root.join("agent/tests/support/rtsp_server.py");
    let mut server = ProcessGroup::spawn(
        "the RTSP server",
        Command::new("/usr/bin/python3")
            .arg(&script)
            .arg(port.to_string())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null()),
    )?;
    let deadline = Instant::now() + RTSP_READY_WITHIN;
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(server);
        }
        if let Some(status) = server.try_wait()? {
            bail!(
                "the RTSP server ({}) exited: {status}; is port {port} taken?",
                script.display()
            );
        }
        if Instant::now() > deadline {
            bail!("the RTSP server did not listen on {port} within {RTSP_READY_WITHIN:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The demo camera on the origin at `base` (created the first time; its id and token kept in
/// `target/dev-data`), and the agent's configuration recording the demo stream into it.
pub async fn agent_config(data: &Path, base: &str, admin: &str) -> Result<PathBuf> {
    let id_file = data.join("rtsp-demo-camera-id");
    let token_file = data.join("rtsp-demo-camera-token");
    let known = std::fs::read_to_string(&id_file)
        .ok()
        .and_then(|id| id.trim().parse::<i64>().ok());
    let exists = match known {
        Some(id) if token_file.is_file() => reqwest::get(format!("{base}/api/cameras/{id}"))
            .await
            .is_ok_and(|r| r.status().is_success()),
        _ => false,
    };
    let camera = match (known, exists) {
        (Some(id), true) => id,
        _ => {
            let (id, token) =
                timelapser_support::api::create_camera(base, admin, CAMERA_NAME).await?;
            write_private(&token_file, &token)?;
            std::fs::write(&id_file, id.to_string())?;
            id
        }
    };
    let config = data.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "# Written by `cargo xtask dev`: the RTSP demo stream, recorded into camera {camera}.\n\
             [[camera]]\n\
             name = \"{CAMERA_NAME}\"\n\
             origin = \"{base}\"\n\
             camera_id = {camera}\n\
             token_file = \"{token}\"\n\
             source = \"rtsp://127.0.0.1:{RTSP_PORT}/cam\"\n\
             spool_dir = \"{spool}\"\n",
            token = token_file.display(),
            spool = data.join("agent-spool").display(),
        ),
    )?;
    Ok(config)
}

/// Starts `timelapser-agent run` on a configuration.
pub fn start_agent(root: &Path, config: &Path) -> Result<ProcessGroup> {
    ProcessGroup::spawn(
        "the agent",
        Command::new(root.join("target/debug/timelapser-agent"))
            .args(["run", "--config"])
            .arg(config)
            .stdin(Stdio::null()),
    )
}
