//! `caib catalog remove` on a terminal asks before deleting; the terminal is a real pty from
//! util-linux `script`, the answer typed on it.

use std::process::Stdio;

use catalog_e2e::process::{binary, require_tool};
use tokio::io::AsyncWriteExt;

use catalog_e2e::suite::write as support;
use support::*;

/// Runs caib with `args` inside `script` (so its stdin is a terminal) and types `answer`.
async fn on_a_terminal(s: &Setup, args: &[&str], answer: &str) -> std::process::Output {
    let script = require_tool("script", "util-linux");
    let mut line = vec![
        binary("caib").display().to_string(),
        "--catalog-repo".into(),
        s.url(),
    ];
    line.extend(args.iter().map(|a| a.to_string()));
    let mut cmd = s.command(&[]);
    // `s.command` already holds caib and its flags; run `script` with the same environment.
    let env: Vec<(String, String)> = cmd
        .as_std()
        .get_envs()
        .filter_map(|(k, v)| Some((k.to_str()?.to_owned(), v?.to_str()?.to_owned())))
        .collect();
    cmd = tokio::process::Command::new(script);
    cmd.env_clear()
        .envs(env)
        .args(["-q", "-e", "-c", &line.join(" "), "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(answer.as_bytes()).await.unwrap();
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("caib answers")
        .unwrap();
    drop(stdin);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_asks_on_a_terminal() {
    let s = Setup::new().await;
    let refs = s.refs();
    let out = on_a_terminal(&s, &["catalog", "remove", "autosd-cs9-qemu"], "n\n").await;
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(all.contains("Remove \"autosd-cs9-qemu\""), "{}", show(&out));
    assert!(all.contains("Aborted; nothing changed."), "{}", show(&out));
    assert_eq!(s.refs(), refs);

    let out = on_a_terminal(&s, &["catalog", "remove", "autosd-cs9-qemu"], "y\n").await;
    assert!(out.status.success(), "{}", show(&out));
    assert!(s.remote.head("caib/remove/dev/autosd-cs9-qemu").is_some());
    assert_eq!(s.forge.requests_matching("POST", "/pulls").len(), 1);
}
