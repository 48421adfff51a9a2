//! The one validator for catalog entries (README "The catalog repository"). `caib catalog validate`, the
//! reconciler's sync and the tests all call [`validate_environment`], so what passes review in
//! CI is exactly what the reconciler applies.

use kube::CustomResourceExt;

use crate::declared::DeclaredImage;
use crate::diagnostic::Diagnostic;
use crate::entry::{Document, Node, Value, parse_file};
use crate::image::{CatalogImage, MIN_VERIFICATION_INTERVAL_SECS};
use crate::labels::{self, ARCHITECTURES};
use crate::reference::{DIGEST_FORMS, ImageReference, is_valid_digest};
use crate::{API_VERSION, duration};

/// Rules an environment imposes on its entries (from `catalog.yaml`, or the CatalogSource).
#[derive(Clone, Debug, Default)]
pub struct Rules {
    /// Namespace the entries are applied to; an entry naming another namespace is refused.
    pub target_namespace: Option<String>,
    /// Every entry must pin `spec.digest` (production environments).
    pub require_digest: bool,
    /// Environment name, for messages.
    pub environment: Option<String>,
}

/// A valid entry and where it came from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Entry {
    /// File path relative to the repository root.
    pub path: String,
    /// Line of the document's `metadata.name`.
    pub line: u32,
    /// What the file declares (compact: see [`crate::declared`]).
    pub image: DeclaredImage,
}

impl Entry {
    pub fn name(&self) -> &str {
        self.image.metadata.name.as_deref().unwrap_or_default()
    }
}

/// Result of validating every file of one environment.
#[derive(Debug, Default)]
pub struct Report {
    /// Valid entries, sorted by name.
    pub entries: Vec<Entry>,
    /// Every problem found, sorted by path and position.
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    /// Paths of files with at least one problem. Entries these files used to define must be
    /// left as they are live: a broken file never deletes anything.
    pub fn broken_paths(&self) -> std::collections::BTreeSet<&str> {
        self.diagnostics.iter().map(|d| d.path.as_str()).collect()
    }

    pub fn is_valid(&self) -> bool {
        self.diagnostics.is_empty()
    }
}

/// Validate the files of one environment: each file on its own, then names across files.
/// Entries with duplicate names are all quarantined: picking one would be arbitrary.
pub fn validate_environment<'a>(
    files: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    rules: &Rules,
) -> Report {
    combine_files(
        files
            .into_iter()
            .map(|(path, bytes)| validate_file(path, bytes, rules)),
    )
}

/// Combine per-file results of [`validate_file`] into an environment report (the cross-file
/// checks: unique names). Lets the reconciler cache per-file results by blob id and still get
/// exactly what [`validate_environment`] would report.
pub fn combine_files(files: impl IntoIterator<Item = (Vec<Entry>, Vec<Diagnostic>)>) -> Report {
    let files = files.into_iter();
    let mut report = Report::default();
    // Everything is moved and sorted in place: a large environment is held once.
    let mut entries: Vec<Entry> = Vec::with_capacity(files.size_hint().0);
    for (file_entries, diagnostics) in files {
        if entries.is_empty() && file_entries.capacity() >= entries.capacity() {
            entries = file_entries;
        } else {
            entries.extend(file_entries);
        }
        report.diagnostics.extend(diagnostics);
    }
    // (name, path, line) is a total order, so the result never depends on input order.
    entries.sort_unstable_by(|a, b| (a.name(), &a.path, a.line).cmp(&(b.name(), &b.path, b.line)));
    let mut duplicate = vec![false; entries.len()];
    let mut start = 0;
    while start < entries.len() {
        let name = entries[start].name();
        let end = start
            + entries[start..]
                .iter()
                .take_while(|e| e.name() == name)
                .count();
        if end - start > 1 {
            for i in start..end {
                duplicate[i] = true;
                let others: Vec<String> = (start..end)
                    .filter(|&j| j != i)
                    .map(|j| format!("{}:{}", entries[j].path, entries[j].line))
                    .collect();
                report.diagnostics.push(Diagnostic::new(
                    &entries[i].path,
                    entries[i].line,
                    1,
                    format!(
                        "duplicate entry name {name:?}: also defined at {}",
                        others.join(", ")
                    ),
                ));
            }
        }
        start = end;
    }
    let mut index = 0;
    entries.retain(|_| {
        index += 1;
        !duplicate[index - 1]
    });
    report.entries = entries;
    report.diagnostics.sort();
    report
}

/// Validate one file, which may hold several documents.
pub fn validate_file(path: &str, bytes: &[u8], rules: &Rules) -> (Vec<Entry>, Vec<Diagnostic>) {
    let (documents, mut diagnostics) = parse_file(path, bytes);
    let mut entries = Vec::new();
    for document in documents {
        match validate_document(path, &document, rules) {
            Ok(entry) => entries.push(entry),
            Err(errors) => diagnostics.extend(errors),
        }
    }
    (entries, diagnostics)
}

/// Collects located errors for one document.
struct Checker<'a> {
    path: &'a str,
    root: &'a Node,
    errors: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn at(&mut self, node: &Node, message: impl Into<String>) {
        self.errors
            .push(Diagnostic::new(self.path, node.line, node.column, message));
    }
    fn field(&mut self, field: &str, message: impl Into<String>) {
        let node = self.root.locate(field);
        let message = format!("{field}: {}", message.into());
        self.at(node, message);
    }
}

fn validate_document(
    path: &str,
    document: &Document,
    rules: &Rules,
) -> Result<Entry, Vec<Diagnostic>> {
    let root = &document.root;
    let mut c = Checker {
        path,
        root,
        errors: Vec::new(),
    };
    if !matches!(root.value, Value::Map(_)) {
        c.at(
            root,
            format!(
                "expected a Kubernetes manifest (a mapping), found {}",
                root.type_name()
            ),
        );
        return Err(c.errors);
    }
    let kind = root.get("kind").and_then(Node::as_str);
    match kind {
        Some("CatalogImage") => {}
        Some(other) => {
            c.field("kind", format!("{other} is not allowed in a catalog repository: only CatalogImage manifests are applied"));
            return Err(c.errors);
        }
        None => {
            c.field("kind", "missing: expected kind: CatalogImage");
            return Err(c.errors);
        }
    }
    match root.get("apiVersion").and_then(Node::as_str) {
        Some(API_VERSION) => {}
        Some(other) => c.field(
            "apiVersion",
            format!("{other:?} is not served; expected {API_VERSION}"),
        ),
        None => c.field("apiVersion", format!("missing: expected {API_VERSION}")),
    }
    if root.get("status").is_some() {
        c.field(
            "status",
            "not allowed in a catalog file: status is written by the reconciler",
        );
    }
    check_metadata(&mut c, rules);
    check_unknown_fields(&mut c);
    if !c.errors.is_empty() {
        return Err(c.errors);
    }
    let image: CatalogImage = match serde_path_to_error::deserialize(root.to_json()) {
        Ok(image) => image,
        Err(e) => {
            let field = e.path().to_string();
            let message = e.inner().to_string();
            let hint = if message.contains("floating point") || message.contains("integer") {
                " (quote the value to make it a string)"
            } else {
                ""
            };
            c.field(&field, format!("{message}{hint}"));
            return Err(c.errors);
        }
    };
    check_spec(&mut c, &image, rules);
    if !c.errors.is_empty() {
        return Err(c.errors);
    }
    let line = root.locate("metadata.name").line;
    Ok(Entry {
        path: path.to_string(),
        line,
        image: DeclaredImage::of(image),
    })
}

fn check_metadata(c: &mut Checker, rules: &Rules) {
    let Some(metadata) = c.root.get("metadata") else {
        c.field("metadata", "missing: metadata.name is required");
        return;
    };
    let Value::Map(fields) = &metadata.value else {
        c.at(
            metadata,
            format!(
                "metadata: expected a mapping, found {}",
                metadata.type_name()
            ),
        );
        return;
    };
    for (key, node) in fields {
        if !matches!(
            key.as_str(),
            "name" | "namespace" | "labels" | "annotations"
        ) {
            c.at(node, format!("metadata.{key}: not allowed in a catalog file (only name, namespace, labels and annotations)"));
        }
    }
    match metadata.get("name").map(|n| (n, n.as_str())) {
        None => c.field("metadata.name", "missing: every entry needs a name"),
        Some((node, None)) => c.at(node, "metadata.name: expected a string"),
        Some((node, Some(name))) => {
            if let Err(why) = check_dns_subdomain(name) {
                c.at(node, format!("metadata.name: {name:?} {why}"));
            }
        }
    }
    if let (Some(node), Some(target)) = (metadata.get("namespace"), &rules.target_namespace)
        && node.as_str() != Some(target.as_str())
    {
        c.at(
                node,
                format!(
                    "metadata.namespace: {:?} differs from the environment's namespace {target:?}; remove it or set it to {target:?}",
                    node.as_str().unwrap_or_default()
                ),
            );
    }
    for kind in ["labels", "annotations"] {
        if let Some(Value::Map(entries)) = metadata.get(kind).map(|n| &n.value) {
            for (key, node) in entries {
                if labels::is_reserved_key(key) {
                    c.at(
                        node,
                        format!(
                            "metadata.{kind}.{key}: keys under {}/ and {} are set by the reconciler, not by catalog files",
                            labels::PREFIX,
                            labels::TARGET_PREFIX
                        ),
                    );
                }
            }
        }
    }
}

/// Unknown fields are errors, not silently dropped: `registryURL` must not quietly lose the
/// image's location. The allowed fields come from the CRD schema itself.
fn check_unknown_fields(c: &mut Checker) {
    // Generating the CRD schema costs milliseconds: once per process, not once per file
    // (a 10,000-entry environment validates in well under a second).
    static SPEC_SCHEMA: std::sync::LazyLock<Option<serde_json::Value>> =
        std::sync::LazyLock::new(|| {
            let crd = CatalogImage::crd();
            crd.spec.versions[0]
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref())
                .and_then(|s| s.properties.as_ref())
                .and_then(|p| p.get("spec"))
                .map(|s| serde_json::to_value(s).unwrap_or_default())
        });
    if let (Some(schema), Some(spec)) = (SPEC_SCHEMA.as_ref(), c.root.get("spec")) {
        let mut found = Vec::new();
        walk_unknown(spec, schema, "spec", &mut found);
        for (field, node, hint) in found {
            c.at(node, format!("{field}: unknown field{hint}"));
        }
    }
}

fn walk_unknown<'n>(
    node: &'n Node,
    schema: &serde_json::Value,
    path: &str,
    found: &mut Vec<(String, &'n Node, String)>,
) {
    match &node.value {
        Value::Map(entries) => {
            let Some(properties) = schema.get("properties").and_then(|p| p.as_object()) else {
                return;
            };
            for (key, child) in entries {
                let field = format!("{path}.{key}");
                match properties.get(key) {
                    Some(child_schema) => walk_unknown(child, child_schema, &field, found),
                    None => {
                        let hint = properties
                            .keys()
                            .find(|k| k.eq_ignore_ascii_case(key))
                            .map(|k| format!(" (did you mean {k:?}?)"))
                            .unwrap_or_default();
                        found.push((field, child, hint));
                    }
                }
            }
        }
        Value::Seq(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    walk_unknown(item, item_schema, &format!("{path}[{i}]"), found);
                }
            }
        }
        _ => {}
    }
}

fn check_spec(c: &mut Checker, image: &CatalogImage, rules: &Rules) {
    let spec = &image.spec;
    let reference = match ImageReference::parse(&spec.registry_url) {
        Ok(r) => Some(r),
        Err(e) => {
            c.field("spec.registryUrl", e.to_string());
            None
        }
    };
    if let Some(digest) = &spec.digest {
        if !is_valid_digest(digest) {
            c.field(
                "spec.digest",
                format!("{digest:?} is not a digest: expected {DIGEST_FORMS}"),
            );
        } else if let Some(url_digest) = reference.as_ref().and_then(|r| r.digest())
            && url_digest != digest
        {
            c.field(
                "spec.digest",
                format!("{digest} differs from the digest in registryUrl ({url_digest})"),
            );
        }
    } else if rules.require_digest && reference.as_ref().and_then(|r| r.digest()).is_none() {
        let env = rules.environment.as_deref().unwrap_or("this environment");
        c.field(
            "spec.digest",
            format!("required in {env}: pin the image (caib catalog promote pins it for you)"),
        );
    }
    match duration::parse_at_most(&spec.verification_interval, duration::MAX_INTERVAL) {
        Ok(d) if d.as_secs() < MIN_VERIFICATION_INTERVAL_SECS => c.field(
            "spec.verificationInterval",
            format!(
                "{:?} is shorter than the minimum of {MIN_VERIFICATION_INTERVAL_SECS}s",
                spec.verification_interval
            ),
        ),
        Ok(_) => {}
        Err(e) => c.field("spec.verificationInterval", e.to_string()),
    }
    let meta = &spec.metadata;
    if let Some(arch) = &meta.architecture
        && !ARCHITECTURES.contains(&arch.as_str())
    {
        c.field("spec.metadata.architecture", format!("unknown architecture {arch:?} (expected one of amd64, arm64, arm, 386, ppc64le, s390x, riscv64; x86_64 and aarch64 are accepted)"));
    }
    if let Some(distro) = &meta.distro
        && !labels::is_label_value(distro)
    {
        c.field("spec.metadata.distro", format!("{distro:?} must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, target) in meta.targets.iter().enumerate() {
        let field = format!("spec.metadata.targets[{i}].name");
        if !labels::is_label_name(&target.name) {
            c.field(&field, format!("{:?} must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit", target.name));
        } else if !seen.insert(target.name.as_str()) {
            c.field(&field, format!("target {:?} is listed twice", target.name));
        }
    }
    for (i, tag) in spec.tags.iter().enumerate() {
        if tag.trim().is_empty() || tag.len() > 63 {
            c.field(
                &format!("spec.tags[{i}]"),
                "tags must be 1 to 63 characters",
            );
        }
    }
    if let Some(secret) = &spec.auth_secret_ref
        && let Err(why) = check_dns_subdomain(&secret.name)
    {
        c.field(
            "spec.authSecretRef.name",
            format!("{:?} {why}", secret.name),
        );
    }
}

/// Kubernetes object names: DNS-1123 subdomain.
pub fn check_dns_subdomain(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("is empty");
    }
    if name.len() > 253 {
        return Err("is longer than 253 characters");
    }
    let valid_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    let ends_ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !valid_chars || !ends_ok(name.as_bytes()[0]) || !ends_ok(name.as_bytes()[name.len() - 1]) {
        return Err(
            "must consist of lowercase letters, digits, '-' and '.', starting and ending with a letter or digit",
        );
    }
    Ok(())
}
