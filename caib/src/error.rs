//! Errors that reach the user, each mapped to the exit codes the README lists so scripts can tell
//! "not found" from "conflict" from "timed out".

use std::process::ExitCode;

use catalog_api::redact::redact_text;

/// Process exit codes.
pub mod exit {
    /// Any other error; also "differences found" for `catalog diff`.
    pub const ERROR: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const AUTH: u8 = 3;
    pub const NOT_FOUND: u8 = 4;
    pub const CONFLICT: u8 = 5;
    pub const TIMEOUT: u8 = 6;
}

/// A failure with the exit code it maps to. The message is complete: it says what failed and,
/// where we know, what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum CaibError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Auth(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Timeout(String),
    /// Printed already (validation errors, diffs); only the exit code is left to give.
    #[error("")]
    Silent(u8),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl CaibError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CaibError::Usage(_) => exit::USAGE,
            CaibError::Auth(_) => exit::AUTH,
            CaibError::NotFound(_) => exit::NOT_FOUND,
            CaibError::Conflict(_) => exit::CONFLICT,
            CaibError::Timeout(_) => exit::TIMEOUT,
            CaibError::Silent(code) => *code,
            CaibError::Other(_) => exit::ERROR,
        }
    }

    /// Print the error the way the user should see it and return the exit code. Every URL
    /// in it is redacted here once more: messages quote libraries' errors, which quote URLs.
    pub fn report(&self) -> ExitCode {
        let text = match self {
            CaibError::Silent(_) => return ExitCode::from(self.exit_code()),
            CaibError::Other(e) => format!("{e:#}"),
            other => other.to_string(),
        };
        eprintln!("Error: {}", redact_text(&text));
        ExitCode::from(self.exit_code())
    }
}

pub type Result<T, E = CaibError> = std::result::Result<T, E>;
