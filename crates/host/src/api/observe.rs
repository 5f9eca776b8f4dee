//! The API's outermost middleware: request id, tracing span, request metrics and a summary
//! log line for every request, those answered by the deadline, the load shedder or a fallback
//! included.
//!
//! The route label must be the matched route's template, which only middleware inside the
//! router sees ([`record_route`], a route layer); it hands it out through a task-local slot
//! that [`observe`] opens for the request, so no allocation is made for it.

use crate::{metrics::Metrics, request_id};
use axum::{
    extract::{MatchedPath, Request, State},
    middleware::Next,
    response::Response,
};
use std::{cell::Cell, sync::Arc, time::Instant};
use tracing::Instrument as _;

tokio::task_local! {
    /// The matched route of the request being served, set by [`record_route`].
    static ROUTE: Cell<Option<MatchedPath>>;
}

/// Outermost middleware: takes or makes the request id, runs the request in a span carrying
/// it, returns it in `x-request-id`, and counts the request by method, route and status.
pub async fn observe(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let id = request_id::from_headers(request.headers());
    let method = request.method().clone();
    let span = tracing::info_span!("request", request_id = id.to_str().unwrap_or_default(),);
    let (mut response, route) = ROUTE
        .scope(
            Cell::new(None),
            request_id::scope(id.clone(), async move {
                let response = next.run(request).await;
                (response, ROUTE.with(Cell::take))
            }),
        )
        .instrument(span.clone())
        .await;
    let status = response.status();
    let elapsed = started.elapsed();
    metrics.observe_http(&method, route.as_ref(), status.as_u16(), elapsed);
    span.in_scope(|| {
        let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        if status.is_server_error() {
            tracing::info!(%method, route, status = status.as_u16(), micros, "request failed");
        } else {
            tracing::debug!(%method, route, status = status.as_u16(), micros, "request");
        }
    });
    response.headers_mut().insert(request_id::HEADER, id);
    response
}

/// Route layer: records the matched route template for [`observe`].
pub async fn record_route(request: Request, next: Next) -> Response {
    if let Some(route) = request.extensions().get::<MatchedPath>() {
        // Outside `observe` (a router used without it) there is no slot: nothing to record.
        let _ = ROUTE.try_with(|slot| slot.set(Some(route.clone())));
    }
    next.run(request).await
}
