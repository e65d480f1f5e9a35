//! `/assets/<name>.<hash>.<ext>`: the pages' CSS and JS under content-hashed names, cached
//! forever (a new release is a new name, so nothing is ever purged).

use std::sync::OnceLock;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use timelapser_core::etag::{EntityTag, HashAlgorithm};
use timelapser_core::policy::ContentKind;

use super::respond;
use super::Path;
use crate::cache::Represented;
use crate::error::{Error, Result};
use crate::state::AppState;

/// One asset, with its hashed name.
pub struct Asset {
    /// `app.<12 hex>.css`.
    pub name: String,
    content_type: &'static str,
    representation: Represented<()>,
}

fn asset(stem: &str, extension: &str, content_type: &'static str, text: &'static str) -> Asset {
    let etag = EntityTag::from_content(text.as_bytes(), HashAlgorithm::Sha256);
    let name = format!("{stem}.{}.{extension}", &etag.opaque()[..12]);
    Asset {
        name,
        content_type,
        representation: Represented {
            value: (),
            body: Bytes::from_static(text.as_bytes()),
            etag,
        },
    }
}

/// The assets, hashed once per process.
pub fn assets() -> &'static [Asset; 2] {
    static ASSETS: OnceLock<[Asset; 2]> = OnceLock::new();
    ASSETS.get_or_init(|| {
        [
            asset(
                "app",
                "css",
                "text/css; charset=utf-8",
                include_str!("../../assets/app.css"),
            ),
            asset(
                "app",
                "js",
                "text/javascript; charset=utf-8",
                include_str!("../../assets/app.js"),
            ),
        ]
    })
}

/// The URL of the stylesheet.
pub fn css_url() -> String {
    format!("/assets/{}", assets()[0].name)
}

/// The URL of the script.
pub fn js_url() -> String {
    format!("/assets/{}", assets()[1].name)
}

pub fn router() -> Router<AppState> {
    Router::new().route("/assets/{name}", get(serve))
}

async fn serve(
    State(_): State<AppState>,
    Path(name): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response> {
    let asset = assets()
        .iter()
        .find(|a| a.name == name)
        .ok_or_else(|| Error::NotFound(format!("no asset {name}")))?;
    let response = respond::representation(
        &method,
        &headers,
        ContentKind::StaticAsset,
        &asset.representation,
        HeaderValue::from_static(asset.content_type),
    );
    Ok(with_nosniff(response))
}

fn with_nosniff(mut response: Response<Body>) -> Response<Body> {
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
