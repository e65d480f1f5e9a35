//! BENCHMARKS.md: one section per benchmark, replaced in place by each run, and what every
//! section says first (the date, the machine and its load before the run).

use std::path::Path;
use std::process::Command;

use anyhow::Result;

/// When and where a run happens, as each section reports it.
pub struct Run {
    /// The UTC date, `YYYY-MM-DD`.
    pub date: String,
    /// Cores, CPU model and the load average before the run.
    pub host: String,
}

impl Run {
    /// Today on this machine.
    pub fn now() -> Self {
        let date = Command::new("date")
            .arg("-u")
            .arg("+%Y-%m-%d")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        Self {
            date,
            host: machine(),
        }
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    format!(
        "{cores} cores, {cpu}; load average before the run: {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    )
}

/// The first line a program prints for its version (`absent` when it cannot be run).
pub fn version(program: &str, arg: &str) -> String {
    Command::new(program)
        .arg(arg)
        .output()
        .map(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned()
        })
        .unwrap_or_else(|_| "absent".into())
}

/// "met" or "NOT met", for a target column.
pub fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "NOT met"
    }
}

/// Replaces (or appends) the section of BENCHMARKS.md headed `heading`.
pub fn write_section(root: &Path, heading: &str, body: &str) -> Result<()> {
    let path = root.join("BENCHMARKS.md");
    let mut text = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        "# Benchmarks\n\nWritten by `cargo xtask bench`; each figure is a ratio against the reference \
         measured in the same run where the issue names one.\n"
            .to_owned()
    });
    let header = format!("\n## {heading}\n");
    let section = format!("{header}{body}");
    match text.find(&header) {
        Some(start) => {
            let rest = &text[start + header.len()..];
            let end = rest
                .find("\n## ")
                .map_or(text.len(), |e| start + header.len() + e);
            // Sections are separated by one blank line.
            let replacement = format!("{}\n", section.trim_end_matches('\n'));
            text.replace_range(start..end, &replacement);
            if !text.ends_with('\n') {
                text.push('\n');
            }
        }
        None => {
            text.push_str(&section);
        }
    }
    std::fs::write(path, text)?;
    Ok(())
}
