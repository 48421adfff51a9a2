//! Entry files as caib writes them, and the duplicate rules: publishing what is
//! already there is a no-op success (CI pipelines retry), anything that would make two
//! entries point at the same image, or silently overwrite one, is a conflict.

use std::collections::BTreeMap;

use catalog_api::image::{ImageMetadata, LocalObjectRef};
use catalog_api::repo::Environment;
use catalog_api::validate::Entry;
use catalog_api::{CatalogImageSpec, ImageReference};
use serde::Serialize;

use crate::error::CaibError;

/// The valid entry `name` of environment `env`; not found (exit 4) names the environment and
/// its directory, so the user sees where caib looked.
pub fn find<'a>(
    entries: &'a [Entry],
    name: &str,
    env: &Environment,
) -> Result<&'a Entry, CaibError> {
    entries.iter().find(|e| e.name() == name).ok_or_else(|| {
        CaibError::NotFound(format!(
            "no entry \"{name}\" in environment {} ({})",
            env.name, env.path
        ))
    })
}

/// File path of entry `name` in an environment directory: `<dir>/<name>.yaml`.
pub fn entry_path(env_dir: &str, name: &str) -> String {
    format!("{}/{name}.yaml", env_dir.trim_end_matches('/'))
}

/// The file to write entry `name` to: the file that already defines it when it is the only
/// entry there (an update must never leave two definitions of one name), else
/// `<dir>/<name>.yaml`. A file shared with other entries is left to a human.
pub fn write_path(entries: &[Entry], env_dir: &str, name: &str) -> Result<String, String> {
    let Some(existing) = entries.iter().find(|e| e.name() == name) else {
        return Ok(entry_path(env_dir, name));
    };
    let others: Vec<&str> = entries
        .iter()
        .filter(|o| o.path == existing.path && o.name() != name)
        .map(Entry::name)
        .collect();
    if others.is_empty() {
        Ok(existing.path.clone())
    } else {
        Err(format!(
            "{} also defines {}: edit that file by hand to change only \"{name}\"",
            existing.path,
            others.join(", ")
        ))
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct File<'a> {
    api_version: &'static str,
    kind: &'static str,
    metadata: Meta<'a>,
    spec: Spec<'a>,
}

#[derive(Serialize)]
struct Meta<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Spec<'a> {
    registry_url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    digest: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    tags: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_secret_ref: Option<&'a LocalObjectRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    verification_interval: Option<&'a str>,
    metadata: &'a ImageMetadata,
}

/// The YAML of an entry: `apiVersion`, `kind`, `metadata.name` (and annotations when given),
/// `spec` without empty fields. `verificationInterval` is written only when it is not the
/// default, so that catalog.yaml `defaults` keep applying.
pub fn render(
    name: &str,
    annotations: &BTreeMap<String, String>,
    spec: &CatalogImageSpec,
) -> Vec<u8> {
    let interval = (spec.verification_interval
        != catalog_api::image::DEFAULT_VERIFICATION_INTERVAL)
        .then_some(spec.verification_interval.as_str());
    let file = File {
        api_version: catalog_api::API_VERSION,
        kind: "CatalogImage",
        metadata: Meta { name, annotations },
        spec: Spec {
            registry_url: &spec.registry_url,
            digest: spec.digest.as_deref(),
            tags: &spec.tags,
            auth_secret_ref: spec.auth_secret_ref.as_ref(),
            verification_interval: interval,
            metadata: &spec.metadata,
        },
    };
    // Indented lists, like the entries people write by hand (catalog-repo-template/).
    let mut options = serde_saphyr::SerializerOptions::default();
    options.compact_list_indent = false;
    // Identifiers stay on their line (a sha512 digest is 135 characters): folded into a `>-`
    // block they are unreadable in review. Multi-line strings still use literal blocks.
    options.folded_wrap_chars = usize::MAX;
    serde_saphyr::to_string_with_options(&file, options)
        .expect("an entry always serializes")
        .into_bytes()
}

/// Writing entry `name` with `spec` into environment directory `env_dir`: the file that
/// defines it edited in place (its annotations kept, `set` added over them), else a new
/// `<dir>/<name>.yaml`. What add, publish, tag and untag write.
pub fn change(
    repo: &crate::repo::CatalogRepo,
    entries: &[Entry],
    env_dir: &str,
    name: &str,
    set: &BTreeMap<String, String>,
    spec: &CatalogImageSpec,
) -> Result<crate::repo::FileChange, CaibError> {
    let path = write_path(entries, env_dir, name).map_err(CaibError::Usage)?;
    let base = entries
        .iter()
        .find(|e| e.name() == name)
        .and_then(|e| Base::of(repo, e));
    let mut annotations = base.as_ref().map(Base::annotations).unwrap_or_default();
    annotations.extend(set.clone());
    Ok(crate::repo::FileChange::Write {
        path,
        content: content(base.as_ref(), name, &annotations, spec),
    })
}

/// The file an entry is edited from: its bytes and the entry as the validator read them.
pub struct Base<'a> {
    pub bytes: Vec<u8>,
    pub entry: &'a Entry,
}

impl<'a> Base<'a> {
    /// `entry` as its file on the target branch holds it.
    pub fn of(repo: &crate::repo::CatalogRepo, entry: &'a Entry) -> Option<Base<'a>> {
        Some(Base {
            bytes: repo.file(&entry.path)?,
            entry,
        })
    }

    pub fn annotations(&self) -> BTreeMap<String, String> {
        self.entry
            .image
            .metadata
            .annotations
            .clone()
            .unwrap_or_default()
    }
}

/// The content to write for entry `name`: `base` edited in place so that only the lines that
/// must change do (see [`crate::edit`]), or the whole entry rendered when there is no base or
/// the edit cannot be made and checked. The check reads the edited file back with the
/// validator: it must hold exactly the wanted entry.
pub fn content(
    base: Option<&Base<'_>>,
    name: &str,
    annotations: &BTreeMap<String, String>,
    spec: &CatalogImageSpec,
) -> Vec<u8> {
    let rendered = render(name, annotations, spec);
    let Some(base) = base else {
        return rendered;
    };
    let old = render(
        base.entry.name(),
        &base.annotations(),
        &base.entry.image.spec,
    );
    let edited = std::str::from_utf8(&base.bytes)
        .map_err(|e| e.to_string())
        .and_then(|file| {
            let new = std::str::from_utf8(&rendered).expect("rendered YAML is UTF-8");
            let old = std::str::from_utf8(&old).expect("rendered YAML is UTF-8");
            crate::edit::update(file, old, new).map_err(|e| e.to_string())
        })
        .and_then(|edited| {
            holds(&base.entry.path, edited.as_bytes(), name, annotations, spec)
                .map(|()| edited.into_bytes())
        });
    edited.unwrap_or_else(|why| {
        eprintln!(
            "warning: {} rewritten whole ({why}); its comments and formatting are not kept",
            base.entry.path
        );
        rendered
    })
}

/// Whether `bytes` hold exactly one entry, `name` with `spec` and `annotations`.
fn holds(
    path: &str,
    bytes: &[u8],
    name: &str,
    annotations: &BTreeMap<String, String>,
    spec: &CatalogImageSpec,
) -> Result<(), String> {
    let (entries, diagnostics) =
        catalog_api::validate::validate_file(path, bytes, &Default::default());
    if let Some(d) = diagnostics.first() {
        return Err(format!("the edit would not validate: {d}"));
    }
    match entries.as_slice() {
        [e] if e.name() == name
            && e.image.spec == *spec
            && e.image.metadata.annotations.clone().unwrap_or_default() == *annotations =>
        {
            Ok(())
        }
        _ => Err("the edit would not hold the wanted entry".into()),
    }
}

/// How a new or changed entry relates to what the environment already holds.
#[derive(Debug, PartialEq)]
pub enum Duplicate {
    /// Nothing in the way.
    None,
    /// An entry of that name with the same spec: nothing to do.
    Identical { path: String },
    /// An entry of that name with another spec (allowed with `--update`).
    SameName { path: String },
    /// Another entry names the same image.
    Other {
        name: String,
        path: String,
        why: String,
    },
}

fn canonical(url: &str) -> String {
    ImageReference::parse(url)
        .map(|r| r.canonical())
        .unwrap_or_else(|_| url.to_owned())
}

/// Checks `name`/`spec` against the environment's valid entries.
pub fn check(entries: &[Entry], name: &str, spec: &CatalogImageSpec) -> Duplicate {
    let url = canonical(&spec.registry_url);
    for entry in entries.iter().filter(|e| e.name() != name) {
        let other = &entry.image.spec;
        let why = if canonical(&other.registry_url) == url {
            Some(format!("the same registryUrl {}", spec.registry_url))
        } else if spec.digest.is_some() && other.digest == spec.digest {
            Some(format!(
                "the same digest {}",
                spec.digest.as_deref().unwrap_or_default()
            ))
        } else {
            None
        };
        if let Some(why) = why {
            return Duplicate::Other {
                name: entry.name().to_owned(),
                path: entry.path.clone(),
                why,
            };
        }
    }
    match entries.iter().find(|e| e.name() == name) {
        Some(e) if e.image.spec == *spec => Duplicate::Identical {
            path: e.path.clone(),
        },
        Some(e) => Duplicate::SameName {
            path: e.path.clone(),
        },
        None => Duplicate::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use catalog_api::image::Target;
    use catalog_api::validate::{Rules, validate_file};

    fn spec(url: &str) -> CatalogImageSpec {
        CatalogImageSpec {
            registry_url: url.into(),
            tags: vec!["reference".into(), "baseline".into()],
            verification_interval: "1h".into(),
            metadata: ImageMetadata {
                architecture: Some("amd64".into()),
                distro: Some("cs9".into()),
                distro_version: Some("9.4".into()),
                targets: vec![Target::named("qemu")],
                bootc_capable: Some(true),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn rendered_entries_pass_the_validator_and_round_trip() {
        let s = spec("quay.io/centos-automotive/autosd:cs9-reference");
        let bytes = render("reference-cs9", &BTreeMap::new(), &s);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with("apiVersion: automotive.sdv.cloud.redhat.com/v1alpha1\nkind: CatalogImage\nmetadata:\n  name: reference-cs9\nspec:\n  registryUrl: quay.io/centos-automotive/autosd:cs9-reference\n"), "{text}");
        assert!(!text.contains("status"), "{text}");
        assert!(!text.contains("verificationInterval"), "{text}");
        assert!(!text.contains("digest"), "{text}");
        let (entries, diagnostics) =
            validate_file("e/reference-cs9.yaml", &bytes, &Rules::default());
        assert!(diagnostics.is_empty(), "{diagnostics:?}\n{text}");
        assert_eq!(entries[0].image.spec, s);
        assert_eq!(entries[0].name(), "reference-cs9");
    }

    #[test]
    fn annotations_and_custom_interval_are_written() {
        let mut s = spec("quay.io/x/y:1");
        s.verification_interval = "5m".into();
        let annotations = BTreeMap::from([(
            catalog_api::labels::SOURCE_IMAGEBUILD.to_owned(),
            "ns/build".to_owned(),
        )]);
        let bytes = render("y", &annotations, &s);
        let (entries, diagnostics) = validate_file("e/y.yaml", &bytes, &Rules::default());
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        assert_eq!(entries[0].image.spec.verification_interval, "5m");
        assert_eq!(
            entries[0].image.metadata.annotations.as_ref().unwrap()
                [catalog_api::labels::SOURCE_IMAGEBUILD],
            "ns/build"
        );
    }

    fn entry(name: &str, s: CatalogImageSpec) -> Entry {
        let bytes = render(name, &BTreeMap::new(), &s);
        let (mut entries, d) = validate_file(&entry_path("env", name), &bytes, &Rules::default());
        assert!(d.is_empty());
        entries.remove(0)
    }

    #[test]
    fn updates_go_to_the_file_that_defines_the_entry() {
        let mut a = entry("a", spec("quay.io/x/a:1"));
        a.path = "env/custom-name.yaml".into();
        let entries = vec![a.clone()];
        assert_eq!(
            write_path(&entries, "env", "a").unwrap(),
            "env/custom-name.yaml"
        );
        assert_eq!(write_path(&entries, "env/", "new").unwrap(), "env/new.yaml");
        let mut b = entry("b", spec("quay.io/x/b:1"));
        b.path = a.path.clone();
        let err = write_path(&[a, b], "env", "a").unwrap_err();
        assert!(err.contains("also defines b"), "{err}");
    }

    /// The template's staging entry, as its authors wrote it.
    const STAGING: &str =
        include_str!("../../../catalog-repo-template/environments/staging/autosd-cs9-rpi4.yaml");

    fn staging() -> Entry {
        let path = "environments/staging/autosd-cs9-rpi4.yaml";
        let (mut entries, d) = validate_file(path, STAGING.as_bytes(), &Rules::default());
        assert!(d.is_empty(), "{d:?}");
        entries.remove(0)
    }

    #[test]
    fn a_new_image_changes_only_the_registry_url_and_digest_lines() {
        let entry = staging();
        let base = Base {
            bytes: STAGING.as_bytes().to_vec(),
            entry: &entry,
        };
        let mut spec = entry.image.spec.clone();
        spec.registry_url = "quay.io/centos-automotive/autosd:cs9-rpi4-v1.1.0".into();
        let digest = format!("sha256:{}", "e".repeat(64));
        spec.digest = Some(digest.clone());
        let written = content(Some(&base), entry.name(), &BTreeMap::new(), &spec);
        let expected = STAGING
            .replace("autosd:cs9-rpi4-v1.0.0", "autosd:cs9-rpi4-v1.1.0")
            .replace(entry.image.spec.digest.as_deref().unwrap(), &digest);
        assert_eq!(String::from_utf8(written).unwrap(), expected);
    }

    fn entry_of(path: &str, text: &str) -> Entry {
        let (mut entries, d) = validate_file(path, text.as_bytes(), &Rules::default());
        assert!(d.is_empty(), "{d:?}");
        entries.remove(0)
    }

    #[test]
    fn a_changed_flow_mapping_becomes_a_block_and_the_rest_stays() {
        let flow = "kind: CatalogImage\napiVersion: automotive.sdv.cloud.redhat.com/v1alpha1\n\
                    metadata: {name: x}\nspec:\n  registryUrl: quay.io/x/y:1\n  \
                    metadata: {architecture: arm64, distro: cs9}\n";
        let entry = entry_of("e/x.yaml", flow);
        let base = Base {
            bytes: flow.as_bytes().to_vec(),
            entry: &entry,
        };
        let mut spec = entry.image.spec.clone();
        spec.metadata.kernel_version = Some("6.2".into());
        let written = content(Some(&base), "x", &BTreeMap::new(), &spec);
        assert_eq!(
            String::from_utf8(written).unwrap(),
            flow.replace(
                "  metadata: {architecture: arm64, distro: cs9}\n",
                "  metadata:\n    architecture: arm64\n    distro: cs9\n    kernelVersion: \"6.2\"\n"
            )
        );
    }

    #[test]
    fn a_file_that_cannot_be_edited_in_place_is_written_whole() {
        let flow = "{apiVersion: automotive.sdv.cloud.redhat.com/v1alpha1, kind: CatalogImage, \
                    metadata: {name: x}, spec: {registryUrl: quay.io/x/y:1}}\n";
        let entry = entry_of("e/x.yaml", flow);
        let base = Base {
            bytes: flow.as_bytes().to_vec(),
            entry: &entry,
        };
        let mut spec = entry.image.spec.clone();
        spec.registry_url = "quay.io/x/y:2".into();
        let written = content(Some(&base), "x", &BTreeMap::new(), &spec);
        assert_eq!(written, render("x", &BTreeMap::new(), &spec));
    }

    #[test]
    fn duplicate_rules() {
        let existing = vec![entry("a", spec("quay.io/x/a:1")), {
            let mut s = spec("quay.io/x/b:1");
            s.digest = Some(format!("sha256:{}", "b".repeat(64)));
            entry("b", s)
        }];
        assert_eq!(
            check(&existing, "c", &spec("quay.io/x/c:1")),
            Duplicate::None
        );
        assert_eq!(
            check(&existing, "a", &spec("quay.io/x/a:1")),
            Duplicate::Identical {
                path: "env/a.yaml".into()
            }
        );
        let mut changed = spec("quay.io/x/a:1");
        changed.tags.push("more".into());
        assert_eq!(
            check(&existing, "a", &changed),
            Duplicate::SameName {
                path: "env/a.yaml".into()
            }
        );
        match check(&existing, "c", &spec("quay.io/x/a:1")) {
            Duplicate::Other { name, why, .. } => {
                assert_eq!(name, "a");
                assert!(why.contains("registryUrl"));
            }
            other => panic!("{other:?}"),
        }
        let mut same_digest = spec("quay.io/x/other:1");
        same_digest.digest = Some(format!("sha256:{}", "b".repeat(64)));
        match check(&existing, "c", &same_digest) {
            Duplicate::Other { name, why, .. } => {
                assert_eq!(name, "b");
                assert!(why.contains("digest"));
            }
            other => panic!("{other:?}"),
        }
    }
}
