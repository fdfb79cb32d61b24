//! A webhook receiver on 127.0.0.1 (an ephemeral port): records every POST to `/hook` with its
//! headers and body, and answers from a queue of canned answers (202 once the queue is empty),
//! optionally after a fixed delay (a slow receiver).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

#[derive(Clone, Debug)]
pub enum Answer {
    Status(u16),
    RetryAfter(u16, &'static str),
    Hang(Duration),
}

#[derive(Default)]
pub struct Receiver {
    pub answers: VecDeque<Answer>,
    pub received: Vec<(HeaderMap, Bytes)>,
    /// Every answer waits this long first.
    pub delay: Option<Duration>,
}

pub type Shared = Arc<Mutex<Receiver>>;

async fn hook(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let (answer, delay) = {
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        s.received.push((headers, body));
        (s.answers.pop_front().unwrap_or(Answer::Status(202)), s.delay)
    };
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    let status = |n: u16| StatusCode::from_u16(n).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match answer {
        Answer::Status(n) => status(n).into_response(),
        Answer::RetryAfter(n, after) => (status(n), [("retry-after", after)]).into_response(),
        Answer::Hang(d) => {
            tokio::time::sleep(d).await;
            StatusCode::OK.into_response()
        }
    }
}

/// Starts a receiver on the current runtime; returns its state and its URL (`…/hook`).
pub async fn start() -> (Shared, String) {
    match tokio::net::TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => serve(l),
        Err(e) => panic!("receiver: cannot bind 127.0.0.1:0: {e}"),
    }
}

/// A receiver on a listener the caller made (a port held closed during an outage, then opened).
pub fn serve(listener: tokio::net::TcpListener) -> (Shared, String) {
    let state: Shared = Arc::default();
    let app = Router::new().route("/hook", post(hook)).with_state(state.clone());
    let url = match listener.local_addr() {
        Ok(a) => format!("http://{a}/hook"),
        Err(e) => panic!("receiver: no local address: {e}"),
    };
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (state, url)
}
