//! The trusted keys of `spec.verify`: OpenSSH ALLOWED SIGNERS lines (`man ssh-keygen`) and
//! authorized_keys lines, read the way `ssh-keygen -Y verify` reads them, so a line means here
//! what it means to OpenSSH: principals are a pattern list, `namespaces` restricts what the
//! key may sign, `valid-after`/`valid-before` bound when, `cert-authority` is refused (no
//! certificate support), and an unknown option makes the line unusable rather than ignored.

use std::fmt;

use ssh_key::PublicKey;

/// Secret key holding ALLOWED SIGNERS lines.
pub const ALLOWED_SIGNERS: &str = "allowed_signers";
/// Secret key holding authorized_keys lines: each key is trusted for any committer.
pub const AUTHORIZED_KEYS: &str = "authorized_keys";

/// Where a line came from: the Secret key and the 1-based line number, printed `key:line`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub secret_key: String,
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.secret_key, self.line)
    }
}

/// One usable line.
#[derive(Clone, Debug)]
pub struct AllowedSigner {
    pub origin: Origin,
    /// Principals pattern list (`*`, `?`, `!negation`); `None` (authorized_keys) is anyone.
    pub principals: Option<String>,
    /// `namespaces="..."` pattern list; `None` allows every namespace.
    pub namespaces: Option<String>,
    /// `valid-after`, Unix seconds.
    pub valid_after: Option<i64>,
    /// `valid-before` (or authorized_keys' `expiry-time`), Unix seconds.
    pub valid_before: Option<i64>,
    pub key: PublicKey,
}

/// Why a line is not used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LineError {
    #[error("no SSH public key found")]
    NoKey,
    #[error(
        "no principals: an allowed_signers line is `principals [options] key` (authorized_keys trusts a key for any committer)"
    )]
    NoPrincipals,
    #[error("the public key cannot be read: {0}")]
    BadKey(String),
    #[error(
        "cert-authority entries are not supported (SSH certificates are not verified); list the signers' own public keys instead"
    )]
    CertAuthority,
    #[error("unknown option {0:?}")]
    UnknownOption(String),
    #[error("option {0} is given twice")]
    Repeated(&'static str),
    #[error("option {0} needs a double-quoted value (name=\"value\")")]
    Unquoted(String),
    #[error("option {0} has no closing double quote")]
    Unterminated(String),
    #[error("{option}={value:?} is not a time: use YYYYMMDD[HHMM[SS]], with a Z suffix for UTC")]
    BadTime { option: &'static str, value: String },
    #[error("valid-before is not after valid-after: the key is never valid")]
    NeverValid,
}

/// A line that is not used, with where it is.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{origin}: {error}")]
pub struct LineProblem {
    pub origin: Origin,
    pub error: LineError,
}

/// Reads the lines of one Secret key (`allowed_signers` or `authorized_keys`); comments and
/// blank lines are skipped. Returns the usable lines and the problems of the others.
pub fn parse(secret_key: &str, text: &str) -> (Vec<AllowedSigner>, Vec<LineProblem>) {
    let authorized = secret_key == AUTHORIZED_KEYS;
    let mut signers = Vec::new();
    let mut problems = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let origin = Origin {
            secret_key: secret_key.to_string(),
            line: n + 1,
        };
        let parsed = if authorized {
            parse_authorized_key(line)
        } else {
            parse_allowed_signer(line)
        };
        match parsed {
            Ok(mut signer) => {
                signer.origin = origin;
                signers.push(signer);
            }
            Err(error) => problems.push(LineProblem { origin, error }),
        }
    }
    (signers, problems)
}

/// `principals [options] keytype base64 [comment]`.
fn parse_allowed_signer(line: &str) -> Result<AllowedSigner, LineError> {
    let (principals, rest) = line.split_once([' ', '\t']).ok_or(LineError::NoKey)?;
    if is_key_type(principals) {
        return Err(LineError::NoPrincipals);
    }
    let mut signer = parse_options_and_key(rest.trim_start(), false)?;
    signer.principals = Some(principals.to_string());
    Ok(signer)
}

/// `[options] keytype base64 [comment]`.
fn parse_authorized_key(line: &str) -> Result<AllowedSigner, LineError> {
    parse_options_and_key(line, true)
}

fn parse_options_and_key(text: &str, authorized: bool) -> Result<AllowedSigner, LineError> {
    if let Some(key) = read_key(text)? {
        return Ok(signer(key, Options::default()));
    }
    let (options, rest) = split_options(text);
    if rest.trim().is_empty() {
        // An unclosed quote swallowed the key: say so rather than "no key".
        parse_options(options, authorized)?;
    }
    let key = read_key(rest.trim_start())?.ok_or(LineError::NoKey)?;
    Ok(signer(key, parse_options(options, authorized)?))
}

fn signer(key: PublicKey, options: Options) -> AllowedSigner {
    AllowedSigner {
        origin: Origin {
            secret_key: String::new(),
            line: 0,
        },
        principals: None,
        namespaces: options.namespaces,
        valid_after: options.valid_after,
        valid_before: options.valid_before,
        key,
    }
}

/// The key at the start of `text`, `None` when the first field is not a key type (then it
/// is options, as ssh-keygen decides).
fn read_key(text: &str) -> Result<Option<PublicKey>, LineError> {
    let mut fields = text.split_whitespace();
    let Some(kind) = fields.next() else {
        return Err(LineError::NoKey);
    };
    if !is_key_type(kind) {
        return Ok(None);
    }
    let data = fields.next().ok_or(LineError::NoKey)?;
    PublicKey::from_openssh(&format!("{kind} {data}"))
        .map(Some)
        .map_err(|e| LineError::BadKey(e.to_string()))
}

/// Whether `field` names a key type this crate reads (ssh-key maps any `name@domain` to a
/// custom algorithm, which would take an e-mail principal for a key type).
fn is_key_type(field: &str) -> bool {
    matches!(field.parse(), Ok(a) if !matches!(a, ssh_key::Algorithm::Other(_)))
}

/// Splits at the first blank outside double quotes: (options, the rest).
fn split_options(text: &str) -> (&str, &str) {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ' ' | '\t' if !quoted => return (&text[..i], &text[i..]),
            _ => {}
        }
    }
    (text, "")
}

#[derive(Default)]
struct Options {
    namespaces: Option<String>,
    valid_after: Option<i64>,
    valid_before: Option<i64>,
}

/// Comma-separated options (`name` or `name="value"`, names case-insensitive). In
/// authorized_keys, `expiry-time` bounds the key like `valid-before`, and the sshd login
/// restrictions (`from`, `command`, `restrict`, ...) mean nothing for a signature.
fn parse_options(mut text: &str, authorized: bool) -> Result<Options, LineError> {
    let mut options = Options::default();
    while !text.is_empty() {
        let end = text.find([',', '=']).unwrap_or(text.len());
        let name = text[..end].to_ascii_lowercase();
        text = &text[end..];
        let value = match text.strip_prefix('=') {
            Some(rest) => {
                let (value, rest) = dequote(rest, &name)?;
                text = rest;
                Some(value)
            }
            None => None,
        };
        apply_option(&mut options, &name, value, authorized)?;
        match text.strip_prefix(',') {
            Some(rest) => text = rest,
            None if text.is_empty() => {}
            None => return Err(LineError::UnknownOption(text.to_string())),
        }
    }
    if let (Some(after), Some(before)) = (options.valid_after, options.valid_before)
        && before <= after
    {
        return Err(LineError::NeverValid);
    }
    Ok(options)
}

fn apply_option(
    options: &mut Options,
    name: &str,
    value: Option<String>,
    authorized: bool,
) -> Result<(), LineError> {
    let value = || {
        value
            .clone()
            .ok_or_else(|| LineError::Unquoted(name.to_string()))
    };
    match (name, authorized) {
        ("cert-authority", _) => Err(LineError::CertAuthority),
        ("expiry-time", true) => {
            let at = time_option("expiry-time", value()?)?;
            set_once(&mut options.valid_before, "expiry-time", at)
        }
        (_, true) => Ok(()),
        ("namespaces", false) => set_once(&mut options.namespaces, "namespaces", value()?),
        ("valid-after", false) => {
            let at = time_option("valid-after", value()?)?;
            set_once(&mut options.valid_after, "valid-after", at)
        }
        ("valid-before", false) => {
            let at = time_option("valid-before", value()?)?;
            set_once(&mut options.valid_before, "valid-before", at)
        }
        _ => Err(LineError::UnknownOption(name.to_string())),
    }
}

fn set_once<T>(slot: &mut Option<T>, name: &'static str, value: T) -> Result<(), LineError> {
    if slot.is_some() {
        return Err(LineError::Repeated(name));
    }
    *slot = Some(value);
    Ok(())
}

fn time_option(option: &'static str, value: String) -> Result<i64, LineError> {
    parse_time(&value).ok_or(LineError::BadTime { option, value })
}

/// `"value"` at the start of `text` (a `\"` inside stands for `"`): (value, rest after the
/// closing quote).
fn dequote<'a>(text: &'a str, name: &str) -> Result<(String, &'a str), LineError> {
    let Some(body) = text.strip_prefix('"') else {
        return Err(LineError::Unquoted(name.to_string()));
    };
    let mut value = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &body[i + 1..])),
            '\\' if body[i + 1..].starts_with('"') => {
                value.push('"');
                chars.next();
            }
            c => value.push(c),
        }
    }
    Err(LineError::Unterminated(name.to_string()))
}

/// ssh-keygen's time format: `YYYYMMDD`, `YYYYMMDDHHMM` or `YYYYMMDDHHMMSS`, in the system
/// time zone unless suffixed with `Z` (or `UTC`). Unix seconds, `None` when not a time.
pub fn parse_time(text: &str) -> Option<i64> {
    let upper = text.to_ascii_uppercase();
    let (digits, utc) = if let Some(d) = upper.strip_suffix("UTC") {
        (d, true)
    } else if let Some(d) = upper.strip_suffix('Z') {
        (d, true)
    } else {
        (upper.as_str(), false)
    };
    if !matches!(digits.len(), 8 | 12 | 14) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number = |at: usize, len: usize| digits.get(at..at + len).and_then(|s| s.parse().ok());
    let small = |at: usize| number(at, 2).and_then(|n: i16| i8::try_from(n).ok());
    let datetime = jiff::civil::DateTime::new(
        number(0, 4)?,
        small(4)?,
        small(6)?,
        small(8).unwrap_or(0),
        small(10).unwrap_or(0),
        small(12).unwrap_or(0),
        0,
    )
    .ok()?;
    let zone = if utc {
        jiff::tz::TimeZone::UTC
    } else {
        jiff::tz::TimeZone::system()
    };
    Some(datetime.to_zoned(zone).ok()?.timestamp().as_second())
}

/// OpenSSH's `match_pattern_list`: whether `text` matches the comma-separated `patterns`
/// (`*` any run, `?` one character); a matching `!pattern` refuses whatever else matches.
pub fn matches_pattern_list(text: &str, patterns: &str) -> bool {
    let mut matched = false;
    for pattern in patterns.split(',') {
        let (negated, pattern) = match pattern.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, pattern),
        };
        if matches_pattern(text, pattern) {
            if negated {
                return false;
            }
            matched = true;
        }
    }
    matched
}

/// Wildcard match without recursion: a `*` backtracks to one place only, so a long e-mail
/// against a pattern with many stars stays linear-ish rather than exponential.
fn matches_pattern(text: &str, pattern: &str) -> bool {
    let (text, pattern): (Vec<char>, Vec<char>) =
        (text.chars().collect(), pattern.chars().collect());
    let (mut t, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p + 1, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                t += 1;
                p += 1;
            }
            _ => match star {
                Some((after_star, from)) => {
                    p = after_star;
                    t = from + 1;
                    star = Some((after_star, from + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
#[path = "allowed_signers_tests.rs"]
mod tests;
