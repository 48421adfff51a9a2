//! Where caib gets its Git credentials and commit author when no variable is set: git's own
//! configuration (a credential helper, `user.name`/`user.email`), as a developer's machine has;
//! and the catalog repository from caib's own config file.

use catalog_e2e::suite::write as support;
use support::*;

/// Leaves caib only git's own configuration for the token and the author.
fn from_git_config(cmd: &mut tokio::process::Command) -> &mut tokio::process::Command {
    cmd.env_remove("CAIB_GIT_TOKEN")
        .env_remove("GIT_AUTHOR_NAME")
        .env_remove("GIT_AUTHOR_EMAIL")
}

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
    let mut direct = org_add_args("ref");
    direct.push("--direct".into());
    let out = from_git_config(s.command(&[]).args(&direct))
        .output()
        .await
        .unwrap();
    assert_success(&out);
    assert_eq!(
        commit_info(&s.remote, "main", "%an <%ae>"),
        "Config Person <config@example.com>"
    );
    assert!(s.remote.read("main", "environments/dev/ref.yaml").is_some());

    // Git works through the helper, but there is no token for the forge: refused (exit 3)
    // before anything is pushed, so no branch is left without its pull request.
    let refs = s.refs();
    let out = from_git_config(s.command(&[]).args(org_add_args("other")))
        .output()
        .await
        .unwrap();
    assert_exit(&out, 3, "GITHUB_TOKEN");
    assert_eq!(s.refs(), refs);
    assert!(s.forge.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_runs_share_the_cache_safely() {
    let s = Setup::new().await;
    let add = |name: &'static str| {
        let mut cmd = s.command(&[]);
        cmd.args(org_add_args(name)).arg("--direct");
        cmd.output()
    };
    let (a, b, c) = tokio::join!(add("one"), add("two"), add("three"));
    for out in [a, b, c] {
        let out = out.unwrap();
        assert_success(&out);
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
        .command_without_repo(&[])
        .args(org_add_args("ref"))
        .arg("--direct")
        .output()
        .await
        .unwrap();
    assert_success(&out);
    assert!(
        s.remote
            .read("main", "environments/staging/ref.yaml")
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_never_follows_a_redirect_to_another_host() {
    let s = Setup::new().await;
    // The catalog remote answered under another host name: off-site for git.
    let redirector = catalog_e2e::git::RedirectingRemote::start(format!(
        "http://localhost:{}",
        s.http.addr().port()
    ))
    .await
    .unwrap();
    let url = redirector
        .url(s.remote.name())
        .replacen("http://", &format!("http://{USER}@"), 1);
    let mut args = org_add_args("ref");
    args.push("--dry-run".into());
    let out = s.command_for(&url, &[]).args(&args).output().await.unwrap();
    assert!(!out.status.success(), "{}", show(&out));
    assert!(
        redirector.requests() > 0,
        "caib asked the redirecting remote"
    );
    assert_eq!(
        s.http.requests(),
        0,
        "the redirect target never saw the token"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot redirect"), "{stderr}");
    assert!(!stderr.contains(TOKEN), "{stderr}");
}
