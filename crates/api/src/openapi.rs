//! What the task API's OpenAPI document says beyond its operations: the title, the bearer
//! token, and the error answers every handler shares. The operations themselves come from each
//! handler's `#[utoipa::path]` in `routes.rs`, registered with the router by `routes!`, so a route
//! cannot be served without its entry.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use switchyard_wire::ErrorBody;

/// The document before the routes add their operations.
pub(crate) fn base() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Switchyard task API",
        description = "Submit tasks to the worker and read their outcome. Payload schemas are per algorithm: GET /v1/schemas."
    ),
    components(
        schemas(ErrorBody),
        responses(BadRequest, Unauthorized, NotFound, Gone, TooLarge, NotImplemented, Unavailable)
    ),
    modifiers(&BearerToken)
)]
struct ApiDoc;

/// The name `security(("token" = []))` refers to in the handlers' paths.
const TOKEN: &str = "token";

/// Declares the bearer token that changes (POST, DELETE) present when `up` requires one.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "Needed for changes (POST, DELETE) when up runs with SWITCHYARD_TOKEN; reads stay open",
            ))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(TOKEN, SecurityScheme::Http(scheme));
    }
}

/// An error answer: `description`, and the `{"message"}` body of [`crate::ApiError`].
fn error_response(description: &str) -> ResponseBuilder {
    let body = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("ErrorBody")))
        .build();
    ResponseBuilder::new()
        .description(description)
        .content("application/json", body)
}

/// Declares error answers that handlers name in `responses((status = ..., response = Name))`:
/// each a type whose `ToResponse` is a shared component, described once for every handler.
macro_rules! error_responses {
    ($($name:ident => $description:literal $(, header $header:literal: $header_description:literal)?;)*) => {$(
        #[doc = concat!("The error answer: ", $description, ".")]
        pub(crate) struct $name;

        impl<'s> utoipa::ToResponse<'s> for $name {
            fn response() -> (&'s str, RefOr<Response>) {
                let response = error_response($description);
                $(
                    let header = HeaderBuilder::new().description(Some($header_description)).build();
                    let response = response.header($header, header);
                )?
                (stringify!($name), response.build().into())
            }
        }
    )*};
}

error_responses! {
    BadRequest => "The request is malformed: the message names the field, parameter or header";
    Unauthorized => "A change without the token up requires",
        header "WWW-Authenticate": "Bearer";
    NotFound => "No such task";
    Gone => "The task finished and was pruned after its retention (up --retain)";
    TooLarge => "The body is larger than up accepts";
    NotImplemented => "The algorithm cannot run on this deployment (its engine is not installed): the message says what to install; retrying will not help";
    Unavailable => "The algorithm is still loading, or the queue or discovery cannot be reached: retry",
        header "Retry-After": "Seconds to wait before retrying";
}

/// The document against the router's behaviour, so that neither drifts from the other: a route
/// added beside `routes!`, or a request field left out of a handler's `#[utoipa::path]`, fails.
#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // A failed unwrap is the test's failure message.

    use std::collections::BTreeSet;
    use std::sync::Arc;

    use axum::Router;
    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode};
    use http_body_util::BodyExt;
    use serde_json::Value;
    use switchyard_broker::memory::MemoryBroker;
    use switchyard_discovery::DiscoveryClient;
    use tokio_util::sync::CancellationToken;
    use tower::ServiceExt;

    use crate::{Catalog, Queues, TaskApi, TaskStore};

    /// Every method a route could serve; HEAD follows GET in axum and is left out.
    const METHODS: [Method; 5] = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
    ];

    /// A name no handler reads, sent as a query parameter and as a body field.
    const UNKNOWN: &str = "openapi_probe";

    /// The API's router over a real discovery (so listings answer 200) and an empty store, and
    /// what stops the discovery.
    async fn api_router() -> (Router, CancellationToken, tempfile::TempDir) {
        let shutdown = CancellationToken::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let discovery = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(switchyard_discovery::serve(
            listener,
            switchyard_discovery::Config::default(),
            shutdown.clone(),
        ));
        let data = tempfile::tempdir().unwrap();
        let api = TaskApi::new(
            Queues::of(Arc::new(MemoryBroker::new())),
            TaskStore::open(&data.path().join("tasks.db")).unwrap(),
            Catalog::new(DiscoveryClient::new(discovery, None)),
        );
        (crate::routes::router(api, 1 << 20), shutdown, data)
    }

    async fn answer(
        router: &Router,
        method: Method,
        uri: &str,
        body: &str,
    ) -> (StatusCode, String) {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// The paths a router matches. axum lists them nowhere but in its `Debug` output, which
    /// quotes each one; the tests check that every documented path is found there, so a change
    /// of that format fails them rather than passing them empty.
    fn router_paths(router: &Router) -> BTreeSet<String> {
        format!("{router:?}")
            .split('"')
            .filter(|text| text.starts_with('/'))
            .map(String::from)
            .collect()
    }

    /// A request path for a path template: each `{parameter}` a plausible task id.
    fn concrete(path: &str) -> String {
        path.split('/')
            .map(|segment| {
                if segment.starts_with('{') {
                    "probe"
                } else {
                    segment
                }
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    /// The methods the router serves at `path`: those answered neither 405 nor axum's own 404
    /// (an empty body; a handler's 404 explains itself).
    async fn served_methods(router: &Router, path: &str) -> BTreeSet<String> {
        let mut served = BTreeSet::new();
        for method in METHODS {
            let (status, body) = answer(router, method.clone(), &concrete(path), "").await;
            let unrouted = status == StatusCode::METHOD_NOT_ALLOWED
                || (status == StatusCode::NOT_FOUND && body.is_empty());
            if !unrouted {
                served.insert(method.to_string());
            }
        }
        served
    }

    async fn document(router: &Router) -> Value {
        let (status, body) = answer(router, Method::GET, "/openapi.json", "").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    fn documented_methods(document: &Value, path: &str) -> BTreeSet<String> {
        document["paths"][path]
            .as_object()
            .map(|item| item.keys().map(|method| method.to_uppercase()).collect())
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn the_document_has_every_route_the_router_serves_and_no_other() {
        let (router, _discovery, _data) = api_router().await;
        let document = document(&router).await;
        let documented: BTreeSet<String> = document["paths"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        let not_api: BTreeSet<String> = router_paths(&crate::dashboard::router())
            .into_iter()
            .chain(router_paths(&crate::routes::docs(
                utoipa::openapi::OpenApi::default(),
            )))
            .collect();
        let served: BTreeSet<String> = router_paths(&router)
            .difference(&not_api)
            .cloned()
            .collect();
        assert!(
            documented.is_subset(&served),
            "documented but not routed: {:?}",
            documented.difference(&served).collect::<Vec<_>>()
        );
        assert!(
            served.is_subset(&documented),
            "routed but not documented: {:?}",
            served.difference(&documented).collect::<Vec<_>>()
        );
        for path in &served {
            assert_eq!(
                served_methods(&router, path).await,
                documented_methods(&document, path),
                "the methods served at {path}, then those documented"
            );
        }
    }

    /// Sends [`UNKNOWN`] in `uri` or `body` and checks that the fields the handler then names are
    /// those `documented`. serde's refusal of an unknown field lists the fields of the query or
    /// body type (every one denies unknown fields); a handler that reads none does not refuse it.
    async fn assert_reads(
        router: &Router,
        method: &Method,
        uri: &str,
        body: &str,
        documented: &BTreeSet<String>,
        what: &str,
    ) {
        let (status, message) = answer(router, method.clone(), uri, body).await;
        let refusal = format!("unknown field `{UNKNOWN}`");
        let read: BTreeSet<String> = match message.split_once(&refusal) {
            None => BTreeSet::new(),
            Some((_, expected)) => {
                assert_eq!(status, StatusCode::BAD_REQUEST, "{message}");
                expected
                    .split('`')
                    .skip(1)
                    .step_by(2)
                    .map(String::from)
                    .collect()
            }
        };
        assert_eq!(
            &read, documented,
            "{method} {uri}: the {what} it reads, then those documented"
        );
    }

    fn query_parameters(operation: &Value) -> BTreeSet<String> {
        operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|parameter| parameter["in"] == "query")
            .map(|parameter| parameter["name"].as_str().unwrap().to_owned())
            .collect()
    }

    fn body_fields(document: &Value, operation: &Value) -> BTreeSet<String> {
        let schema = &operation["requestBody"]["content"]["application/json"]["schema"];
        let schema = match schema["$ref"].as_str() {
            Some(reference) => {
                let name = reference.trim_start_matches("#/components/schemas/");
                &document["components"]["schemas"][name]
            }
            None => schema,
        };
        schema["properties"]
            .as_object()
            .map(|properties| properties.keys().cloned().collect())
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn the_document_has_every_query_parameter_and_body_field_a_handler_reads() {
        let (router, _discovery, _data) = api_router().await;
        let document = document(&router).await;
        let mut checked = 0;
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let path = concrete(path);
                let query = query_parameters(operation);
                let with_query = format!("{path}?{UNKNOWN}=1");
                assert_reads(
                    &router,
                    &method,
                    &with_query,
                    "",
                    &query,
                    "query parameters",
                )
                .await;
                let fields = body_fields(&document, operation);
                let body = format!("{{\"{UNKNOWN}\": 1}}");
                assert_reads(&router, &method, &path, &body, &fields, "body fields").await;
                checked += query.len() + fields.len();
            }
        }
        assert!(checked > 0, "no query parameter or body field was checked");
    }
}
