//! Signed commits and tags end to end (the real reconciler, the emulator, real git and
//! ssh-keygen signatures): what an allowed_signers line allows (principals matched against the
//! committer e-mail, `namespaces`, validity times against the commit time, `cert-authority`
//! refused), which keys of the Secret are read, tampered commits, `mode: Tag`, and no rollback
//! of a verified source without an approval naming the full commit id.

use catalog_e2e::suite::sync as sync_common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use catalog_api::labels::{APPROVE_REVISION, RECONCILE_REQUESTED_AT};
use catalog_e2e::git::{AUTHOR_EMAIL, BareRepo, Change, generate_ssh_key};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};
use sync_common::*;

/// A template repository, a trusted and an untrusted SSH key, an emulator and a reconciler.
struct Signed {
    env: Env,
    repo: BareRepo,
    _keys: tempfile::TempDir,
    /// Private key whose public half the tests list in the Secret `signers`.
    key: PathBuf,
    /// Its public key line.
    public: String,
    /// A key no Secret lists.
    other: PathBuf,
}

impl Signed {
    async fn start() -> Signed {
        let keys = tempfile::tempdir().unwrap();
        let (key, public) = generate_ssh_key(keys.path(), "trusted").unwrap();
        let (other, _) = generate_ssh_key(keys.path(), "other").unwrap();
        let mut env = Env::start().await;
        env.spawn_reconciler(&[]);
        Signed {
            env,
            repo: BareRepo::from_template("catalog").unwrap(),
            _keys: keys,
            key,
            public,
            other,
        }
    }

    /// Creates the Secret `signers` with `data`, then source `name` verifying against it.
    async fn source(&self, name: &str, data: &[(&str, &str)], spec: Value) {
        if self
            .env
            .api::<Secret>(NS)
            .get_opt("signers")
            .await
            .unwrap()
            .is_none()
        {
            self.env.create_secret("signers", data).await;
        }
        let verify = json!({"verify": {"secretRef": {"name": "signers"}}});
        let spec = catalog_e2e::fixture::merged(verify, spec);
        self.env
            .create_source(name, &self.repo.file_url(), spec)
            .await;
    }

    /// Sets keys of the Secret `signers` (others stay), then asks source `name` to sync.
    async fn set_signers(&self, name: &str, data: &[(&str, &str)]) {
        let data: BTreeMap<&str, &str> = data.iter().copied().collect();
        self.env
            .api::<Secret>(NS)
            .patch(
                "signers",
                &PatchParams::default(),
                &Patch::Merge(json!({"stringData": data})),
            )
            .await
            .unwrap();
        static CHANGES: AtomicUsize = AtomicUsize::new(0);
        let n = CHANGES.fetch_add(1, Ordering::SeqCst);
        self.sync(name, &format!("signers-changed-{n}")).await;
    }

    async fn sync(&self, name: &str, why: &str) {
        let annotations = json!({"metadata": {"annotations": {RECONCILE_REQUESTED_AT: why}}});
        self.env.patch_source(name, annotations).await;
    }

    /// An allowed_signers line for the trusted key.
    fn line(&self, principals: &str, options: &str) -> String {
        format!("{principals} {options} {}\n", self.public)
    }

    /// A commit on main signed by the trusted key adding entry `name`.
    fn commit_adding(&self, name: &str) -> String {
        let change = Change::write(
            format!("environments/dev/{name}.yaml"),
            entry_yaml(name, &format!("quay.io/acme/{name}:1")),
        );
        let message = format!("add {name}");
        self.repo
            .commit_signed("main", &message, &[change], &self.key)
            .unwrap()
    }

    /// Waits until source `name`'s SourceVerified has `reason` and a message containing
    /// `text`; returns the message.
    async fn verified(&self, name: &str, reason: &str, text: &str) -> String {
        let what = format!("SourceVerified {reason} with {text:?} on {name}");
        let source = self
            .env
            .wait_source(name, &what, |s| {
                condition(s, "SourceVerified").is_some_and(|c| c.1 == reason && c.2.contains(text))
            })
            .await;
        condition(&source, "SourceVerified").unwrap().2
    }

    /// Waits until Ready's message contains `text`; returns (reason, message).
    async fn ready_with(&self, name: &str, text: &str) -> (String, String) {
        let what = format!("Ready message with {text:?} on {name}");
        let source = self
            .env
            .wait_source(name, &what, |s| {
                ready(s).is_some_and(|c| c.2.contains(text))
            })
            .await;
        let (_, reason, message) = ready(&source).unwrap();
        (reason, message)
    }

    /// Name → resourceVersion of every CatalogImage: equal snapshots mean nothing was written.
    async fn snapshot(&self) -> BTreeMap<String, String> {
        let images = self.env.images().list(&Default::default()).await.unwrap();
        images
            .items
            .into_iter()
            .map(|i| {
                (
                    i.metadata.name.unwrap(),
                    i.metadata.resource_version.unwrap(),
                )
            })
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn only_commits_signed_by_a_trusted_key_are_applied() {
    let t = Signed::start().await;
    let signers = t.line(AUTHOR_EMAIL, "");
    t.source(
        "dev",
        &[("allowed_signers", &signers)],
        json!({"verify": {"mode": "HEAD", "secretRef": {"name": "signers"}}}),
    )
    .await;

    // The seed commit is unsigned: nothing applies.
    let unsigned = t.repo.head("main").unwrap();
    let message = t.verified("dev", "Unsigned", &unsigned).await;
    assert!(message.contains("is not signed"), "{message}");
    let (reason, _) = t.ready_with("dev", &unsigned).await;
    assert_eq!(reason, "VerificationFailed");
    assert!(t.env.image_names().await.is_empty());

    let signed = t.commit_adding("new-one");
    t.sync("dev", "signed").await;
    let source = t.env.wait_applied("dev", &signed).await;
    let (status, _, message) = condition(&source, "SourceVerified").unwrap();
    assert_eq!(status, "True");
    assert!(message.contains("(allowed_signers:1)"), "{message}");
    assert_eq!(t.env.image_names().await.len(), 4);

    let untrusted = t
        .repo
        .commit_signed(
            "main",
            "untrusted",
            &[Change::delete("environments/dev/new-one.yaml")],
            &t.other,
        )
        .unwrap();
    t.sync("dev", "untrusted").await;
    t.verified("dev", "UntrustedSigner", &untrusted).await;
    assert!(
        t.env.image("new-one").await.is_some(),
        "an untrusted commit applies nothing"
    );
    let status = t.env.source("dev").await.status.unwrap();
    assert_eq!(
        status.last_applied_revision.as_deref(),
        Some(signed.as_str())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn principals_are_matched_against_the_committer_email() {
    let t = Signed::start().await;
    let signed = t.commit_adding("new-one");
    let committer = t.repo.git(&["log", "-1", "--format=%ce", &signed]).unwrap();
    assert_eq!(committer, AUTHOR_EMAIL, "premise: who committed");

    let release_only = t.line("release@example.com", "");
    t.source("dev", &[("allowed_signers", &release_only)], json!({}))
        .await;
    let message = t
        .verified("dev", "UntrustedSigner", "does not match its principals")
        .await;
    assert!(
        message.contains(&format!(
            "allowed_signers:1: the committer e-mail \"{AUTHOR_EMAIL}\" does not match its principals \"release@example.com\""
        )),
        "{message}"
    );
    let all_but_them = t.line(&format!("*@example.com,!{AUTHOR_EMAIL}"), "");
    t.set_signers("dev", &[("allowed_signers", &all_but_them)])
        .await;
    t.verified("dev", "UntrustedSigner", "!catalog-test@example.com")
        .await;
    assert!(t.env.image_names().await.is_empty(), "nothing applied yet");

    let domain = t.line("release@example.com,*@example.com", "");
    t.set_signers("dev", &[("allowed_signers", &domain)]).await;
    t.env.wait_applied("dev", &signed).await;
    assert!(t.env.image("new-one").await.is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_limited_to_other_namespaces_or_another_time_does_not_verify_a_commit() {
    let t = Signed::start().await;
    let signed = t.commit_adding("new-one");
    let commit_time = t.repo.git(&["log", "-1", "--format=%cI", &signed]).unwrap();
    assert!(
        commit_time.starts_with("2026-01-01T"),
        "premise: harness commit dates ({commit_time})"
    );
    let june: jiff::Timestamp = "2026-06-01T00:00:00Z".parse().unwrap();
    assert!(
        jiff::Timestamp::now() > june,
        "premise: valid-before 20260601Z is in the past, so only the commit time can satisfy it"
    );

    let files_only = t.line("*", "namespaces=\"file\"");
    t.source("dev", &[("allowed_signers", &files_only)], json!({}))
        .await;
    t.verified(
        "dev",
        "UntrustedSigner",
        "the key may sign only in namespaces \"file\", and git signs in \"git\"",
    )
    .await;

    let expired = t.line("*", "valid-before=\"20251231Z\"");
    t.set_signers("dev", &[("allowed_signers", &expired)]).await;
    let message = t.verified("dev", "UntrustedSigner", "(valid-before)").await;
    assert!(
        message.contains("valid only until 2025-12-31T00:00:00Z (valid-before) and the committer time is 2026-01-01T"),
        "{message}"
    );

    let not_yet = t.line("*", "valid-after=\"20260102Z\"");
    t.set_signers("dev", &[("allowed_signers", &not_yet)]).await;
    t.verified(
        "dev",
        "UntrustedSigner",
        "valid only from 2026-01-02T00:00:00Z (valid-after)",
    )
    .await;
    assert!(t.env.image_names().await.is_empty(), "nothing applied yet");

    let window = t.line(
        "*",
        "namespaces=\"file,git\",valid-after=\"20251231Z\",valid-before=\"20260601Z\"",
    );
    t.set_signers("dev", &[("allowed_signers", &window)]).await;
    t.env.wait_applied("dev", &signed).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn only_allowed_signers_and_authorized_keys_are_read_and_cert_authority_is_refused() {
    let t = Signed::start().await;
    let signed = t.commit_adding("new-one");
    let anyone = t.line("*", "");
    t.source("dev", &[("extra", &anyone)], json!({})).await;
    let message = t
        .verified("dev", "TrustedKeysUnavailable", "only those are read")
        .await;
    assert!(
        message.contains(&format!("secret {NS}/signers has neither an `allowed_signers` nor an `authorized_keys` key (only those are read; it has: extra)")),
        "{message}"
    );

    let ca = t.line("*", "cert-authority");
    t.set_signers("dev", &[("allowed_signers", &ca)]).await;
    let message = t
        .verified("dev", "TrustedKeysUnavailable", "cert-authority")
        .await;
    assert!(
        message.contains("allowed_signers:1: cert-authority entries are not supported (SSH certificates are not verified)"),
        "{message}"
    );
    assert!(t.env.image_names().await.is_empty(), "nothing applied yet");

    // The same key where it is read (authorized_keys: any committer) verifies.
    t.set_signers("dev", &[("authorized_keys", &t.public)])
        .await;
    t.env.wait_applied("dev", &signed).await;
    let message = t.verified("dev", "Verified", "authorized_keys:1").await;
    assert!(message.contains(&signed), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_commit_changed_after_signing_is_refused() {
    let t = Signed::start().await;
    let first = t.commit_adding("new-one");
    let anyone = t.line("*", "");
    t.source("dev", &[("allowed_signers", &anyone)], json!({}))
        .await;
    t.env.wait_applied("dev", &first).await;
    let before = t.snapshot().await;

    let second = t.commit_adding("second-one");
    let raw = t.repo.git(&["cat-file", "commit", &second]).unwrap();
    assert!(raw.contains("\ngpgsig "), "premise: a signed commit\n{raw}");
    let edited = format!(
        "{}\n",
        raw.replace("\n\nadd second-one", "\n\nadd second-one (reviewed)")
    );
    let tampered = t.repo.write_object("commit", edited.as_bytes()).unwrap();
    assert_ne!(tampered, second);
    let tree = |rev: &str| {
        t.repo
            .git(&["rev-parse", &format!("{rev}^{{tree}}")])
            .unwrap()
    };
    assert_eq!(tree(&tampered), tree(&second), "premise: the same files");
    t.repo
        .git(&["update-ref", "refs/heads/main", &tampered])
        .unwrap();

    t.sync("dev", "tampered").await;
    let message = t.verified("dev", "InvalidSignature", &tampered).await;
    assert!(message.contains("changed after signing"), "{message}");
    assert_eq!(t.snapshot().await, before, "nothing applied");
    let status = t.env.source("dev").await.status.unwrap();
    assert_eq!(
        status.last_applied_revision.as_deref(),
        Some(first.as_str())
    );

    // The untouched commit verifies: the edit alone made the difference.
    t.repo
        .git(&["update-ref", "refs/heads/main", &second])
        .unwrap();
    t.sync("dev", "untouched").await;
    t.env.wait_applied("dev", &second).await;
    assert!(t.env.image("second-one").await.is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_force_push_to_an_older_signed_commit_waits_for_approval_of_its_full_sha() {
    let t = Signed::start().await;
    let older = t.commit_adding("new-one");
    let newer = t.commit_adding("second-one");
    let anyone = t.line("*", "");
    t.source("dev", &[("allowed_signers", &anyone)], json!({}))
        .await;
    t.env.wait_applied("dev", &newer).await;
    let before = t.snapshot().await;
    assert!(before.contains_key("second-one"));

    t.repo
        .git(&["update-ref", "refs/heads/main", &older])
        .unwrap();
    t.sync("dev", "force-pushed").await;
    let (reason, message) = t.ready_with("dev", "never rolls back").await;
    assert_eq!(reason, "NonFastForward");
    assert!(
        message.contains(&format!(
            "revision {older} is older than (an ancestor of) the applied revision {newer}"
        )),
        "{message}"
    );
    let approve = format!(
        "approve with: kubectl -n {NS} annotate catalogsource dev {APPROVE_REVISION}={older} --overwrite"
    );
    assert!(message.contains(&approve), "{message}");
    let source = t.env.source("dev").await;
    assert_eq!(
        condition(&source, "SourceVerified").unwrap().0,
        "True",
        "signed, still refused"
    );
    assert_eq!(condition(&source, "Stalled").unwrap().0, "True");
    assert_eq!(
        source.status.unwrap().last_applied_revision.as_deref(),
        Some(newer.as_str())
    );
    assert_eq!(t.snapshot().await, before, "nothing changed in the cluster");

    let short = &older[..7];
    let annotate = |value: &str| json!({"metadata": {"annotations": {APPROVE_REVISION: value}}});
    t.env.patch_source("dev", annotate(short)).await;
    let (reason, message) = t.ready_with("dev", "is not a full commit id").await;
    assert_eq!(reason, "NonFastForward");
    assert!(
        message.contains(&format!(
            "approve-revision \"{short}\" is not a full commit id; {approve}"
        )),
        "{message}"
    );
    assert_eq!(t.snapshot().await, before, "a prefix approves nothing");

    t.env.patch_source("dev", annotate(&older)).await;
    t.env.wait_applied("dev", &older).await;
    assert!(
        t.env.image("second-one").await.is_none(),
        "the approved revision applies"
    );
    assert_eq!(ready(&t.env.source("dev").await).unwrap().0, "True");
}

#[tokio::test(flavor = "multi_thread")]
async fn mode_tag_verifies_the_signature_of_the_annotated_tag() {
    let t = Signed::start().await;
    let head = t.repo.head("main").unwrap();
    t.repo.tag_signed("v1", &head, &t.key).unwrap();
    t.repo.tag_signed("v2", &head, &t.other).unwrap();
    let domain = t.line("*@example.com", "");
    let signers = [("allowed_signers", domain.as_str())];
    let tag_mode = |tag: &str| json!({"ref": {"tag": tag}, "verify": {"mode": "Tag", "secretRef": {"name": "signers"}}});
    t.source("tagged", &signers, tag_mode("v1")).await;
    // The same tag in mode HEAD: the commit itself is unsigned.
    t.source("commit", &signers, json!({"ref": {"tag": "v1"}}))
        .await;

    t.env.wait_applied("tagged", &head).await;
    let message = t
        .verified("tagged", "Verified", "tag v1 is signed by trusted key")
        .await;
    assert!(message.contains("(allowed_signers:1)"), "{message}");
    assert_eq!(t.env.image_names().await, TEMPLATE_DEV);
    t.verified(
        "commit",
        "Unsigned",
        &format!("commit {head} is not signed"),
    )
    .await;

    t.env
        .patch_source("tagged", json!({"spec": {"ref": {"tag": "v2"}}}))
        .await;
    t.verified("tagged", "UntrustedSigner", "tag v2 is signed by")
        .await;
}
