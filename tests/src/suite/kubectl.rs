//! Harness of the kubectl suite: an emulator started without CRDs, kubectl runs with a fresh
//! HOME each, manifests, and deadline-bounded polling of processes and their output.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::emulator::{Emulator, EmulatorOptions};

pub const CRDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../crds");
pub const DEADLINE: Duration = Duration::from_secs(20);

/// One emulator (started without CRDs) and the real kubectl against it.
pub struct Kubectl {
    pub emu: Emulator,
    kubectl: crate::kubectl::Kubectl,
}

impl std::ops::Deref for Kubectl {
    type Target = crate::kubectl::Kubectl;
    fn deref(&self) -> &Self::Target {
        &self.kubectl
    }
}

pub fn kubectl_present() {
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
    /// Starts an emulator: not a `Default` value.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        kubectl_present();
        let emu = Emulator::start(EmulatorOptions::default()).expect("emulator starts");
        let kubectl = crate::kubectl::Kubectl::new(Some(&emu));
        Kubectl { emu, kubectl }
    }

    /// The same over https ([`crate::kubectl::Kubectl::tls`]): tokens and `--as` reach
    /// the server.
    #[allow(dead_code)]
    pub fn tls() -> Self {
        kubectl_present();
        let emu = Emulator::start(EmulatorOptions::default()).expect("emulator starts");
        let kubectl = crate::kubectl::Kubectl::tls(&emu);
        Kubectl { emu, kubectl }
    }

    /// `kubectl apply -f` of every CRD file in crds/ (the directory also holds a
    /// kustomization.yaml, which `-f crds/` would try to apply as an object, on a real
    /// cluster too).
    pub fn apply_crds(&self) {
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

    pub fn jsonpath(&self, what: &[&str], path: &str) -> String {
        let expr = format!("jsonpath={path}");
        let mut args = vec!["get"];
        args.extend_from_slice(what);
        args.extend_from_slice(&["-o", &expr]);
        self.ok(&args)
    }
}

pub fn crd_files() -> Vec<PathBuf> {
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

pub fn image(name: &str, registry: &str, arch: &str, extra_spec: &str) -> String {
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

pub fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write manifest");
    p.display().to_string()
}

/// Polls `f` until it returns Some, or panics at the deadline.
pub fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
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
pub fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
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

pub fn next_line_containing(rx: &mpsc::Receiver<String>, needle: &str, seen: &mut Vec<String>) {
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
