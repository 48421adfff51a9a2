//! Reusing the last plan when nothing it was made from changed.
//!
//! A resync of the applied revision (a webhook for a push elsewhere, the interval, a status
//! change) plans again against the same entries and the same live objects and finds nothing
//! to do; at 100,000 entries that comparison alone takes about a second. The plan is a pure
//! function of its inputs ([`super::plan`]), so when every input is as it was for the last
//! plan that met no write error, that plan is the answer.

use std::collections::BTreeSet;

use super::plan::{Plan, PlanInput};

/// Everything a plan depends on, in a comparable form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoKey {
    /// Revision, source directory and target namespace: the same entries and diagnostics
    /// (the validation rules come from the revision's catalog.yaml and the namespace).
    entries: (String, String, String),
    source: (String, String),
    contested: BTreeSet<String>,
    settings: (bool, String, bool, Option<String>),
    /// [`super::live::LiveCache::versioned_namespace`]'s count when the live objects were read.
    live_changes: u64,
}

impl MemoKey {
    pub fn new(input: &PlanInput<'_>, path: &str, live_changes: u64) -> MemoKey {
        MemoKey {
            entries: (
                input.revision.to_string(),
                path.to_string(),
                input.namespace.to_string(),
            ),
            source: (input.source_namespace.to_string(), input.source.to_string()),
            contested: input.contested.clone(),
            settings: (
                input.prune,
                format!("{:?}", input.max_deletions),
                input.allow_empty,
                input.approved_revision.map(str::to_string),
            ),
            live_changes,
        }
    }
}

/// The last plan that was carried out without a write error, and what it was made from.
#[derive(Default)]
pub struct PlanMemo {
    last: Option<(MemoKey, Plan)>,
}

impl PlanMemo {
    /// The remembered plan, when it was made from exactly `key`.
    pub fn reuse(&self, key: &MemoKey) -> Option<Plan> {
        let (memo_key, plan) = self.last.as_ref()?;
        (memo_key == key).then(|| plan.clone())
    }

    /// Remembers a plan carried out without errors; anything it wrote changes the live count,
    /// so only a plan that wrote nothing is ever reused.
    pub fn remember(&mut self, key: MemoKey, plan: &Plan) {
        let mut plan = plan.clone();
        plan.apply.clear();
        self.last = Some((key, plan));
    }

    pub fn forget(&mut self) {
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    #[test]
    fn a_plan_is_reused_only_for_the_same_inputs() {
        let (broken, contested) = (BTreeSet::new(), BTreeSet::new());
        let max = IntOrString::Int(10);
        let input = PlanInput {
            source: "dev",
            source_namespace: "ns",
            namespace: "ns",
            revision: "abc",
            desired: &[],
            broken_paths: &broken,
            contested: &contested,
            prune: true,
            max_deletions: &max,
            allow_empty: false,
            approved_revision: None,
        };
        let mut memo = PlanMemo::default();
        let key = MemoKey::new(&input, "env", 7);
        assert!(memo.reuse(&key).is_none());
        let plan = Plan {
            managed: 3,
            ..Default::default()
        };
        memo.remember(key.clone(), &plan);
        assert_eq!(memo.reuse(&key), Some(plan));
        assert!(
            memo.reuse(&MemoKey::new(&input, "env", 8)).is_none(),
            "live changed"
        );
        let next = PlanInput {
            revision: "def",
            ..input.clone()
        };
        assert!(memo.reuse(&MemoKey::new(&next, "env", 7)).is_none());
        let no_prune = PlanInput {
            prune: false,
            ..input
        };
        assert!(memo.reuse(&MemoKey::new(&no_prune, "env", 7)).is_none());
        memo.forget();
        assert!(memo.reuse(&key).is_none());
    }
}
