//! A remote that accepts connections and never answers, for fetch timeouts.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A TCP listener on 127.0.0.1 that accepts every connection, reads nothing, writes
/// nothing and keeps it open until dropped: what a hung git server or a stuck proxy looks
/// like to a client. Any URL scheme pointed at it (`git://`, `http://`, `ssh://`) hangs
/// until the client's own timeout.
pub struct SilentRemote {
    addr: SocketAddr,
    connections: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl SilentRemote {
    /// Listens on a free port. Must be called inside a tokio runtime.
    pub async fn start() -> anyhow::Result<SilentRemote> {
        Self::serve(None).await
    }

    /// Like [`SilentRemote::start`], but every connection gets the start of an HTTP answer
    /// (`HTTP/1.1 200 OK` and a header line that never ends) one byte per `every`: a remote
    /// that is never silent long enough for an idle timeout to fire.
    pub async fn start_trickling(every: Duration) -> anyhow::Result<SilentRemote> {
        Self::serve(Some(every)).await
    }

    async fn serve(trickle: Option<Duration>) -> anyhow::Result<SilentRemote> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let connections = Arc::new(AtomicU64::new(0));
        let counter = connections.clone();
        let task = tokio::spawn(async move {
            // Held (open) until the task is aborted on drop.
            let mut held = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                held.spawn(hold(stream, trickle));
            }
        });
        Ok(SilentRemote {
            addr,
            connections,
            task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/<name>.git`.
    pub fn http_url(&self, name: &str) -> String {
        format!("http://{}/{name}.git", self.addr)
    }

    /// `git://127.0.0.1:PORT/<name>.git`.
    pub fn git_url(&self, name: &str) -> String {
        format!("git://{}/{name}.git", self.addr)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Keeps `stream` open: silent, or trickling an endless HTTP header every `trickle`.
async fn hold(mut stream: tokio::net::TcpStream, trickle: Option<Duration>) {
    use tokio::io::AsyncWriteExt as _;
    let Some(every) = trickle else {
        std::future::pending::<()>().await;
        return;
    };
    let head = b"HTTP/1.1 200 OK\r\nX-Trickle: ";
    for byte in head.iter().copied().chain(std::iter::repeat(b'a')) {
        if stream.write_all(&[byte]).await.is_err() {
            return;
        }
        tokio::time::sleep(every).await;
    }
}

impl Drop for SilentRemote {
    fn drop(&mut self) {
        self.task.abort();
    }
}
