use super::*;
use crate::test_support::run;

fn secret(entries: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
    entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect()
}

fn trusted(allowed_signers: &str) -> TrustedKeys {
    TrustedKeys::from_secret_data(&secret(&[(ALLOWED_SIGNERS, allowed_signers)])).unwrap()
}

/// A repository and two SSH keys, `good` and `bad`; commits are by `t@t` (see test_support).
struct Fixture {
    _tmp: tempfile::TempDir,
    dir: std::path::PathBuf,
    good_pub: String,
}

impl Fixture {
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        for name in ["good", "bad"] {
            run(
                &dir,
                "ssh-keygen",
                &["-q", "-t", "ed25519", "-N", "", "-f", name],
            );
        }
        let good_pub = std::fs::read_to_string(dir.join("good.pub")).unwrap();
        run(&dir, "git", &["init", "-q", "-b", "main", "repo"]);
        Fixture {
            _tmp: tmp,
            dir,
            good_pub: good_pub.trim().to_string(),
        }
    }

    fn repo_dir(&self) -> std::path::PathBuf {
        self.dir.join("repo")
    }

    fn git(&self, key: Option<&str>, args: &[&str]) -> String {
        let key_opt = key.map(|k| format!("user.signingkey={}", self.dir.join(k).display()));
        let mut all: Vec<&str> = Vec::new();
        if let Some(k) = &key_opt {
            all.extend(["-c", "gpg.format=ssh", "-c", k]);
        }
        all.extend(args);
        run(&self.repo_dir(), "git", &all)
    }

    fn commit(&self, key: Option<&str>, message: &str) -> String {
        let mut args = vec!["commit", "-q", "--allow-empty", "-m", message];
        if key.is_some() {
            args.push("-S");
        }
        self.git(key, &args);
        self.git(None, &["rev-parse", "HEAD"])
    }

    fn repo(&self) -> Repository {
        Repository::open(self.repo_dir()).unwrap()
    }
}

fn verify_commit(
    repo: &Repository,
    sha: &str,
    keys: &TrustedKeys,
) -> Result<Verified, SignatureError> {
    verify(&commit(repo, sha)?, keys)
}

#[test]
fn a_commit_verifies_only_when_a_line_lists_its_key_for_its_committer() {
    let f = Fixture::new();
    let unsigned = f.commit(None, "unsigned");
    let good = f.commit(Some("good"), "good");
    let bad = f.commit(Some("bad"), "bad");
    let repo = f.repo();
    let keys = trusted(&format!("# release keys\nt@t {}\n", f.good_pub));
    let verified = verify_commit(&repo, &good, &keys).unwrap();
    assert!(verified.fingerprint.starts_with("SHA256:"));
    assert_eq!(verified.origin.to_string(), "allowed_signers:2");
    assert_eq!(
        verify_commit(&repo, &unsigned, &keys),
        Err(SignatureError::Unsigned(format!("commit {unsigned}")))
    );
    let untrusted = verify_commit(&repo, &bad, &keys).unwrap_err();
    assert!(
        untrusted
            .to_string()
            .contains("which no line of allowed_signers"),
        "{untrusted}"
    );
    let other_committer = trusted(&format!("*@example.com,t@* {}\n", f.good_pub));
    assert!(verify_commit(&repo, &good, &other_committer).is_ok());
    let other_committer = trusted(&format!("release@example.com {}\n", f.good_pub));
    let refused = verify_commit(&repo, &good, &other_committer).unwrap_err();
    assert_eq!(
        refused.to_string(),
        format!(
            "commit {good} is signed by {}, but no line allows it: allowed_signers:1: the committer e-mail \"t@t\" does not match its principals \"release@example.com\"",
            verified.fingerprint
        )
    );
}

#[test]
fn namespaces_and_validity_times_restrict_a_key() {
    let f = Fixture::new();
    let good = f.commit(Some("good"), "good");
    let repo = f.repo();
    let time = repo
        .find_commit(Oid::from_str(&good).unwrap())
        .unwrap()
        .committer()
        .when()
        .seconds();
    let day = |offset: i64| {
        jiff::Timestamp::from_second(time + offset * 86_400)
            .unwrap()
            .strftime("%Y%m%dZ")
            .to_string()
    };
    let refused = |options: String| {
        let keys = trusted(&format!("* {options} {}\n", f.good_pub));
        verify_commit(&repo, &good, &keys)
            .err()
            .map(|e| e.to_string())
    };
    assert!(
        refused("namespaces=\"file\"".into())
            .unwrap()
            .contains("may sign only in namespaces \"file\"")
    );
    assert_eq!(refused("namespaces=\"file,g?t\"".into()), None);
    let expired = refused(format!("valid-before=\"{}\"", day(-1))).unwrap();
    assert!(
        expired.contains("(valid-before) and the committer time is"),
        "{expired}"
    );
    let early = refused(format!("valid-after=\"{}\"", day(1))).unwrap();
    assert!(early.contains("(valid-after)"), "{early}");
    assert_eq!(
        refused(format!(
            "valid-after=\"{}\",valid-before=\"{}\"",
            day(-1),
            day(1)
        )),
        None
    );
}

#[test]
fn a_changed_commit_keeping_its_signature_is_invalid() {
    let f = Fixture::new();
    let good = f.commit(Some("good"), "good");
    let raw = f.git(None, &["cat-file", "commit", &good]);
    assert!(
        raw.contains("gpgsig "),
        "premise: the commit carries its signature"
    );
    let edited = raw.replace("\n\ngood", "\n\nevil");
    let path = f.dir.join("edited");
    std::fs::write(&path, format!("{edited}\n")).unwrap();
    let tampered = f.git(
        None,
        &["hash-object", "-t", "commit", "-w", path.to_str().unwrap()],
    );
    assert_ne!(tampered, good);
    let keys = trusted(&format!("t@t {}\n", f.good_pub));
    let error = verify_commit(&f.repo(), &tampered, &keys).unwrap_err();
    assert!(matches!(error, SignatureError::Invalid { .. }), "{error}");
}

#[test]
fn an_annotated_tag_carries_its_own_signature() {
    let f = Fixture::new();
    let head = f.commit(None, "unsigned");
    f.git(Some("good"), &["tag", "-s", "-m", "release 1", "v1"]);
    f.git(Some("bad"), &["tag", "-s", "-m", "release 2", "v2"]);
    f.git(None, &["tag", "light"]);
    let repo = f.repo();
    let keys = trusted(&format!("t@t {}\n", f.good_pub));
    let v1 = annotated_tag(&repo, "v1", &head).unwrap();
    assert_eq!((v1.role, v1.email.as_str()), ("tagger", "t@t"));
    assert!(verify(&v1, &keys).is_ok());
    let v2 = verify(&annotated_tag(&repo, "v2", &head).unwrap(), &keys).unwrap_err();
    assert!(matches!(v2, SignatureError::Untrusted { .. }), "{v2}");
    assert_eq!(
        annotated_tag(&repo, "light", &head).unwrap_err(),
        SignatureError::NotAnnotated("tag light".into())
    );
    let elsewhere = annotated_tag(&repo, "v1", &"0".repeat(40)).unwrap_err();
    assert!(
        elsewhere.to_string().contains("not at the synced commit"),
        "{elsewhere}"
    );
}

#[test]
fn only_allowed_signers_and_authorized_keys_are_read() {
    let f = Fixture::new();
    let line = format!("t@t {}", f.good_pub);
    let other_keys = TrustedKeys::from_secret_data(&secret(&[("extra", &line), ("notes", "x")]));
    assert_eq!(
        other_keys.unwrap_err(),
        KeysError::NoKeyEntries(vec!["extra".into(), "notes".into()])
    );
    let ca = TrustedKeys::from_secret_data(&secret(&[(
        ALLOWED_SIGNERS,
        &format!("* cert-authority {}", f.good_pub),
    )]))
    .unwrap_err();
    assert!(
        ca.to_string().starts_with("has no usable SSH public key: allowed_signers:1: cert-authority entries are not supported"),
        "{ca}"
    );
    let both = TrustedKeys::from_secret_data(&secret(&[
        (AUTHORIZED_KEYS, f.good_pub.as_str()),
        (ALLOWED_SIGNERS, &line),
        ("extra", "* ssh-ed25519 AAAA"),
    ]))
    .unwrap();
    assert_eq!(both.signers.len(), 2);
    assert!(both.problems.is_empty(), "{:?}", both.problems);
}
