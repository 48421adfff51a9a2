//! `caib catalog list`: columns, filters, formats, paging, and the quickstart's jq pipeline.

use super::*;

#[tokio::test]
async fn list_shows_every_column_filter_and_format() {
    let h = Harness::new();
    catalog(&h.client()).await;

    let run = table(
        &h,
        &["catalog", "list"],
        &[
            "NAME",
            "REGISTRY",
            "ARCHITECTURE",
            "DISTRO",
            "TARGET",
            "PHASE",
            "AGE",
        ],
    );
    let lines: Vec<&str> = run.stdout.lines().collect();
    // Newest first; same second ordered by name.
    assert_eq!(
        names(&run.stdout),
        [
            "legacy",
            "my-catalog-image",
            "autosd-cs9-qemu",
            "autosd-cs9-rpi4"
        ],
        "{run:?}"
    );
    let rpi = cells(lines[4]);
    assert_eq!(
        &rpi[..6],
        [
            "autosd-cs9-rpi4",
            "quay.io/centos-automotive/autosd:cs9-rpi4",
            "arm64",
            "cs9",
            "raspberry-pi",
            "Available"
        ]
    );
    assert!(rpi[6].ends_with('s'), "AGE like kubectl: {}", rpi[6]);
    assert_eq!(
        &cells(lines[2])[2..6],
        ["arm64", "cs9", "raspberry-pi", "Pending"],
        "no status yet"
    );
    // Columns are aligned: every row's REGISTRY starts where the header's does.
    let col = lines[0].find("REGISTRY").unwrap();
    for line in &lines[1..] {
        assert_eq!(&line[col - 3..col], "   ", "{line}");
        assert_ne!(&line[col..col + 1], " ", "{line}");
    }

    let filter = |args: &[&str]| {
        let mut all = vec!["catalog", "list"];
        all.extend_from_slice(args);
        let run = h.caib(&all);
        assert_eq!(run.code, 0, "{args:?}: {run:?}");
        names(&run.stdout)
    };
    assert_eq!(
        filter(&["--architecture", "x86_64"]),
        ["legacy", "autosd-cs9-qemu"]
    );
    assert_eq!(
        filter(&["--architecture", "amd64"]),
        ["legacy", "autosd-cs9-qemu"]
    );
    assert_eq!(
        filter(&["--architecture", "arm64"]),
        ["my-catalog-image", "autosd-cs9-rpi4"]
    );
    assert_eq!(
        filter(&["--target", "raspberry-pi"]),
        ["legacy", "my-catalog-image", "autosd-cs9-rpi4"]
    );
    assert_eq!(
        filter(&["--target", "raspberry-pi", "--architecture", "arm64"]),
        ["my-catalog-image", "autosd-cs9-rpi4"]
    );
    assert_eq!(filter(&["--distro", "autosd10"]), ["legacy"]);
    assert_eq!(
        filter(&["--distro", "cs9", "--phase", "Available"]),
        ["autosd-cs9-rpi4"]
    );
    assert_eq!(filter(&["--phase", "failed"]), ["legacy"]);
    assert_eq!(
        filter(&["--tags", "production,automotive"]),
        ["my-catalog-image", "autosd-cs9-rpi4"]
    );
    assert_eq!(filter(&["--limit", "2"]), ["legacy", "my-catalog-image"]);
    assert_eq!(filter(&["-n", "team-b"]), ["other-ns"]);

    let run = h.caib(&["catalog", "list", "--tags", "production,missing"]);
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr.as_str()),
        (0, "", "No catalog images found\n")
    );

    let run = h.caib(&["catalog", "list", "-A"]);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(cells(lines[0])[..2], ["NAMESPACE", "NAME"], "{run:?}");
    assert!(
        lines
            .iter()
            .any(|l| cells(l)[..2] == ["team-b", "other-ns"]),
        "{run:?}"
    );
    assert_eq!(lines.len(), 6, "{run:?}");

    let run = h.caib(&["catalog", "list", "-o", "wide"]);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(cells(lines[0])[7..], ["DIGEST", "REVISION"], "{run:?}");
    assert_eq!(cells(lines[4])[7..], [DIGEST, REVISION], "{run:?}");
    assert_eq!(cells(lines[3])[7..], ["<none>", "<none>"], "{run:?}");

    let run = h.caib(&["catalog", "list", "--architecture", "arm64", "-o", "json"]);
    let list: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        (list["apiVersion"].as_str(), list["kind"].as_str()),
        (Some("v1"), Some("List"))
    );
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[1]["kind"], "CatalogImage");
    assert_eq!(
        items[1]["apiVersion"],
        "automotive.sdv.cloud.redhat.com/v1alpha1"
    );
    assert_eq!(
        items[1]["spec"]["tags"],
        json!(["production", "automotive"])
    );
    assert_eq!(items[1]["status"]["registryMetadata"]["layerCount"], 12);
    assert!(items[1]["metadata"]["uid"].is_string(), "full objects");

    let run = h.caib(&["catalog", "list", "-o", "yaml", "--distro", "autosd10"]);
    let list: Value = serde_saphyr::from_str(&run.stdout).unwrap();
    assert_eq!(list["kind"], "List");
    assert_eq!(list["items"][0]["metadata"]["name"], "legacy");

    for (args, flag) in [
        (vec!["--phase", "Ready"], "--phase"),
        (vec!["--architecture", "sparc"], "--architecture"),
        (vec!["--limit", "0"], "--limit"),
        (vec!["--limit", "many"], "--limit"),
        (vec!["-o", "xml"], "--output"),
    ] {
        let mut all = vec!["catalog", "list"];
        all.extend_from_slice(&args);
        let run = h.caib(&all);
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(run.stderr.contains(flag), "{args:?} names {flag}: {run:?}");
    }
}

#[tokio::test]
async fn the_quickstart_deployment_pipeline_runs_verbatim() {
    require_tool("jq", "jq");
    let h = Harness::new();
    let bin_dir = binary("caib").parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let script = r#"IMAGE=$(caib catalog list --target raspberry-pi --phase Available --output json | \
    jq -r '.items | sort_by(.metadata.creationTimestamp) | reverse | .[0].spec.registryUrl')
echo "$IMAGE""#;
    let pipeline = || -> Run {
        // caib's clean environment, with `caib` found on PATH as in a deployment script.
        let base = h.command();
        let mut bash = Command::new("bash");
        bash.envs(base.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
            .env("PATH", &path)
            .args(["-c", script]);
        bash.output().unwrap().into()
    };
    let run = pipeline();
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, "null\n"),
        "empty catalog: {run:?}"
    );

    let client = h.client();
    let rpi = |tag: &str| {
        json!({"registryUrl": format!("quay.io/centos-automotive/autosd:{tag}"),
        "metadata": {"architecture": "arm64", "targets": [{"name": "raspberry-pi"}]}})
    };
    put(
        &client,
        "default",
        "rpi-old",
        rpi("v1"),
        Some(Value::Null),
        json!({}),
        Some(json!({"phase": "Available"})),
    )
    .await;
    next_second().await;
    put(
        &client,
        "default",
        "rpi-new",
        rpi("v2"),
        Some(Value::Null),
        json!({}),
        Some(json!({"phase": "Available"})),
    )
    .await;
    put(
        &client,
        "default",
        "rpi-broken",
        rpi("v3"),
        Some(Value::Null),
        json!({}),
        Some(json!({"phase": "Failed"})),
    )
    .await;
    let run = pipeline();
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, "quay.io/centos-automotive/autosd:v2\n"),
        "{run:?}"
    );
}

#[tokio::test]
async fn list_pages_through_large_catalogs() {
    use futures::StreamExt;
    let h = Harness::new();
    let client = h.client();
    let api: Api<CatalogImage> = Api::namespaced(client.clone(), "default");
    let created: Vec<()> = futures::stream::iter(0..1001)
        .map(|i| {
            let api = api.clone();
            async move {
                let spec: CatalogImageSpec = serde_json::from_value(
                    json!({"registryUrl": format!("quay.io/org/image:{i}")}),
                )
                .unwrap();
                api.create(
                    &PostParams::default(),
                    &CatalogImage::new(&format!("image-{i:04}"), spec),
                )
                .await
                .unwrap();
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    assert_eq!(created.len(), 1001);
    h.emu.reset_requests();
    let run = h.caib(&["catalog", "list", "--limit", "3"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout.lines().count(), 4, "header and 3 rows: {run:?}");
    // 1001 objects in pages of 500: three list requests, never one unbounded response.
    assert_eq!(
        h.emu.request_count("list catalogimages"),
        3,
        "{:?}",
        h.emu.requests()
    );
    let run = h.caib(&["catalog", "list", "-o", "json"]);
    let list: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1001);
}

/// A CatalogImage stored with a chosen creationTimestamp (`days` before `now`), tagged `same`.
fn aged(
    h: &Harness,
    now: jiff::Timestamp,
    (ns, name): (&str, &str),
    days: i64,
    spec: Value,
    extra: Value,
) {
    let created = now - jiff::SignedDuration::from_hours(24 * days);
    let mut spec = spec;
    spec["tags"] = json!(["same"]);
    let mut object = json!({"apiVersion": "automotive.sdv.cloud.redhat.com/v1alpha1",
        "kind": "CatalogImage", "spec": spec,
        "metadata": {"namespace": ns, "name": name,
            "creationTimestamp": created.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()}});
    if let Some(status) = extra.get("status") {
        object["status"] = status.clone();
    }
    if let Some(annotations) = extra.get("annotations") {
        object["metadata"]["annotations"] = annotations.clone();
    }
    h.emu.store_raw(
        "automotive.sdv.cloud.redhat.com",
        "v1alpha1",
        "catalogimages",
        object,
    );
}

/// The table formats read the server's Table (printer columns) unless a filter needs fields
/// it lacks (`--tags`, `--target`): both sources must print the very same table. `--tags
/// same` (every object carries it) forces full objects without changing the selection.
/// Ages are whole days so the two runs cannot straddle a change of the AGE text.
#[tokio::test]
async fn table_rows_from_the_server_table_equal_the_full_object_rows() {
    let h = Harness::new();
    ensure_namespace(&h.client(), "team-b").await;
    let rpi = json!({"registryUrl": "quay.io/a/rpi:1", "metadata": {"architecture": "arm64",
        "distro": "cs9", "targets": [{"name": "raspberry-pi"}, {"name": "qemu"}]}});
    let now = jiff::Timestamp::now();
    aged(&h, now, ("default", "no-status"), 2, rpi.clone(), json!({}));
    aged(&h, now, ("team-b", "no-status"), 2, rpi, json!({}));
    let status = json!({"status": {"phase": "Unavailable",
        "registryMetadata": {"resolvedDigest": DIGEST}},
        "annotations": {"automotive.sdv.cloud.redhat.com/source-revision": REVISION}});
    let qemu = json!({"registryUrl": "quay.io/a/qemu:1",
        "metadata": {"architecture": "x86_64", "targets": [{"name": "qemu"}]}});
    aged(&h, now, ("default", "unavailable"), 10, qemu, status);
    let bare = json!({"registryUrl": "quay.io/a/bare:1"});
    let available = json!({"status": {"phase": "Available"}});
    aged(&h, now, ("default", "bare"), 40, bare, available);

    for args in [
        vec![],
        vec!["-o", "wide"],
        vec!["-A", "-o", "wide"],
        vec!["-A", "--phase", "Pending"],
        vec!["--architecture", "amd64"],
        vec!["--distro", "cs9", "-A"],
        vec!["--limit", "2", "-A"],
    ] {
        let mut table = vec!["catalog", "list"];
        table.extend_from_slice(&args);
        let from_table = h.caib(&table);
        table.extend_from_slice(&["--tags", "same"]);
        let from_objects = h.caib(&table);
        assert_eq!(from_table.code, 0, "{args:?}: {from_table:?}");
        assert_eq!(from_table.stdout, from_objects.stdout, "{args:?}");
        assert!(from_table.stdout.lines().count() > 1, "{from_table:?}");
    }
    let run = h.caib(&["catalog", "list", "-A", "-o", "wide"]);
    let lines: Vec<Vec<&str>> = run.stdout.lines().map(cells).collect();
    assert_eq!(
        lines[1..]
            .iter()
            .map(|l| [l[0], l[1], l[6], l[7]])
            .collect::<Vec<_>>(),
        [
            ["default", "no-status", "Pending", "2d"],
            ["team-b", "no-status", "Pending", "2d"],
            ["default", "unavailable", "Unavailable", "10d"],
            ["default", "bare", "Available", "40d"],
        ],
        "{run:?}"
    );
    assert_eq!(lines[3][8..], [DIGEST, REVISION], "{run:?}");
    assert_eq!(lines[4][3..6], ["<none>", "<none>", "<none>"], "{run:?}");
}
