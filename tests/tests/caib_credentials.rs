//! Where caib gets its Git credentials and commit author when no variable is set: git's own
//! configuration (a credential helper, `user.name`/`user.email`), as a developer's machine has;
//! and the catalog repository from caib's own config file.

#[path = "support/write_setup.rs"]
mod support;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_helper_and_git_config_author() {
    let s = Setup::new().await;
    let home = s.home.path();
    // `git credential-store` with the remote's password, and an identity in ~/.gitconfig.
    let addr = s.http.addr();
    std::fs::write(
        home.join(".git-credentials"),
        format!("http://{USER}:{TOKEN}@{addr}\n"),
    )
    .unwrap();
    std::fs::write(
        home.join(".gitconfig"),
        "[credential]\n\thelper = store\n[user]\n\tname = Config Person\n\temail = config@example.com\n",
    )
    .unwrap();
    let out = s
        .command(&[
            "catalog",
            "add",
            "ref",
            "quay.io/org/ref:v1",
            "--architecture",
            "amd64",
            "--distro",
            "cs9",
            "--no-verify",
            "--direct",
        ])
        .env_remove("CAIB_GIT_TOKEN")
        .env_remove("GIT_AUTHOR_NAME")
        .env_remove("GIT_AUTHOR_EMAIL")
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(
        commit_info(&s.remote, "main", "%an <%ae>"),
        "Config Person <config@example.com>"
    );
    assert!(s.remote.read("main", "environments/dev/ref.yaml").is_some());

    // Git works through the helper, but there is no token for the forge: refused (exit 3)
    // before anything is pushed, so no branch is left without its pull request.
    let refs = s.refs();
    let out = s
        .command(&[
            "catalog",
            "add",
            "other",
            "quay.io/org/other:v1",
            "--architecture",
            "amd64",
            "--distro",
            "cs9",
            "--no-verify",
        ])
        .env_remove("CAIB_GIT_TOKEN")
        .env_remove("GIT_AUTHOR_NAME")
        .env_remove("GIT_AUTHOR_EMAIL")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    assert!(text(&out.stderr).contains("GITHUB_TOKEN"), "{}", show(&out));
    assert_eq!(s.refs(), refs);
    assert!(s.forge.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_runs_share_the_cache_safely() {
    let s = Setup::new().await;
    let add = |name: &'static str| {
        let url = format!("quay.io/org/{name}:v1");
        let mut cmd = s.command(&[]);
        cmd.args([
            "catalog",
            "add",
            name,
            &url,
            "--architecture",
            "amd64",
            "--distro",
            "cs9",
            "--no-verify",
            "--direct",
        ]);
        cmd.output()
    };
    let (a, b, c) = tokio::join!(add("one"), add("two"), add("three"));
    for out in [a, b, c] {
        let out = out.unwrap();
        assert!(out.status.success(), "{}", show(&out));
    }
    for name in ["one", "two", "three"] {
        assert!(
            s.remote
                .read("main", &format!("environments/dev/{name}.yaml"))
                .is_some(),
            "{name} missing"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_repo_from_the_config_file() {
    let s = Setup::new().await;
    let config = s.home.path().join("config/caib");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("config.yaml"),
        format!("catalogRepo: {}\nenv: staging\n", s.url()),
    )
    .unwrap();
    let out = s
        .command_without_repo(&[
            "catalog",
            "add",
            "ref",
            "quay.io/org/ref:v1",
            "--architecture",
            "amd64",
            "--distro",
            "cs9",
            "--no-verify",
            "--direct",
        ])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        s.remote
            .read("main", "environments/staging/ref.yaml")
            .is_some()
    );
}
