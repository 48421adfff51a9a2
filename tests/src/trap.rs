//! A hostile HTTP peer on loopback that asks every client for credentials and keeps what it
//! is sent: the stand-in for a registry (or token realm) a tenant or catalog author points the
//! reconciler at. Tests assert it never receives a credential.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as the trap saw it: the request line and the headers, lowercased names.
#[derive(Clone, Debug)]
pub struct Seen {
    pub request_line: String,
    pub headers: Vec<(String, String)>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Answers every request the same way (by default `401` with a challenge) and records it.
pub struct CredentialTrap {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl CredentialTrap {
    /// A trap that asks for HTTP Basic credentials, the easiest to steal.
    pub fn basic() -> CredentialTrap {
        CredentialTrap::with_challenge("Basic realm=\"registry\"".into())
    }

    /// A trap answering `401` with `challenge` (e.g. a Bearer challenge naming a realm
    /// elsewhere).
    pub fn with_challenge(challenge: String) -> CredentialTrap {
        let body = r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#;
        CredentialTrap::answering(format!(
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: {challenge}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ))
    }

    /// A registry that serves every manifest anonymously (a HEAD answers 200 with a digest):
    /// a client holding credentials has no reason to send them.
    pub fn anonymous_registry() -> CredentialTrap {
        CredentialTrap::answering(format!(
            "HTTP/1.1 200 OK\r\nDocker-Content-Digest: sha256:{}\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: 0\r\n\r\n",
            "0".repeat(64)
        ))
    }

    /// A trap sending `answer` (status line, headers and body) to every request.
    pub fn answering(answer: String) -> CredentialTrap {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the trap");
        let port = listener.local_addr().expect("trap address").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let record = record.clone();
                let answer = answer.clone();
                std::thread::spawn(move || serve(stream, &answer, &record));
            }
        });
        CredentialTrap { port, seen }
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Every request received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The `Authorization` headers received so far (what a thief keeps).
    pub fn credentials(&self) -> Vec<String> {
        self.seen()
            .iter()
            .filter_map(|s| s.header("authorization").map(str::to_string))
            .collect()
    }
}

fn serve(stream: TcpStream, answer: &str, seen: &Mutex<Vec<Seen>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
            }
        }
        seen.lock().unwrap_or_else(|e| e.into_inner()).push(Seen {
            request_line: request_line.trim_end().to_string(),
            headers,
        });
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}
