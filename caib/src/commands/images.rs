//! `caib images list`: the ImageBuilds of automotive-dev-operator in the namespace, to pick
//! one to `caib catalog publish`. ImageBuild is not our type: it is read as a dynamic object
//! and only the fields `publish` uses are shown.

use jiff::Timestamp;
use kube::api::{DynamicObject, ListParams};
use serde_json::Value;

use crate::cli::{Global, ImagesListArgs, OutputFormat};
use crate::cluster::{self, Cluster, IMAGE_BUILD};
use crate::error::Result;
use crate::output::{self, NONE};

pub fn run(global: &Global, args: &ImagesListArgs) -> Result<()> {
    super::block_on(crate::cluster::within(
        global.timeout,
        "listing ImageBuilds",
        async {
            let cluster = Cluster::connect(global).await?;
            let resource = cluster::imagebuild_resource();
            let api = cluster.dynamic_api(&resource, args.all_namespaces);
            let mut builds = api
                .list(&ListParams::default())
                .await
                .map_err(|e| cluster.error(e, &IMAGE_BUILD, None))?
                .items;
            builds.sort_by(|a, b| {
                let ta = a.metadata.creation_timestamp.as_ref().map(|t| t.0);
                let tb = b.metadata.creation_timestamp.as_ref().map(|t| t.0);
                tb.cmp(&ta)
                    .then_with(|| a.metadata.name.cmp(&b.metadata.name))
            });
            let format = global.output.unwrap_or(OutputFormat::Table);
            output::print_list(builds.is_empty(), format, "No ImageBuilds found", || {
                render(&builds, format, args.all_namespaces, Timestamp::now())
            })
        },
    ))
}

fn field<'a>(data: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut v = data;
    for key in path {
        v = v.get(key)?;
    }
    v.as_str().filter(|s| !s.is_empty())
}

/// The image `publish` would catalog: `spec.export.container`, else `spec.export.disk.oci`.
pub fn image_of(build: &DynamicObject) -> Option<&str> {
    field(&build.data, &["spec", "export", "container"])
        .or_else(|| field(&build.data, &["spec", "export", "disk", "oci"]))
}

pub fn render(
    builds: &[DynamicObject],
    format: OutputFormat,
    all_namespaces: bool,
    now: Timestamp,
) -> Result<String> {
    if let Some(document) = output::list_document(builds, "ImageBuild", format)? {
        return Ok(document);
    }
    let mut table = output::object_table(
        all_namespaces,
        &["PHASE", "ARCHITECTURE", "DISTRO", "TARGET", "IMAGE", "AGE"],
    );
    for build in builds {
        let d = &build.data;
        let cell = |v: Option<&str>| v.unwrap_or(NONE).to_string();
        let mut row = output::object_cells(&build.metadata, all_namespaces);
        row.push(cell(field(d, &["status", "phase"])));
        row.push(cell(field(d, &["spec", "architecture"])));
        row.push(cell(field(d, &["spec", "aib", "distro"])));
        row.push(cell(field(d, &["spec", "aib", "target"])));
        row.push(cell(image_of(build)));
        row.push(output::age_of(
            build.metadata.creation_timestamp.as_ref(),
            now,
        ));
        table.push(row);
    }
    Ok(table.render())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::testdata::now;

    fn build(value: serde_json::Value) -> DynamicObject {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn columns_come_from_the_fields_publish_reads() {
        let builds = [
            build(serde_json::json!({
                "apiVersion": "automotive.sdv.cloud.redhat.com/v1alpha1", "kind": "ImageBuild",
                "metadata": {"name": "my-custom-build", "namespace": "default", "creationTimestamp": "2026-01-04T14:00:00Z"},
                "spec": {"architecture": "arm64", "aib": {"distro": "cs9", "target": "raspberry-pi"},
                         "export": {"container": "quay.io/my-org/custom-build:v1.0.0"}},
                "status": {"phase": "Completed"}
            })),
            build(serde_json::json!({
                "apiVersion": "automotive.sdv.cloud.redhat.com/v1alpha1", "kind": "ImageBuild",
                "metadata": {"name": "disk-build", "namespace": "default", "creationTimestamp": "2026-01-04T12:30:00Z"},
                "spec": {"architecture": "amd64", "aib": {"distro": "autosd10", "target": "qemu"},
                         "export": {"format": "qcow2", "disk": {"oci": "quay.io/my-org/disk:v2"}}},
                "status": {"phase": "Building"}
            })),
            build(serde_json::json!({
                "apiVersion": "automotive.sdv.cloud.redhat.com/v1alpha1", "kind": "ImageBuild",
                "metadata": {"name": "new", "namespace": "default", "creationTimestamp": "2026-01-04T14:29:50Z"},
                "spec": {}
            })),
        ];
        insta::assert_snapshot!(render(&builds, OutputFormat::Table, false, now()).unwrap(), @r"
        NAME              PHASE       ARCHITECTURE   DISTRO     TARGET         IMAGE                                AGE
        my-custom-build   Completed   arm64          cs9        raspberry-pi   quay.io/my-org/custom-build:v1.0.0   30m
        disk-build        Building    amd64          autosd10   qemu           quay.io/my-org/disk:v2               120m
        new               <none>      <none>         <none>     <none>         <none>                               10s
        ");
        insta::assert_snapshot!(render(&builds[..1], OutputFormat::Json, false, now()).unwrap());
    }
}
