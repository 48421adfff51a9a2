//! Setting a status condition, the one way both controllers do it: the transition time moves
//! only when the status flips, so a reconcile that finds nothing new produces an identical
//! status (and no write).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// Sets condition `type_` (added at the end when missing, replaced in place otherwise).
pub fn set(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: jiff::Timestamp,
) {
    let existing = conditions.iter_mut().find(|c| c.type_ == type_);
    let transition_time = match &existing {
        Some(c) if c.status == status => c.last_transition_time.clone(),
        _ => Time(now),
    };
    let condition = Condition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message: message.to_string(),
        observed_generation: generation,
        last_transition_time: transition_time,
    };
    match existing {
        Some(existing) => *existing = condition,
        None => conditions.push(condition),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transition_time_moves_only_when_the_status_flips() {
        let (t0, t1) = (jiff::Timestamp::UNIX_EPOCH, jiff::Timestamp::MAX);
        let mut c = Vec::new();
        set(&mut c, "Ready", "True", "Synced", "ok", Some(1), t0);
        set(&mut c, "Ready", "True", "Synced", "ok again", Some(2), t1);
        assert_eq!(
            (c[0].last_transition_time.0, c[0].message.as_str()),
            (t0, "ok again")
        );
        assert_eq!(c[0].observed_generation, Some(2));
        set(&mut c, "Ready", "False", "FetchFailed", "x", Some(2), t1);
        assert_eq!(c[0].last_transition_time.0, t1);
        set(&mut c, "Stalled", "False", "Progressing", "", Some(2), t1);
        assert_eq!(c.len(), 2);
    }
}
