//! `wrangler dev` on the built Worker: pinned, quiet, offline, with its state in one folder.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// wrangler, pinned: the last 4.x that runs on Debian's Node 20 (EDGE-TOOLCHAIN.md).
pub const VERSION: &str = "4.86.0";

/// The npm prefix `cargo xtask` installs wrangler into, under the workspace `root`.
pub fn install_dir(root: &Path) -> PathBuf {
    root.join(format!("target/tools/wrangler-{VERSION}"))
}

/// The folder of wrangler's executables (wrangler, esbuild).
pub fn bin_dir(root: &Path) -> PathBuf {
    install_dir(root).join("node_modules/.bin")
}

/// The Worker as `cargo xtask build-edge` builds it.
pub fn built_worker(root: &Path) -> PathBuf {
    root.join("edge/build/index.js")
}

/// Environment that keeps wrangler quiet and offline: no metrics, no banner, no fetch of
/// Cloudflare's request metadata; its own configuration (logs, the dev registry) under
/// `config_home`, its caches shared in target/wrangler/cache.
pub fn quiet_env(root: &Path, config_home: &Path) -> Vec<(&'static str, OsString)> {
    vec![
        ("WRANGLER_SEND_METRICS", "false".into()),
        ("CI", "true".into()),
        ("CLOUDFLARE_CF_FETCH_ENABLED", "false".into()),
        ("WRANGLER_HIDE_BANNER", "true".into()),
        ("XDG_CONFIG_HOME", config_home.into()),
        ("XDG_CACHE_HOME", root.join("target/wrangler/cache").into()),
    ]
}

/// The Durable Objects the Worker declares, as in the repository's wrangler.toml (a test below
/// keeps the two alike): the fan-outs of the public's event streams.
pub const DURABLE_OBJECTS: &str = r#"[[durable_objects.bindings]]
name = "EVENT_FANOUT"
class_name = "EventFanout"

[[migrations]]
tag = "v1"
new_sqlite_classes = ["EventFanout"]
"#;

/// `wrangler dev` on the Worker as built, without a build command (tests and benchmarks
/// build first and must not run cargo inside cargo), on 127.0.0.1:`port`, with `vars` as the
/// Worker's variables. Its configuration file, Cache API state and wrangler's own
/// configuration live under `state`; stdin and stdout are closed, stderr inherited.
pub fn dev_prebuilt(
    root: &Path,
    state: &Path,
    port: u16,
    inspector_port: u16,
    vars: &[(&str, &str)],
) -> std::io::Result<Command> {
    std::fs::create_dir_all(state)?;
    let mut config = format!(
        "name = \"timelapser-edge\"\nmain = {main:?}\ncompatibility_date = \"2025-09-01\"\n\n{DURABLE_OBJECTS}\n[vars]\n",
        main = built_worker(root).display().to_string()
    );
    for (name, value) in vars {
        config.push_str(&format!("{name} = {value:?}\n"));
    }
    let config_file = state.join("wrangler.toml");
    std::fs::write(&config_file, config)?;
    let mut command = Command::new(bin_dir(root).join("wrangler"));
    command
        .args(["dev", "--config"])
        .arg(&config_file)
        .args(["--ip", "127.0.0.1", "--port", &port.to_string()])
        .args(["--inspector-port", &inspector_port.to_string()])
        .arg("--persist-to")
        .arg(state.join("persist"))
        .arg("--show-interactive-dev-session=false")
        .envs(quiet_env(root, &state.join("config")))
        .current_dir(state)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    Ok(command)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_tests_declare_the_durable_objects_of_the_repositorys_configuration() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let config = std::fs::read_to_string(root.join("wrangler.toml")).unwrap();
        assert!(config.contains(super::DURABLE_OBJECTS), "{config}");
    }
}
