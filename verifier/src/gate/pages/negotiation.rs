//! Which requests get a page, and the headers every page carries. The page URLs (`/`,
//! `/ORG/NAME`, `/ORG/NAME/tree/REV`) are not Hub API routes, and the Hugging Face client never
//! asks them for HTML (it sends `Accept: */*` or none), so a request that does not name HTML
//! gets what the gate answered there before pages existed: an empty 404.

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// True when the request is a GET or HEAD whose `Accept` names HTML (not only `*/*`) with a
/// non-zero quality.
pub fn wants_page(method: &Method, headers: &HeaderMap) -> bool {
    (method == Method::GET || method == Method::HEAD)
        && headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(names_html)
}

fn names_html(range: &str) -> bool {
    let mut parts = range.split(';');
    let media = parts.next().unwrap_or("").trim();
    let html = media.eq_ignore_ascii_case("text/html")
        || media.eq_ignore_ascii_case("application/xhtml+xml");
    html && parts.all(|p| {
        let p = p.trim();
        let q = p
            .strip_prefix("q=")
            .or_else(|| p.strip_prefix("Q="))
            .and_then(|q| q.trim().parse::<f32>().ok());
        q.is_none_or(|q| q > 0.0)
    })
}

/// The answer to a request for a page URL that is not a browser's: as before pages existed.
pub fn not_a_page() -> Response {
    StatusCode::NOT_FOUND.into_response()
}

/// Nothing but the gate's own stylesheet may load: no script at all, no inline style, no
/// frames, no form posting elsewhere.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// `body` as an HTML page with `status` and the headers that keep it inert.
pub fn page_response(status: StatusCode, body: impl Into<axum::body::Bytes>) -> Response {
    let body: axum::body::Bytes = body.into();
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        // The decision depends on the destination header and the time.
        (header::CACHE_CONTROL, "no-store"),
        (header::VARY, "Accept"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn only_requests_that_name_html_get_a_page() {
        let chromium = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,\
                        image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7";
        assert!(wants_page(&Method::GET, &accept(chromium)));
        assert!(wants_page(&Method::HEAD, &accept("TEXT/HTML")));
        assert!(wants_page(
            &Method::GET,
            &accept("application/json, text/html;q=0.1")
        ));
        // What the Hub client, curl and scripts send.
        assert!(!wants_page(&Method::GET, &accept("*/*")));
        assert!(!wants_page(&Method::GET, &HeaderMap::new()));
        assert!(!wants_page(&Method::GET, &accept("application/json")));
        assert!(!wants_page(&Method::GET, &accept("text/html;q=0")));
        assert!(!wants_page(&Method::GET, &accept("text/plain")));
        assert!(!wants_page(&Method::POST, &accept(chromium)));
    }
}
