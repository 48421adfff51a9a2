//! Pull-request previews end to end: the real reconciler, a real docker-registry, a real git
//! remote holding the pull requests' head refs (`refs/pull/N/head`, GitLab's
//! `refs/merge-requests/N/head`), and the forge stand-in for the API (pull requests, comments,
//! commit statuses).

mod sync_common;

use catalog_api::labels::{PREVIEW_REQUESTED_AT, RECONCILE_REQUESTED_AT};
use catalog_api::source::{PreviewState, PreviewSummary};
use catalog_e2e::forge::{CommitStatus, FakeForge, Provider, head_ref};
use catalog_e2e::git::{BareRepo, Change};
use catalog_e2e::process::eventually;
use catalog_e2e::registry::{HostileRegistry, ImageFixture, Registry, RegistryConfig};
use serde_json::json;
use sync_common::*;

const TOKEN: &str = "forge-s3cret";
const REPO: &str = "acme/catalog";

/// An entry declaring `arch`, optionally pinned to `digest`.
fn entry(name: &str, url: &str, arch: &str, digest: Option<&str>) -> String {
    let digest = digest
        .map(|d| format!("  digest: {d}\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: automotive.sdv.cloud.redhat.com/v1alpha1\nkind: CatalogImage\nmetadata:\n  name: {name}\nspec:\n  registryUrl: {url}\n{digest}  metadata:\n    architecture: {arch}\n"
    )
}

fn path(name: &str) -> String {
    format!("environments/dev/{name}.yaml")
}

struct Setup {
    env: Env,
    forge: FakeForge,
    repo: BareRepo,
    registry: Registry,
    provider: Provider,
    /// `{host}/os/base:v1`, amd64 only.
    image: String,
    digest: String,
}

impl Setup {
    /// Three entries on main (`base-0..2`, all the amd64 image), a source `dev` with previews
    /// on and `maxDeletions: 1`, applied.
    async fn start(provider: Provider) -> Setup {
        Setup::start_with(provider, &[]).await
    }

    /// [`Setup::start`] with more reconciler flags.
    async fn start_with(provider: Provider, flags: &[&str]) -> Setup {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let registry = Registry::start(RegistryConfig::default()).await;
        let pushed = registry
            .push_image("os/base:v1", &ImageFixture::new("amd64"))
            .await;
        let image = format!("{}/os/base:v1", registry.host());
        let repo = BareRepo::new("catalog").unwrap();
        let base: Vec<Change> = (0..3)
            .map(|i| {
                let name = format!("base-{i}");
                Change::write(path(&name), entry(&name, &image, "amd64", None))
            })
            .collect();
        repo.commit("main", "base", &base).unwrap();
        let forge = FakeForge::start(TOKEN).await;
        let mut env = Env::start().await;
        env.create_secret("forge", &[("token", TOKEN)]).await;
        let host = registry.host();
        let mut args = vec!["--insecure-registry", host.as_str()];
        args.extend_from_slice(flags);
        env.spawn_reconciler(&args);
        let provider_name = match provider {
            Provider::Github => "github",
            Provider::Gitlab => "gitlab",
            Provider::Gitea => "gitea",
        };
        env.create_source(
            "dev",
            &repo.file_url(),
            json!({
                "maxDeletions": 1,
                "commitStatus": {"provider": provider_name, "apiUrl": forge.api_url(provider),
                    "repository": REPO, "secretRef": {"name": "forge"}},
                "pullRequests": {"enabled": true},
            }),
        )
        .await;
        env.wait_applied("dev", &repo.head("main").unwrap()).await;
        Setup {
            env,
            forge,
            repo,
            registry,
            provider,
            image,
            digest: pushed.digest,
        }
    }

    /// Commits `changes` on `branch` and opens a pull request into main (or, with `number`,
    /// pushes to that pull request): the forge and the remote's head ref both move.
    fn push(&self, number: Option<u64>, branch: &str, changes: &[Change]) -> (u64, String) {
        let sha = self.repo.commit(branch, "change", changes).unwrap();
        let number = match number {
            Some(n) => {
                assert!(self.forge.set_head(self.provider, REPO, n, &sha));
                n
            }
            None => self
                .forge
                .open_pull(self.provider, REPO, branch, "main", &sha),
        };
        self.repo
            .git(&["update-ref", &head_ref(self.provider, number), &sha])
            .unwrap();
        (number, sha)
    }

    /// Asks for previews now, as the webhook receiver does on a pull-request event.
    async fn ask(&self) {
        let at = format!("{:.9}", jiff::Timestamp::now());
        self.env
            .patch_source(
                "dev",
                json!({"metadata": {"annotations": {PREVIEW_REQUESTED_AT: at}}}),
            )
            .await;
    }

    /// The preview status posted on `sha`.
    async fn status_of(&self, sha: &str) -> CommitStatus {
        let forge = &self.forge;
        eventually(WAIT, &format!("the preview status of {sha}"), || async {
            forge
                .statuses()
                .into_iter()
                .find(|s| s.sha == sha && s.context.as_deref() == Some("catalog-preview/dev"))
        })
        .await
    }

    /// The one comment of pull request `number` carrying the source's marker, once it
    /// contains `needle` (the comment is posted after the status).
    async fn comment(&self, number: u64, needle: &str) -> String {
        let forge = &self.forge;
        let what = format!("the preview comment of #{number} to contain {needle:?}");
        eventually(WAIT, &what, || async {
            let marked: Vec<String> = forge
                .comments(self.provider, REPO, number)
                .into_iter()
                .filter(|c| c.body.starts_with("<!-- catalog-preview:catalog/dev -->"))
                .map(|c| c.body)
                .collect();
            assert!(marked.len() <= 1, "one preview comment: {marked:#?}");
            marked.into_iter().find(|c| c.contains(needle))
        })
        .await
    }

    /// `status.previews` once `done` holds for it (it is written after the status and the
    /// comment are posted).
    async fn previews(&self, done: impl Fn(&[PreviewSummary]) -> bool) -> Vec<PreviewSummary> {
        let source = self
            .env
            .wait_source("dev", "status.previews", |src| {
                done(
                    src.status
                        .as_ref()
                        .map(|s| s.previews.as_slice())
                        .unwrap_or_default(),
                )
            })
            .await;
        source.status.map(|s| s.previews).unwrap_or_default()
    }
}

fn described(status: &CommitStatus) -> &str {
    status.description.as_deref().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn previews_report_what_each_pull_request_would_do_and_apply_nothing() {
    let s = Setup::start(Provider::Github).await;
    let base = s.env.image_names().await;
    let missing = format!("sha256:{}", "e".repeat(64));
    let (good, good_sha) = s.push(
        None,
        "good",
        &[Change::write(
            path("good"),
            entry("good", &s.image, "amd64", Some(&s.digest)),
        )],
    );
    let (absent, absent_sha) = s.push(
        None,
        "absent",
        &[Change::write(
            path("absent"),
            entry("absent", &s.image, "amd64", Some(&missing)),
        )],
    );
    let (arm, arm_sha) = s.push(
        None,
        "arm",
        &[Change::write(
            path("arm"),
            entry("arm", &s.image, "arm64", None),
        )],
    );
    let (deletes, deletes_sha) = s.push(
        None,
        "deletes",
        &[
            Change::delete(path("base-0")),
            Change::delete(path("base-1")),
        ],
    );
    s.ask().await;

    let status = s.status_of(&good_sha).await;
    assert_eq!(status.state, "success", "{status:?}");
    assert_eq!(described(&status), "1 created: every image verified");
    let comment = s.comment(good, "| good |").await;
    let row = comment
        .lines()
        .find(|l| l.starts_with("| good |"))
        .unwrap_or_else(|| panic!("a row for the entry: {comment}"));
    assert!(
        row.contains("| created |") && row.contains("| ok |"),
        "{row}"
    );
    assert!(
        row.contains(&s.digest) && row.contains("linux/amd64"),
        "{row}"
    );

    let status = s.status_of(&absent_sha).await;
    assert_eq!(status.state, "failure", "{status:?}");
    assert!(described(&status).contains("1 image failed"), "{status:?}");
    let comment = s.comment(absent, "| absent |").await;
    assert!(
        comment.contains(&missing) && comment.contains("DigestNotFound"),
        "{comment}"
    );

    let status = s.status_of(&arm_sha).await;
    assert_eq!(status.state, "failure", "{status:?}");
    let comment = s.comment(arm, "| arm |").await;
    assert!(
        comment.contains("ArchitectureMismatch") && comment.contains("arm64"),
        "{comment}"
    );

    let status = s.status_of(&deletes_sha).await;
    assert_eq!(status.state, "failure", "{status:?}");
    assert!(
        described(&status).contains("will need approval"),
        "{status:?}"
    );
    let comment = s.comment(deletes, "| base-0 |").await;
    assert!(comment.contains("| base-0 | pruned |"), "{comment}");
    assert!(comment.contains("approve-deletions"), "{comment}");

    let previews = s.previews(|p| p.len() == 4).await;
    let states: Vec<(u64, PreviewState)> = previews.iter().map(|p| (p.number, p.state)).collect();
    assert_eq!(
        states,
        [
            (deletes, PreviewState::Failure),
            (arm, PreviewState::Failure),
            (absent, PreviewState::Failure),
            (good, PreviewState::Success)
        ]
    );
    assert_eq!(
        (previews[3].created, previews[3].head.as_str()),
        (1, good_sha.as_str())
    );
    assert_eq!(previews[0].pruned, 2);
    // Nothing of any pull request reached the cluster.
    assert_eq!(s.env.image_names().await, base);
    // `caib catalog status` shows them.
    let out = std::process::Command::new(catalog_e2e::process::binary("caib"))
        .args(["catalog", "status", "dev", "-n", NS])
        .env("KUBECONFIG", s.env.kubeconfig())
        .env("HOME", s.env.tmp.path())
        .output()
        .expect("caib runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let section = text
        .split("Pull-request previews:")
        .nth(1)
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        section.contains(&format!("#{good} ")) && section.contains("Success"),
        "{text}"
    );
    assert!(
        section.contains(&format!("#{deletes} ")) && section.contains("will need approval"),
        "{text}"
    );
    let _ = &s.registry;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_push_edits_the_comment_and_a_merge_is_applied_and_forgotten() {
    let s = Setup::start(Provider::Github).await;
    let (n, first) = s.push(
        None,
        "feature",
        &[Change::write(
            path("feature"),
            entry("feature", &s.image, "amd64", None),
        )],
    );
    // Reviewers talked first: the preview comment lands past the first page of comments.
    for i in 0..120 {
        s.forge
            .add_comment(s.provider, REPO, n, "alice", &format!("remark {i}"));
    }
    s.ask().await;
    assert_eq!(s.status_of(&first).await.state, "success");
    s.comment(n, &first[..12]).await;
    let (_, second) = s.push(
        Some(n),
        "feature",
        &[Change::write(
            path("feature-2"),
            entry("feature-2", &s.image, "amd64", None),
        )],
    );
    s.ask().await;
    let status = s.status_of(&second).await;
    assert_eq!(described(&status), "2 created: every image verified");
    let comment = s.comment(n, &second[..12]).await;
    assert!(comment.contains("| feature-2 |"), "{comment}");
    assert_eq!(
        s.forge.comments(s.provider, REPO, n).len(),
        121,
        "edited, not added"
    );
    s.previews(|p| p.first().is_some_and(|p| p.head == second))
        .await;
    assert_eq!(s.env.image("feature").await.map(|_| ()), None);

    // Merged: main moves to the head, the sync applies it, the preview is forgotten.
    s.repo
        .git(&["update-ref", "refs/heads/main", &second])
        .unwrap();
    assert!(s.forge.merge(s.provider, REPO, n));
    let at = format!("{:.9}", jiff::Timestamp::now());
    s.env
        .patch_source(
            "dev",
            json!({"metadata": {"annotations": {RECONCILE_REQUESTED_AT: at.clone(), PREVIEW_REQUESTED_AT: at}}}),
        )
        .await;
    s.env.wait_applied("dev", &second).await;
    assert!(s.env.image("feature-2").await.is_some());
    s.env
        .wait_source("dev", "the merged preview to be forgotten", |src| {
            src.status.as_ref().is_some_and(|st| st.previews.is_empty())
        })
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn gitlab_merge_requests_are_previewed_from_their_merge_request_ref_on_a_webhook() {
    let s = Setup::start(Provider::Gitlab).await;
    s.env.create_secret("hook", &[("token", "h00k")]).await;
    s.env
        .patch_source(
            "dev",
            json!({"spec": {"webhook": {"secretRef": {"name": "hook"}}}}),
        )
        .await;
    let (n, sha) = s.push(
        None,
        "feature",
        &[Change::write(
            path("feature"),
            entry("feature", &s.image, "amd64", None),
        )],
    );
    let hook = s.env.webhook_url("dev");
    let client = reqwest::Client::new();
    let delivered = eventually(WAIT, "the merge request webhook to be accepted", || async {
        let response = client
            .post(&hook)
            .header("X-Gitlab-Event", "Merge Request Hook")
            .header("X-Gitlab-Token", "h00k")
            .body(r#"{"object_kind":"merge_request"}"#)
            .send()
            .await
            .ok()?;
        (response.status().as_u16() == 202).then_some(())
    });
    delivered.await;
    let status = s.status_of(&sha).await;
    assert_eq!(status.state, "success", "{status:?}");
    s.comment(n, "| feature | created |").await;
    assert_eq!(s.env.image("feature").await.map(|_| ()), None);

    // Previews turned off: the listed ones go.
    s.env
        .patch_source("dev", json!({"spec": {"pullRequests": {"enabled": false}}}))
        .await;
    s.env
        .wait_source("dev", "status.previews to be emptied", |src| {
            src.status.as_ref().is_some_and(|st| st.previews.is_empty())
        })
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_preview_stuck_on_a_silent_registry_never_delays_the_sync() {
    let silent = HostileRegistry::silent().await;
    let silent_host = silent.host();
    let s = Setup::start_with(
        Provider::Github,
        &[
            "--insecure-registry",
            &silent_host,
            "--verify-timeout",
            "5m",
        ],
    )
    .await;
    let (_, stuck) = s.push(
        None,
        "stuck",
        &[Change::write(
            path("stuck"),
            entry("stuck", &silent.reference("os/x"), "amd64", None),
        )],
    );
    s.ask().await;
    eventually(WAIT, "the preview to reach the silent registry", || async {
        (silent.connections() > 0).then_some(())
    })
    .await;
    let main = s
        .repo
        .commit(
            "main",
            "more",
            &[Change::write(
                path("more"),
                entry("more", &s.image, "amd64", None),
            )],
        )
        .unwrap();
    let at = format!("{:.9}", jiff::Timestamp::now());
    s.env
        .patch_source(
            "dev",
            json!({"metadata": {"annotations": {RECONCILE_REQUESTED_AT: at}}}),
        )
        .await;
    s.env.wait_applied("dev", &main).await;
    assert!(s.env.image("more").await.is_some());
    assert!(
        !s.forge.statuses().iter().any(|st| st.sha == stuck),
        "the preview is still waiting on the registry"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn gitea_pull_requests_are_previewed_on_a_signed_pull_request_webhook() {
    let s = Setup::start(Provider::Gitea).await;
    s.env.create_secret("hook", &[("token", "h00k")]).await;
    s.env
        .patch_source(
            "dev",
            json!({"spec": {"webhook": {"secretRef": {"name": "hook"}}}}),
        )
        .await;
    let (n, sha) = s.push(
        None,
        "feature",
        &[Change::write(
            path("feature"),
            entry("feature", &s.image, "arm64", None),
        )],
    );
    let body = r#"{"action":"opened","number":1}"#;
    let signature = hmac_hex("h00k", body.as_bytes());
    let hook = s.env.webhook_url("dev");
    let client = reqwest::Client::new();
    eventually(WAIT, "the pull request webhook to be accepted", || async {
        let response = client
            .post(&hook)
            .header("X-Gitea-Event", "pull_request")
            .header("X-Gitea-Signature", &signature)
            .body(body)
            .send()
            .await
            .ok()?;
        (response.status().as_u16() == 202).then_some(())
    })
    .await;
    let status = s.status_of(&sha).await;
    assert_eq!(status.state, "failure", "{status:?}");
    s.comment(n, "ArchitectureMismatch").await;
    assert_eq!(s.env.image("feature").await.map(|_| ()), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_evaluated_head_is_not_evaluated_again_even_after_a_restart() {
    let mut s = Setup::start(Provider::Github).await;
    let (_, first) = s.push(
        None,
        "one",
        &[Change::write(
            path("one"),
            entry("one", &s.image, "amd64", None),
        )],
    );
    s.ask().await;
    s.status_of(&first).await;
    // Recorded in the status (after the status and comment are posted) before the restart.
    s.env
        .wait_source("dev", "the first preview to be recorded", |src| {
            src.status
                .as_ref()
                .is_some_and(|st| st.previews.iter().any(|p| p.head == first))
        })
        .await;
    let host = s.registry.host();
    s.env.spawn_reconciler(&["--insecure-registry", &host]);
    let (second_pr, second) = s.push(
        None,
        "two",
        &[Change::write(
            path("two"),
            entry("two", &s.image, "amd64", None),
        )],
    );
    s.ask().await;
    s.status_of(&second).await;
    s.comment(second_pr, "| two |").await;
    // The pass that evaluated #2 has ended once the next one lists the pull requests.
    let listed = s.forge.requests_matching("GET", "/pulls").len();
    s.ask().await;
    let forge = &s.forge;
    eventually(WAIT, "another pass", || async {
        (forge.requests_matching("GET", "/pulls").len() > listed).then_some(())
    })
    .await;
    let posted = |sha: &str| {
        s.forge
            .statuses()
            .iter()
            .filter(|st| st.sha == sha && st.context.as_deref() == Some("catalog-preview/dev"))
            .count()
    };
    assert_eq!(posted(&first), 1, "the head evaluated before the restart");
    assert_eq!(posted(&second), 1);
}
