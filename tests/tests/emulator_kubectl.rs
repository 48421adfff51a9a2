//! The real kubectl against the Kubernetes API emulator: if kubectl accepts it for everything
//! our users do with the catalog (apply the CRDs, apply/patch/label/watch/wait/explain/delete
//! CatalogImages, server-side apply with conflicts), the emulator is faithful enough for the
//! other suites.
//!
//! `kubectl` on these machines is a dispatcher that runs the bundled kubectl matching the
//! server's minor version (the emulator says 1.32). Every invocation gets a fresh HOME, so no
//! discovery cache hides a runtime CRD registration.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use catalog_e2e::emulator::{Emulator, EmulatorOptions};

const CRDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../crds");
const DEADLINE: Duration = Duration::from_secs(20);

/// One emulator (started without CRDs) and a way to run kubectl against it.
struct Kubectl {
    emu: Emulator,
    dir: tempfile::TempDir,
    runs: AtomicUsize,
}

fn kubectl_present() {
    let ok = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "kubectl is not on PATH: install it (Google Cloud SDK `kubectl` component, or `apt-get install kubectl`, \
         or a kubectl 1.32 binary) to run the emulator's kubectl suite"
    );
}

impl Kubectl {
    fn new() -> Self {
        kubectl_present();
        let emu = Emulator::start(EmulatorOptions::default()).expect("emulator starts");
        let dir = tempfile::tempdir().expect("tempdir");
        emu.write_kubeconfig(dir.path().join("kubeconfig"))
            .expect("kubeconfig");
        Kubectl {
            emu,
            dir,
            runs: AtomicUsize::new(0),
        }
    }

    /// A kubectl command with a fresh HOME (no discovery cache) and this emulator's kubeconfig.
    fn cmd(&self, args: &[&str]) -> Command {
        let n = self.runs.fetch_add(1, Ordering::Relaxed);
        let home = self.dir.path().join(format!("home-{n}"));
        std::fs::create_dir_all(&home).expect("home");
        let mut c = Command::new("kubectl");
        c.args(args)
            .env("HOME", &home)
            .env("KUBECONFIG", self.dir.path().join("kubeconfig"))
            .env_remove("KUBECTL_EXTERNAL_DIFF")
            .stdin(Stdio::null());
        c
    }

    fn output(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut c = self.cmd(args);
        if stdin.is_some() {
            c.stdin(Stdio::piped());
        }
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().expect("kubectl runs");
        if let Some(text) = stdin {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(text.as_bytes())
                .expect("write stdin");
        }
        child.wait_with_output().expect("kubectl finishes")
    }

    /// Runs kubectl, asserts success, returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        self.ok_stdin(args, None)
    }

    fn ok_stdin(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.output(args, stdin);
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(
            out.status.success(),
            "kubectl {args:?} failed:\nstdout: {stdout}\nstderr: {stderr}"
        );
        stdout.into_owned()
    }

    /// Runs kubectl, asserts failure, returns stderr.
    fn fails(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.output(args, stdin);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !out.status.success(),
            "kubectl {args:?} unexpectedly succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        stderr
    }

    /// `kubectl apply -f` of every CRD file in crds/ (the directory also holds a
    /// kustomization.yaml, which `-f crds/` would try to apply as an object, on a real
    /// cluster too).
    fn apply_crds(&self) {
        let mut args = vec!["apply".to_string()];
        for f in crd_files() {
            args.push("-f".into());
            args.push(f.display().to_string());
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.ok(&refs);
        assert!(
            out.contains("catalogimages.automotive.sdv.cloud.redhat.com created"),
            "{out}"
        );
        assert!(
            out.contains("catalogsources.automotive.sdv.cloud.redhat.com created"),
            "{out}"
        );
    }

    fn jsonpath(&self, what: &[&str], path: &str) -> String {
        let expr = format!("jsonpath={path}");
        let mut args = vec!["get"];
        args.extend_from_slice(what);
        args.extend_from_slice(&["-o", &expr]);
        self.ok(&args)
    }
}

fn crd_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(CRDS)
        .expect("crds/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            std::fs::read_to_string(p).is_ok_and(|t| t.contains("kind: CustomResourceDefinition"))
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no CRD files in {CRDS}");
    files
}

fn image(name: &str, registry: &str, arch: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: automotive.sdv.cloud.redhat.com/v1alpha1
kind: CatalogImage
metadata:
  name: {name}
  labels:
    automotive.sdv.cloud.redhat.com/architecture: {arch}
spec:
  registryUrl: {registry}
  metadata:
    architecture: {arch}
    distro: cs9
    targets:
    - name: raspberry-pi
      verified: true
{extra_spec}"
    )
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write manifest");
    p.display().to_string()
}

/// Polls `f` until it returns Some, or panics at the deadline.
fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Lines of a child's stdout, read on a thread.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let out = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn next_line_containing(rx: &mpsc::Receiver<String>, needle: &str, seen: &mut Vec<String>) {
    let end = Instant::now() + DEADLINE;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let hit = line.contains(needle);
                seen.push(line);
                if hit {
                    return;
                }
            }
            Err(_) => panic!("no line containing {needle:?} before the deadline; saw: {seen:#?}"),
        }
    }
}

#[test]
fn crds_apply_get_and_explain() {
    let k = Kubectl::new();
    k.apply_crds();
    let dir = k.dir.path();
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
    let dir = k.dir.path();
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
        k.dir.path(),
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
        k.dir.path(),
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

#[test]
fn delete_with_and_without_finalizer() {
    let k = Kubectl::new();
    k.apply_crds();
    let dir = k.dir.path();
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
        k.dir.path(),
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
    let e = write(k.dir.path(), "edited.yaml", &edited);
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
