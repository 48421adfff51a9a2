//! `-v` logging to stderr, every line passed through [`redact_text`]: caib's own messages and
//! its libraries' (HTTP clients, kube) may name URLs, and none may print a credential.

use std::io::{self, Write};

use catalog_api::redact::redact_text;

/// Sets up logging at `verbose` (`-v` info, `-vv` debug, `-vvv` trace); `CAIB_LOG` overrides.
pub fn init(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CAIB_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| RedactingStderr)
        .with_ansi(std::env::var_os("NO_COLOR").is_none())
        .init();
}

/// Stderr, redacted. The fmt layer writes each event with one `write_all` of the whole
/// formatted line, so a URL is never split across two writes.
struct RedactingStderr;

impl Write for RedactingStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        io::stderr().write_all(redact_text(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}
