//! Lifecycle unit tests: every transition, every forbidden one, and the
//! time-driven ones, with explicit times.

use super::*;
use crate::error::ErrorKind;

const H: Duration = Duration::from_secs(3600);

fn t(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

fn key() -> KeyRecord {
    KeyRecord {
        name: "k".into(),
        algorithm: Algorithm::HmacSha256,
        labels: BTreeMap::new(),
        policy: None,
        create_time: t(0),
        verify_only: false,
        exportable: false,
        versions: vec![VersionRecord::new(
            1,
            VersionState::Active,
            "k:v1".into(),
            t(0),
        )],
    }
}

fn add_pending(k: &mut KeyRecord, now: SystemTime) -> u32 {
    let v = k.next_version();
    k.versions.push(VersionRecord::new(
        v,
        VersionState::Pending,
        format!("k:v{v}"),
        now,
    ));
    v
}

fn state(k: &KeyRecord, v: u32, now: SystemTime) -> VersionState {
    k.version(v).unwrap().effective_state(now)
}

fn precondition<T: std::fmt::Debug>(r: Result<T>) {
    assert_eq!(r.unwrap_err().kind(), ErrorKind::FailedPrecondition);
}

#[test]
fn promote_moves_active_to_retiring_with_grace() {
    let mut k = key();
    let v2 = add_pending(&mut k, t(10));
    k.promote(v2, H, t(20)).unwrap();
    assert_eq!(state(&k, 1, t(20)), VersionState::Retiring);
    assert_eq!(state(&k, 2, t(20)), VersionState::Active);
    assert_eq!(k.version(1).unwrap().verify_until, Some(t(20) + H));
    assert_eq!(k.version(2).unwrap().activate_time, Some(t(20)));
    k.check_invariants().unwrap();
    // Grace runs out exactly at verify_until.
    assert_eq!(
        state(&k, 1, t(20) + H - Duration::from_secs(1)),
        VersionState::Retiring
    );
    assert_eq!(state(&k, 1, t(20) + H), VersionState::Disabled);
}

#[test]
fn only_pending_can_be_promoted() {
    let mut k = key();
    precondition(k.promote(1, H, t(1)));
    let v2 = add_pending(&mut k, t(1));
    k.promote(v2, H, t(2)).unwrap();
    precondition(k.promote(1, H, t(3))); // RETIRING
    k.disable(1, t(4)).unwrap();
    precondition(k.promote(1, H, t(5))); // DISABLED
    assert_eq!(
        k.promote(9, H, t(5)).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn grace_must_be_at_least_a_second() {
    let mut k = key();
    let v2 = add_pending(&mut k, t(1));
    assert_eq!(
        k.promote(v2, Duration::from_millis(999), t(2))
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidArgument
    );
    k.promote(v2, Duration::from_secs(1), t(2)).unwrap();
    assert_eq!(state(&k, 1, t(3)), VersionState::Disabled);
}

#[test]
fn at_most_one_active_through_many_promotions() {
    let mut k = key();
    for i in 0..10 {
        let v = add_pending(&mut k, t(i * 10));
        k.promote(v, H, t(i * 10 + 1)).unwrap();
        k.check_invariants().unwrap();
    }
    let active: Vec<_> = k
        .versions
        .iter()
        .filter(|r| r.state == VersionState::Active)
        .collect();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].version, 11);
}

#[test]
fn disable_rules() {
    let mut k = key();
    precondition(k.disable(1, t(1))); // ACTIVE
    let v2 = add_pending(&mut k, t(1));
    k.disable(v2, t(2)).unwrap(); // PENDING -> DISABLED
    assert_eq!(state(&k, v2, t(2)), VersionState::Disabled);
    precondition(k.disable(v2, t(3))); // already
    let v3 = add_pending(&mut k, t(3));
    k.promote(v3, H, t(4)).unwrap();
    k.disable(1, t(5)).unwrap(); // RETIRING -> DISABLED
    assert_eq!(k.version(1).unwrap().disable_time, Some(t(5)));
    assert_eq!(k.version(1).unwrap().verify_until, None);
}

#[test]
fn enable_returns_to_retiring_for_a_new_grace() {
    let mut k = key();
    let v2 = add_pending(&mut k, t(1));
    k.promote(v2, H, t(2)).unwrap();
    precondition(k.enable(1, H, t(3))); // RETIRING, not DISABLED
    k.disable(1, t(3)).unwrap();
    k.enable(1, Duration::from_secs(60), t(100)).unwrap();
    assert_eq!(state(&k, 1, t(100)), VersionState::Retiring);
    assert_eq!(state(&k, 1, t(160)), VersionState::Disabled);
    precondition(k.enable(v2, H, t(101))); // ACTIVE
}

#[test]
fn enable_after_grace_expired_without_tick() {
    let mut k = key();
    let v2 = add_pending(&mut k, t(1));
    k.promote(v2, Duration::from_secs(10), t(2)).unwrap();
    // Stored RETIRING, effectively DISABLED at t(20): enable must accept it.
    k.enable(1, H, t(20)).unwrap();
    assert_eq!(state(&k, 1, t(21)), VersionState::Retiring);
}

#[test]
fn destroy_and_restore() {
    let mut k = key();
    let v2 = add_pending(&mut k, t(1));
    k.promote(v2, H, t(2)).unwrap();
    precondition(k.schedule_destroy(1, H, t(3))); // RETIRING
    precondition(k.schedule_destroy(2, H, t(3))); // ACTIVE
    k.disable(1, t(3)).unwrap();
    k.schedule_destroy(1, H, t(4)).unwrap();
    assert_eq!(state(&k, 1, t(4)), VersionState::DestroyScheduled);
    precondition(k.enable(1, H, t(5))); // must restore first
    precondition(k.disable(1, t(5)));
    k.restore(1, t(6)).unwrap();
    assert_eq!(state(&k, 1, t(6)), VersionState::Disabled);
    precondition(k.restore(1, t(7))); // not scheduled
    k.schedule_destroy(1, Duration::from_secs(30), t(10))
        .unwrap();
    assert_eq!(k.due_destroys(t(39)), Vec::<u32>::new());
    assert_eq!(k.due_destroys(t(40)), vec![1]);
    assert_eq!(state(&k, 1, t(40)), VersionState::Destroyed);
    precondition(k.restore(1, t(41))); // effectively destroyed
    k.mark_destroyed(1, t(41)).unwrap();
    assert_eq!(state(&k, 1, t(41)), VersionState::Destroyed);
    assert_eq!(k.version(1).unwrap().destroy_time, Some(t(40)));
    precondition(k.restore(1, t(42)));
    precondition(k.enable(1, H, t(42)));
    precondition(k.schedule_destroy(1, H, t(42)));
}

#[test]
fn destroy_a_version_whose_grace_ran_out() {
    let mut k = key();
    let v2 = add_pending(&mut k, t(1));
    k.promote(v2, Duration::from_secs(5), t(2)).unwrap();
    k.schedule_destroy(1, H, t(100)).unwrap();
    let r = k.version(1).unwrap();
    assert_eq!(r.state, VersionState::DestroyScheduled);
    assert_eq!(r.disable_time, Some(t(7)));
    assert_eq!(r.verify_until, None);
}

#[test]
fn expire_grace_writes_down_disabled() {
    let mut k = key();
    let v2 = add_pending(&mut k, t(1));
    k.promote(v2, Duration::from_secs(10), t(2)).unwrap();
    assert!(!k.expire_grace(t(11)));
    assert_eq!(k.next_deadline(), Some(t(12)));
    assert!(k.expire_grace(t(12)));
    let r = k.version(1).unwrap();
    assert_eq!(r.state, VersionState::Disabled);
    assert_eq!(r.disable_time, Some(t(12)));
    assert_eq!(k.next_deadline(), None);
}

#[test]
fn policy_creates_pending_then_promotes() {
    let mut k = key();
    k.versions[0].activate_time = Some(t(0));
    k.policy = Some(RotationPolicy {
        rotation_period: Duration::from_secs(100),
        pending_period: Duration::from_secs(30),
        grace_period: None,
        rotate_after_encryptions: None,
    });
    assert_eq!(
        k.next_policy_event(),
        Some((t(70), PolicyAction::CreatePending))
    );
    assert_eq!(k.due_policy_event(t(69)).map(|(_, a)| a), None);
    assert_eq!(
        k.due_policy_event(t(70)).map(|(_, a)| a),
        Some(PolicyAction::CreatePending)
    );
    let v2 = add_pending(&mut k, t(70));
    assert_eq!(
        k.next_policy_event(),
        Some((t(100), PolicyAction::Promote(v2)))
    );
    assert_eq!(k.next_deadline(), Some(t(100)));
    k.promote(v2, H, t(100)).unwrap();
    assert_eq!(k.next_policy_event().unwrap().0, t(170));
}

#[test]
fn policy_ignores_pending_versions_older_than_the_active_one() {
    let mut k = key();
    let old = add_pending(&mut k, t(0));
    k.versions[0].activate_time = Some(t(5));
    k.policy = Some(RotationPolicy {
        rotation_period: Duration::from_secs(100),
        pending_period: Duration::ZERO,
        grace_period: None,
        rotate_after_encryptions: None,
    });
    assert_eq!(old, 2);
    assert_eq!(
        k.next_policy_event(),
        Some((t(105), PolicyAction::CreateAndPromote))
    );
}

#[test]
fn policy_validation() {
    let p = |r, pe| RotationPolicy {
        rotation_period: Duration::from_secs(r),
        pending_period: Duration::from_secs(pe),
        grace_period: None,
        rotate_after_encryptions: None,
    };
    p(10, 5).validate().unwrap();
    p(10, 0).validate().unwrap();
    assert!(p(10, 10).validate().is_err());
    assert!(p(0, 0).validate().is_err());
}

#[test]
fn invariants_catch_two_actives() {
    let mut k = key();
    k.versions.push(VersionRecord::new(
        2,
        VersionState::Active,
        "x".into(),
        t(1),
    ));
    assert!(k.check_invariants().is_err());
}

#[test]
fn records_round_trip_through_json() {
    let mut k = key();
    let v2 = add_pending(&mut k, t(1));
    k.versions[1].public_spki = Some(vec![1, 2, 3]);
    k.promote(v2, H, t(2)).unwrap();
    let json = serde_json::to_string(&k).unwrap();
    let back: KeyRecord = serde_json::from_str(&json).unwrap();
    assert_eq!(back, k);
    // A record written before keys could be exportable reads as not
    // exportable, and only an exportable one says so.
    assert!(!json.contains("exportable"), "{json}");
    k.exportable = true;
    let json = serde_json::to_string(&k).unwrap();
    assert!(json.contains("\"exportable\":true"), "{json}");
    assert_eq!(serde_json::from_str::<KeyRecord>(&json).unwrap(), k);
}

#[test]
fn unbounded_periods_are_refused_or_capped_never_a_panic() {
    let huge = [
        Duration::from_secs(u64::MAX),
        humantime::parse_duration("106751991167300d").unwrap(),
        humantime::parse_duration("300000y").unwrap(),
    ];
    for d in huge {
        let mut k = key();
        let v2 = add_pending(&mut k, t(10));
        let before = k.clone();
        let e = k.promote(v2, d, t(20)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
        assert!(e.message().contains("between 1s and 3650d"), "{e}");
        assert_eq!(k, before, "a refused promotion changes nothing");
        k.disable(1, t(20)).unwrap_err();
        // Destruction delays are checked where the time is computed.
        let mut k = key();
        let v2 = add_pending(&mut k, t(10));
        k.promote(v2, H, t(20)).unwrap();
        k.disable(1, t(30)).unwrap();
        let e = k.schedule_destroy(1, d, t(40)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
        // A record stored before periods were bounded: the schedule is
        // capped at 9999-12-31, so it converts to a protobuf Timestamp.
        let mut k = key();
        k.policy = Some(RotationPolicy {
            rotation_period: d,
            pending_period: Duration::from_secs(1),
            grace_period: Some(d),
            rotate_after_encryptions: None,
        });
        let next = k.next_rotation().unwrap();
        assert_eq!(next, crate::bounds::max_time());
        assert!(k.next_deadline().unwrap() <= next);
        assert_eq!(k.due_policy_event(t(50)).map(|(_, a)| a), None);
        assert!(k.policy.unwrap().validate().is_err());
    }
    // The largest accepted grace still ends in range.
    let mut k = key();
    let v2 = add_pending(&mut k, t(10));
    k.promote(v2, crate::bounds::MAX_LIFECYCLE, t(20)).unwrap();
}

#[test]
fn version_ids_are_name_colon_v_number() {
    for v in [0u32, 1, 9, 10, 99, 100, 4_294_967_295] {
        assert_eq!(
            crate::keys::version_id("merchant-42", v),
            format!("merchant-42:v{v}")
        );
    }
    assert_eq!(key().version_id(7), format!("{}:v7", key().name));
}
