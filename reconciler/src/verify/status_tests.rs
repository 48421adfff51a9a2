use super::*;
use catalog_api::image::Platform;

const TIMING: Timing = Timing {
    backoff_min: Duration::from_secs(30),
    backoff_max: Duration::from_secs(300),
    min_interval: Duration::from_secs(30),
};

fn ctx(now: i64) -> Inputs<'static> {
    Inputs {
        generation: Some(2),
        now: jiff::Timestamp::from_second(now).unwrap(),
        verify_requested: None,
        interval: Duration::from_secs(3600),
        timing: &TIMING,
        seed: "uid",
    }
}

fn metadata(digest: &str) -> RegistryMetadata {
    RegistryMetadata {
        resolved_digest: Some(digest.into()),
        size_bytes: Some(3 * 1024 * 1024),
        layer_count: Some(4),
        platform: Some(Platform {
            architecture: "arm64".into(),
            os: "linux".into(),
            variant: None,
        }),
        is_multi_arch: Some(false),
        ..Default::default()
    }
}

fn verified(digest: &str) -> Outcome {
    Outcome::Verified {
        metadata: metadata(digest),
        tag_moved: None,
    }
}

fn unavailable() -> Outcome {
    Outcome::Failed(Failure {
        reason: reason::REGISTRY_UNAVAILABLE,
        message: "registry r:1 is unavailable: cannot connect".into(),
        transient: true,
        retry_after: None,
    })
}

fn cond<'a>(s: &'a CatalogImageStatus, ty: &str) -> &'a Condition {
    s.conditions.iter().find(|c| c.type_ == ty).unwrap()
}

#[test]
fn success_makes_available_ready_and_published() {
    let t = transition(None, &verified("sha256:a"), &ctx(100));
    let s = &t.status;
    assert_eq!(s.phase, Some(Phase::Available));
    assert_eq!(s.observed_generation, Some(2));
    assert_eq!(s.verification_failures, Some(0));
    assert_eq!(
        s.published_at,
        Some(Time(jiff::Timestamp::from_second(100).unwrap()))
    );
    for ty in [condition::AVAILABLE, condition::VERIFIED, condition::READY] {
        assert_eq!(cond(s, ty).status, "True", "{ty}");
    }
    assert!(
        cond(s, condition::READY)
            .message
            .contains("3.0 MiB, 4 layers, linux/arm64")
    );
    assert_eq!(t.events.len(), 1);
    assert_eq!(t.events[0].reason, "Verified");
    assert!(t.requeue <= Duration::from_secs(3600) && t.requeue >= Duration::from_secs(3240));

    // Re-verified later: publishedAt and transition times stay, no new event.
    let again = transition(Some(s), &verified("sha256:a"), &ctx(4000));
    assert_eq!(again.status.published_at, s.published_at);
    assert_eq!(
        cond(&again.status, condition::AVAILABLE).last_transition_time,
        cond(s, condition::AVAILABLE).last_transition_time
    );
    assert!(again.events.is_empty());
}

#[test]
fn transient_failures_back_off_then_fail_after_five() {
    let mut status = transition(None, &verified("sha256:a"), &ctx(0)).status;
    let mut delays = Vec::new();
    for n in 1..=5 {
        let t = transition(Some(&status), &unavailable(), &ctx(n * 1000));
        status = t.status;
        delays.push(t.requeue);
        assert_eq!(status.verification_failures, Some(n as i32));
        let expected = if n < 5 {
            Phase::Unavailable
        } else {
            Phase::Failed
        };
        assert_eq!(status.phase, Some(expected), "after {n} failures");
        if n == 1 {
            assert_eq!(t.events[0].reason, "Unavailable");
        } else if n == 5 {
            assert_eq!(t.events[0].reason, "Failed");
            assert!(
                cond(&status, condition::AVAILABLE)
                    .message
                    .contains("5 consecutive failures; retrying every 1h")
            );
        } else {
            assert!(t.events.is_empty(), "no event while staying Unavailable");
        }
        // Metadata of the last success is never erased by a failure.
        assert_eq!(status.registry_metadata, Some(metadata("sha256:a")));
        // Verified keeps its last known value while the registry is unreachable.
        assert_eq!(cond(&status, condition::VERIFIED).status, "True");
    }
    for pair in delays[..4].windows(2) {
        assert!(pair[0] < pair[1], "backoff grows: {delays:?}");
    }
    assert!(
        delays[4] >= Duration::from_secs(3240),
        "Failed is retried at the interval"
    );
    let healed = transition(Some(&status), &verified("sha256:a"), &ctx(9000));
    assert_eq!(healed.status.phase, Some(Phase::Available));
    assert_eq!(healed.status.verification_failures, Some(0));
    assert_eq!(healed.events[0].reason, "Verified");
}

#[test]
fn auth_failures_fail_at_once_naming_the_secret() {
    let failure = Outcome::Failed(Failure {
        reason: reason::AUTHENTICATION_FAILED,
        message: "registry r:1 refused the credentials of secret default/creds".into(),
        transient: false,
        retry_after: None,
    });
    let t = transition(None, &failure, &ctx(0));
    assert_eq!(t.status.phase, Some(Phase::Failed));
    assert_eq!(cond(&t.status, condition::VERIFIED).status, "False");
    assert!(
        cond(&t.status, condition::READY)
            .message
            .contains("default/creds")
    );
    assert_eq!(t.events[0].reason, "Failed");
}

#[test]
fn retry_after_stretches_the_backoff() {
    let failure = Outcome::Failed(Failure {
        retry_after: Some(Duration::from_secs(200)),
        ..match unavailable() {
            Outcome::Failed(f) => f,
            _ => unreachable!(),
        }
    });
    let t = transition(None, &failure, &ctx(0));
    assert_eq!(t.requeue, Duration::from_secs(200));
}

#[test]
fn tag_moved_is_a_condition_on_an_available_image() {
    let moved = Outcome::Verified {
        metadata: metadata("sha256:pin"),
        tag_moved: Some(TagMoved {
            tag: "v1".into(),
            tag_digest: "sha256:new".into(),
            pinned: "sha256:pin".into(),
        }),
    };
    let first = transition(None, &verified("sha256:pin"), &ctx(0)).status;
    let t = transition(Some(&first), &moved, &ctx(10));
    assert_eq!(t.status.phase, Some(Phase::Available));
    assert_eq!(cond(&t.status, condition::TAG_MOVED).status, "True");
    assert!(
        cond(&t.status, condition::TAG_MOVED)
            .message
            .contains("sha256:new")
    );
    assert_eq!(t.events.len(), 1);
    assert_eq!(t.events[0].reason, "TagMoved");
    // Still moved: no repeated event. Back in place: condition removed.
    let again = transition(Some(&t.status), &moved, &ctx(20));
    assert!(again.events.is_empty());
    let back = transition(Some(&again.status), &verified("sha256:pin"), &ctx(30));
    assert!(
        back.status
            .conditions
            .iter()
            .all(|c| c.type_ != condition::TAG_MOVED)
    );
}

#[test]
fn architecture_mismatch_fails_and_keeps_the_facts() {
    let mismatch = Outcome::Mismatch {
        metadata: metadata("sha256:a"),
        reason: reason::ARCHITECTURE_MISMATCH,
        message: "declared amd64 but the image is arm64".into(),
    };
    let t = transition(None, &mismatch, &ctx(0));
    assert_eq!(t.status.phase, Some(Phase::Failed));
    assert_eq!(
        cond(&t.status, condition::VERIFIED).reason,
        "ArchitectureMismatch"
    );
    assert_eq!(t.status.registry_metadata, Some(metadata("sha256:a")));
    assert_eq!(t.events[0].reason, "Failed");
}

#[test]
fn verify_request_is_echoed() {
    let mut c = ctx(0);
    c.verify_requested = Some("2026-01-04T14:30:00Z");
    let t = transition(None, &verified("sha256:a"), &c);
    assert_eq!(
        t.status.last_handled_verify_at.as_deref(),
        Some("2026-01-04T14:30:00Z")
    );
}

#[test]
fn verifying_keeps_facts_and_marks_work_in_progress() {
    let done = transition(None, &verified("sha256:a"), &ctx(0)).status;
    let v = verifying(Some(&done), &ctx(5));
    assert_eq!(v.phase, Some(Phase::Verifying));
    assert_eq!(v.registry_metadata, done.registry_metadata);
    assert_eq!(cond(&v, condition::AVAILABLE).status, "Unknown");
    let fresh = verifying(None, &ctx(5));
    assert_eq!(cond(&fresh, condition::VERIFIED).reason, "NotYetVerified");
}
