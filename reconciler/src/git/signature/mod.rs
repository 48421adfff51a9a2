//! SSH signature verification (`gpg.format=ssh`) of commits and annotated tags: a commit's
//! `gpgsig` header, or the signature block appended to a tag's message, is an SSHSIG over the
//! object without it, in namespace `git`.
//!
//! Trust is what the Secret's `allowed_signers` lines say ([`allowed_signers`]), read as
//! `ssh-keygen -Y verify` reads them, with one choice made for git: the principal is the
//! committer's (tagger's) e-mail, so a key listed for `release@example.com` does not vouch for
//! a commit whose committer claims to be someone else. (`git verify-commit` accepts any
//! principal the key is listed for.) Validity times are checked against the committer
//! (tagger) time, as git passes it to ssh-keygen.

pub mod allowed_signers;

use std::collections::BTreeMap;

use git2::{Oid, Repository};
use ssh_key::{PublicKey, SshSig};

use allowed_signers::matches_pattern_list;
pub use allowed_signers::{ALLOWED_SIGNERS, AUTHORIZED_KEYS, AllowedSigner, LineProblem, Origin};

/// The signature namespace of git objects (`ssh-keygen -Y sign -n git`).
pub const NAMESPACE: &str = "git";

/// The usable lines of the verify Secret, and why the others are not used.
#[derive(Debug)]
pub struct TrustedKeys {
    pub signers: Vec<AllowedSigner>,
    pub problems: Vec<LineProblem>,
}

/// Why a Secret yields no trusted key. Messages follow "secret NS/NAME ".
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeysError {
    #[error(
        "has neither an `allowed_signers` nor an `authorized_keys` key (only those are read; it has: {})",
        .0.join(", ")
    )]
    NoKeyEntries(Vec<String>),
    #[error("key `{0}` is not UTF-8 text")]
    NotText(String),
    #[error("has no usable SSH public key: {}", .0.join("; "))]
    NoUsableKey(Vec<String>),
}

impl TrustedKeys {
    /// Reads the `allowed_signers` and `authorized_keys` keys of a Secret's data, and nothing
    /// else: any other key (a note, a private key put there by mistake) grants no trust.
    pub fn from_secret_data(data: &BTreeMap<String, Vec<u8>>) -> Result<TrustedKeys, KeysError> {
        let mut trusted = TrustedKeys {
            signers: Vec::new(),
            problems: Vec::new(),
        };
        let mut found = false;
        for key in [ALLOWED_SIGNERS, AUTHORIZED_KEYS] {
            let Some(bytes) = data.get(key) else {
                continue;
            };
            found = true;
            let text = std::str::from_utf8(bytes).map_err(|_| KeysError::NotText(key.into()))?;
            let (signers, problems) = allowed_signers::parse(key, text);
            trusted.signers.extend(signers);
            trusted.problems.extend(problems);
        }
        if !found {
            return Err(KeysError::NoKeyEntries(data.keys().cloned().collect()));
        }
        if trusted.signers.is_empty() {
            let problems = trusted.problems.iter().map(ToString::to_string).collect();
            return Err(KeysError::NoUsableKey(problems));
        }
        Ok(trusted)
    }
}

/// Why an object is not trusted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("{0} is not signed")]
    Unsigned(String),
    #[error("{0} is a lightweight tag: verify.mode Tag needs a signed annotated tag")]
    NotAnnotated(String),
    #[error("{what} has an unreadable signature: {message}")]
    Malformed { what: String, message: String },
    #[error("{what} is signed by {fingerprint}, {detail}")]
    Untrusted {
        what: String,
        fingerprint: String,
        detail: String,
    },
    #[error(
        "{what} has a signature that does not verify ({message}): it was changed after signing, or the signature is forged"
    )]
    Invalid { what: String, message: String },
}

/// What is verified: the signed bytes and signature of a commit or tag, and the identity
/// and time the allowed_signers options are checked against.
#[derive(Debug)]
pub struct SignedObject {
    /// `commit <sha>` or `tag <name>`, for messages.
    pub what: String,
    pub payload: Vec<u8>,
    pub signature: Vec<u8>,
    /// `committer` or `tagger`.
    pub role: &'static str,
    /// The committer's (tagger's) e-mail: the principal.
    pub email: String,
    /// The committer (tagger) time, Unix seconds.
    pub time: i64,
}

/// A trusted signature: the signer's fingerprint and the line that trusts it.
#[derive(Debug, PartialEq, Eq)]
pub struct Verified {
    pub fingerprint: String,
    pub origin: Origin,
}

/// The signed parts of commit `sha`.
pub fn commit(repo: &Repository, sha: &str) -> Result<SignedObject, SignatureError> {
    let what = format!("commit {sha}");
    let malformed = |message: &str| SignatureError::Malformed {
        what: what.clone(),
        message: message.into(),
    };
    let oid = Oid::from_str(sha).map_err(|e| malformed(e.message()))?;
    let commit = repo.find_commit(oid).map_err(|e| malformed(e.message()))?;
    let (signature, payload) = repo
        .extract_signature(&oid, None)
        .map_err(|_| SignatureError::Unsigned(what.clone()))?;
    let committer = commit.committer();
    Ok(SignedObject {
        payload: payload.to_vec(),
        signature: signature.to_vec(),
        role: "committer",
        email: String::from_utf8_lossy(committer.email_bytes()).into_owned(),
        time: committer.when().seconds(),
        what,
    })
}

/// The signed parts of annotated tag `name`, which must point at `commit` (the synced one).
pub fn annotated_tag(
    repo: &Repository,
    name: &str,
    commit: &str,
) -> Result<SignedObject, SignatureError> {
    let what = format!("tag {name}");
    let malformed = |message: String| SignatureError::Malformed {
        what: what.clone(),
        message,
    };
    let object = repo
        .revparse_single(&format!("refs/tags/{name}"))
        .map_err(|e| malformed(e.message().into()))?;
    let Some(tag) = object.as_tag() else {
        return Err(SignatureError::NotAnnotated(what));
    };
    let target = object
        .peel_to_commit()
        .map_err(|e| malformed(e.message().into()))?;
    if target.id().to_string() != commit {
        return Err(malformed(format!(
            "it points at {}, not at the synced commit {commit}",
            target.id()
        )));
    }
    let odb = repo.odb().map_err(|e| malformed(e.message().into()))?;
    let raw = odb
        .read(tag.id())
        .map_err(|e| malformed(e.message().into()))?;
    let data = raw.data();
    let Some(start) = signature_start(data) else {
        return Err(SignatureError::Unsigned(what));
    };
    let (email, time) = match tag.tagger() {
        Some(t) => (
            String::from_utf8_lossy(t.email_bytes()).into_owned(),
            t.when().seconds(),
        ),
        None => (String::new(), jiff::Timestamp::now().as_second()),
    };
    Ok(SignedObject {
        payload: data[..start].to_vec(),
        signature: data[start..].to_vec(),
        role: "tagger",
        email,
        time,
        what,
    })
}

/// Start of the last line opening a signature block (git's `parse_signed_buffer`): a tag's
/// signature is appended to its message.
fn signature_start(data: &[u8]) -> Option<usize> {
    const MARKERS: [&[u8]; 4] = [
        b"-----BEGIN PGP SIGNATURE-----",
        b"-----BEGIN PGP MESSAGE-----",
        b"-----BEGIN SIGNED MESSAGE-----",
        b"-----BEGIN SSH SIGNATURE-----",
    ];
    let mut start = None;
    let mut at = 0;
    for line in data.split_inclusive(|b| *b == b'\n') {
        if MARKERS.iter().any(|m| line.starts_with(m)) {
            start = Some(at);
        }
        at += line.len();
    }
    start
}

/// Checks the signature (first: a tampered object is refused whoever signed it), then that a
/// line of `trusted` lists the signing key and allows it for this object.
pub fn verify(object: &SignedObject, trusted: &TrustedKeys) -> Result<Verified, SignatureError> {
    let sig = read_signature(object)?;
    let signer = PublicKey::from(sig.public_key().clone());
    let fingerprint = signer.fingerprint(Default::default()).to_string();
    signer
        .verify(NAMESPACE, &object.payload, &sig)
        .map_err(|e| SignatureError::Invalid {
            what: object.what.clone(),
            message: e.to_string(),
        })?;
    let mut refused = Vec::new();
    for line in trusted
        .signers
        .iter()
        .filter(|s| s.key.key_data() == sig.public_key())
    {
        match refusal(line, object) {
            None => {
                return Ok(Verified {
                    fingerprint,
                    origin: line.origin.clone(),
                });
            }
            Some(why) => refused.push(format!("{}: {why}", line.origin)),
        }
    }
    Err(SignatureError::Untrusted {
        what: object.what.clone(),
        fingerprint,
        detail: untrusted_detail(&refused, &trusted.problems),
    })
}

fn read_signature(object: &SignedObject) -> Result<SshSig, SignatureError> {
    let malformed = |message: String| SignatureError::Malformed {
        what: object.what.clone(),
        message,
    };
    let text = std::str::from_utf8(&object.signature).map_err(|e| malformed(e.to_string()))?;
    if !text.contains("BEGIN SSH SIGNATURE") {
        return Err(malformed(
            "not an SSH signature (only gpg.format=ssh signatures are supported)".into(),
        ));
    }
    let sig = SshSig::from_pem(text.trim()).map_err(|e| malformed(e.to_string()))?;
    if sig.namespace() != NAMESPACE {
        return Err(SignatureError::Invalid {
            what: object.what.clone(),
            message: format!(
                "it is signed in namespace {:?}, git signatures are in {NAMESPACE:?}",
                sig.namespace()
            ),
        });
    }
    Ok(sig)
}

/// Why a line listing the signer's key does not allow this object, `None` when it does.
fn refusal(line: &AllowedSigner, object: &SignedObject) -> Option<String> {
    let role = object.role;
    if let Some(principals) = &line.principals
        && !matches_pattern_list(&object.email, principals)
    {
        return Some(format!(
            "the {role} e-mail {:?} does not match its principals {principals:?}",
            object.email
        ));
    }
    if let Some(namespaces) = &line.namespaces
        && !matches_pattern_list(NAMESPACE, namespaces)
    {
        return Some(format!(
            "the key may sign only in namespaces {namespaces:?}, and git signs in {NAMESPACE:?}"
        ));
    }
    let time = show_time(object.time);
    if let Some(after) = line.valid_after
        && object.time < after
    {
        return Some(format!(
            "the key is valid only from {} (valid-after) and the {role} time is {time}",
            show_time(after)
        ));
    }
    if let Some(before) = line.valid_before
        && object.time > before
    {
        return Some(format!(
            "the key is valid only until {} (valid-before) and the {role} time is {time}",
            show_time(before)
        ));
    }
    None
}

fn untrusted_detail(refused: &[String], problems: &[LineProblem]) -> String {
    let mut detail = if refused.is_empty() {
        "which no line of allowed_signers or authorized_keys lists".to_string()
    } else {
        format!("but no line allows it: {}", refused.join("; "))
    };
    if !problems.is_empty() {
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        detail.push_str(&format!(" (lines not used: {})", lines.join("; ")));
    }
    detail
}

fn show_time(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| seconds.to_string())
}

#[cfg(test)]
mod tests;
