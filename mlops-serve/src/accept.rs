//! The accept loop both transports share: accept connections until shut down, hand each to
//! hyper, then ask every connection to finish gracefully and wait for the last one.
//!
//! axum's and tonic's own servers are not used: axum's gives hyper no timer (so no header-read
//! or idle timeout), and tonic's adds layers per call the gRPC transport does not need.

use std::future::Future;
use std::pin::Pin;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A hyper connection that can be asked to finish the request it is on and close.
pub(crate) trait Graceful: Future<Output = Result<(), hyper::Error>> + Send {
    /// Asks the connection to stop after its requests in flight.
    fn graceful_shutdown(self: Pin<&mut Self>);
}

impl<I, B, S> Graceful for hyper::server::conn::http1::Connection<I, S>
where
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = B>,
    S::Error: Into<BoxError>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    B: hyper::body::Body + 'static,
    B::Error: Into<BoxError>,
    Self: Future<Output = Result<(), hyper::Error>> + Send,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        hyper::server::conn::http1::Connection::graceful_shutdown(self);
    }
}

#[cfg(feature = "grpc")]
impl<I, B, S, E> Graceful for hyper::server::conn::http2::Connection<I, S, E>
where
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = B>,
    S::Error: Into<BoxError>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    B: hyper::body::Body + 'static,
    B::Error: Into<BoxError>,
    E: hyper::rt::bounds::Http2ServerConnExec<S::Future, B>,
    Self: Future<Output = Result<(), hyper::Error>> + Send,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        hyper::server::conn::http2::Connection::graceful_shutdown(self);
    }
}

/// Serves every connection `listener` accepts with `connect` until `shutdown` resolves; then
/// stops accepting, asks every connection to finish gracefully (idle ones close at once), and
/// returns when all have.
pub(crate) async fn serve_connections<C>(
    listener: tokio::net::TcpListener,
    what: &'static str,
    mut connect: impl FnMut(tokio::net::TcpStream) -> C,
    shutdown: impl Future<Output = ()> + Send + 'static,
) where
    C: Graceful + 'static,
{
    // Connections watch `stop` (its receivers all dropped = shut down) and hold `done` until
    // they finish, so the loop knows when the last one has.
    let (stop, stopping) = tokio::sync::watch::channel(());
    let (done_tx, done) = tokio::sync::watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was accepted:
                    // back off briefly rather than spin, and keep serving.
                    tracing::warn!(error = %e, transport = what, "accepting a connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let connection = connect(stream);
        let stop = stop.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let mut asked_to_stop = false;
            loop {
                tokio::select! {
                    result = connection.as_mut() => {
                        if let Err(e) = result {
                            tracing::debug!(error = %e, transport = what, "connection ended with an error");
                        }
                        break;
                    }
                    () = stop.closed(), if !asked_to_stop => {
                        asked_to_stop = true;
                        connection.as_mut().graceful_shutdown();
                    }
                }
            }
            drop(done);
        });
    }
    drop(stopping);
    drop(done);
    drop(listener);
    done_tx.closed().await;
}
