//! `CatalogSource`: one environment of a catalog Git repository synced into one namespace
//! (Flux's GitRepository and Kustomization in one object).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Most items a status list that grows with the catalog (invalid entries, conflicts) holds:
/// the rest are only counted, so a CatalogSource stays far below the API server's object size
/// limit however many entries its repository has.
pub const MAX_LISTED: usize = 100;

/// Most pull-request previews a CatalogSource status lists (`status.previews`); the
/// reconciler's `--max-previews-per-source` may only lower it.
pub const MAX_PREVIEWS: usize = 50;

/// Default deletion budget per revision.
pub const DEFAULT_MAX_DELETIONS: i32 = 10;

fn default_path() -> String {
    ".".into()
}
fn default_interval() -> String {
    "1m".into()
}
fn default_timeout() -> String {
    "60s".into()
}
fn default_true() -> bool {
    true
}
fn is_zero(n: &u32) -> bool {
    *n == 0
}
fn default_max_deletions() -> IntOrString {
    IntOrString::Int(DEFAULT_MAX_DELETIONS)
}

/// A Git repository directory whose CatalogImage manifests are kept applied in a namespace.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "automotive.sdv.cloud.redhat.com",
    version = "v1alpha1",
    kind = "CatalogSource",
    namespaced,
    status = "CatalogSourceStatus",
    derive = "PartialEq",
    shortname = "catsrc",
    category = "catalog",
    doc = "A directory of a catalog Git repository (one environment) kept applied as CatalogImages in a namespace.",
    printcolumn = r#"{"name":"URL","type":"string","jsonPath":".spec.url"}"#,
    printcolumn = r#"{"name":"Path","type":"string","jsonPath":".spec.path"}"#,
    printcolumn = r#"{"name":"Revision","type":"string","description":"Last applied commit","jsonPath":".status.lastAppliedRevision"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct CatalogSourceSpec {
    /// Repository URL: `https://`, `ssh://` (or `user@host:path`), `git://` or `file://`.
    #[schemars(length(min = 1))]
    pub url: String,

    /// What to sync: a branch, a tag or a commit. Defaults to branch `main`.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<GitRef>,

    /// Directory of the repository holding this environment's entries (e.g. `environments/dev`).
    #[serde(default = "default_path")]
    pub path: String,

    /// How often the remote is fetched (`1m`, `5m`); webhooks make syncs immediate. At most
    /// 720h (30 days).
    #[serde(default = "default_interval")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"))]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "duration(self) <= duration('720h')", "message": "must be at most 720h (30 days)"}]))]
    pub interval: String,

    /// Hard deadline of one fetch, connecting and the ref advertisement included; at most
    /// 10m.
    #[serde(default = "default_timeout")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"))]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "duration(self) <= duration('10m')", "message": "must be at most 10m"}]))]
    pub timeout: String,

    /// Namespace the CatalogImages are applied to; defaults to this object's namespace. When
    /// it changes, the entries are applied to the new namespace and (with prune) deleted from
    /// the old one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_namespace: Option<String>,

    /// Delete CatalogImages of this source whose files were removed, and delete all of them
    /// when this CatalogSource is deleted. With false they are left in place (still labelled).
    #[serde(default = "default_true")]
    pub prune: bool,

    /// Stop syncing; what is applied stays as it is.
    #[serde(default)]
    pub suspend: bool,

    /// Git credentials: a Secret with `username`/`password`, `bearerToken`, or `identity`
    /// (SSH private key) and `known_hosts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectRef>,

    /// Verify the SSH signature of the synced commit (or tag) before applying anything. A
    /// verified source also never rolls back: a revision that does not descend from the last
    /// applied one waits for the `automotive.sdv.cloud.redhat.com/approve-revision: <full sha>`
    /// annotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifySpec>,

    /// Most entries one revision may delete (a number, or a percentage such as `"20%"`). A
    /// revision deleting more applies none of its deletions until approved with the
    /// `automotive.sdv.cloud.redhat.com/approve-deletions: <full commit sha>` annotation.
    #[serde(default = "default_max_deletions")]
    pub max_deletions: IntOrString,

    /// Allow a revision that leaves this source with no entries.
    #[serde(default)]
    pub allow_empty: bool,

    /// Report the sync result as a commit status on the forge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_status: Option<CommitStatusSpec>,

    /// Accept push webhooks at `/hook/<namespace>/<name>`, authenticated with the secret's
    /// `token` key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookSpec>,

    /// Pull-request previews: each open pull request (merge request) whose base is
    /// `ref.branch` is validated, planned against the cluster and its images verified, and
    /// the result posted on it (commit status `catalog-preview/<name>` and one comment).
    /// Needs `commitStatus` (the forge API and token); nothing of a pull request is applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_requests: Option<PullRequestsSpec>,
}

impl CatalogSourceSpec {
    /// `interval`, at most [`MAX_INTERVAL`](crate::duration::MAX_INTERVAL).
    pub fn interval(&self) -> Result<std::time::Duration, crate::duration::DurationError> {
        crate::duration::parse_at_most(&self.interval, crate::duration::MAX_INTERVAL)
    }

    /// `timeout`, at most [`MAX_TIMEOUT`](crate::duration::MAX_TIMEOUT).
    pub fn timeout(&self) -> Result<std::time::Duration, crate::duration::DurationError> {
        crate::duration::parse_at_most(&self.timeout, crate::duration::MAX_TIMEOUT)
    }

    /// The first duration field that is out of bounds, as `(field, why)`: objects stored
    /// before the CRD carried the bounds (or written where they are not enforced) are checked
    /// again by the reconciler before any timer is set from them.
    pub fn invalid_duration(&self) -> Option<(&'static str, crate::duration::DurationError)> {
        if let Err(e) = self.interval() {
            return Some(("spec.interval", e));
        }
        self.timeout().err().map(|e| ("spec.timeout", e))
    }
}

impl CatalogSource {
    /// Namespace its CatalogImages are applied to: `spec.targetNamespace`, else its own.
    pub fn target_namespace(&self) -> &str {
        self.spec
            .target_namespace
            .as_deref()
            .unwrap_or_else(|| self.metadata.namespace.as_deref().unwrap_or_default())
    }
}

/// Which commit to sync. Exactly one field may be set.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct GitRef {
    /// Branch to follow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Tag to sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Full commit SHA to sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9a-f]{40}$"))]
    pub commit: Option<String>,
}

/// Reference to a Secret in the referring object's own namespace. There is deliberately no
/// namespace field: a tenant's object can never name another namespace's Secret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct LocalObjectRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// Commit signature verification.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerifySpec {
    /// What carries the signature: the synced commit (`HEAD`), or the annotated tag of
    /// `ref.tag` (`Tag`).
    #[serde(default)]
    pub mode: VerifyMode,
    /// Secret whose `allowed_signers` key (OpenSSH ALLOWED SIGNERS format: principals matched
    /// against the committer's e-mail, `namespaces`, `valid-after`, `valid-before`) and/or
    /// `authorized_keys` key (any committer) list the trusted SSH keys. Other keys are not read.
    pub secret_ref: LocalObjectRef,
}

/// Which object's SSH signature is verified.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum VerifyMode {
    /// The commit the ref resolves to.
    #[default]
    #[serde(rename = "HEAD")]
    Head,
    /// The annotated tag named by `spec.ref.tag` (its tagger e-mail is the principal).
    Tag,
}

/// Forge kinds whose REST APIs we speak.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ForgeProvider {
    Github,
    Gitlab,
    Gitea,
}

/// Where to report commit statuses.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommitStatusSpec {
    /// github, gitlab or gitea (also Forgejo).
    pub provider: ForgeProvider,
    /// API base URL (`https://api.github.com`, `https://gitlab.example.com/api/v4`,
    /// `https://gitea.example.com/api/v1`).
    pub api_url: String,
    /// Repository on the forge (`owner/name`, or the GitLab project path); derived from `url`
    /// when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// Secret with a `token` key allowed to set commit statuses.
    pub secret_ref: LocalObjectRef,
}

/// Pull-request preview settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct PullRequestsSpec {
    /// Preview the open pull requests whose base is this source's branch.
    #[serde(default)]
    pub enabled: bool,
}

/// Push webhook receiver settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookSpec {
    /// Secret with a `token` key: the HMAC secret (GitHub, Gitea) or the shared token (GitLab).
    pub secret_ref: LocalObjectRef,
}

/// What the sync controller last did.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CatalogSourceStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Reconciling, Stalled and SourceVerified.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Commit last fetched from the remote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_fetched_revision: Option<String>,
    /// Commit whose entries are applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied_revision: Option<String>,
    /// Commit of the last sync attempt, successful or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted_revision: Option<String>,
    /// Echo of the last handled `reconcile-requested-at` annotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
    /// Entry counts. The entries themselves are the CatalogImages carrying this source's
    /// `catalog-source` label and `source-namespace` annotation (`caib catalog status NAME
    /// --entries`): a status listing them would grow with the catalog past what an object
    /// may hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<SourceSummary>,
    /// Problems in files that failed validation: the first 100 by path and line (their
    /// previously applied CatalogImages are kept). `invalidEntriesTotal` counts them all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_LISTED))]
    pub invalid_entries: Vec<InvalidEntry>,
    /// How many problems there are in all, listed or not.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub invalid_entries_total: u32,
    /// Existing CatalogImages this source would have written but does not own: the first 100
    /// by name. `conflictsTotal` counts them all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_LISTED))]
    pub conflicts: Vec<ConflictEntry>,
    /// How many conflicts there are in all, listed or not.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub conflicts_total: u32,
    /// Path of the webhook receiver for this source, relative to the reconciler's HTTP address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_path: Option<String>,
    /// The last five syncs, newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<SyncRecord>,
    /// Pull-request previews of the open pull requests, by number, newest first (at most 50;
    /// written only by the preview runner, never by a sync).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_PREVIEWS))]
    pub previews: Vec<PreviewSummary>,
}

/// What the preview of one pull request found at its head.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PreviewSummary {
    /// Pull request number (merge request iid on GitLab).
    pub number: u64,
    /// Head commit evaluated.
    pub head: String,
    /// `Success` (everything validates and verifies), `Failure`, or `Error` (the head could
    /// not be evaluated; tried again at the next interval).
    pub state: PreviewState,
    /// Entries the merge would create.
    #[serde(default)]
    pub created: u32,
    /// Entries the merge would update.
    #[serde(default)]
    pub updated: u32,
    /// Entries the merge would delete.
    #[serde(default)]
    pub pruned: u32,
    /// Problems: invalid files, conflicts, images that failed verification.
    #[serde(default)]
    pub failed: u32,
    /// The commit status description posted on the head.
    #[serde(default)]
    #[schemars(length(max = 140))]
    pub message: String,
    /// When the head was evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Time>,
}

/// Result of a pull-request preview.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum PreviewState {
    #[default]
    Success,
    Failure,
    Error,
}

impl PreviewState {
    pub fn as_str(self) -> &'static str {
        match self {
            PreviewState::Success => "Success",
            PreviewState::Failure => "Failure",
            PreviewState::Error => "Error",
        }
    }
}

/// Entry counts of a source.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct SourceSummary {
    /// CatalogImages this source manages.
    pub entries: i32,
    /// Entries live as their files say after the last sync.
    pub applied: i32,
    /// Files that failed validation.
    pub invalid: i32,
    pub available: i32,
    pub unavailable: i32,
    pub failed: i32,
    pub pending: i32,
}

/// A file that failed validation, with where.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct InvalidEntry {
    pub path: String,
    pub line: u32,
    #[serde(default)]
    pub column: u32,
    pub message: String,
}

/// A name this source may not write.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct ConflictEntry {
    pub name: String,
    pub path: String,
    pub message: String,
}

/// One sync.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncRecord {
    pub revision: String,
    pub time: Option<Time>,
    pub created: i32,
    pub updated: i32,
    pub pruned: i32,
    /// Wall time of the sync in milliseconds.
    pub duration_ms: i64,
}

/// Condition types of a CatalogSource.
pub mod condition {
    pub const READY: &str = "Ready";
    pub const RECONCILING: &str = "Reconciling";
    pub const STALLED: &str = "Stalled";
    pub const SOURCE_VERIFIED: &str = "SourceVerified";
}
