//! `caib catalog get`, the cluster errors users meet, the config file, completion and man pages.

use super::*;

#[tokio::test]
async fn get_shows_the_quickstart_view_and_full_objects() {
    let h = Harness::new();
    catalog(&h.client()).await;
    let run = h.caib(&["catalog", "get", "my-catalog-image"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        r#"metadata:
  name: my-catalog-image
  namespace: default
spec:
  registryUrl: quay.io/my-org/automotive-image:v1.0.0
  digest: sha256:1111111111111111111111111111111111111111111111111111111111111111
  tags:
    - production
    - automotive
  verificationInterval: 1h
  metadata:
    architecture: arm64
    distro: cs9
    distroVersion: "9.4"
    targets:
      - name: raspberry-pi
        verified: true
        notes: Tested on Pi 4 Model B
    bootcCapable: true
"#
    );
    let run = h.caib(&["catalog", "get", "autosd-cs9-rpi4"]);
    assert!(
        run.stdout
            .contains("status:\n  phase: Available\n  registryMetadata:\n"),
        "{run:?}"
    );

    let run = h.caib(&["catalog", "get", "autosd-cs9-rpi4", "--output", "json"]);
    let obj: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(obj["kind"], "CatalogImage");
    assert_eq!(
        obj["metadata"]["labels"]["automotive.sdv.cloud.redhat.com/architecture"],
        "arm64"
    );
    assert!(obj["metadata"].get("managedFields").is_none());
    let run = h.caib(&["catalog", "get", "autosd-cs9-rpi4", "-o", "yaml"]);
    let obj: Value = serde_saphyr::from_str(&run.stdout).unwrap();
    assert_eq!(obj["status"]["phase"], "Available");

    let run = h.caib(&["catalog", "get", "nope"]);
    assert_eq!(run.code, 4, "{run:?}");
    assert_eq!(
        run.stderr,
        "Error: catalog image \"nope\" not found in namespace \"default\"\n"
    );
    let run = h.caib(&["catalog", "get", "autosd-cs9-rpi4", "-n", "team-b"]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.stderr.contains("in namespace \"team-b\""), "{run:?}");
}

#[tokio::test]
async fn cluster_errors_have_hints_and_exit_codes() {
    let h = Harness::new();

    // No kubeconfig anywhere.
    let mut cmd = h.command();
    let run: Run = cmd
        .env_remove("KUBECONFIG")
        .args(["catalog", "list"])
        .output()
        .unwrap()
        .into();
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("no kubeconfig found") && run.stderr.contains("KUBECONFIG"),
        "{run:?}"
    );

    // A kubeconfig file that does not exist.
    let mut cmd = h.command();
    let run: Run = cmd
        .env("KUBECONFIG", h.dir.path().join("missing"))
        .args(["catalog", "list"])
        .output()
        .unwrap()
        .into();
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("does not exist"), "{run:?}");

    // Unknown context.
    let run = h.caib(&["catalog", "list", "--context", "prod"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("--context prod"), "{run:?}");

    // Unreachable API server: a port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let unreachable = h.dir.path().join("unreachable");
    std::fs::write(
        &unreachable,
        h.emu
            .kubeconfig()
            .replace(&h.emu.url(), &format!("http://{closed}")),
    )
    .unwrap();
    let run = h.caib(&[
        "catalog",
        "list",
        "--kubeconfig",
        unreachable.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("cannot reach the Kubernetes API server"),
        "{run:?}"
    );

    // CRDs not installed.
    let bare = Harness::with(EmulatorOptions::default());
    let run = bare.caib(&["catalog", "list"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("kubectl apply -f crds/"), "{run:?}");
    let run = bare.caib(&["catalog", "get", "x"]);
    assert!(run.stderr.contains("kubectl apply -f crds/"), "{run:?}");
    let run = bare.caib(&["images", "list"]);
    assert!(run.stderr.contains("automotive-dev-operator"), "{run:?}");

    // 401 and 403.
    let secured = Harness::with(EmulatorOptions {
        token: Some("good".into()),
        forbidden_token: Some("forbidden".into()),
        ..EmulatorOptions::with_crds(fixture::crds_dir())
    });
    for (token, what) in [
        (None, "401"),
        (Some("wrong"), "401"),
        (Some("forbidden"), "forbidden"),
    ] {
        let file = secured
            .dir
            .path()
            .join(format!("kc-{what}-{}", token.unwrap_or("none")));
        std::fs::write(&file, secured.emu.kubeconfig_with_token(token)).unwrap();
        let run = secured.caib(&["catalog", "list", "--kubeconfig", file.to_str().unwrap()]);
        assert_eq!(run.code, 3, "{token:?}: {run:?}");
        assert!(run.stderr.contains(what), "{token:?}: {run:?}");
    }
    let run = secured.caib(&["catalog", "list"]);
    assert_eq!(run.code, 0, "{run:?}");

    // A stuck API server: --timeout gives exit 6.
    h.emu.set_latency(Duration::from_secs(5));
    let run = h.caib(&["catalog", "list", "--timeout", "1s"]);
    assert_eq!(run.code, 6, "{run:?}");
    assert!(run.stderr.contains("--timeout 1s"), "{run:?}");
}

/// Plays the verification controller for one request: waits for the annotation, then writes
/// the status (with `lastHandledVerifyAt` echoing it).
#[test]
fn completion_and_man_pages() {
    let h = Harness::new();
    for shell in ["bash", "zsh", "fish"] {
        let run = h.caib(&["completion", shell]);
        assert_eq!(run.code, 0, "{shell}: {run:?}");
        assert!(
            run.stdout.contains("caib") && run.stdout.contains("catalog"),
            "{shell}: {run:?}"
        );
    }
    let run = h.caib(&["completion", "tcsh"]);
    assert_eq!(run.code, 2, "{run:?}");
    let dir = h.dir.path().join("man");
    let run = h.caib(&["manpages", dir.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{run:?}");
    let page = std::fs::read_to_string(dir.join("caib.1")).unwrap();
    assert!(page.contains(".TH caib"), "{page}");
}

#[test]
fn config_file_gives_defaults_and_flags_win() {
    let h = Harness::new();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = h.client();
        ensure_namespace(&client, "team-b").await;
        put_synced(
            &client,
            "team-b",
            "b-image",
            json!({"registryUrl": "quay.io/b:1"}),
        )
        .await;
        put_synced(
            &client,
            "default",
            "d-image",
            json!({"registryUrl": "quay.io/d:1"}),
        )
        .await;
    });
    let config = h.dir.path().join("home/.config/caib/config.yaml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, "namespace: team-b\noutput: wide\n").unwrap();
    let run = h.caib(&["catalog", "list"]);
    assert_eq!(names(&run.stdout), ["b-image"], "{run:?}");
    assert!(
        run.stdout.lines().next().unwrap().ends_with("REVISION"),
        "{run:?}"
    );
    let run = h.caib(&["catalog", "list", "-n", "default", "-o", "table"]);
    assert_eq!(names(&run.stdout), ["d-image"], "{run:?}");
    assert!(
        run.stdout.lines().next().unwrap().ends_with("AGE"),
        "{run:?}"
    );
    std::fs::write(&config, "namespce: team-b\n").unwrap();
    let run = h.caib(&["catalog", "list"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("config.yaml"), "{run:?}");
}
