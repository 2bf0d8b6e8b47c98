//! The web HMI's assets through the router: the page and each asset with its type, the
//! security headers, revalidation with the ETag, 404 for anything else, and the size budget.

use super::hmi::{ASSETS, CSP};
use super::tests::fixture;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use std::io::Write;
use tower::ServiceExt;

async fn get(
    method: Method,
    uri: &str,
    if_none_match: Option<&str>,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let f = fixture();
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(tag) = if_none_match {
        req = req.header("if-none-match", tag);
    }
    let resp = super::router(f.api.clone())
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, headers, body.to_vec())
}

fn assert_security_headers(uri: &str, h: &HeaderMap) {
    assert_eq!(h["content-security-policy"], CSP, "{uri}");
    assert_eq!(h["x-content-type-options"], "nosniff", "{uri}");
    assert_eq!(h["referrer-policy"], "no-referrer", "{uri}");
}

#[tokio::test]
async fn hmi_index_is_served_without_a_token_with_a_strict_csp() {
    let (s, h, body) = get(Method::GET, "/", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    assert_eq!(h["cache-control"], "no-cache");
    assert!(h.contains_key("etag"));
    assert_security_headers("/", &h);
    let csp = h["content-security-policy"].to_str().unwrap();
    for part in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    let html = String::from_utf8(body).unwrap();
    assert!(html.contains("<script type=\"module\" src=\"assets/app.js\">"));
    // Nothing inline (the CSP would block it) and nothing from elsewhere (offline).
    assert!(
        !html.contains("<script>") && !html.contains("style="),
        "{html}"
    );
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
}

#[tokio::test]
async fn hmi_assets_are_served_with_their_types_and_security_headers() {
    for a in ASSETS {
        let uri = format!("/assets/{}", a.name);
        let (s, h, body) = get(Method::GET, &uri, None).await;
        assert_eq!(s, StatusCode::OK, "{uri}");
        let want = match a.name.rsplit('.').next().unwrap() {
            "js" => "text/javascript; charset=utf-8",
            "css" => "text/css; charset=utf-8",
            "html" => "text/html; charset=utf-8",
            "svg" => "image/svg+xml",
            other => panic!("no expected type for .{other}"),
        };
        assert_eq!(h["content-type"], want, "{uri}");
        assert_eq!(h["cache-control"], "no-cache", "{uri}");
        assert_security_headers(&uri, &h);
        assert_eq!(body, a.bytes, "{uri}");
    }
}

/// Every file of the assets directory is embedded (a new file not added to `ASSETS` would be
/// a 404 in the browser), and every asset the page and the modules refer to exists.
#[test]
fn hmi_every_asset_file_is_embedded_and_every_reference_resolves() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    let mut embedded: Vec<String> = ASSETS.iter().map(|a| a.name.to_string()).collect();
    embedded.sort();
    assert_eq!(files, embedded);
    let names: Vec<&str> = ASSETS.iter().map(|a| a.name).collect();
    for a in ASSETS {
        let text = std::str::from_utf8(a.bytes).unwrap();
        // `assets/x` in the page, `./x.js` in the modules.
        for (prefix, end) in [("assets/", '"'), ("'./", '\'')] {
            for piece in text.split(prefix).skip(1) {
                let name = piece.split(end).next().unwrap();
                assert!(
                    names.contains(&name),
                    "{} refers to `{prefix}{name}`, which is not an embedded asset",
                    a.name
                );
            }
        }
    }
}

#[tokio::test]
async fn hmi_unknown_assets_are_404_with_the_security_headers() {
    // The asset handler's own 404s carry the headers; paths it never sees are the API's 404.
    for (uri, ours) in [
        ("/assets/nope.js", true),
        ("/assets/..%2Fhmi.rs", true),
        ("/assets/", false),
        ("/assets/app.js/x", false),
    ] {
        let (s, h, _) = get(Method::GET, uri, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{uri}");
        if ours {
            assert_security_headers(uri, &h);
        }
    }
}

#[tokio::test]
async fn hmi_head_answers_the_headers_without_a_body() {
    let (s, h, body) = get(Method::HEAD, "/assets/app.js", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["content-type"], "text/javascript; charset=utf-8");
    assert_security_headers("HEAD /assets/app.js", &h);
    assert!(body.is_empty());
}

#[tokio::test]
async fn hmi_a_current_copy_is_revalidated_with_its_etag() {
    let (_, h, _) = get(Method::GET, "/assets/app.css", None).await;
    let tag = h["etag"].to_str().unwrap().to_string();
    assert!(
        tag.starts_with('"') && tag.ends_with('"') && tag.len() == 18,
        "{tag}"
    );
    let (s, h2, body) = get(Method::GET, "/assets/app.css", Some(&tag)).await;
    assert_eq!(s, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());
    assert_eq!(h2["etag"], tag.as_str());
    assert_security_headers("304", &h2);
    // Another build's tag gets the file.
    let (s, _, body) = get(Method::GET, "/assets/app.css", Some("\"0000000000000000\"")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(!body.is_empty());
    // Different files have different tags.
    let (_, h3, _) = get(Method::GET, "/", None).await;
    assert_ne!(h3["etag"], tag.as_str());
}

/// The budget is 300 KB gzipped for everything the browser loads.
#[test]
fn hmi_assets_fit_the_size_budget() {
    let raw: usize = ASSETS.iter().map(|a| a.bytes.len()).sum();
    let gzipped: usize = ASSETS
        .iter()
        .map(|a| {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gz.write_all(a.bytes).unwrap();
            gz.finish().unwrap().len()
        })
        .sum();
    println!("HMI assets: {raw} bytes raw, {gzipped} bytes gzipped");
    assert!(gzipped <= 300 * 1024, "{gzipped} bytes gzipped");
}
