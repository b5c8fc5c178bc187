//! The dashboard: one HTML page, a script and a style sheet, compiled into the binary so it
//! works offline and from a fresh clone. It reads the same endpoints as any program (the task
//! API's `/v1/*`), so nothing it shows is hidden from scripts.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

const INDEX: &str = include_str!("../dashboard/index.html");
const SCRIPT: &str = include_str!("../dashboard/app.js");
const STYLE: &str = include_str!("../dashboard/app.css");

/// `/` and `/ui` serve the page; `/ui/app.js` and `/ui/app.css` its assets.
pub(crate) fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/ui", get(index))
        .route("/ui/", get(index))
        .route(
            "/ui/app.js",
            get(|| asset("text/javascript; charset=utf-8", SCRIPT)),
        )
        .route(
            "/ui/app.css",
            get(|| asset("text/css; charset=utf-8", STYLE)),
        )
}

async fn index() -> impl IntoResponse {
    asset("text/html; charset=utf-8", INDEX).await
}

/// Revalidated on every load (`no-cache`), so a new binary's page is never mixed with an old
/// cached script.
async fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
}
