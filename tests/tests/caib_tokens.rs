//! caib's tokens go only where the user meant: the forge API of the catalog remote's own host
//! (catalog.yaml cannot point it elsewhere, only `CAIB_FORGE_API_URL` can), never in clear
//! off the machine, never along a redirect to another host, and never into its output.
//!
//! "Another host" here is 127.0.0.2: loopback like the git remote's 127.0.0.1, so the test
//! needs no network, but a different host name. The port is not part of the host (see
//! caib's `transport` module), so a forge on 127.0.0.1 at another port is the same host.

use std::net::{IpAddr, Ipv4Addr};
use std::process::Output;

use catalog_e2e::forge::{FakeForge, Provider};
use catalog_e2e::git::{Change, RedirectingRemote, SmartHttp};

use catalog_e2e::suite::write as support;
use support::*;

const OTHER_HOST: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// Rewrites catalog.yaml's `forge` to `provider`, with `api_url` when given.
fn set_forge(s: &Setup, provider: &str, api_url: Option<&str>) {
    let config = s.file("main", "catalog.yaml");
    let api = api_url.map_or(String::new(), |u| format!("\n  apiUrl: {u}"));
    let config = config.replace("provider: github", &format!("provider: {provider}{api}"));
    s.remote
        .commit("main", "forge", &[Change::write("catalog.yaml", config)])
        .unwrap();
}

/// `caib catalog add NAME` with the forge API URL left to catalog.yaml and the remote.
async fn add_without_api_env(s: &Setup, name: &str) -> Output {
    s.command(&[])
        .args(org_add_args(name))
        .env_remove("CAIB_FORGE_API_URL")
        .output()
        .await
        .unwrap()
}

/// Asserts no `secret` appears in anything caib printed.
#[track_caller]
fn assert_never_printed(out: &Output, secrets: &[&str]) {
    let all = show(out);
    for secret in secrets {
        assert!(!all.contains(secret), "{secret:?} printed:\n{all}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_api_url_on_another_host_is_refused_and_never_asked() {
    let s = Setup::new().await;
    let other = FakeForge::start_on(OTHER_HOST, Some(TOKEN.into())).await;
    set_forge(&s, "github", Some(&other.github_url()));
    let refs = s.refs();

    let out = add_without_api_env(&s, "ref").await;
    assert!(other.requests().is_empty(), "{:#?}", other.requests());
    assert_exit(&out, 2, "catalog.yaml forge.apiUrl");
    for needle in ["127.0.0.2", "127.0.0.1", "CAIB_FORGE_API_URL"] {
        assert_stderr(&out, needle);
    }
    assert!(s.forge.requests().is_empty());
    assert_eq!(s.refs(), refs, "nothing was pushed");

    // Premise: that forge is reachable and answers, and the user may choose it explicitly.
    let out = s
        .command(&[])
        .args(org_add_args("ref"))
        .env("CAIB_FORGE_API_URL", other.github_url())
        .output()
        .await
        .unwrap();
    assert_success(&out);
    let creates = other.requests_matching("POST", "/pulls");
    assert_eq!(creates.len(), 1, "{:#?}", other.requests());
    let bearer = format!("Bearer {TOKEN}");
    assert_eq!(creates[0].header("authorization"), Some(bearer.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_api_url_on_the_remote_host_is_used() {
    let s = Setup::new().await;
    // Same host as the remote (127.0.0.1), another port: the port is not part of the host.
    assert_ne!(s.forge.url(), format!("http://{}", s.http.addr()));
    set_forge(&s, "gitea", Some(&s.forge.gitea_url()));
    let out = add_without_api_env(&s, "ref").await;
    assert_success(&out);
    let prs = s.forge.pull_requests(Provider::Gitea, FORGE_REPO);
    assert_eq!(prs.len(), 1, "{:#?}", s.forge.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forge_token_never_follows_a_redirect_to_another_host() {
    let s = Setup::new().await;
    // GitLab's PRIVATE-TOKEN: the header an HTTP client does not strip on its own.
    set_forge(&s, "gitlab", None);
    let target = FakeForge::start_on(OTHER_HOST, None).await;
    let redirector = RedirectingRemote::start(target.url()).await.unwrap();
    let refs = s.refs();
    let out = s
        .command(&[])
        .args(org_add_args("ref"))
        .env(
            "CAIB_FORGE_API_URL",
            format!("{}/api/v4", redirector.base_url()),
        )
        .output()
        .await
        .unwrap();
    assert!(redirector.requests() > 0, "caib asked the redirecting API");
    let leaked = target.requests();
    assert!(
        leaked.is_empty(),
        "the redirect target was asked: {leaked:#?}"
    );
    assert_exit(&out, 1, "redirected (301)");
    assert_stderr(&out, "CAIB_FORGE_API_URL");
    assert_eq!(
        s.refs(),
        refs,
        "nothing was pushed without its pull request"
    );
    assert_never_printed(&out, &[TOKEN]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_in_the_remote_user_name_is_never_printed() {
    const URL_TOKEN: &str = "ghp_urlTok3nInUserName";
    let s = Setup::new().await;
    // The remote accepts the token as the user name (and CAIB_GIT_TOKEN as the password).
    let http = SmartHttp::start(s.remote.base_path(), URL_TOKEN, TOKEN)
        .await
        .unwrap();
    let url = http
        .url(&s.remote)
        .replacen("http://", &format!("http://{URL_TOKEN}@"), 1);

    for verbose in ["-v", "-vv"] {
        let name = format!("ok{}", verbose.len());
        let out = s
            .command_for(&url, &[verbose])
            .args(org_add_args(&name))
            .output()
            .await
            .unwrap();
        assert_success(&out);
        assert_stdout(&out, "Pull request:");
        assert_never_printed(&out, &[URL_TOKEN, TOKEN]);
    }
    assert!(
        http.requests() > 0,
        "the pushes went through the token remote"
    );

    // A failing fetch names the remote: redacted.
    let missing = url.replace("/catalog.git", "/missing.git");
    let out = s
        .command_for(&missing, &["-v"])
        .args(org_add_args("ref"))
        .output()
        .await
        .unwrap();
    assert!(!out.status.success(), "{}", show(&out));
    assert_stderr(&out, "http://***@127.0.0.1");
    assert_stderr(&out, "/missing.git");
    assert_never_printed(&out, &[URL_TOKEN, TOKEN]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_never_sent_in_clear_off_the_machine() {
    let s = Setup::new().await;
    // A plain-http remote on a real host name (`.invalid` never resolves: refused before
    // any lookup, or the error would be a DNS one).
    let out = s
        .command_for("http://ghp_clear@git.example.invalid/catalog.git", &[])
        .args(org_add_args("ref"))
        .output()
        .await
        .unwrap();
    assert_exit(
        &out,
        2,
        "--catalog-repo http://***@git.example.invalid/catalog.git",
    );
    assert_stderr(&out, "https");
    assert_never_printed(&out, &["ghp_clear", TOKEN]);

    // A plain-http forge API: refused before the push, so no branch is left behind.
    let refs = s.refs();
    let out = s
        .command(&[])
        .args(org_add_args("ref"))
        .env("CAIB_FORGE_API_URL", "http://forge.example.invalid/api/v3")
        .output()
        .await
        .unwrap();
    assert_exit(
        &out,
        2,
        "CAIB_FORGE_API_URL http://forge.example.invalid/api/v3",
    );
    assert_stderr(&out, "only over https");
    assert_eq!(s.refs(), refs);
    assert_never_printed(&out, &[TOKEN]);
}
