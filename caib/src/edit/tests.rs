//! Each test compares the whole file before and after: the lines that had to change, and no
//! other.

use super::update;

/// The template's dev entry for several boards, with a comment, quoted strings, a custom
/// verificationInterval placed before tags, and a blank line.
const BOARDS: &str = r#"# One image validated on several boards: every target becomes a filterable label.
apiVersion: automotive.sdv.cloud.redhat.com/v1alpha1
kind: CatalogImage
metadata:
  name: autosd-cs9-arm-boards
spec:
  registryUrl: quay.io/centos-automotive/autosd:cs9-arm-generic  # moving tag
  verificationInterval: 30m
  tags:
    - multi-board   # the boards below

  metadata:
    architecture: arm64
    distro: cs9
    distroVersion: "9.4"
    targets:
      - name: raspberry-pi
        verified: true
        notes: "Pi 4 Model B"
      - name: qemu
    bootcCapable: true
"#;

/// What caib renders for the same entry (key order of the types, its own quoting).
fn rendered(registry: &str, digest: Option<&str>, tags: &[&str], notes: &str) -> String {
    let digest = digest.map_or(String::new(), |d| format!("  digest: {d}\n"));
    let tags = if tags.is_empty() {
        String::new()
    } else {
        let items: String = tags.iter().map(|t| format!("    - {t}\n")).collect();
        format!("  tags:\n{items}")
    };
    format!(
        "apiVersion: automotive.sdv.cloud.redhat.com/v1alpha1
kind: CatalogImage
metadata:
  name: autosd-cs9-arm-boards
spec:
  registryUrl: {registry}
{digest}{tags}  verificationInterval: 30m
  metadata:
    architecture: arm64
    distro: cs9
    distroVersion: \"9.4\"
    targets:
      - name: raspberry-pi
        verified: true
        notes: {notes}
      - name: qemu
        verified: false
    bootcCapable: true
"
    )
}

const URL: &str = "quay.io/centos-automotive/autosd:cs9-arm-generic";
const DIGEST: &str = "sha256:4c7a9f1e2b3d5a6c8e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d";

fn old() -> String {
    rendered(URL, None, &["multi-board"], "Pi 4 Model B")
}

#[test]
fn nothing_changed_leaves_the_file_byte_for_byte() {
    assert_eq!(update(BOARDS, &old(), &old()).unwrap(), BOARDS);
}

#[test]
fn adding_tags_adds_their_lines_only() {
    let new = rendered(
        URL,
        None,
        &["multi-board", "production", "tested"],
        "Pi 4 Model B",
    );
    let edited = update(BOARDS, &old(), &new).unwrap();
    let expected = BOARDS.replace(
        "    - multi-board   # the boards below\n",
        "    - multi-board   # the boards below\n    - production\n    - tested\n",
    );
    assert_eq!(edited, expected);
}

#[test]
fn removing_a_tag_removes_its_line_and_the_last_one_removes_the_key() {
    let two = BOARDS.replace(
        "    - multi-board   # the boards below\n",
        "    - multi-board   # the boards below\n    - 'production'\n",
    );
    let old = rendered(URL, None, &["multi-board", "production"], "Pi 4 Model B");
    let new = rendered(URL, None, &["production"], "Pi 4 Model B");
    let edited = update(&two, &old, &new).unwrap();
    assert_eq!(
        edited,
        BOARDS.replace(
            "    - multi-board   # the boards below\n",
            "    - 'production'\n"
        )
    );
    let new = rendered(URL, None, &[], "Pi 4 Model B");
    let edited = update(&two, &old, &new).unwrap();
    assert_eq!(
        edited,
        BOARDS.replace("  tags:\n    - multi-board   # the boards below\n", "")
    );
}

#[test]
fn a_new_digest_goes_after_the_registry_url_and_keeps_its_comment() {
    let new = rendered(
        "quay.io/x/y:2",
        Some(DIGEST),
        &["multi-board"],
        "Pi 4 Model B",
    );
    let edited = update(BOARDS, &old(), &new).unwrap();
    let expected = BOARDS.replace(
        "  registryUrl: quay.io/centos-automotive/autosd:cs9-arm-generic  # moving tag\n",
        &format!("  registryUrl: quay.io/x/y:2  # moving tag\n  digest: {DIGEST}\n"),
    );
    assert_eq!(edited, expected);
}

#[test]
fn a_changed_quoted_string_stays_quoted() {
    let new = rendered(URL, None, &["multi-board"], "Pi 5");
    let edited = update(BOARDS, &old(), &new).unwrap();
    assert_eq!(
        edited,
        BOARDS.replace("notes: \"Pi 4 Model B\"", "notes: \"Pi 5\"")
    );
}

#[test]
fn a_key_missing_from_a_list_item_is_added_after_its_first_key() {
    let old = old();
    let new = old.replacen(
        "      - name: qemu\n        verified: false\n",
        "      - name: qemu\n        verified: true\n",
        1,
    );
    let edited = update(BOARDS, &old, &new).unwrap();
    assert_eq!(
        edited,
        BOARDS.replace(
            "      - name: qemu\n",
            "      - name: qemu\n        verified: true\n"
        )
    );
}

#[test]
fn flow_lists_stay_flow_lists() {
    let file = BOARDS.replace(
        "  tags:\n    - multi-board   # the boards below\n",
        "  tags: [multi-board]\n",
    );
    let new = rendered(URL, None, &["multi-board", "tested"], "Pi 4 Model B");
    let edited = update(&file, &old(), &new).unwrap();
    assert_eq!(
        edited,
        file.replace("tags: [multi-board]", "tags: [multi-board, tested]")
    );
}

#[test]
fn annotations_are_added_under_metadata() {
    let old = old();
    let new = old.replacen(
        "  name: autosd-cs9-arm-boards\n",
        "  name: autosd-cs9-arm-boards\n  annotations:\n    example.com/build: ns/b\n",
        1,
    );
    let edited = update(BOARDS, &old, &new).unwrap();
    assert_eq!(
        edited,
        BOARDS.replace(
            "  name: autosd-cs9-arm-boards\n",
            "  name: autosd-cs9-arm-boards\n  annotations:\n    example.com/build: ns/b\n"
        )
    );
}

#[test]
fn a_changed_target_list_is_rewritten_as_a_block() {
    let old = old();
    let new = old.replacen("      - name: qemu\n        verified: false\n", "", 1);
    let edited = update(BOARDS, &old, &new).unwrap();
    assert_eq!(
        edited,
        BOARDS.replace("      - name: qemu\n", "").replace(
            "        notes: \"Pi 4 Model B\"\n",
            "        notes: Pi 4 Model B\n"
        )
    );
}

#[test]
fn a_block_scalar_is_replaced_with_its_key_and_the_rest_stays() {
    let file = BOARDS.replace(
        "        notes: \"Pi 4 Model B\"\n",
        "        notes: >-\n          Pi 4\n          Model B\n",
    );
    let old = rendered(URL, None, &["multi-board"], "Pi 4 Model B");
    let new = rendered(URL, None, &["multi-board"], "Pi 5");
    let edited = update(&file, &old, &new).unwrap();
    assert_eq!(
        edited,
        file.replace(
            "        notes: >-\n          Pi 4\n          Model B\n",
            "        notes: Pi 5\n"
        )
    );
}

#[test]
fn an_empty_value_is_filled_in_on_its_line() {
    let file = BOARDS.replace(
        "  verificationInterval: 30m\n",
        "  digest:\n  verificationInterval: 30m\n",
    );
    let new = rendered(URL, Some(DIGEST), &["multi-board"], "Pi 4 Model B");
    let edited = update(&file, &old(), &new).unwrap();
    assert_eq!(
        edited,
        file.replace("  digest:\n", &format!("  digest: {DIGEST}\n"))
    );
}
