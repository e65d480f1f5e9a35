//! Core's criterion micro-benchmarks (`core/benches`), reported as ns/op.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;

use super::report::Run;
use crate::{cargo, run, step};

/// The section of BENCHMARKS.md.
pub const HEADING: &str = "Core micro-benchmarks";

/// The median of every benchmark, by id.
pub struct CoreResults {
    medians: Vec<(String, f64)>,
}

/// Runs `cargo bench -p timelapser-core --bench core` and reads the medians criterion wrote.
pub fn measure(root: &Path) -> Result<CoreResults> {
    step("core micro-benchmarks (criterion)");
    run(cargo().args([
        "bench",
        "-p",
        "timelapser-core",
        "--bench",
        "core",
        "--",
        "--warm-up-time",
        "1",
        "--measurement-time",
        "3",
    ]))?;
    Ok(CoreResults {
        medians: criterion_medians(root),
    })
}

/// The medians criterion wrote, by benchmark id.
fn criterion_medians(root: &Path) -> Vec<(String, f64)> {
    let mut found = Vec::new();
    let base = root.join("target/criterion");
    let mut stack = vec![base.clone()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n == "new") {
                    let estimates = path.join("estimates.json");
                    let benchmark = path.join("benchmark.json");
                    let (Ok(e), Ok(b)) = (
                        std::fs::read_to_string(&estimates),
                        std::fs::read_to_string(&benchmark),
                    ) else {
                        continue;
                    };
                    let (Ok(e), Ok(b)) = (
                        serde_json::from_str::<serde_json::Value>(&e),
                        serde_json::from_str::<serde_json::Value>(&b),
                    ) else {
                        continue;
                    };
                    if let (Some(id), Some(median)) = (
                        b["full_id"].as_str(),
                        e["median"]["point_estimate"].as_f64(),
                    ) {
                        found.push((id.to_owned(), median));
                    }
                } else if path.file_name().is_none_or(|n| n != "report") {
                    stack.push(path);
                }
            }
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

/// The section's body.
pub fn report(c: &CoreResults, run: &Run) -> String {
    let mut body = format!(
        "{today}, {host}. `cargo bench -p timelapser-core --bench core` (criterion, median of 100 samples).\n\n\
         | benchmark | ns/op |\n|---|---:|\n",
        today = run.date,
        host = run.host,
    );
    for (id, ns) in &c.medians {
        let _ = writeln!(body, "| {id} | {ns:.1} |");
    }
    body
}
