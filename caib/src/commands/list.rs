//! `caib catalog list`: the catalog as a table (or a Kubernetes List), newest first.
//!
//! Filters match the spec, the source of truth. Labels only narrow what the server sends: for
//! a filter on a labelled field caib asks for the objects whose label matches *and* the
//! objects that carry no such label at all (applied by hand, as in the quickstart's kubectl
//! example), then checks the spec of both. Objects whose label contradicts their spec (an edit
//! that bypassed every writer) are the one thing this cannot see; every writer derives labels
//! with `catalog_api::labels::spec_labels`.

use std::collections::BTreeSet;

use catalog_api::CatalogImage;
use catalog_api::image::Phase;
use catalog_api::labels;
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ListParams};

use super::list_rows::{self, Row};
use crate::cli::{Global, ListArgs, OutputFormat};
use crate::cluster::{CATALOG_IMAGE, Cluster};
use crate::error::{CaibError, Result};
use crate::output;

/// Objects per list request: bounded responses however large the catalog.
const PAGE_SIZE: u32 = 500;

pub fn run(global: &Global, args: &ListArgs) -> Result<()> {
    let filter = Filter::from_args(args)?;
    let format = global.output.unwrap_or(OutputFormat::Table);
    super::block_on(crate::cluster::within(
        global.timeout,
        "listing catalog images",
        async {
            let cluster = Cluster::connect(global).await?;
            let api: Api<CatalogImage> = cluster.api(args.all_namespaces);
            let limit = args.limit.map(|l| l as usize);
            let all_namespaces = args.all_namespaces;
            if let OutputFormat::Table | OutputFormat::Wide = format {
                let rows = list_rows(&cluster, &api, &filter, limit).await?;
                let wide = matches!(format, OutputFormat::Wide);
                return output::print_list(rows.is_empty(), format, NOT_FOUND, || {
                    Ok(list_rows::table(
                        &rows,
                        wide,
                        all_namespaces,
                        Timestamp::now(),
                    ))
                });
            }
            let items = list_images(&cluster, &api, &filter, limit).await?;
            output::print_list(items.is_empty(), format, NOT_FOUND, || {
                render(&items, format, all_namespaces, Timestamp::now())
            })
        },
    ))
}

const NOT_FOUND: &str = "No catalog images found";

/// The table's rows: from the server's Table when the filters only look at its columns,
/// else from full objects.
async fn list_rows(
    cluster: &Cluster,
    api: &Api<CatalogImage>,
    filter: &Filter,
    limit: Option<usize>,
) -> Result<Vec<Row>> {
    let from_table = if filter.columns_suffice() {
        gather_rows(cluster, api, filter).await?
    } else {
        None
    };
    let mut rows = match from_table {
        Some(rows) => rows,
        None => (list_images(cluster, api, filter, None).await?.iter())
            .map(Row::of_image)
            .collect(),
    };
    list_rows::sort_rows(&mut rows);
    rows.truncate(limit.unwrap_or(usize::MAX));
    Ok(rows)
}

/// Every selector's Table rows, each object once, filtered; `None` when the server's Table
/// lacks the printer columns.
async fn gather_rows(
    cluster: &Cluster,
    api: &Api<CatalogImage>,
    filter: &Filter,
) -> Result<Option<Vec<Row>>> {
    let mut rows = Vec::new();
    let mut seen = BTreeSet::new();
    for selector in filter.selectors() {
        let Some(page) = list_rows::fetch_table(cluster, api, selector.as_deref()).await? else {
            return Ok(None);
        };
        for row in page {
            if filter.matches_row(&row) && seen.insert(row.key()) {
                rows.push(row);
            }
        }
    }
    Ok(Some(rows))
}

/// Every selector's objects, each once, filtered, newest first, at most `limit`.
async fn list_images(
    cluster: &Cluster,
    api: &Api<CatalogImage>,
    filter: &Filter,
    limit: Option<usize>,
) -> Result<Vec<CatalogImage>> {
    let mut items = Vec::new();
    let mut seen = BTreeSet::new();
    for selector in filter.selectors() {
        for image in fetch(cluster, api, selector.as_deref()).await? {
            let key = (
                image.metadata.namespace.clone(),
                image.metadata.name.clone(),
            );
            if filter.matches(&image) && seen.insert(key) {
                items.push(image);
            }
        }
    }
    sort_newest_first(&mut items);
    items.truncate(limit.unwrap_or(usize::MAX));
    Ok(items)
}

/// The first page's parameters: pages of [`PAGE_SIZE`], with the label selector.
pub(super) fn list_params(selector: Option<&str>) -> ListParams {
    let params = ListParams::default().limit(PAGE_SIZE);
    match selector {
        Some(selector) => params.labels(selector),
        None => params,
    }
}

/// Every page of one list request.
async fn fetch(
    cluster: &Cluster,
    api: &Api<CatalogImage>,
    selector: Option<&str>,
) -> Result<Vec<CatalogImage>> {
    let mut params = list_params(selector);
    let mut items = Vec::new();
    loop {
        let page = api
            .list(&params)
            .await
            .map_err(|e| cluster.error(e, &CATALOG_IMAGE, None))?;
        items.extend(page.items);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(items),
        }
    }
}

/// The list filters, checked against the spec (and the phase against the status).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Filter {
    /// Canonical name (`x86_64` given → `amd64`).
    pub architecture: Option<String>,
    pub distro: Option<String>,
    pub target: Option<String>,
    pub phase: Option<Phase>,
    pub tags: Vec<String>,
}

impl Filter {
    /// Checks the flag values; a bad one is a usage error naming the flag.
    pub fn from_args(args: &ListArgs) -> Result<Filter> {
        let architecture = match args.architecture.as_deref() {
            Some(arch) if !labels::ARCHITECTURES.contains(&arch) => {
                return Err(CaibError::Usage(format!(
                    "--architecture {arch:?}: unknown architecture (expected one of {})",
                    labels::ARCHITECTURES.join(", ")
                )));
            }
            arch => arch.map(|a| labels::normalize_architecture(a).to_string()),
        };
        let phase = match args.phase.as_deref() {
            Some(phase) => Some(
                phase
                    .parse::<Phase>()
                    .map_err(|e| CaibError::Usage(format!("--phase: {e}")))?,
            ),
            None => None,
        };
        if args.limit == Some(0) {
            return Err(CaibError::Usage("--limit must be at least 1".into()));
        }
        if let Some(tag) = args.tags.iter().find(|t| t.trim().is_empty()) {
            return Err(CaibError::Usage(format!("--tags: empty tag in {tag:?}")));
        }
        Ok(Filter {
            architecture,
            distro: args.distro.clone(),
            target: args.target.clone(),
            phase,
            tags: args.tags.iter().map(|t| t.trim().to_string()).collect(),
        })
    }

    pub fn matches(&self, image: &CatalogImage) -> bool {
        let meta = &image.spec.metadata;
        let fields = (meta.architecture.as_deref(), meta.distro.as_deref());
        if !self.matches_columns(fields.0, fields.1, phase_of(image)) {
            return false;
        }
        if let Some(target) = &self.target
            && !meta.targets.iter().any(|t| &t.name == target)
        {
            return false;
        }
        self.tags.iter().all(|tag| image.spec.tags.contains(tag))
    }

    /// Whether the table's columns hold every field the filters check: the Target column is
    /// only the first target, and tags are no column, so those two need full objects.
    pub fn columns_suffice(&self) -> bool {
        self.target.is_none() && self.tags.is_empty()
    }

    /// [`Filter::matches`] on a table row; only meaningful when [`Filter::columns_suffice`].
    pub fn matches_row(&self, row: &Row) -> bool {
        self.matches_columns(
            row.architecture.as_deref(),
            row.distro.as_deref(),
            row.phase,
        )
    }

    fn matches_columns(
        &self,
        architecture: Option<&str>,
        distro: Option<&str>,
        phase: Phase,
    ) -> bool {
        if let Some(arch) = &self.architecture
            && architecture.map(labels::normalize_architecture) != Some(arch)
        {
            return false;
        }
        if let Some(want) = &self.distro
            && distro != Some(want)
        {
            return false;
        }
        self.phase.is_none_or(|p| p == phase)
    }

    /// Label selectors whose union holds every possible match: the objects labelled with the
    /// wanted value plus the objects without that label. `[None]` lists everything.
    pub fn selectors(&self) -> Vec<Option<String>> {
        let narrow =
            |key: &str, value: &str| vec![Some(format!("{key}={value}")), Some(format!("!{key}"))];
        if let Some(arch) = self
            .architecture
            .as_deref()
            .filter(|v| labels::is_label_name(v))
        {
            return narrow(labels::ARCHITECTURE, arch);
        }
        if let Some(distro) = self.distro.as_deref().filter(|v| labels::is_label_name(v)) {
            return narrow(labels::DISTRO, distro);
        }
        if let Some(target) = self.target.as_deref().filter(|v| labels::is_label_name(v)) {
            // Per-target label of any position, the first target's label (hand-written
            // manifests often carry only that one), or no target label at all.
            return vec![
                Some(labels::target_selector(target)),
                Some(format!("{}={target}", labels::TARGET)),
                Some(format!("!{}", labels::TARGET)),
            ];
        }
        vec![None]
    }
}

/// Phase shown for an image: an object without status has not been verified yet.
pub fn phase_of(image: &CatalogImage) -> Phase {
    image
        .status
        .as_ref()
        .and_then(|s| s.phase)
        .unwrap_or(Phase::Pending)
}

/// Newest first; same age by namespace and name so the order is stable.
pub fn sort_newest_first(items: &mut [CatalogImage]) {
    items.sort_by(|a, b| list_rows::newest_first(age_key(a), age_key(b)));
}

fn age_key(image: &CatalogImage) -> (Option<&Time>, Option<&String>, Option<&String>) {
    let m = &image.metadata;
    (
        m.creation_timestamp.as_ref(),
        m.namespace.as_ref(),
        m.name.as_ref(),
    )
}

/// Renders the list in any output format.
pub fn render(
    items: &[CatalogImage],
    format: OutputFormat,
    all_namespaces: bool,
    now: Timestamp,
) -> Result<String> {
    if let Some(document) = output::list_document(items, "CatalogImage", format)? {
        return Ok(document);
    }
    let wide = matches!(format, OutputFormat::Wide);
    let rows: Vec<Row> = items.iter().map(Row::of_image).collect();
    Ok(list_rows::table(&rows, wide, all_namespaces, now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::testdata::{by_hand, now, qemu, rpi4};

    fn sorted() -> Vec<CatalogImage> {
        let mut items = vec![qemu(), by_hand(), rpi4()];
        sort_newest_first(&mut items);
        items
    }

    #[test]
    fn table_matches_the_quickstart_layout() {
        insta::assert_snapshot!(render(&sorted(), OutputFormat::Table, false, now()).unwrap(), @r"
        NAME               REGISTRY                                    ARCHITECTURE   DISTRO   TARGET         PHASE         AGE
        my-catalog-image   quay.io/my-org/automotive-image:v1.0.0      <none>         <none>   <none>         Pending       45s
        autosd-cs9-qemu    quay.io/centos-automotive/autosd:cs9-qemu   x86_64         cs9      qemu           Unavailable   24h
        autosd-cs9-rpi4    quay.io/centos-automotive/autosd:cs9-rpi4   arm64          cs9      raspberry-pi   Available     2d
        ");
    }

    #[test]
    fn wide_and_all_namespaces() {
        insta::assert_snapshot!(render(&sorted(), OutputFormat::Wide, true, now()).unwrap());
    }

    #[test]
    fn json_and_yaml_are_kubernetes_lists() {
        insta::assert_snapshot!(render(&sorted(), OutputFormat::Json, false, now()).unwrap());
        insta::assert_snapshot!(render(&sorted(), OutputFormat::Yaml, false, now()).unwrap());
    }

    fn args() -> ListArgs {
        ListArgs {
            architecture: None,
            distro: None,
            target: None,
            phase: None,
            tags: vec![],
            limit: None,
            all_namespaces: false,
        }
    }

    #[test]
    fn filters_match_the_spec() {
        let all = [rpi4(), qemu(), by_hand()];
        let names = |args: ListArgs| -> Vec<String> {
            let f = Filter::from_args(&args).unwrap();
            all.iter()
                .filter(|i| f.matches(i))
                .map(|i| i.metadata.name.clone().unwrap())
                .collect()
        };
        let amd = ListArgs {
            architecture: Some("amd64".into()),
            ..args()
        };
        assert_eq!(names(amd), ["autosd-cs9-qemu"]);
        let x86 = ListArgs {
            architecture: Some("x86_64".into()),
            ..args()
        };
        assert_eq!(names(x86), ["autosd-cs9-qemu"]);
        let target = ListArgs {
            target: Some("raspberry-pi".into()),
            ..args()
        };
        assert_eq!(names(target), ["autosd-cs9-rpi4"]);
        let phase = ListArgs {
            phase: Some("pending".into()),
            ..args()
        };
        assert_eq!(names(phase), ["my-catalog-image"]);
        let tags = ListArgs {
            tags: vec!["production".into(), "automotive".into()],
            ..args()
        };
        assert_eq!(names(tags), ["autosd-cs9-rpi4"]);
        let tags = ListArgs {
            tags: vec!["production".into(), "other".into()],
            ..args()
        };
        assert!(names(tags).is_empty());
        let distro = ListArgs {
            distro: Some("cs9".into()),
            ..args()
        };
        assert_eq!(names(distro), ["autosd-cs9-rpi4", "autosd-cs9-qemu"]);
    }

    #[test]
    fn bad_flag_values_name_the_flag() {
        let err = Filter::from_args(&ListArgs {
            phase: Some("Ready".into()),
            ..args()
        })
        .unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(
            err.to_string()
                .starts_with("--phase: unknown phase \"Ready\""),
            "{err}"
        );
        let err = Filter::from_args(&ListArgs {
            architecture: Some("sparc".into()),
            ..args()
        })
        .unwrap_err();
        assert!(
            err.to_string().starts_with("--architecture \"sparc\""),
            "{err}"
        );
        let err = Filter::from_args(&ListArgs {
            limit: Some(0),
            ..args()
        })
        .unwrap_err();
        assert!(err.to_string().contains("--limit"), "{err}");
    }

    #[test]
    fn selectors_include_unlabelled_objects() {
        let f = Filter::from_args(&ListArgs {
            architecture: Some("x86_64".into()),
            ..args()
        })
        .unwrap();
        assert_eq!(
            f.selectors(),
            [
                Some("automotive.sdv.cloud.redhat.com/architecture=amd64".to_string()),
                Some("!automotive.sdv.cloud.redhat.com/architecture".to_string())
            ]
        );
        assert_eq!(Filter::default().selectors(), [None]);
        let f = Filter::from_args(&ListArgs {
            target: Some("qemu".into()),
            ..args()
        })
        .unwrap();
        assert_eq!(f.selectors().len(), 3);
    }
}
