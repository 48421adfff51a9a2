//! A remote that redirects every request elsewhere, for checking where credentials go.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An HTTP server on 127.0.0.1 that answers every request with `301 Moved Permanently` to
/// the same path under another base URL: what a renamed or moved repository looks like. A
/// `target` on another host name (`localhost` for a server on 127.0.0.1) is off-site for git.
pub struct RedirectingRemote {
    addr: SocketAddr,
    requests: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl RedirectingRemote {
    /// Redirects to `target` (`http://host:port`, no trailing slash). Must be called inside a
    /// tokio runtime.
    pub async fn start(target: String) -> anyhow::Result<RedirectingRemote> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let requests = Arc::new(AtomicU64::new(0));
        let counter = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let target = target.clone();
                tokio::spawn(async move {
                    let mut head = vec![0u8; 8192];
                    let n = stream.read(&mut head).await.unwrap_or(0);
                    let request = String::from_utf8_lossy(&head[..n]);
                    let path = request.split_whitespace().nth(1).unwrap_or("/");
                    let response = format!(
                        "HTTP/1.1 301 Moved Permanently\r\nLocation: {target}{path}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                });
            }
        });
        Ok(RedirectingRemote {
            addr,
            requests,
            task,
        })
    }

    /// `http://127.0.0.1:PORT`: every path under it redirects (a forge API base URL).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/<name>.git`.
    pub fn url(&self, name: &str) -> String {
        format!("http://{}/{name}.git", self.addr)
    }

    /// Requests answered so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for RedirectingRemote {
    fn drop(&mut self) {
        self.task.abort();
    }
}
