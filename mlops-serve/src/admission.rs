//! Admission control for the HTTP API: how many requests are worked on at once, how many bytes
//! of request bodies are held at once, and how long a body may take to arrive. Over a limit the
//! answer is immediate — 503 with `Retry-After` when the server is full, 413 for a body over the
//! size limit (or larger than the whole memory budget: it could never be admitted), 408 for a
//! body not complete in time — so load sheds before memory runs out instead of queueing without
//! bound, and a client sending a byte now and then cannot hold a slot.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use futures::StreamExt;
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The shared budgets (one per router).
#[derive(Debug)]
pub(crate) struct Admission {
    in_flight: Arc<Semaphore>,
    max_in_flight: usize,
    /// Body bytes, counted in KiB so that a budget of terabytes still fits a permit count.
    memory_kib: Arc<Semaphore>,
    max_body_memory: usize,
    max_body: usize,
    body_timeout: Option<Duration>,
}

const KIB: usize = 1024;

impl Admission {
    pub(crate) fn new(
        max_in_flight: usize,
        max_body_memory: usize,
        max_body: usize,
        body_timeout: Option<Duration>,
    ) -> Self {
        let max_in_flight = max_in_flight.clamp(1, Semaphore::MAX_PERMITS);
        let kib = max_body_memory
            .div_ceil(KIB)
            .clamp(1, Semaphore::MAX_PERMITS);
        Self {
            in_flight: Arc::new(Semaphore::new(max_in_flight)),
            max_in_flight,
            memory_kib: Arc::new(Semaphore::new(kib)),
            max_body_memory,
            max_body,
            body_timeout,
        }
    }

    /// Grows a reservation from `held` to `total` bytes of the body budget, or `None` when the
    /// budget cannot cover them now. Counted in whole KiB of the total, so growing in steps
    /// costs what one reservation of the total would.
    fn reserve(&self, held: usize, total: usize) -> Option<OwnedSemaphorePermit> {
        let more = total.div_ceil(KIB).saturating_sub(held.div_ceil(KIB));
        let kib = u32::try_from(more).ok()?;
        Arc::clone(&self.memory_kib)
            .try_acquire_many_owned(kib)
            .ok()
    }
}

fn answer(status: StatusCode, message: String) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

/// 503 with `Retry-After`: the server is full now, not broken.
fn busy(message: String) -> Response {
    let mut response = answer(StatusCode::SERVICE_UNAVAILABLE, message);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

fn too_large(limit: usize) -> Response {
    answer(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body is over the limit of {limit} bytes"),
    )
}

/// Admits a request: takes a slot of the in-flight limit, then reads the body into memory the
/// budget covers (all of a declared `Content-Length` up front, chunked bodies as they arrive),
/// within the body timeout. The slot and the bytes are held until the response is ready.
pub(crate) async fn admit(
    State(admission): State<Arc<Admission>>,
    request: Request,
    next: Next,
) -> Response {
    let Ok(_slot) = Arc::clone(&admission.in_flight).try_acquire_owned() else {
        return busy(format!(
            "server busy: {} requests in flight, the limit",
            admission.max_in_flight
        ));
    };
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    // Over the size limit, or more than the whole budget could ever hold.
    let admissible = admission.max_body.min(admission.max_body_memory);
    if declared.is_some_and(|n| n > admissible) {
        return too_large(admissible);
    }
    let over_budget = || {
        busy(format!(
            "server busy: request bodies in memory would exceed the limit of {} bytes",
            admission.max_body_memory
        ))
    };
    let mut reserved = declared.unwrap_or(0);
    let Some(mut held) = admission.reserve(0, reserved) else {
        return over_budget();
    };
    let mut buffer = BytesMut::with_capacity(reserved);
    let mut stream = body.into_data_stream();
    // One deadline for the whole body, not per chunk: a trickle cannot hold a slot for long.
    let deadline = admission
        .body_timeout
        .map(|limit| (limit, tokio::time::Instant::now() + limit));
    loop {
        let next_chunk = match deadline {
            Some((limit, at)) => match tokio::time::timeout_at(at, stream.next()).await {
                Ok(chunk) => chunk,
                Err(_) => {
                    let mut response = answer(
                        StatusCode::REQUEST_TIMEOUT,
                        format!(
                            "the request body did not arrive within {} ms",
                            limit.as_millis()
                        ),
                    );
                    response
                        .headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                    return response;
                }
            },
            None => stream.next().await,
        };
        let chunk = match next_chunk {
            None => break,
            Some(Ok(chunk)) => chunk,
            Some(Err(e)) => {
                return answer(
                    StatusCode::BAD_REQUEST,
                    format!("reading the request body: {e}"),
                );
            }
        };
        let total = buffer.len() + chunk.len();
        if total > admissible {
            return too_large(admissible);
        }
        if total > reserved {
            // A chunked body (or one longer than declared): reserve what arrived, and a
            // little ahead (never past what a body may be) so a body of many small chunks
            // does not reserve for each one.
            let more = (total - reserved).max((64 * KIB).min(admissible - reserved));
            let Some(extra) = admission.reserve(reserved, reserved + more) else {
                return over_budget();
            };
            held.merge(extra);
            reserved += more;
        }
        buffer.extend_from_slice(&chunk);
    }
    let request = Request::from_parts(parts, Body::from(buffer.freeze()));
    let response = next.run(request).await;
    drop(held);
    response
}
