//! The real kubectl against the Kubernetes API emulator: if kubectl accepts it for everything
//! our users do with the catalog (apply the CRDs, apply/patch/label/watch/wait/explain/delete
//! CatalogImages, server-side apply with conflicts), the emulator is faithful enough for the
//! other suites.
//!
//! `kubectl` on these machines is a dispatcher that runs the bundled kubectl matching the
//! server's minor version (the emulator says 1.32). Every invocation gets a fresh HOME, so no
//! discovery cache hides a runtime CRD registration.

use std::process::Stdio;

use catalog_e2e::suite::kubectl as support;
use support::*;

#[test]
fn crds_apply_get_and_explain() {
    let k = Kubectl::new();
    k.apply_crds();
    let dir = k.dir();
    // apply -f: create, then update (generation bumps, client-side apply uses a merge patch).
    let f = write(
        dir,
        "rpi.yaml",
        &image(
            "autosd-cs9-rpi4",
            "quay.io/centos-automotive/autosd:cs9-rpi4",
            "arm64",
            "",
        ),
    );
    assert!(
        k.ok(&["apply", "-f", &f])
            .contains("catalogimage.automotive.sdv.cloud.redhat.com/autosd-cs9-rpi4 created")
    );
    assert_eq!(
        k.jsonpath(
            &["catalogimage", "autosd-cs9-rpi4"],
            "{.metadata.generation}"
        ),
        "1"
    );
    let f = write(
        dir,
        "rpi.yaml",
        &image(
            "autosd-cs9-rpi4",
            "quay.io/centos-automotive/autosd:cs9-rpi4-v2",
            "arm64",
            "",
        ),
    );
    assert!(
        k.ok(&["apply", "-f", &f])
            .contains("autosd-cs9-rpi4 configured")
    );
    assert_eq!(
        k.jsonpath(
            &["cimg", "autosd-cs9-rpi4"],
            "{.spec.registryUrl} {.metadata.generation} {.spec.verificationInterval}"
        ),
        "quay.io/centos-automotive/autosd:cs9-rpi4-v2 2 1h",
        "updated, generation bumped, schema default applied"
    );
    assert!(k.ok(&["apply", "-f", &f]).contains("unchanged"));
    let f = write(
        dir,
        "qemu.yaml",
        &image(
            "autosd-cs9-qemu",
            "quay.io/centos-automotive/autosd:cs9-qemu",
            "amd64",
            "",
        ),
    );
    k.ok(&["apply", "-f", &f]);
    k.ok(&["create", "namespace", "staging"]);
    let f = write(
        dir,
        "staging.yaml",
        &image("staging-img", "quay.io/a/b:1", "amd64", ""),
    );
    k.ok(&["apply", "-n", "staging", "-f", &f]);

    // Server-side printing: the CRD's printer columns.
    let table = k.ok(&["get", "catalogimages"]);
    let header = table.lines().next().unwrap_or_default();
    for col in [
        "NAME",
        "REGISTRY",
        "ARCHITECTURE",
        "DISTRO",
        "TARGET",
        "PHASE",
        "AGE",
    ] {
        assert!(header.contains(col), "column {col} missing in:\n{table}");
    }
    assert!(
        !header.contains("DIGEST"),
        "priority-1 columns only with -o wide:\n{table}"
    );
    assert!(
        table.contains("autosd-cs9-rpi4")
            && table.contains("raspberry-pi")
            && table.contains("arm64"),
        "{table}"
    );
    assert!(
        !table.contains("staging-img"),
        "other namespace listed:\n{table}"
    );
    assert!(
        k.ok(&["get", "cimg", "-o", "wide"])
            .lines()
            .next()
            .unwrap_or_default()
            .contains("DIGEST")
    );
    let all = k.ok(&["get", "cimg", "-A"]);
    assert!(
        all.lines()
            .next()
            .unwrap_or_default()
            .starts_with("NAMESPACE"),
        "{all}"
    );
    assert!(
        all.contains("staging") && all.contains("staging-img") && all.contains("autosd-cs9-qemu"),
        "{all}"
    );

    // -l with a label selector, -o yaml, -o jsonpath over a list.
    let arm = k.ok(&[
        "get",
        "cimg",
        "-l",
        "automotive.sdv.cloud.redhat.com/architecture=arm64",
        "-o",
        "name",
    ]);
    assert_eq!(
        arm.trim(),
        "catalogimage.automotive.sdv.cloud.redhat.com/autosd-cs9-rpi4"
    );
    let notin = k.ok(&[
        "get",
        "cimg",
        "-l",
        "automotive.sdv.cloud.redhat.com/architecture notin (arm64)",
        "-o",
        "name",
    ]);
    assert_eq!(
        notin.trim(),
        "catalogimage.automotive.sdv.cloud.redhat.com/autosd-cs9-qemu"
    );
    let yaml = k.ok(&["get", "cimg", "autosd-cs9-rpi4", "-o", "yaml"]);
    for want in [
        "apiVersion: automotive.sdv.cloud.redhat.com/v1alpha1",
        "kind: CatalogImage",
        "uid: ",
        "creationTimestamp: ",
        "resourceVersion: ",
    ] {
        assert!(yaml.contains(want), "{want} missing in:\n{yaml}");
    }
    let names = k.jsonpath(&["cimg"], "{range .items[*]}{.metadata.name}{\",\"}{end}");
    assert_eq!(names, "autosd-cs9-qemu,autosd-cs9-rpi4,");

    // explain reads the OpenAPI v3 document generated from the CRD schema.
    let explain = k.ok(&["explain", "catalogimages.spec.metadata"]);
    assert!(explain.contains("KIND:       CatalogImage"), "{explain}");
    assert!(explain.contains("FIELD: metadata <Object>"), "{explain}");
    assert!(
        explain.contains("architecture") && explain.contains("targets"),
        "{explain}"
    );
    assert!(
        k.ok(&["get", "crd"])
            .contains("catalogsources.automotive.sdv.cloud.redhat.com")
    );
    assert!(
        k.ok(&[
            "api-resources",
            "--api-group=automotive.sdv.cloud.redhat.com"
        ])
        .contains("cimg")
    );
}

#[test]
fn server_side_apply_with_conflicts() {
    let k = Kubectl::new();
    k.apply_crds();
    let dir = k.dir();
    let a = write(dir, "a.yaml", &image("ssa", "quay.io/a/b:1", "amd64", ""));
    let out = k.ok(&["apply", "--server-side", "--field-manager=alice", "-f", &a]);
    assert!(out.contains("serverside-applied"), "{out}");
    let b = write(dir, "b.yaml", &image("ssa", "quay.io/a/b:2", "amd64", ""));
    let err = k.fails(
        &["apply", "--server-side", "--field-manager=bob", "-f", &b],
        None,
    );
    assert!(
        err.contains("Apply failed with")
            && err.contains("conflict with \"alice\"")
            && err.contains(".spec.registryUrl"),
        "{err}"
    );
    assert!(
        err.contains("--force-conflicts"),
        "kubectl recognised a conflict: {err}"
    );
    assert_eq!(
        k.jsonpath(&["cimg", "ssa"], "{.spec.registryUrl}"),
        "quay.io/a/b:1"
    );
    k.ok(&[
        "apply",
        "--server-side",
        "--field-manager=bob",
        "--force-conflicts",
        "-f",
        &b,
    ]);
    assert_eq!(
        k.jsonpath(&["cimg", "ssa"], "{.spec.registryUrl}"),
        "quay.io/a/b:2"
    );
    let managers = k.ok(&["get", "cimg", "ssa", "--show-managed-fields", "-o", "jsonpath={range .metadata.managedFields[*]}{.manager}:{.operation}:{.fieldsV1.f:spec.f:registryUrl}{\"\\n\"}{end}"]);
    assert!(
        managers.contains("bob:Apply:{}"),
        "bob owns registryUrl now:\n{managers}"
    );
    assert!(
        !managers.contains("alice:Apply:{}"),
        "alice lost registryUrl:\n{managers}"
    );
    // Applying the same value as another manager shares ownership without a conflict.
    let c = write(dir, "c.yaml", &image("ssa", "quay.io/a/b:2", "amd64", ""));
    k.ok(&["apply", "--server-side", "--field-manager=carol", "-f", &c]);
    // Apply creates when missing, and server-side dry-run does not.
    let d = write(dir, "d.yaml", &image("dry", "quay.io/a/b:3", "amd64", ""));
    k.ok(&["apply", "--server-side", "--dry-run=server", "-f", &d]);
    assert!(k.fails(&["get", "cimg", "dry"], None).contains("NotFound"));
    // Client-side apply, then server-side: kubectl migrates the client-side manager after
    // a forced apply, so later server-side applies no longer conflict.
    let m1 = write(
        dir,
        "m1.yaml",
        &image("migrated", "quay.io/m/n:1", "amd64", ""),
    );
    k.ok(&["apply", "-f", &m1]);
    let m2 = write(
        dir,
        "m2.yaml",
        &image("migrated", "quay.io/m/n:2", "amd64", ""),
    );
    assert!(
        k.fails(&["apply", "--server-side", "-f", &m2], None)
            .contains("kubectl-client-side-apply")
    );
    k.ok(&["apply", "--server-side", "--force-conflicts", "-f", &m2]);
    let m3 = write(
        dir,
        "m3.yaml",
        &image("migrated", "quay.io/m/n:3", "amd64", ""),
    );
    k.ok(&["apply", "--server-side", "-f", &m3]);
    let managers = k.jsonpath(
        &["cimg", "migrated"],
        "{.metadata.managedFields[*].manager}",
    );
    assert!(
        !managers.contains("kubectl-client-side-apply"),
        "{managers}"
    );
}

#[test]
fn watch_and_wait_see_later_changes() {
    let k = Kubectl::new();
    k.apply_crds();
    let f = write(
        k.dir(),
        "w.yaml",
        &image("watched", "quay.io/a/b:1", "arm64", ""),
    );
    k.ok(&["apply", "-f", &f]);

    let mut watch = k
        .cmd(&["get", "cimg", "-w"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl get -w");
    let lines = lines_of(&mut watch);
    let mut seen = Vec::new();
    next_line_containing(&lines, "watched", &mut seen);
    let mut wait = k
        .cmd(&[
            "wait",
            "--for=condition=Available",
            "cimg/watched",
            "--timeout=30s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl wait");
    // Both are watching before anything changes.
    wait_for("two watches", || {
        (k.emu.request_count("watch catalogimages") >= 2).then_some(())
    });
    let status = r#"{"status":{"phase":"Available","conditions":[{"type":"Available","status":"True","reason":"Verified","message":"pullable","lastTransitionTime":"2026-01-04T13:00:00Z"}]}}"#;
    k.ok(&[
        "patch",
        "cimg",
        "watched",
        "--subresource=status",
        "--type=merge",
        "-p",
        status,
    ]);
    next_line_containing(&lines, "Available", &mut seen);
    let _ = watch.kill();
    let _ = watch.wait();
    let done = wait_for("kubectl wait to exit", || {
        wait.try_wait().expect("wait status")
    });
    let out = wait.wait_with_output().expect("wait output");
    assert!(
        done.success(),
        "kubectl wait failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("condition met"));
}

#[test]
fn patch_label_and_status_subresource() {
    let k = Kubectl::new();
    k.apply_crds();
    let f = write(
        k.dir(),
        "p.yaml",
        &image("patched", "quay.io/a/b:1", "arm64", ""),
    );
    k.ok(&["apply", "-f", &f]);
    k.ok(&[
        "patch",
        "cimg",
        "patched",
        "--type=merge",
        "-p",
        r#"{"spec":{"tags":["a"]}}"#,
    ]);
    k.ok(&[
        "patch",
        "cimg",
        "patched",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/spec/tags/-","value":"b"}]"#,
    ]);
    assert_eq!(
        k.jsonpath(&["cimg", "patched"], "{.spec.tags} {.metadata.generation}"),
        r#"["a","b"] 3"#
    );
    // Status through the main resource is ignored; spec through /status is ignored.
    k.ok(&[
        "patch",
        "cimg",
        "patched",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Failed"}}"#,
    ]);
    assert_eq!(k.jsonpath(&["cimg", "patched"], "{.status.phase}"), "");
    k.ok(&[
        "patch",
        "cimg",
        "patched",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Available"},"spec":{"tags":[]}}"#,
    ]);
    assert_eq!(
        k.jsonpath(
            &["cimg", "patched"],
            "{.status.phase} {.spec.tags} {.metadata.generation}"
        ),
        r#"Available ["a","b"] 3"#
    );
    k.ok(&["label", "cimg", "patched", "team=ops"]);
    k.ok(&[
        "annotate",
        "cimg",
        "patched",
        "automotive.sdv.cloud.redhat.com/source-revision=abc123",
    ]);
    assert_eq!(
        k.ok(&["get", "cimg", "-l", "team=ops", "-o", "name"])
            .trim(),
        "catalogimage.automotive.sdv.cloud.redhat.com/patched"
    );
    let wide = k.ok(&["get", "cimg", "patched", "-o", "wide"]);
    assert!(
        wide.contains("abc123"),
        "REVISION column reads the annotation:\n{wide}"
    );
    assert!(
        k.fails(&["label", "cimg", "patched", "bad label=x"], None)
            .contains("invalid")
    );
    // Core kinds: kubectl's typed clients send protobuf, label uses a strategic merge patch.
    k.ok(&[
        "create",
        "secret",
        "docker-registry",
        "regcred",
        "--docker-server=quay.io",
        "--docker-username=u",
        "--docker-password=p",
    ]);
    k.ok(&["label", "secret", "regcred", "team=ops"]);
    assert_eq!(
        k.jsonpath(&["secret", "regcred"], "{.type} {.metadata.labels.team}"),
        "kubernetes.io/dockerconfigjson ops"
    );
    k.ok(&[
        "create",
        "configmap",
        "settings",
        "--from-literal=interval=1h",
    ]);
    assert!(k.ok(&["get", "configmaps"]).contains("settings"));
}

#[path = "emulator_support/kubectl_lifecycle.rs"]
mod kubectl_lifecycle;
