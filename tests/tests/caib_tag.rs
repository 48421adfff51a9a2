//! `caib catalog tag`/`untag` and `promote` edit files as their authors wrote them: each test
//! compares the whole file after the command with the file before it, changed only on the
//! lines the command had to change. The real caib binary, a smart-HTTP remote seeded from
//! catalog-repo-template/, and the fake forge.

use catalog_e2e::forge::Provider;
use catalog_e2e::git::Change;

#[path = "support/write_setup.rs"]
mod support;
use support::*;

const BOARDS: &str = "environments/dev/autosd-cs9-arm-boards.yaml";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_adds_only_the_tag_lines_through_a_pull_request() {
    let s = Setup::new().await;
    let before = s.file("main", BOARDS);
    let tag = [
        "catalog",
        "tag",
        "autosd-cs9-arm-boards",
        "production",
        "tested",
    ];
    let out = s.run(&tag).await;
    assert_success(&out);
    assert_stderr(&out, "✓ Tagged successfully");
    let branch = "caib/tag/dev/autosd-cs9-arm-boards";
    let tip = s.remote.head(branch).expect("review branch");
    assert_eq!(
        s.file(&tip, BOARDS),
        before.replace(
            "    - multi-board\n",
            "    - multi-board\n    - production\n    - tested\n"
        )
    );
    assert_eq!(
        commit_info(&s.remote, &tip, "%(trailers:only,unfold)"),
        "Catalog-Action: tag\nCatalog-Entry: dev/autosd-cs9-arm-boards"
    );
    let prs = s.forge.pull_requests(Provider::Github, FORGE_REPO);
    assert_eq!(prs.len(), 1);
    assert_eq!(prs[0].head, branch);
    assert!(
        prs[0]
            .body
            .contains("Tags after:  multi-board, production, tested"),
        "{}",
        prs[0].body
    );
    assert_stdout(&out, &format!("Pull request:  {}", prs[0].url));

    // Again: the same pull request, updated; exit 0 with its URL.
    let out = s.run(&tag).await;
    assert_success(&out);
    assert_stdout(&out, &format!("Pull request:  {} (updated)", prs[0].url));
    assert_eq!(s.forge.pull_requests(Provider::Github, FORGE_REPO).len(), 1);

    // What is already there, or an entry that is not: nothing to do (0), not found (4).
    let out = s
        .run(&["catalog", "tag", "autosd-cs9-arm-boards", "multi-board"])
        .await;
    assert_success(&out);
    assert_stderr(&out, "already carries multi-board; nothing to do");
    let out = s.run(&["catalog", "tag", "no-such-entry", "x"]).await;
    assert_exit(&out, 4, "no entry \"no-such-entry\" in environment dev");
    let out = s.run(&["catalog", "tag", "autosd-cs9-arm-boards"]).await;
    assert_exit(&out, 2, "TAG");

    // --env: another environment's file, one line more.
    let staging = s.file("main", RPI4);
    let out = s
        .run(&[
            "catalog",
            "tag",
            "autosd-cs9-rpi4",
            "candidate",
            "--env",
            "staging",
            "--direct",
        ])
        .await;
    assert_success(&out);
    assert_eq!(
        s.file("main", RPI4),
        staging.replace("    - tested\n", "    - tested\n    - candidate\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untag_removes_only_the_tag_lines_and_the_last_one_its_key() {
    let s = Setup::new().await;
    let qemu = "environments/dev/autosd-cs9-qemu.yaml";
    let before = s.file("main", BOARDS);

    let out = s
        .run(&[
            "catalog",
            "untag",
            "autosd-cs9-arm-boards",
            "multi-board",
            "--dry-run",
        ])
        .await;
    assert_success(&out);
    assert_stdout(&out, "-  tags:\n-    - multi-board\n");
    assert_eq!(s.file("main", BOARDS), before, "--dry-run changes nothing");

    let out = s
        .run(&[
            "catalog",
            "untag",
            "autosd-cs9-arm-boards",
            "multi-board",
            "--direct",
        ])
        .await;
    assert_success(&out);
    assert_stderr(&out, "✓ Untagged successfully");
    assert_eq!(
        s.file("main", BOARDS),
        before.replace("  tags:\n    - multi-board\n", "")
    );

    // An entry with more tags loses only the line of the one removed.
    let qemu_before = s.file("main", qemu);
    let out = s
        .run(&["catalog", "tag", "autosd-cs9-qemu", "tested", "--direct"])
        .await;
    assert_success(&out);
    let out = s
        .run(&["catalog", "untag", "autosd-cs9-qemu", "nightly", "--direct"])
        .await;
    assert_success(&out);
    assert_eq!(
        s.file("main", qemu),
        qemu_before.replace("    - nightly\n", "    - tested\n")
    );
    let out = s
        .run(&["catalog", "untag", "autosd-cs9-qemu", "nightly"])
        .await;
    assert_success(&out);
    assert_stderr(&out, "does not carry nightly; nothing to do");
}

const RPI4: &str = "environments/staging/autosd-cs9-rpi4.yaml";
const RPI4_PROD: &str = "environments/production/autosd-cs9-rpi4.yaml";
const OLD_URL: &str = "quay.io/centos-automotive/autosd:cs9-rpi4-v1.0.0";
const NEW_URL: &str = "quay.io/centos-automotive/autosd:cs9-rpi4-v1.1.0";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_changes_only_the_image_unless_all_fields() {
    let s = Setup::new().await;
    let old_digest = "sha256:4c7a9f1e2b3d5a6c8e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d";
    let new_digest = format!("sha256:{}", "5".repeat(64));
    // Staging moves to a new build, with staging's own tags and notes.
    let staging = s
        .file("main", RPI4)
        .replace(OLD_URL, NEW_URL)
        .replace(old_digest, &new_digest)
        .replace("    - tested\n", "    - tested\n    - rc\n")
        .replace("Tested on Pi 4 Model B (8GB)", "Tested on Pi 5");
    s.remote
        .commit("main", "staging: v1.1.0", &[Change::write(RPI4, staging)])
        .unwrap();
    let production = s.file("main", RPI4_PROD);

    // Default: the target keeps its tags, verificationInterval, notes, comments and quoting.
    let promote = [
        "catalog",
        "promote",
        "autosd-cs9-rpi4",
        "--to",
        "production",
    ];
    let out = s.command(&promote).arg("--direct").output().await.unwrap();
    assert_success(&out);
    let expected = production
        .replace(OLD_URL, NEW_URL)
        .replace(old_digest, &new_digest);
    assert_eq!(s.file("main", RPI4_PROD), expected);
    let message = commit_info(&s.remote, "main", "%B");
    assert!(
        message.contains("No evidence from staging: the cluster was not asked"),
        "{message}"
    );

    // --all-fields: staging's whole spec, still edited line by line.
    let out = s
        .command(&promote)
        .args(["--all-fields", "--direct"])
        .output()
        .await
        .unwrap();
    assert_success(&out);
    assert_eq!(
        s.file("main", RPI4_PROD),
        expected
            .replace(
                "    - production\n    - tested\n",
                "    - tested\n    - rc\n"
            )
            .replace("Tested on Pi 4 Model B (8GB)", "Tested on Pi 5")
    );
}
