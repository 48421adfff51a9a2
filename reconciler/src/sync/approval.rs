//! Operator approvals by annotation (`approve-deletions`, `approve-revision`). An approval
//! names one full commit id: a prefix is refused, because a short id typed today can name a
//! different commit pushed tomorrow, and the approval would silently carry over to it.

/// What an approve-* annotation says about `revision`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Approval<'a> {
    /// No annotation.
    Absent,
    /// The annotation is the full id of `revision`.
    Approved,
    /// Not a full commit id (a prefix, a typo): refused.
    NotFullId(&'a str),
    /// The full id of another commit.
    Other(&'a str),
}

/// Reads the annotation `value` for `revision`.
pub fn approval<'a>(value: Option<&'a str>, revision: &str) -> Approval<'a> {
    let Some(value) = value.map(str::trim) else {
        return Approval::Absent;
    };
    if !is_full_commit_id(value) {
        Approval::NotFullId(value)
    } else if value.eq_ignore_ascii_case(revision) {
        Approval::Approved
    } else {
        Approval::Other(value)
    }
}

/// A SHA-1 (40 hex) or SHA-256 (64 hex) commit id.
pub fn is_full_commit_id(text: &str) -> bool {
    matches!(text.len(), 40 | 64) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// "approve with: kubectl ..." naming the source, the annotation and the full revision.
pub fn how_to_approve(namespace: &str, source: &str, annotation: &str, revision: &str) -> String {
    format!(
        "approve with: kubectl -n {namespace} annotate catalogsource {source} {annotation}={revision} --overwrite"
    )
}

/// Why a present annotation does not approve `revision` (empty when absent or approved), to
/// put before [`how_to_approve`]: `approve-deletions "2222222" is not a full commit id; `.
pub fn refusal_note(annotation: &str, approval: Approval<'_>) -> String {
    let short = annotation.rsplit('/').next().unwrap_or(annotation);
    match approval {
        Approval::Absent | Approval::Approved => String::new(),
        Approval::NotFullId(value) => format!("{short} {value:?} is not a full commit id; "),
        Approval::Other(value) => format!("{short} names another revision ({value}); "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REV: &str = "1111111111111111111111111111111111111111";

    #[test]
    fn only_the_full_id_approves() {
        assert_eq!(approval(None, REV), Approval::Absent);
        assert_eq!(approval(Some(REV), REV), Approval::Approved);
        assert_eq!(
            approval(Some(&format!(" {REV}\n")), REV),
            Approval::Approved
        );
        assert_eq!(
            approval(Some(&REV[..7]), REV),
            Approval::NotFullId("1111111")
        );
        assert_eq!(
            approval(Some(&REV[..39]), REV),
            Approval::NotFullId(&REV[..39])
        );
        let other = "2".repeat(40);
        assert_eq!(approval(Some(&other), REV), Approval::Other(&other));
        let sha256 = "a".repeat(64);
        assert_eq!(approval(Some(&sha256), &sha256), Approval::Approved);
        assert!(!is_full_commit_id(&"g".repeat(40)));
    }

    #[test]
    fn a_refusal_prints_the_full_id_to_copy() {
        let key = "automotive.sdv.cloud.redhat.com/approve-deletions";
        let message = format!(
            "{}{}",
            refusal_note(key, approval(Some("2222222"), REV)),
            how_to_approve("catalog", "dev", key, REV)
        );
        assert_eq!(
            message,
            format!(
                "approve-deletions \"2222222\" is not a full commit id; approve with: kubectl -n catalog annotate catalogsource dev {key}={REV} --overwrite"
            )
        );
    }
}
