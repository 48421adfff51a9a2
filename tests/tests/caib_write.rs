//! `caib catalog add/remove/promote/publish` end to end: the real caib binary against a real
//! smart-HTTP git remote with basic auth (git http-backend) and the fake forge API, asserting
//! the exact commit, branch and pull-request requests each command produces.

use std::path::Path;

use catalog_e2e::forge::Provider;

#[path = "support/write_setup.rs"]
mod support;
use support::*;

const ADD: &[&str] = &[
    "catalog",
    "add",
    "reference-cs9",
    "quay.io/centos-automotive/autosd:cs9-reference",
    "--architecture",
    "amd64",
    "--distro",
    "cs9",
    "--distro-version",
    "9.4",
    "--target",
    "qemu",
    "--tags",
    "reference,baseline",
    "--bootc-capable",
    "--no-verify",
];

const EXPECTED_ENTRY: &str = "apiVersion: automotive.sdv.cloud.redhat.com/v1alpha1
kind: CatalogImage
metadata:
  name: reference-cs9
spec:
  registryUrl: quay.io/centos-automotive/autosd:cs9-reference
  tags:
    - reference
    - baseline
  metadata:
    architecture: amd64
    distro: cs9
    distroVersion: \"9.4\"
    targets:
      - name: qemu
        verified: false
    bootcCapable: true
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_opens_one_pull_request_and_a_rerun_updates_it() {
    let s = Setup::new().await;
    let main_before = s.remote.head("main").unwrap();

    let out = s.run(ADD).await;
    assert_success(&out);
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    for line in [
        "Adding image to catalog...",
        "✓ Validating registry URL",
        "✓ Creating catalog image \"reference-cs9\"",
        "✓ Added successfully",
    ] {
        assert!(stderr.contains(line), "missing {line:?}\n{}", show(&out));
    }
    for line in [
        "Catalog Image: reference-cs9",
        "Registry URL:   quay.io/centos-automotive/autosd:cs9-reference",
        "Architecture:   amd64",
        "Distro:        cs9",
        "Target:        qemu",
        "Status:        Pending review (not in the cluster yet; --wait follows it)",
    ] {
        assert!(stdout.contains(line), "missing {line:?}\n{}", show(&out));
    }

    // Exactly one commit on the review branch, on top of main; main untouched.
    let branch = "caib/add/dev/reference-cs9";
    assert_eq!(s.remote.head("main").unwrap(), main_before);
    let tip = s.remote.head(branch).expect("review branch pushed");
    assert_eq!(commit_info(&s.remote, &tip, "%P"), main_before);
    assert_eq!(
        s.file(&tip, "environments/dev/reference-cs9.yaml"),
        EXPECTED_ENTRY
    );
    let changed = s
        .remote
        .git(&["diff", "--name-status", &main_before, &tip])
        .unwrap();
    assert_eq!(changed, "A\tenvironments/dev/reference-cs9.yaml");
    assert_eq!(
        commit_info(&s.remote, &tip, "%an <%ae>"),
        format!("{AUTHOR} <{AUTHOR_EMAIL}>")
    );
    let message = commit_info(&s.remote, &tip, "%B");
    assert!(
        message.starts_with("catalog: add reference-cs9 in dev\n"),
        "{message}"
    );
    assert_eq!(
        commit_info(&s.remote, &tip, "%(trailers:only,unfold)"),
        "Catalog-Action: add\nCatalog-Entry: dev/reference-cs9"
    );

    // Exactly one pull request, from that branch into main, authenticated.
    let creates = s.forge.requests_matching("POST", "/pulls");
    assert_eq!(creates.len(), 1, "{:#?}", s.forge.requests());
    let body = creates[0].body.as_ref().unwrap();
    assert_eq!(body["head"], branch);
    assert_eq!(body["base"], "main");
    assert_eq!(creates[0].path, format!("/repos/{FORGE_REPO}/pulls"));
    assert_eq!(
        creates[0].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    let prs = s.forge.pull_requests(Provider::Github, FORGE_REPO);
    assert_eq!(prs.len(), 1);
    assert!(
        stdout.contains(&format!("Pull request:  {}", prs[0].url)),
        "{stdout}"
    );

    // A re-run finds the open pull request and updates it instead of opening a second one.
    let out = s.run(ADD).await;
    assert_success(&out);
    assert_eq!(s.forge.requests_matching("POST", "/pulls").len(), 1);
    assert_eq!(s.forge.requests_matching("PATCH", "/pulls/1").len(), 1);
    assert_eq!(s.forge.pull_requests(Provider::Github, FORGE_REPO).len(), 1);
    assert_eq!(
        s.remote.head(branch).unwrap(),
        tip,
        "identical change: branch kept"
    );
    assert_stdout(&out, "(updated)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_add_commits_to_main_and_then_reports_already_in_catalog() {
    let s = Setup::new().await;
    let main_before = s.remote.head("main").unwrap();
    let mut args = ADD.to_vec();
    args.push("--direct");
    let out = s.run(&args).await;
    assert_success(&out);
    let tip = s.remote.head("main").unwrap();
    assert_eq!(commit_info(&s.remote, &tip, "%P"), main_before);
    assert_eq!(
        s.file("main", "environments/dev/reference-cs9.yaml"),
        EXPECTED_ENTRY
    );
    assert!(
        s.forge.requests().is_empty(),
        "--direct opens no pull request"
    );
    assert_stdout(&out, "Committed:");
    assert_stdout(
        &out,
        "Status:        Committed (not synced to the cluster yet; --wait follows it)",
    );

    // Identical content again: exit 0, nothing new.
    let out = s.run(&args).await;
    assert_success(&out);
    assert_stderr(&out, "already in catalog");
    assert_eq!(s.remote.head("main").unwrap(), tip);

    // Same name, different content: conflict (5) naming the entry, unless --update.
    let mut changed = args.clone();
    changed.retain(|a| *a != "--bootc-capable");
    let out = s.run(&changed).await;
    assert_exit(&out, 5, "--update");
    changed.push("--update");
    let out = s.run(&changed).await;
    assert_success(&out);
    assert_ne!(s.remote.head("main").unwrap(), tip);

    // Another name for the same registryUrl: conflict naming the existing entry.
    let mut other = args.clone();
    other[2] = "another-name";
    let out = s.run(&other).await;
    assert_exit(&out, 5, "reference-cs9");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_push_that_loses_a_race_rebases_and_succeeds() {
    let s = Setup::new().await;
    let main_before = s.remote.head("main").unwrap();
    install_concurrent_push_hook(&s.remote, "CONCURRENT.md");
    let mut args = ADD.to_vec();
    args.push("--direct");
    let out = s.run(&args).await;
    assert_success(&out);
    let tip = s.remote.head("main").unwrap();
    let parent = commit_info(&s.remote, &tip, "%P");
    assert_ne!(parent, main_before, "rebased onto the concurrent commit");
    assert_eq!(commit_info(&s.remote, &parent, "%s"), "concurrent change");
    assert_eq!(commit_info(&s.remote, &parent, "%P"), main_before);
    assert!(s.remote.read("main", "CONCURRENT.md").is_some());
    assert_eq!(
        s.file("main", "environments/dev/reference-cs9.yaml"),
        EXPECTED_ENTRY
    );
    assert_stderr(&out, "moved on the remote");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_push_never_overwrites_a_concurrent_change_to_the_same_file() {
    let s = Setup::new().await;
    install_concurrent_push_hook(&s.remote, "environments/dev/reference-cs9.yaml");
    let mut args = ADD.to_vec();
    args.push("--direct");
    let out = s.run(&args).await;
    assert_exit(&out, 5, "changed on main by someone else");
    assert_eq!(
        s.file("main", "environments/dev/reference-cs9.yaml"),
        "concurrent change\n"
    );
}

/// Refs of the cached clone other than remote-tracking ones: must stay empty.
fn cache_local_refs(cache: &Path) -> Vec<String> {
    let mut refs = Vec::new();
    let repos = cache.join("caib/repos");
    for dir in std::fs::read_dir(&repos).into_iter().flatten().flatten() {
        let out = std::process::Command::new("git")
            .arg("--git-dir")
            .arg(dir.path())
            .args(["for-each-ref", "--format=%(refname)"])
            .output()
            .unwrap();
        refs.extend(
            text(&out.stdout)
                .lines()
                .filter(|r| !r.starts_with("refs/remotes/"))
                .map(str::to_owned),
        );
    }
    refs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_credentials_exit_3_and_leave_everything_clean() {
    let s = Setup::new().await;
    let refs_before = s.refs();

    // Wrong token: the fetch is refused.
    let out = s
        .command(ADD)
        .env("CAIB_GIT_TOKEN", "wrong")
        .output()
        .await
        .unwrap();
    assert_exit(&out, 3, "authentication failed");
    assert!(
        !text(&out.stderr).contains("wrong"),
        "token leaked: {}",
        show(&out)
    );

    // Read access but the push is refused (a token without write permission).
    s.remote
        .git(&["config", "http.receivepack", "false"])
        .unwrap();
    let mut args = ADD.to_vec();
    args.push("--direct");
    let out = s.run(&args).await;
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    assert_eq!(s.refs(), refs_before, "remote untouched");
    assert!(
        cache_local_refs(&s.cache()).is_empty(),
        "cached clone keeps no unpushed refs"
    );
    assert!(s.forge.requests().is_empty());

    // Forge token refused: exit 3 with the forge's message.
    s.remote
        .git(&["config", "http.receivepack", "true"])
        .unwrap();
    s.forge.set_token(Some("another-token"));
    let out = s.run(ADD).await;
    assert_exit(&out, 3, "Bad credentials");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_prints_the_diff_and_touches_nothing() {
    let s = Setup::new().await;
    let refs_before = s.refs();
    let mut args = ADD.to_vec();
    args.push("--dry-run");
    let out = s.run(&args).await;
    assert_success(&out);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("+++ b/environments/dev/reference-cs9.yaml"),
        "{stdout}"
    );
    assert!(
        stdout.contains("+  registryUrl: quay.io/centos-automotive/autosd:cs9-reference"),
        "{stdout}"
    );
    assert_eq!(s.refs(), refs_before);
    assert!(s.forge.requests().is_empty());

    let out = s
        .run(&["catalog", "remove", "autosd-cs9-qemu", "--dry-run"])
        .await;
    assert_success(&out);
    assert_stdout(&out, "-  name: autosd-cs9-qemu");
    assert_eq!(s.refs(), refs_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_needs_force_without_a_terminal_and_opens_a_pull_request() {
    let s = Setup::new().await;
    let refs_before = s.refs();
    let out = s.run(&["catalog", "remove", "autosd-cs9-qemu"]).await;
    assert_exit(&out, 2, "--force");
    assert_eq!(s.refs(), refs_before);

    let out = s
        .run(&["catalog", "remove", "no-such-entry", "--force"])
        .await;
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));

    let out = s
        .run(&["catalog", "remove", "autosd-cs9-qemu", "--force"])
        .await;
    assert_success(&out);
    let branch = "caib/remove/dev/autosd-cs9-qemu";
    let tip = s.remote.head(branch).unwrap();
    let main = s.remote.head("main").unwrap();
    assert_eq!(
        s.remote
            .git(&["diff", "--name-status", &main, &tip])
            .unwrap(),
        "D\tenvironments/dev/autosd-cs9-qemu.yaml"
    );
    assert_eq!(
        commit_info(&s.remote, &tip, "%(trailers:only,unfold)"),
        "Catalog-Action: remove\nCatalog-Entry: dev/autosd-cs9-qemu"
    );
    let creates = s.forge.requests_matching("POST", "/pulls");
    assert_eq!(creates.len(), 1);
    assert_eq!(creates[0].body.as_ref().unwrap()["head"], branch);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_without_an_author_or_with_an_invalid_entry() {
    let s = Setup::new().await;
    let refs_before = s.refs();
    let out = s
        .command(ADD)
        .env_remove("GIT_AUTHOR_NAME")
        .env_remove("GIT_AUTHOR_EMAIL")
        .output()
        .await
        .unwrap();
    assert_exit(&out, 2, "user.name");
    assert_eq!(s.refs(), refs_before);
    assert!(s.forge.requests().is_empty());

    // Production requires digests: an unpinned entry is refused with the validator's words.
    let mut args = ADD.to_vec();
    args.extend(["--env", "production"]);
    let out = s.run(&args).await;
    assert_exit(&out, 1, "environments/production/reference-cs9.yaml");
    assert_eq!(s.refs(), refs_before);

    // Missing required flags: exit 2 naming them.
    let out = s
        .run(&["catalog", "add", "x", "quay.io/x/y:1", "--distro", "cs9"])
        .await;
    assert_exit(&out, 2, "--architecture");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_checkout_with_uncommitted_changes_is_never_modified() {
    let s = Setup::new().await;
    let checkout = tempfile::tempdir().unwrap();
    let dir = checkout.path().join("catalog");
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .current_dir(&dir)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    let clone = std::process::Command::new("git")
        .args([
            "clone",
            "--quiet",
            s.remote.path().to_str().unwrap(),
            dir.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(clone.status.success(), "{}", text(&clone.stderr));
    let qemu = dir.join("environments/dev/autosd-cs9-qemu.yaml");
    std::fs::write(&qemu, "# my unfinished edit\n").unwrap();
    let head_before = git(&["rev-parse", "HEAD"]);

    let run = |extra: &'static [&'static str]| {
        let mut cmd = s.command_for(dir.to_str().unwrap(), ADD);
        cmd.args(extra);
        cmd
    };
    let out = run(&["--direct"]).output().await.unwrap();
    assert_exit(&out, 2, "uncommitted changes");
    assert_eq!(git(&["rev-parse", "HEAD"]), head_before);
    assert_eq!(
        std::fs::read_to_string(&qemu).unwrap(),
        "# my unfinished edit\n"
    );

    // Without --direct a review branch is pushed into it; the checkout is left alone.
    let out = run(&[]).output().await.unwrap();
    assert_success(&out);
    assert_eq!(git(&["rev-parse", "HEAD"]), head_before);
    assert_eq!(
        std::fs::read_to_string(&qemu).unwrap(),
        "# my unfinished edit\n"
    );
    assert!(git(&["branch", "--list", "caib/add/dev/reference-cs9"]).contains("caib/add"));
}

/// A review branch the remote refuses (a hook, a protection rule) is not a conflict with
/// anyone's change: exit 1 with the remote's refusal, not 5, and no pull request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_review_branch_is_an_error_not_a_conflict() {
    let s = Setup::new().await;
    let hook = s.remote.path().join("hooks/pre-receive");
    std::fs::create_dir_all(hook.parent().unwrap()).unwrap();
    std::fs::write(
        &hook,
        "#!/bin/sh\necho 'caib/* branches are protected' >&2\nexit 1\n",
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = s.run(ADD).await;
    assert_exit(&out, 1, "refused the push of caib/add/dev/reference-cs9");
    assert!(s.forge.requests_matching("POST", "/pulls").is_empty());
}
