//! The few API calls the tasks and the end-to-end tests make to set an origin up.

use anyhow::{Context, Result};

/// Creates a camera named `name` with the admin token; returns its id and its upload token.
pub async fn create_camera(base: &str, admin: &str, name: &str) -> Result<(i64, String)> {
    let created: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/api/cameras"))
        .bearer_auth(admin)
        .json(&serde_json::json!({ "name": name }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok((
        created["camera"]["id"]
            .as_i64()
            .context("the camera's id")?,
        created["token"]
            .as_str()
            .context("the camera's token")?
            .to_owned(),
    ))
}

/// Requests the origin at `base` has answered for `route` with `method` and `status`, read
/// from its `/metrics` with the admin token (0 when it has answered none).
pub async fn requests_answered(
    base: &str,
    admin: &str,
    route: &str,
    method: &str,
    status: u16,
) -> Result<u64> {
    let text = reqwest::Client::new()
        .get(format!("{base}/metrics"))
        .bearer_auth(admin)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    let needle = format!(
        "http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} "
    );
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix(&needle))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0))
}
