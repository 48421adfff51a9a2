//! The real kubectl against the emulator, as the suites run it.
//!
//! Each run gets a fresh HOME: kubectl caches discovery under `~/.kube/cache`, and a cache
//! from an earlier emulator (another port, other CRDs) would answer instead of the server.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::emulator::Emulator;
use crate::process::require_tool;

/// Runs kubectl with a kubeconfig of its own and a fresh HOME per run.
pub struct Kubectl {
    dir: tempfile::TempDir,
    runs: AtomicUsize,
    kubeconfig: PathBuf,
    current_dir: Option<PathBuf>,
}

impl Kubectl {
    /// Against `emulator`, or with an empty kubeconfig (`kubectl kustomize` needs no server).
    pub fn new(emulator: Option<&Emulator>) -> Kubectl {
        require_tool("kubectl", "kubectl");
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = dir.path().join("kubeconfig");
        if let Some(emu) = emulator {
            emu.write_kubeconfig(&kubeconfig).expect("kubeconfig");
        }
        Kubectl {
            dir,
            runs: AtomicUsize::new(0),
            kubeconfig,
            current_dir: None,
        }
    }

    /// Against `emulator` over https ([`Emulator::kubeconfig_tls`]), so `--token`, `--as`
    /// and the kubeconfig's token reach the server (kubectl drops them over plain HTTP).
    pub fn tls(emulator: &Emulator) -> Kubectl {
        let k = Kubectl::new(None);
        std::fs::write(&k.kubeconfig, emulator.kubeconfig_tls(None)).expect("kubeconfig");
        k
    }

    /// Runs every command in `dir` (relative paths in arguments resolve there).
    pub fn in_dir(mut self, dir: impl Into<PathBuf>) -> Kubectl {
        self.current_dir = Some(dir.into());
        self
    }

    /// A scratch directory that lives as long as this value (manifests, edited files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A kubectl command with a fresh HOME and this kubeconfig, stdin closed.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let n = self.runs.fetch_add(1, Ordering::Relaxed);
        let home = self.dir.path().join(format!("home-{n}"));
        std::fs::create_dir_all(&home).expect("home");
        let mut c = Command::new("kubectl");
        c.args(args)
            .env("HOME", &home)
            .env("KUBECONFIG", &self.kubeconfig)
            .env_remove("KUBECTL_EXTERNAL_DIFF")
            .stdin(Stdio::null());
        if let Some(dir) = &self.current_dir {
            c.current_dir(dir);
        }
        c
    }

    /// Runs `cmd` to completion, feeding it `stdin`.
    pub fn run(&self, mut cmd: Command, stdin: Option<&str>) -> Output {
        if stdin.is_some() {
            cmd.stdin(Stdio::piped());
        }
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("kubectl runs");
        // Written from a thread: a large manifest would otherwise fill the pipe while kubectl
        // waits for us to read its output.
        let writer = stdin.map(|text| {
            let mut pipe = child.stdin.take().expect("stdin");
            let text = text.to_string();
            std::thread::spawn(move || pipe.write_all(text.as_bytes()))
        });
        let out = child.wait_with_output().expect("kubectl finishes");
        if let Some(w) = writer {
            w.join().expect("writer").expect("write stdin");
        }
        out
    }

    pub fn output(&self, args: &[&str], stdin: Option<&str>) -> Output {
        self.run(self.cmd(args), stdin)
    }

    /// Runs kubectl, asserts success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        self.ok_stdin(args, None)
    }

    pub fn ok_stdin(&self, args: &[&str], stdin: Option<&str>) -> String {
        succeeded(args, &self.output(args, stdin))
    }

    /// Runs kubectl, asserts failure, returns stderr.
    pub fn fails(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.output(args, stdin);
        assert!(
            !out.status.success(),
            "kubectl {args:?} unexpectedly succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

/// Asserts a finished kubectl run succeeded (showing both streams otherwise); its stdout.
pub fn succeeded(args: &[&str], out: &Output) -> String {
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
