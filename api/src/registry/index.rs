//! Reading an image index: a bounded number of its platform manifests.
//!
//! An index may list any number of platforms, and each one read costs a request and a slot in
//! the status. A registry serving an index of thousands of platforms (hostile, or broken) must
//! not cost thousands of requests per verification nor a status too big to write, so at most
//! [`MAX_PLATFORMS`] are read; the total is reported beside them.

use super::client::{RegistryClient, Target};
use super::error::RegistryError;
use super::manifest::{
    ImageFacts, IndexEntry, Parsed, PlatformFacts, parse_manifest, select_platform,
};
use crate::reference::ImageReference;

/// Most platform manifests of one index read (and listed in the status). Real indexes list a
/// handful (amd64, arm64, a few variants); 64 leaves room for any of them.
pub const MAX_PLATFORMS: usize = 64;

/// Which entries of an index of `count` to read: the first `max`, except that the `selected`
/// one (the platform the entry declares) is always among them, in place of the last.
pub(crate) fn platforms_to_read(count: usize, selected: usize, max: usize) -> Vec<usize> {
    let max = max.max(1);
    if count <= max {
        return (0..count).collect();
    }
    let mut chosen: Vec<usize> = (0..max).collect();
    if selected >= max {
        chosen[max - 1] = selected;
    }
    chosen
}

/// The index being inspected.
pub(super) struct IndexDoc<'a> {
    pub reference: &'a ImageReference,
    pub digest: String,
    pub media_type: String,
    pub entries: Vec<IndexEntry>,
}

impl RegistryClient {
    /// Reads up to [`MAX_PLATFORMS`] platform manifests of an index and the config of the
    /// selected platform (the one matching `architecture`, else the first linux one).
    pub(super) async fn inspect_index(
        &self,
        target: &Target<'_>,
        index: IndexDoc<'_>,
        architecture: Option<&str>,
    ) -> Result<ImageFacts, RegistryError> {
        let reference = index.reference;
        let invalid = |what: &str, detail: String| RegistryError::Invalid {
            registry: reference.registry().into(),
            what: what.to_string(),
            detail,
        };
        let entries = &index.entries;
        if entries.is_empty() {
            let what = format!("manifest {}", reference.canonical());
            return Err(invalid(&what, "the index lists no platform images".into()));
        }
        let selected = select_platform(entries, architecture);
        let chosen = platforms_to_read(entries.len(), selected, MAX_PLATFORMS);
        let mut platforms = Vec::with_capacity(chosen.len());
        let mut config_digest = String::new();
        let mut selected_at = 0;
        for &i in &chosen {
            let entry = &entries[i];
            let what = format!(
                "manifest {}/{}@{} ({}/{})",
                reference.registry(),
                reference.repository(),
                entry.digest,
                entry.os,
                entry.architecture
            );
            let (body, content_type, _) = self.fetch_manifest(target, &entry.digest, &what).await?;
            let Parsed::Image(manifest) =
                parse_manifest(&body, &content_type).map_err(|d| invalid(&what, d))?
            else {
                return Err(invalid(&what, "an index nested in an index".into()));
            };
            if i == selected {
                selected_at = platforms.len();
                config_digest = manifest.config_digest.clone();
            }
            platforms.push(PlatformFacts {
                architecture: entry.architecture.clone(),
                os: entry.os.clone(),
                variant: entry.variant.clone(),
                digest: entry.digest.clone(),
                size_bytes: manifest.size_bytes,
                layer_count: manifest.layer_count,
            });
        }
        let config = self.fetch_config(target, &config_digest).await?;
        Ok(ImageFacts {
            digest: index.digest,
            media_type: index.media_type,
            is_index: true,
            size_bytes: platforms[selected_at].size_bytes,
            layer_count: platforms[selected_at].layer_count,
            platform_count: entries.len(),
            platforms,
            config,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_indexes_are_read_whole() {
        assert_eq!(platforms_to_read(3, 2, 64), vec![0, 1, 2]);
        assert_eq!(platforms_to_read(64, 63, 64), (0..64).collect::<Vec<_>>());
    }

    #[test]
    fn big_indexes_are_truncated_keeping_the_selected_platform() {
        let chosen = platforms_to_read(5000, 4999, 64);
        assert_eq!(chosen.len(), 64);
        assert_eq!(chosen[..63], (0..63).collect::<Vec<_>>()[..]);
        assert_eq!(chosen[63], 4999);
        let chosen = platforms_to_read(5000, 10, 64);
        assert_eq!(chosen, (0..64).collect::<Vec<_>>());
        assert_eq!(platforms_to_read(5, 4, 0), vec![4]);
    }
}
