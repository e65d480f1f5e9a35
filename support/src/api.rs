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
