//! The user's defaults in `~/.config/caib/config.yaml` (or `$XDG_CONFIG_HOME/caib/config.yaml`),
//! so that people who always work on one namespace or one catalog repository need not repeat
//! the flags. Flags and their environment variables always win over the file.
//!
//! ```yaml
//! namespace: automotive
//! catalogRepo: https://git.example.com/platform/catalog.git
//! env: staging
//! output: wide
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::cli::{Global, OutputFormat};
use crate::error::{CaibError, Result};

/// Defaults read from the config file. Every field is optional.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    pub namespace: Option<String>,
    pub catalog_repo: Option<String>,
    pub env: Option<String>,
    pub output: Option<String>,
}

impl Config {
    /// Path of the config file: `$XDG_CONFIG_HOME/caib/config.yaml`, else
    /// `$HOME/.config/caib/config.yaml`. `CAIB_CONFIG` names another file (tests, CI).
    pub fn path() -> Option<PathBuf> {
        if let Some(file) = std::env::var_os("CAIB_CONFIG") {
            return Some(PathBuf::from(file));
        }
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
        Some(base.join("caib").join("config.yaml"))
    }

    /// Reads the config file; a missing file is an empty config, a broken one an error
    /// naming the file (a silently ignored typo would send commands to the wrong namespace).
    pub fn load() -> Result<Config> {
        match Self::path() {
            Some(path) if path.is_file() => Self::load_from(&path),
            _ => Ok(Config::default()),
        }
    }

    pub fn load_from(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CaibError::Usage(format!("cannot read {}: {e}", path.display())))?;
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        let config: Config = serde_saphyr::from_str(&text).map_err(|e| {
            CaibError::Usage(format!(
                "{}: {e} (expected keys: namespace, catalogRepo, env, output)",
                path.display()
            ))
        })?;
        if let Some(output) = &config.output {
            parse_output(output)
                .map_err(|e| CaibError::Usage(format!("{}: output: {e}", path.display())))?;
        }
        Ok(config)
    }

    /// Fills the global flags the user did not give from the config file.
    pub fn apply(&self, global: &mut Global) {
        if global.namespace.is_none() {
            global.namespace = self.namespace.clone();
        }
        if global.catalog_repo.is_none() {
            global.catalog_repo = self.catalog_repo.clone();
        }
        if global.environment.is_none() {
            global.environment = self.env.clone();
        }
        if global.output.is_none() {
            global.output = self.output.as_deref().and_then(|o| parse_output(o).ok());
        }
    }
}

fn parse_output(value: &str) -> std::result::Result<OutputFormat, String> {
    match value {
        "table" => Ok(OutputFormat::Table),
        "wide" => Ok(OutputFormat::Wide),
        "json" => Ok(OutputFormat::Json),
        "yaml" => Ok(OutputFormat::Yaml),
        other => Err(format!(
            "unknown output format {other:?} (expected table, wide, json or yaml)"
        )),
    }
}

/// Whether to use colours: never when `NO_COLOR` is set (https://no-color.org) or stdout is
/// not a terminal.
pub fn color_enabled() -> bool {
    use std::io::IsTerminal;
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_key_and_rejects_unknown_ones() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.yaml");
        std::fs::write(
            &file,
            "namespace: team\ncatalogRepo: /srv/catalog\nenv: staging\noutput: wide\n",
        )
        .unwrap();
        let config = Config::load_from(&file).unwrap();
        assert_eq!(config.namespace.as_deref(), Some("team"));
        assert_eq!(config.catalog_repo.as_deref(), Some("/srv/catalog"));
        assert_eq!(config.env.as_deref(), Some("staging"));
        assert_eq!(config.output.as_deref(), Some("wide"));

        std::fs::write(&file, "namespce: team\n").unwrap();
        let err = Config::load_from(&file).unwrap_err().to_string();
        assert!(err.contains("config.yaml"), "{err}");
        assert!(err.contains("namespce"), "{err}");

        std::fs::write(&file, "output: xml\n").unwrap();
        let err = Config::load_from(&file).unwrap_err().to_string();
        assert!(err.contains("unknown output format \"xml\""), "{err}");
    }
}
