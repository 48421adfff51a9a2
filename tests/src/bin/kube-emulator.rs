//! `kube-emulator`: the Kubernetes API emulator as a process, for suites that run our
//! binaries against it and for the local sandbox.
//!
//! Prints `listening on http://HOST:PORT` on stdout once it accepts connections (after the
//! kubeconfig is written), and stops cleanly on SIGTERM or SIGINT.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use catalog_e2e::emulator::{Emulator, EmulatorOptions};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Kubernetes API emulator serving the catalog CRDs over HTTP"
)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// Directory of CRD YAML files to serve.
    #[arg(long)]
    crds: Option<PathBuf>,
    /// Write a kubeconfig for the emulator here.
    #[arg(long)]
    kubeconfig_out: Option<PathBuf>,
    /// Write an https kubeconfig here (CA included, the admin token): kubectl sends tokens,
    /// `--token` and `--as` only over https.
    #[arg(long)]
    kubeconfig_tls_out: Option<PathBuf>,
    /// Require this bearer token (requests without it get 401).
    #[arg(long, env = "KUBE_EMULATOR_TOKEN")]
    token: Option<String>,
    /// A token that authenticates but is forbidden everything (403).
    #[arg(long)]
    forbidden_token: Option<String>,
    /// Number of changes kept for watch resumption (older resourceVersions get 410).
    #[arg(long, default_value_t = 10_000)]
    history_limit: usize,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args = Args::parse();
    let emu = Emulator::start(EmulatorOptions {
        addr: args.addr,
        crds_dir: args.crds,
        token: args.token,
        forbidden_token: args.forbidden_token,
        history_limit: args.history_limit,
        ..Default::default()
    })?;
    if let Some(path) = &args.kubeconfig_out {
        emu.write_kubeconfig(path)
            .with_context(|| format!("writing kubeconfig {}", path.display()))?;
    }
    if let Some(path) = &args.kubeconfig_tls_out {
        std::fs::write(path, emu.kubeconfig_tls(None))
            .with_context(|| format!("writing kubeconfig {}", path.display()))?;
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {}", emu.url())?;
    out.flush()?;
    drop(out);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = term.recv() => {}
            r = tokio::signal::ctrl_c() => r?,
        }
        anyhow::Ok(())
    })?;
    emu.shutdown();
    eprintln!("kube-emulator: stopped");
    Ok(())
}
