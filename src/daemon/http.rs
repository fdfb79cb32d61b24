//! `/healthz` (the process answers), `/readyz` (start-up done, store working, workers making
//! progress, every source polled recently — 503 with the failing checks otherwise) and
//! `/metrics` (Prometheus text format), on loopback unless configured otherwise.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use std::net::SocketAddr;

use axum::Extension;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::stages::health::Health;
use crate::store::Store;

#[derive(Clone)]
pub struct HttpState {
    pub health: Arc<Health>,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub stall_limit: Duration,
    pub metrics: PrometheusHandle,
    /// Who sees /readyz's details (`http.readyz_details`).
    pub details: crate::config::ReadyzDetails,
}

/// The process's Prometheus recorder, installed on first use. A process has one metrics
/// recorder; a second daemon in the same process (tests) shares it.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0])
                .map(|b| b.build_recorder())
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
            let handle = recorder.handle();
            // Fails only if another recorder was installed first (a library user's): then our
            // metrics go to theirs and /metrics shows none.
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
            }
            handle
        })
        .clone()
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// The readiness verdict. Details name paths and quote error texts of sources and
/// destinations: they go to whom `http.readyz_details` allows (by default clients on this
/// host); others get the status code and each check's name and verdict.
async fn readyz(State(s): State<HttpState>, peer: Option<Extension<Peer>>) -> Response {
    use crate::config::ReadyzDetails;
    let store_ok = s.store.check().map_err(|e| e.to_string());
    let r = s.health.readiness(s.clock.now(), s.stall_limit, store_ok);
    let status = if r.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let details = match s.details {
        ReadyzDetails::All => true,
        ReadyzDetails::None => false,
        // Without a peer address (the router called in process) nothing says it is local.
        ReadyzDetails::Loopback => peer.is_some_and(|Extension(Peer(a))| a.ip().to_canonical().is_loopback()),
    };
    if details {
        return (status, axum::Json(r)).into_response();
    }
    let checks: Vec<serde_json::Value> =
        r.checks.iter().map(|c| serde_json::json!({"name": c.name, "ok": c.ok})).collect();
    (status, axum::Json(serde_json::json!({"ready": r.ready, "checks": checks}))).into_response()
}

/// The address a request came from, put in its extensions by [`serve`].
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

async fn metrics(State(s): State<HttpState>) -> Response {
    s.metrics.run_upkeep();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], s.metrics.render()).into_response()
}

pub fn router(state: HttpState) -> axum::Router {
    axum::Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Connections the kernel completes and holds for the accept loop. std's and tokio's default
/// of 128 overflowed under a burst of connections (a SYN then dropped waits 1 s for its retry,
/// longer than a probe allows); the kernel caps it at `net.core.somaxconn` (4096 by default).
const LISTEN_BACKLOG: u32 = 1024;

/// The HTTP listener on `addr` (`[http] listen`, checked when the configuration is loaded).
pub fn bind(addr: &str) -> std::io::Result<tokio::net::TcpListener> {
    let addr: std::net::SocketAddr =
        addr.parse().map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    // As std does: a restart does not wait for the old connections' TIME_WAIT to pass.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// What a client of the port may hold (`[http]`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once (already lowered to fit the descriptor limit).
    pub max_connections: usize,
    /// For a request's headers to arrive, and for a kept-alive connection's next request.
    pub header_timeout: Duration,
}

/// A request's headers can be no larger (hyper's default buffer is 400 KB): the three routes
/// take none of any size, and a connection sending more holds memory for nothing.
const MAX_HEADER_BUF: usize = 16 * 1024;

/// How long, at shutdown, requests in progress have to finish before their connections are
/// dropped.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// The connections open, oldest first (ids rise), each with how many of its requests are being
/// answered and the signal that closes it.
#[derive(Default)]
struct Connections {
    next: u64,
    open: std::collections::BTreeMap<u64, Slot>,
}

struct Slot {
    busy: Arc<std::sync::atomic::AtomicUsize>,
    close: Arc<tokio::sync::Notify>,
}

/// Counts a request as being answered while it lives, so that its connection is not shed
/// meanwhile.
struct Busy(Arc<std::sync::atomic::AtomicUsize>);

impl Busy {
    fn new(count: &Arc<std::sync::atomic::AtomicUsize>) -> Busy {
        count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Busy(count.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Serves until `stop` is cancelled, within `limits`.
///
/// axum's own `serve` has no header timeout and no connection cap: each idle connection held a
/// descriptor for as long as the client liked, and about a thousand of them used up the
/// process's descriptors, so /healthz stopped answering and every poll and delivery failed with
/// "Too many open files". Here each connection is served by hyper with a header-read timeout,
/// which also bounds a kept-alive connection's wait for its next request; and at most
/// `max_connections` are open at once. A connection over the cap sheds the oldest one that is
/// not being answered (waiting for headers, or idle between requests) — so a probe on a fresh
/// connection is answered even while the port is flooded — or, if every one is being
/// answered, is closed at once. Nothing is queued.
pub async fn serve(listener: tokio::net::TcpListener, state: HttpState, stop: CancellationToken, limits: Limits) {
    let app = router(state);
    let table = Arc::new(std::sync::Mutex::new(Connections::default()));
    let mut tasks = tokio::task::JoinSet::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_HEADER_BUF)
        .keep_alive(true);
    let mut last_warning: Option<std::time::Instant> = None;
    loop {
        let stream = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors (EMFILE) or a connection reset before it was accepted:
                    // a pause instead of a hot loop, then accept again.
                    tracing::warn!("the HTTP listener cannot accept a connection: {e}");
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                    }
                }
            },
        };
        // Reap the tasks of connections that ended, so the set does not grow with every one.
        while tasks.try_join_next().is_some() {}
        let mut shed = false;
        let (id, busy, close) = {
            let mut t = table.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if t.open.len() >= limits.max_connections {
                let idle = t
                    .open
                    .iter()
                    .find(|(_, s)| s.busy.load(std::sync::atomic::Ordering::Relaxed) == 0)
                    .map(|(id, _)| *id);
                let warn = last_warning.is_none_or(|at| at.elapsed() >= Duration::from_secs(60));
                match idle.and_then(|id| t.open.remove(&id)) {
                    Some(oldest) => {
                        oldest.close.notify_one();
                        shed = true;
                        if warn {
                            tracing::warn!(
                                "{} HTTP connections open (http.max_connections): closing the oldest idle one for each new one",
                                limits.max_connections
                            );
                            last_warning = Some(std::time::Instant::now());
                        }
                    }
                    None => {
                        if warn {
                            tracing::warn!(
                                "{} HTTP connections open (http.max_connections), all being answered: new ones are closed",
                                limits.max_connections
                            );
                            last_warning = Some(std::time::Instant::now());
                        }
                        drop(stream);
                        continue;
                    }
                }
            }
            let id = t.next;
            t.next += 1;
            let slot = Slot { busy: Arc::default(), close: Arc::default() };
            let (busy, close) = (slot.busy.clone(), slot.close.clone());
            t.open.insert(id, slot);
            (id, busy, close)
        };
        if shed {
            // Let the shed connection's task run and close its socket before the next accept:
            // a flood accepted faster than shed connections close would hold descriptors over
            // the cap.
            tokio::task::yield_now().await;
        }
        let app = app.clone();
        let (stream, peer) = stream;
        let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            // The peer's address, for handlers that answer loopback differently (/readyz).
            req.extensions_mut().insert(Peer(peer));
            let busy = Busy::new(&busy);
            let answer =
                hyper::service::Service::call(&hyper_util::service::TowerToHyperService::new(app.clone()), req);
            async move {
                let r = answer.await;
                drop(busy);
                r
            }
        });
        let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
        let (stop, table) = (stop.clone(), table.clone());
        tasks.spawn(async move {
            tokio::pin!(conn);
            tokio::select! {
                ended = conn.as_mut() => {
                    // A header timeout, a client gone: nothing the daemon can act on.
                    if let Err(e) = ended {
                        tracing::debug!("HTTP connection ended: {e}");
                    }
                }
                // Shed for a newer connection: dropping it closes the socket.
                _ = close.notified() => {}
                _ = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn).await;
                }
            }
            table.lock().unwrap_or_else(std::sync::PoisonError::into_inner).open.remove(&id);
        });
    }
    // Each connection task has seen the stop and gets SHUTDOWN_GRACE; past that (and a margin)
    // the rest are dropped with the set.
    let _ = tokio::time::timeout(SHUTDOWN_GRACE + Duration::from_millis(500), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
}

/// The connection cap that fits the process's open-file limit: a quarter of it at most, so that
/// a full HTTP port leaves three quarters to polling, delivery, the store and the log.
pub fn connection_cap(configured: usize) -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    let fits = limit.map_or(usize::MAX, |n| usize::try_from(n / 4).unwrap_or(usize::MAX)).max(1);
    if configured > fits {
        tracing::warn!(
            "http.max_connections = {configured} is over a quarter of the open-file limit ({}); serving at most {fits} connections (raise LimitNOFILE to allow more)",
            limit.unwrap_or_default()
        );
        return fits;
    }
    configured
}

/// Raises the soft open-file limit to the hard one, as the Go runtime does: the soft default
/// of 1,024 is a relic of select(2), which the daemon does not use. Under the shipped systemd
/// unit the call is filtered (`SystemCallFilter=~@resources`) and LimitNOFILE= sets the limit
/// instead; a refusal is no error.
pub fn raise_open_file_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut l = getrlimit(Resource::Nofile);
    if l.current < l.maximum {
        let from = l.current;
        l.current = l.maximum;
        match setrlimit(Resource::Nofile, l) {
            Ok(()) => tracing::debug!(from = ?from, to = ?l.maximum, "raised the open-file limit"),
            Err(e) => tracing::debug!("cannot raise the open-file limit: {e}"),
        }
    }
}
