//! The accept loop: HTTP/1.1 and HTTP/2 on hyper, over plain TCP or rustls, with the
//! bounds axum's own `serve` lacks. At most `max_connections` are served at once (the
//! loop stops accepting until one ends; the kernel's backlog holds the rest), and a
//! watchdog closes a connection whose client is slow to send a request head or that
//! sits idle between requests. A request in flight is never cut by either: its time
//! is the request timeout's business (`web::router`).

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

/// A failed accept (EMFILE when out of file descriptors, mostly) is retried after
/// this pause, so the loop neither spins nor floods the log.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// HTTP/2 streams one connection may have open at once.
const MAX_STREAMS: u32 = 32;

/// The bounds on connections, from `[server]` (the cap lowered to the open-files limit).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_read: Duration,
    pub idle: Duration,
    /// How long a connection with requests in flight may go without a byte moving
    /// either way (longer than a request may take): a client that stops reading its
    /// answers (an HTTP/2 window left at zero) cannot hold its slot for ever.
    pub stall: Duration,
    pub max_connections: usize,
}

/// Loads the PEM certificate chain and private key; HTTP/2 is offered by ALPN.
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `router` until `shutdown` completes, then lets requests in flight finish
/// for `grace` and closes what is left.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // hyper's own header timeout restarts when a response ends, so it would also close
    // a kept-alive connection idle for that long; the watchdog below tells the two apart.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None);
    // A client's streams run at once on one slot: a few dozen are plenty for a
    // browser, and bound what one connection can ask of the handlers.
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_STREAMS);
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    // Connection tasks live here: at most `max_connections`, reaped as they end, and
    // aborted when this returns.
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = connections.join_next() => {}
            accepted = accept(&listener, &slots) => match accepted {
                Ok((slot, stream, remote)) => {
                    let connection = Connection {
                        router: router.clone(),
                        remote,
                        builder: builder.clone(),
                        watcher: graceful.watcher(),
                        limits,
                        _slot: slot,
                    };
                    connections.spawn(connection.run(stream, tls.clone()));
                }
                // Out of files or memory: pause rather than spin. Any other error is
                // the pending connection's own (aborted, unreachable, accept(2)), and
                // a client that provokes it must not slow the others.
                Err(error) if out_of_resources(&error) => {
                    tracing::warn!(%error, "cannot accept a connection; pausing");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
                Err(error) => tracing::debug!(%error, "a connection failed as it was accepted"),
            },
        }
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            left = connections.len(),
            "requests still in flight after the grace period are cut"
        );
    }
    connections.shutdown().await;
}

/// Waits for a free slot, then for a client.
async fn accept(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
) -> io::Result<(OwnedSemaphorePermit, TcpStream, SocketAddr)> {
    let slot = slots
        .clone()
        .acquire_owned()
        .await
        .map_err(io::Error::other)?;
    let (stream, remote) = listener.accept().await?;
    Ok((slot, stream, remote))
}

/// EMFILE, ENFILE, ENOBUFS, ENOMEM: the process or the system ran out.
fn out_of_resources(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(23 | 24 | 105 | 12))
}

/// One accepted client and what serving it needs.
struct Connection {
    router: Router,
    remote: SocketAddr,
    builder: Arc<auto::Builder<TokioExecutor>>,
    watcher: Watcher,
    limits: Limits,
    /// Held while the connection lives: its place under `max_connections`.
    _slot: OwnedSemaphorePermit,
}

impl Connection {
    async fn run(self, stream: TcpStream, tls: Option<TlsAcceptor>) {
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::new(self.limits));
        match tls {
            None => {
                self.http(Watched::new(stream, activity.clone()), activity)
                    .await
            }
            Some(tls) => {
                // A handshake is part of sending the first request head.
                match tokio::time::timeout(self.limits.header_read, tls.accept(stream)).await {
                    Ok(Ok(stream)) => {
                        self.http(Watched::new(stream, activity.clone()), activity)
                            .await
                    }
                    Ok(Err(error)) => tracing::debug!(%error, "TLS handshake failed"),
                    Err(_) => tracing::debug!("TLS handshake too slow, connection closed"),
                }
            }
        }
    }

    async fn http<IO>(self, io: Watched<IO>, activity: Arc<Activity>)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (router, remote, tracked) = (self.router, self.remote, activity.clone());
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            let in_flight = InFlight::start(&tracked);
            // What `into_make_service_with_connect_info` gives handlers.
            request.extensions_mut().insert(ConnectInfo(remote));
            let router = router.clone();
            async move {
                let response = router.oneshot(request).await?;
                Ok::<_, Infallible>(response.map(|body| Tracked {
                    body,
                    _in_flight: in_flight,
                }))
            }
        });
        let connection = self
            .builder
            .serve_connection_with_upgrades(TokioIo::new(io), service);
        let connection = self.watcher.watch(connection);
        tokio::select! {
            served = connection => {
                if let Err(error) = served {
                    tracing::debug!(%error, "connection ended with an error");
                }
            }
            () = activity.expired() => {
                tracing::debug!(%remote, "connection closed: request head too slow, or idle");
            }
        }
    }
}

/// Where a connection stands, for the watchdog.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for a request head to complete since then: the first one (from the
    /// accept) or the next one (from its first byte).
    Head(Instant),
    /// Requests being handled or their responses sent; bytes last moved then.
    Busy(usize, Instant),
    /// Kept alive with nothing in flight since then.
    Idle(Instant),
}

struct Activity {
    phase: Mutex<Phase>,
    changed: Notify,
    limits: Limits,
}

impl Activity {
    fn new(limits: Limits) -> Activity {
        Activity {
            phase: Mutex::new(Phase::Head(Instant::now())),
            changed: Notify::new(),
            limits,
        }
    }

    /// Moves to the phase `next` gives, waking the watchdog.
    fn update(&self, next: impl FnOnce(Phase) -> Phase) {
        let mut phase = self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        *phase = next(*phase);
        self.changed.notify_one();
    }

    /// Bytes arrived: on an idle connection, that is the start of the next request;
    /// on a busy one, progress.
    fn bytes_read(&self) {
        let idle = matches!(
            *self.phase.lock().unwrap_or_else(PoisonError::into_inner),
            Phase::Idle(_)
        );
        if idle {
            self.update(|phase| match phase {
                Phase::Idle(_) => Phase::Head(Instant::now()),
                other => other,
            });
        } else {
            self.moved();
        }
    }

    /// Bytes moved on a busy connection. Its deadline only moves later, so the
    /// watchdog need not be woken: it finds the new deadline when it wakes.
    fn moved(&self) {
        let mut phase = self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        if let Phase::Busy(n, _) = *phase {
            *phase = Phase::Busy(n, Instant::now());
        }
    }

    fn deadline(&self) -> Option<Instant> {
        match *self.phase.lock().unwrap_or_else(PoisonError::into_inner) {
            Phase::Head(since) => Some(since + self.limits.header_read),
            Phase::Idle(since) => Some(since + self.limits.idle),
            Phase::Busy(_, since) => Some(since + self.limits.stall),
        }
    }

    /// Completes when the connection has passed its deadline.
    async fn expired(&self) {
        loop {
            match self.deadline() {
                Some(deadline) if deadline <= Instant::now() => return,
                Some(deadline) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(deadline) => {}
                        () = self.changed.notified() => {}
                    }
                }
                None => self.changed.notified().await,
            }
        }
    }
}

/// One request, from its head to the end of its response (or the response dropped).
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: &Arc<Activity>) -> InFlight {
        activity.update(|phase| match phase {
            Phase::Busy(n, _) => Phase::Busy(n + 1, Instant::now()),
            Phase::Head(_) | Phase::Idle(_) => Phase::Busy(1, Instant::now()),
        });
        InFlight(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.update(|phase| match phase {
            Phase::Busy(n, _) if n > 1 => Phase::Busy(n - 1, Instant::now()),
            _ => Phase::Idle(Instant::now()),
        });
    }
}

/// A response body that ends its request's time in flight when sent or dropped.
struct Tracked {
    body: Body,
    _in_flight: InFlight,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The connection's byte stream, telling `Activity` when bytes arrive.
struct Watched<IO> {
    io: IO,
    activity: Arc<Activity>,
}

impl<IO> Watched<IO> {
    fn new(io: IO, activity: Arc<Activity>) -> Self {
        Watched { io, activity }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Watched<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.bytes_read();
        }
        polled
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Watched<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.moved();
        }
        polled
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.moved();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(header_read: Duration) -> Limits {
        Limits {
            header_read,
            idle: Duration::from_secs(60),
            stall: Duration::from_secs(40),
            max_connections: 1,
        }
    }

    #[tokio::test]
    async fn a_request_in_flight_waits_for_bytes_to_move_and_idleness_counts_from_its_end() {
        let activity = Arc::new(Activity::new(limits(Duration::from_secs(10))));
        let head = activity.deadline().unwrap();
        assert!(
            head <= Instant::now() + Duration::from_secs(10),
            "the first head"
        );
        let request = InFlight::start(&activity);
        let second = InFlight::start(&activity);
        let stalled = |activity: &Activity| {
            let deadline = activity.deadline().unwrap();
            deadline > Instant::now() + Duration::from_secs(30)
                && deadline <= Instant::now() + Duration::from_secs(40)
        };
        activity.bytes_read();
        assert!(stalled(&activity), "a body being read is no head");
        drop(request);
        assert!(stalled(&activity), "one request is still in flight");
        drop(second);
        let idle = activity.deadline().unwrap();
        assert!(
            idle > Instant::now() + Duration::from_secs(50),
            "the idle timeout"
        );
        activity.bytes_read();
        let next = activity.deadline().unwrap();
        assert!(
            next <= Instant::now() + Duration::from_secs(10),
            "the next request's first byte starts its head's clock"
        );
    }

    #[tokio::test]
    async fn a_slow_head_expires() {
        let activity = Activity::new(limits(Duration::from_millis(20)));
        tokio::time::timeout(Duration::from_secs(10), activity.expired())
            .await
            .expect("expired");
    }
}
