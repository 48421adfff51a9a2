//! kubectl suite, part two: deletion with finalizers, invalid objects, create/replace/describe,
//! and the `kube-emulator` binary.

use std::process::{Command, Stdio};

use super::support::*;

#[test]
fn delete_with_and_without_finalizer() {
    let k = Kubectl::new();
    k.apply_crds();
    let dir = k.dir();
    let plain = write(
        dir,
        "plain.yaml",
        &image("plain", "quay.io/a/b:1", "arm64", ""),
    );
    k.ok(&["apply", "-f", &plain]);
    assert!(k.ok(&["delete", "cimg", "plain"]).contains("deleted"));
    assert!(
        k.fails(&["get", "cimg", "plain"], None)
            .contains("NotFound")
    );

    let held = write(
        dir,
        "held.yaml",
        &image("held", "quay.io/a/b:1", "arm64", "").replace(
            "  labels:",
            "  finalizers:\n  - automotive.sdv.cloud.redhat.com/test-hold\n  labels:",
        ),
    );
    k.ok(&["apply", "-f", &held]);
    // kubectl delete waits for the object to disappear; the finalizer holds it.
    let mut del = k
        .cmd(&["delete", "cimg", "held", "--timeout=30s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("delete");
    let ts = wait_for("deletionTimestamp", || {
        let t = k.jsonpath(&["cimg", "held"], "{.metadata.deletionTimestamp}");
        (!t.is_empty()).then_some(t)
    });
    assert!(ts.ends_with('Z'), "{ts}");
    assert!(
        del.try_wait().expect("status").is_none(),
        "delete returned while the finalizer holds the object"
    );
    k.ok(&[
        "patch",
        "cimg",
        "held",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ]);
    let status = wait_for("kubectl delete to finish", || {
        del.try_wait().expect("status")
    });
    assert!(
        status.success(),
        "kubectl delete: {:?}",
        del.wait_with_output()
            .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
    );
    assert!(k.fails(&["get", "cimg", "held"], None).contains("NotFound"));
}

#[test]
fn invalid_objects_are_rejected_naming_the_field() {
    let k = Kubectl::new();
    k.apply_crds();
    let bad = image(
        "bad",
        "quay.io/a/b:1",
        "arm64",
        "  digest: sha256:not-hex\n",
    );
    let err = k.fails(&["apply", "-f", "-"], Some(&bad));
    assert!(
        err.contains("spec.digest") && err.contains("should match"),
        "{err}"
    );
    assert!(err.contains("is invalid"), "{err}");
    let enum_bad = image("bad", "quay.io/a/b:1", "sparc", "");
    let err = k.fails(&["apply", "-f", "-"], Some(&enum_bad));
    assert!(
        err.contains("spec.metadata.architecture") && err.contains("Unsupported value: \"sparc\""),
        "{err}"
    );
    let missing = "apiVersion: automotive.sdv.cloud.redhat.com/v1alpha1\nkind: CatalogImage\nmetadata:\n  name: empty\nspec:\n  tags: [a]\n";
    let err = k.fails(&["create", "-f", "-"], Some(missing));
    assert!(
        err.contains("spec.registryUrl") && err.contains("Required value"),
        "{err}"
    );
    // kubectl asks for strict field validation: unknown fields are errors, not silently dropped.
    let unknown = image("odd", "quay.io/a/b:1", "arm64", "  registryURL: typo\n");
    let err = k.fails(&["apply", "-f", "-"], Some(&unknown));
    assert!(err.contains("unknown field \"spec.registryURL\""), "{err}");
    let out = k.output(&["apply", "--validate=warn", "-f", "-"], Some(&unknown));
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown field \"spec.registryURL\""));
    assert_eq!(
        k.jsonpath(&["cimg", "odd"], "{.spec.registryURL}"),
        "",
        "pruned"
    );
}

#[test]
fn create_replace_and_describe() {
    let k = Kubectl::new();
    k.apply_crds();
    let f = write(
        k.dir(),
        "c.yaml",
        &image("created", "quay.io/a/b:1", "arm64", ""),
    );
    assert!(k.ok(&["create", "-f", &f]).contains("created"));
    assert!(
        k.fails(&["create", "-f", &f], None)
            .contains("AlreadyExists")
    );
    // replace: the fetched object carries its resourceVersion; a stale one is a conflict.
    let fetched = k.ok(&["get", "cimg", "created", "-o", "yaml"]);
    let edited = fetched.replace("quay.io/a/b:1", "quay.io/a/b:2");
    let e = write(k.dir(), "edited.yaml", &edited);
    assert!(k.ok(&["replace", "-f", &e]).contains("replaced"));
    assert_eq!(
        k.jsonpath(
            &["cimg", "created"],
            "{.spec.registryUrl} {.metadata.generation}"
        ),
        "quay.io/a/b:2 2"
    );
    let err = k.fails(&["replace", "-f", &e], None);
    assert!(err.contains("the object has been modified"), "{err}");
    // Without a resourceVersion in the file kubectl reads the current one first.
    assert!(k.ok(&["replace", "-f", &f]).contains("replaced"));
    assert_eq!(
        k.jsonpath(
            &["cimg", "created"],
            "{.spec.registryUrl} {.metadata.generation}"
        ),
        "quay.io/a/b:1 3"
    );
    let described = k.ok(&["describe", "cimg", "created"]);
    assert!(
        described.contains("Registry URL:") && described.contains("quay.io/a/b:1"),
        "{described}"
    );
    assert!(
        described.contains("Events:"),
        "describe also lists events: {described}"
    );
    assert!(k.ok(&["delete", "-f", &f]).contains("deleted"));
}

/// The `kube-emulator` binary: prints its address once the kubeconfig is written, serves
/// kubectl, and exits cleanly on SIGTERM.
#[test]
fn binary_serves_and_stops_on_sigterm() {
    kubectl_present();
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kube-emulator"))
        .args(["--addr", "127.0.0.1:0", "--crds", CRDS, "--kubeconfig-out"])
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kube-emulator starts");
    let lines = lines_of(&mut child);
    let line = lines.recv_timeout(DEADLINE).expect("listening line");
    let url = line
        .strip_prefix("listening on ")
        .expect("listening on http://HOST:PORT");
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    assert!(
        std::fs::read_to_string(&kubeconfig)
            .expect("kubeconfig written")
            .contains(url)
    );
    let out = Command::new("kubectl")
        .args(["get", "crd", "-o", "name"])
        .env("HOME", dir.path())
        .env("KUBECONFIG", &kubeconfig)
        .output()
        .expect("kubectl");
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("catalogimages.automotive.sdv.cloud.redhat.com")
    );
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(term.success());
    let status = wait_for("kube-emulator to exit", || {
        child.try_wait().expect("status")
    });
    assert!(status.success(), "exit status after SIGTERM: {status}");
}
