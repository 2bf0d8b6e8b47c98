//! The web HMI (docs/hmi.md): a small operator UI in plain ES modules and CSS, embedded in the
//! binary and served at `/` and `/assets/{file}` (no build step, no CDN: it works offline).
//!
//! The assets are public — they hold no plant data. Everything they show comes from the API
//! with the bearer token the page gets from `POST /api/v1/login`, so the HMI is exactly as
//! authenticated and authorised as any other client.
//!
//! Every HMI response carries a strict Content-Security-Policy (scripts, styles and
//! connections from this origin only, no inline code, no framing), `nosniff` and
//! `no-referrer`, and `Cache-Control: no-cache` with an ETag of the content: a browser
//! revalidates on each load (a 304 on loopback costs nothing) and never runs assets of an
//! older build against a newer API.

use super::handlers::ApiError;
use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// The policy on every HMI response: nothing inline, nothing from elsewhere, never framed.
pub(crate) const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; \
                              script-src 'self'; connect-src 'self'; frame-ancestors 'none'";

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// One embedded file.
pub(crate) struct Asset {
    pub(crate) name: &'static str,
    pub(crate) content_type: &'static str,
    pub(crate) bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $ty:expr) => {
        Asset {
            name: $name,
            content_type: $ty,
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/", $name)),
        }
    };
}

/// Every file of `crates/petra-server/assets/` (a unit test checks that none is missing).
pub(crate) const ASSETS: &[Asset] = &[
    asset!("index.html", HTML),
    asset!("app.css", CSS),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("util.js", JS),
    asset!("chart.js", JS),
    asset!("signals.js", JS),
    asset!("alarms.js", JS),
    asset!("trends.js", JS),
    asset!("status.js", JS),
    asset!("favicon.svg", SVG),
];

/// The ETag of each asset (same order as [`ASSETS`]): the start of its SHA-256, computed once.
fn etags() -> &'static [HeaderValue] {
    static ETAGS: OnceLock<Vec<HeaderValue>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let digest = Sha256::digest(a.bytes);
                let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
                HeaderValue::from_str(&format!("\"{hex}\"")).expect("hex is a valid header")
            })
            .collect()
    })
}

/// `GET /`: the page.
pub(crate) async fn index(headers: HeaderMap) -> Response {
    serve(0, &headers)
}

/// `GET /assets/{file}`: one embedded file; 404 for anything else.
pub(crate) async fn asset(
    file: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    let found = file
        .ok()
        .and_then(|Path(f)| ASSETS.iter().position(|a| a.name == f));
    match found {
        Some(i) => serve(i, &headers),
        None => with_security_headers(
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such HMI asset; the page is at /",
            )
            .into_response(),
        ),
    }
}

/// The asset at `i`, or 304 when the browser's copy (`If-None-Match`) is current.
fn serve(i: usize, headers: &HeaderMap) -> Response {
    let asset = &ASSETS[i];
    let etag = &etags()[i];
    let fresh = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t.as_bytes() == etag.as_bytes());
    let mut r = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = asset.bytes.into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        );
        r
    };
    let h = r.headers_mut();
    h.insert(header::ETAG, etag.clone());
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    with_security_headers(r)
}

fn with_security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}
