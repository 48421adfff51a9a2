//! Ports for the servers a test starts (git daemons, sshd, HTTP remotes, the webhook).

use std::net::TcpListener as StdListener;
use std::time::{Duration, Instant};

use anyhow::bail;

/// A free TCP port on 127.0.0.1 for a server the test starts next (bound and released).
///
/// Picked below the kernel's ephemeral range: `bind(0)` and every outgoing connection take
/// ports from that range, so a port found free there could be taken again by another test
/// before the server binds it ("Address already in use"). Below it, only another
/// `free_port` could take it, and this process never hands out the same port twice.
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher, RandomState};
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (low, high) = (10_000u16, ephemeral_start.max(10_001));
    let random = RandomState::new();
    let mut handed_out = HANDED_OUT.lock().unwrap();
    for attempt in 0u32..1000 {
        let port = low + (random.hash_one(attempt) % u64::from(high - low)) as u16;
        if !handed_out.contains(&port) && StdListener::bind(("127.0.0.1", port)).is_ok() {
            handed_out.push(port);
            return port;
        }
    }
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

pub(crate) fn wait_for_port(port: u16, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    bail!("nothing accepted connections on 127.0.0.1:{port} within {timeout:?}")
}
