//! `caib`: the catalog CLI.

mod cli;
mod cluster;
mod commands;
mod config;
mod edit;
mod error;
mod forge;
mod logging;
mod output;
mod registry_access;
mod repo;
mod transport;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use cli::{CatalogCommand, Cli, Command};
use error::Result;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => error::exit::USAGE,
            });
        }
    };
    logging::init(cli.global.verbose);
    let mut cli = cli;
    match config::Config::load()
        .map(|c| c.apply(&mut cli.global))
        .and_then(|()| run(cli))
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report(),
    }
}

fn run(cli: Cli) -> Result<()> {
    match &cli.command {
        Command::Catalog(CatalogCommand::Validate(args)) => commands::validate::run(args),
        Command::Catalog(CatalogCommand::List(args)) => commands::list::run(&cli.global, args),
        Command::Catalog(CatalogCommand::Get(args)) => commands::get::run(&cli.global, args),
        Command::Catalog(CatalogCommand::Verify(args)) => commands::verify::run(&cli.global, args),
        Command::Catalog(CatalogCommand::Status(args)) => commands::status::run(&cli.global, args),
        Command::Catalog(CatalogCommand::Diff(args)) => commands::diff::run(&cli.global, args),
        Command::Catalog(CatalogCommand::Add(args)) => commands::add::run(args, &cli.global),
        Command::Catalog(CatalogCommand::Remove(args)) => commands::remove::run(args, &cli.global),
        Command::Catalog(CatalogCommand::Publish(args)) => {
            commands::publish::run(args, &cli.global)
        }
        Command::Catalog(CatalogCommand::Promote(args)) => {
            commands::promote::run(args, &cli.global)
        }
        Command::Catalog(CatalogCommand::Tag(args)) => {
            commands::tag::run(args, commands::tag::Op::Tag, &cli.global)
        }
        Command::Catalog(CatalogCommand::Untag(args)) => {
            commands::tag::run(args, commands::tag::Op::Untag, &cli.global)
        }
        Command::Images(cli::ImagesCommand::List(args)) => commands::images::run(&cli.global, args),
        Command::Completion { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "caib", &mut std::io::stdout());
            Ok(())
        }
        Command::Manpages { dir } => {
            std::fs::create_dir_all(dir)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
            clap_mangen::generate_to(Cli::command(), dir)
                .map_err(|e| anyhow::anyhow!("cannot write man pages to {}: {e}", dir.display()))?;
            Ok(())
        }
    }
}
