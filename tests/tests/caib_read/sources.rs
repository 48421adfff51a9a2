//! `caib catalog status`, `caib catalog diff` and `caib images list`.

use super::*;

#[tokio::test]
async fn status_lists_sources_and_details_one() {
    let h = Harness::new();
    let client = h.client();
    let run = h.caib(&["catalog", "status"]);
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (0, "No catalog sources found\n"),
        "{run:?}"
    );

    let api: Api<CatalogSource> = Api::namespaced(client.clone(), "default");
    let source: CatalogSource = serde_json::from_value(json!({
        "apiVersion": "automotive.sdv.cloud.redhat.com/v1alpha1", "kind": "CatalogSource",
        "metadata": {"name": "dev"},
        "spec": {"url": "https://git.example.com/platform/catalog.git", "ref": {"branch": "main"}, "path": "environments/dev"}
    }))
    .unwrap();
    api.create(&PostParams::default(), &source).await.unwrap();
    fixture::patch_status(&api, "dev", json!({
        "lastAppliedRevision": REVISION,
        "conditions": [condition("Ready", "False", "1 invalid entry")],
        "summary": {"entries": 12, "applied": 11, "invalid": 1, "available": 9, "unavailable": 1, "failed": 1, "pending": 0},
        "invalidEntries": [{"path": "environments/dev/broken.yaml", "line": 7, "column": 5, "message": "spec.registryUrl: invalid reference"}],
        "invalidEntriesTotal": 150,
        "history": [{"revision": REVISION, "time": "2026-01-04T14:00:00Z", "created": 2, "updated": 1, "pruned": 0, "durationMs": 84}]
    }))
    .await;

    let run = table(
        &h,
        &["catalog", "status"],
        &[
            "NAME",
            "URL",
            "REVISION",
            "READY",
            "ENTRIES",
            "AVAILABLE",
            "UNAVAILABLE",
            "INVALID",
            "AGE",
        ],
    );
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        cells(lines[1])[..8],
        [
            "dev",
            "https://git.example.com/platform/catalog.git",
            "4f2a9c0d1e2b",
            "False",
            "12",
            "9",
            "2",
            "1"
        ]
    );

    let run = h.caib(&["catalog", "status", "dev"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains("  environments/dev/broken.yaml:7:5: spec.registryUrl: invalid reference\n"),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("\nInvalid entries (the first 1 of 150):\n"),
        "{run:?}"
    );
    assert!(run.stdout.contains("History:\n"), "{run:?}");
    assert!(
        run.stdout
            .contains(&format!("Applied Revision:  {REVISION}")),
        "{run:?}"
    );

    let run = h.caib(&["catalog", "status", "prod"]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(
        run.stderr.contains("catalog source \"prod\" not found"),
        "{run:?}"
    );
    let run = h.caib(&["catalog", "status", "-o", "json"]);
    let list: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(list["items"][0]["status"]["summary"]["entries"], 12);
}

/// `--entries` lists what the source owns, from the CatalogImages: its label *and* its
/// namespace in the source-namespace annotation, in its target namespace.
#[tokio::test]
async fn status_entries_lists_the_catalog_images_the_source_owns() {
    let h = Harness::new();
    let client = h.client();
    ensure_namespace(&client, "catalog-dev").await;
    let api: Api<CatalogSource> = Api::namespaced(client.clone(), "default");
    let source: CatalogSource = serde_json::from_value(json!({
        "apiVersion": "automotive.sdv.cloud.redhat.com/v1alpha1", "kind": "CatalogSource",
        "metadata": {"name": "dev"},
        "spec": {"url": "https://git.example.com/platform/catalog.git", "path": "environments/dev",
                 "targetNamespace": "catalog-dev"}
    }))
    .unwrap();
    api.create(&PostParams::default(), &source).await.unwrap();
    let spec = json!({"registryUrl": "quay.io/org/x:1"});
    let label = json!({"automotive.sdv.cloud.redhat.com/catalog-source": "dev"});
    let owned = |ns: &str, name: &str| {
        json!({"automotive.sdv.cloud.redhat.com/source-namespace": ns,
               "automotive.sdv.cloud.redhat.com/source-path": format!("environments/dev/{name}.yaml")})
    };
    for name in ["b-image", "a-image"] {
        let annotations = owned("default", name);
        put(
            &client,
            "catalog-dev",
            name,
            spec.clone(),
            Some(label.clone()),
            annotations,
            None,
        )
        .await;
    }
    // Same label, but another namespace's source "dev", or no source namespace at all.
    let theirs = owned("team-b", "theirs");
    put(
        &client,
        "catalog-dev",
        "theirs",
        spec.clone(),
        Some(label.clone()),
        theirs,
        None,
    )
    .await;
    put(
        &client,
        "catalog-dev",
        "label-only",
        spec.clone(),
        Some(label),
        json!({}),
        None,
    )
    .await;

    let run = table(
        &h,
        &["catalog", "status", "dev", "--entries"],
        &["NAME", "PATH"],
    );
    let rows: Vec<Vec<&str>> = run.stdout.lines().skip(1).map(cells).collect();
    assert_eq!(
        rows,
        [
            ["a-image", "environments/dev/a-image.yaml"],
            ["b-image", "environments/dev/b-image.yaml"]
        ],
        "{run:?}"
    );
    let run = h.caib(&["catalog", "status", "dev", "--entries", "-o", "json"]);
    let document: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        document["entries"].as_array().map(Vec::len),
        Some(2),
        "{run:?}"
    );
    assert_eq!(document["namespace"], "catalog-dev");

    let run = h.caib(&["catalog", "status", "--entries"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("give its NAME"), "{run:?}");
}

#[tokio::test]
async fn diff_compares_the_repository_with_the_cluster() {
    let h = Harness::new();
    let client = h.client();
    let repo = h.dir.path().join("catalog");
    write(
        &repo,
        "catalog.yaml",
        "environments:\n  - name: dev\n    path: environments/dev\n  - name: production\n    path: environments/production\n    requireDigest: true\n",
    );
    write(&repo, "environments/production/.keep", "");
    let entry = |name: &str, tag: &str| {
        format!(
            "apiVersion: automotive.sdv.cloud.redhat.com/v1alpha1\nkind: CatalogImage\nmetadata:\n  name: {name}\nspec:\n  registryUrl: quay.io/org/{name}:{tag}\n  metadata:\n    architecture: arm64\n    distro: cs9\n"
        )
    };
    write(&repo, "environments/dev/same.yaml", &entry("same", "v1"));
    write(
        &repo,
        "environments/dev/changed.yaml",
        &entry("changed", "v2"),
    );
    write(&repo, "environments/dev/added.yaml", &entry("added", "v1"));
    let live = |tag: &str| json!({"registryUrl": format!("quay.io/org/x:{tag}"), "metadata": {"architecture": "arm64", "distro": "cs9"}});
    // The source syncing environments/dev into default: its entries are what the sync owns
    // (label and source-namespace annotation); a hand-made object is nobody's.
    let sources: Api<CatalogSource> = Api::namespaced(client.clone(), "default");
    let source: CatalogSource = serde_json::from_value(json!({
        "apiVersion": "automotive.sdv.cloud.redhat.com/v1alpha1", "kind": "CatalogSource",
        "metadata": {"name": "dev"},
        "spec": {"url": "https://git.example.com/platform/catalog.git", "path": "environments/dev"}
    }))
    .unwrap();
    sources
        .create(&PostParams::default(), &source)
        .await
        .unwrap();
    let owned = json!({"automotive.sdv.cloud.redhat.com/source-namespace": "default"});
    // Owned as the sync leaves its objects: the spec-derived labels and the source's label.
    let put_owned = |name: &'static str, spec: Value, annotations: Value, status: Option<Value>| {
        let client = client.clone();
        async move {
            let mut labels = catalog_api::labels::spec_labels(
                &serde_json::from_value::<CatalogImageSpec>(spec.clone()).unwrap(),
            );
            labels.insert(
                "automotive.sdv.cloud.redhat.com/catalog-source".into(),
                "dev".into(),
            );
            put(
                &client,
                "default",
                name,
                spec,
                Some(json!(labels)),
                annotations,
                status,
            )
            .await;
        }
    };
    let mut same = live("v1");
    same["registryUrl"] = json!("quay.io/org/same:v1");
    let mut annotations = owned.clone();
    annotations["automotive.sdv.cloud.redhat.com/source-revision"] = json!(REVISION);
    let available = Some(json!({"phase": "Available"}));
    put_owned("same", same, annotations, available).await;
    let mut changed = live("v1");
    changed["registryUrl"] = json!("quay.io/org/changed:v1");
    put_owned("changed", changed, owned.clone(), None).await;
    put_owned("removed", live("v1"), owned.clone(), None).await;
    put_synced(&client, "default", "by-hand", live("v1")).await;

    let repo_arg = repo.to_str().unwrap();
    let diff_dev = || {
        h.caib(&[
            "catalog",
            "diff",
            "--catalog-repo",
            repo_arg,
            "--env",
            "dev",
        ])
    };
    let run = diff_dev();
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout
            .contains("--- cluster/default/changed\n+++ environments/dev/changed.yaml\n"),
        "{run:?}"
    );
    assert!(
        run.stdout.contains(
            "-  registryUrl: quay.io/org/changed:v1\n+  registryUrl: quay.io/org/changed:v2\n"
        ),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("--- /dev/null\n+++ environments/dev/added.yaml\n"),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("--- cluster/default/removed\n+++ /dev/null\n"),
        "{run:?}"
    );
    assert!(
        !run.stdout.contains("same"),
        "an equal entry is not shown: {run:?}"
    );
    assert!(
        !run.stdout.contains("by-hand") && !run.stderr.contains("by-hand"),
        "a CatalogImage no source owns is never removed by the sync: {run:?}"
    );
    assert!(
        run.stderr.contains("1 to add, 1 to change, 1 to remove"),
        "{run:?}"
    );

    // From inside the checkout, without --catalog-repo.
    let mut cmd = h.command();
    let run: Run = cmd
        .current_dir(&repo)
        .args(["catalog", "diff", "--env", "dev"])
        .output()
        .unwrap()
        .into();
    assert_eq!(run.code, 1, "{run:?}");

    // Make them equal: exit 0.
    std::fs::remove_file(repo.join("environments/dev/added.yaml")).unwrap();
    write(
        &repo,
        "environments/dev/changed.yaml",
        &entry("changed", "v1"),
    );
    write(
        &repo,
        "environments/dev/removed.yaml",
        &entry("removed", "v1").replace("quay.io/org/removed:v1", "quay.io/org/x:v1"),
    );
    let run = diff_dev();
    assert_eq!((run.code, run.stdout.as_str()), (0, ""), "{run:?}");
    assert!(run.stderr.contains("No differences"), "{run:?}");

    // A remote URL: read through caib's cached clone of the repository.
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .current_dir(&repo)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
    };
    let commit_all = |message: &str| {
        git(&["add", "-A"]);
        git(&[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "commit",
            "-qm",
            message,
        ]);
    };
    git(&["init", "-q", "-b", "main"]);
    commit_all("catalog");
    let url = format!("file://{}", repo.display());
    let run = h.caib(&["catalog", "diff", "--catalog-repo", &url, "--env", "dev"]);
    assert_eq!((run.code, run.stdout.as_str()), (0, ""), "{run:?}");
    std::fs::remove_file(repo.join("environments/dev/removed.yaml")).unwrap();
    commit_all("remove");
    let run = h.caib(&["catalog", "diff", "--catalog-repo", &url, "--env", "dev"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout
            .contains("--- cluster/default/removed\n+++ /dev/null\n"),
        "{run:?}"
    );

    // Without --env: no CatalogSource targets the namespace, so caib names the candidates.
    sources.delete("dev", &Default::default()).await.unwrap();
    let run = h.caib(&["catalog", "diff", "--catalog-repo", repo_arg]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("--env is required: no CatalogSource targets namespace \"default\"")
            && run
                .stderr
                .contains("dev (environments/dev), production (environments/production)"),
        "{run:?}"
    );
    // One CatalogSource syncs environments/dev into the namespace: that is the environment.
    let sources: Api<CatalogSource> = Api::namespaced(client.clone(), "default");
    let source = |name: &str, path: &str| -> CatalogSource {
        serde_json::from_value(json!({
            "apiVersion": "automotive.sdv.cloud.redhat.com/v1alpha1", "kind": "CatalogSource",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"url": url, "path": path}
        }))
        .unwrap()
    };
    sources
        .create(&PostParams::default(), &source("dev", "./environments/dev"))
        .await
        .unwrap();
    let run = h.caib(&["catalog", "diff", "--catalog-repo", repo_arg]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout
            .contains("--- cluster/default/removed\n+++ /dev/null\n"),
        "{run:?}"
    );
    // Two sources for two environments: caib will not guess.
    sources
        .create(
            &PostParams::default(),
            &source("prod", "environments/production"),
        )
        .await
        .unwrap();
    let run = h.caib(&["catalog", "diff", "--catalog-repo", repo_arg]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains(
            "2 CatalogSources target namespace \"default\": default/dev (./environments/dev → dev), \
             default/prod (environments/production → production)"
        ),
        "{run:?}"
    );

    // Bad flag values.
    let run = h.caib(&["catalog", "diff", "--catalog-repo", repo_arg, "--env", "qa"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("--env qa"), "{run:?}");
}

#[tokio::test]
async fn images_list_shows_imagebuilds() {
    let h = Harness::new();
    let client = h.client();
    let run = h.caib(&["images", "list"]);
    assert_eq!(run.code, 1, "no ImageBuild CRD yet: {run:?}");

    // The operator's CRD, applied at runtime.
    fixture::create_imagebuild_crd(&client).await;
    let run = eventually(
        Duration::from_secs(10),
        "the ImageBuild CRD to be served",
        || async {
            let run = h.caib(&["images", "list"]);
            (run.code == 0).then_some(run)
        },
    )
    .await;
    assert_eq!(run.stderr, "No ImageBuilds found\n", "{run:?}");

    for (name, spec, phase) in [
        (
            "my-custom-build",
            json!({"architecture": "arm64", "aib": {"distro": "cs9", "target": "raspberry-pi"},
                                    "export": {"container": "quay.io/my-org/custom-build:v1.0.0"}}),
            "Completed",
        ),
        (
            "disk-build",
            json!({"architecture": "amd64", "aib": {"distro": "autosd10", "target": "qemu"},
                               "export": {"format": "qcow2", "disk": {"oci": "quay.io/my-org/disk:v2"}}}),
            "Building",
        ),
    ] {
        fixture::put_imagebuild(&client, "default", name, spec, phase).await;
    }
    let run = table(
        &h,
        &["images", "list"],
        &[
            "NAME",
            "PHASE",
            "ARCHITECTURE",
            "DISTRO",
            "TARGET",
            "IMAGE",
            "AGE",
        ],
    );
    let lines: Vec<&str> = run.stdout.lines().collect();
    let mut rows: Vec<Vec<&str>> = lines[1..].iter().map(|l| cells(l)[..6].to_vec()).collect();
    rows.sort();
    assert_eq!(
        rows,
        [
            vec![
                "disk-build",
                "Building",
                "amd64",
                "autosd10",
                "qemu",
                "quay.io/my-org/disk:v2"
            ],
            vec![
                "my-custom-build",
                "Completed",
                "arm64",
                "cs9",
                "raspberry-pi",
                "quay.io/my-org/custom-build:v1.0.0"
            ],
        ]
    );
    let run = h.caib(&["images", "list", "-o", "json"]);
    let list: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
}
