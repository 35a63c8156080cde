//! Unit tests of the policy: globs, tokens, grants, allow-lists, rates.

use super::grants::glob;
use super::*;
use crate::config::Config;

fn policy(toml: &str) -> Policy {
    let c = Config::parse(toml).unwrap();
    Policy::new(&c.auth, &c.limits).unwrap()
}

const BASE: &str = r#"
[auth]
trusted_proxies = ["10.9.0.0/16"]
[[auth.identities]]
name = "payments"
allow_from = ["10.1.0.0/16", "2001:db8::/32"]
rate_per_second = 2
burst = 2
[[auth.identities.grants]]
operations = ["sign", "verify"]
keys = ["pay-*"]
[[auth.identities.grants]]
operations = ["http_sign"]
profiles = ["stripe"]
[[auth.identities]]
name = "custodian"
[[auth.identities.grants]]
operations = ["admin.*"]
keys = ["*"]
[[auth.tokens]]
identity = "payments"
sha256 = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
[[auth.tokens]]
identity = "payments"
sha256 = "d74ff0ee8da3b9806b18c877dbf29bbde50b5bd8e4dad7a3a725000feb82e8f1"
expires = "2020-01-01T00:00:00Z"
"#;

#[test]
fn globs() {
    for (p, s, want) in [
        ("*", "", true),
        ("pay-*", "pay-eu", true),
        ("pay-*", "pay", false),
        ("*-eu", "pay-eu", true),
        ("a*b*c", "axxbyyc", true),
        ("a*b*c", "axxbyy", false),
        ("exact", "exact", true),
        ("exact", "exactly", false),
        ("**", "x", true),
    ] {
        assert_eq!(glob(p.as_bytes(), s.as_bytes()), want, "{p} {s}");
    }
}

#[test]
fn tokens_by_hash_with_expiry_and_rotation() {
    let p = policy(BASE);
    let now = SystemTime::now();
    // sha256("password") is the first hash; "pass" hashes to the second,
    // expired one.
    assert_eq!(&*p.token_identity("password", now).unwrap(), "payments");
    assert_eq!(
        p.token_identity("pass", now),
        Err(Denial::Unauthenticated),
        "expired"
    );
    assert_eq!(p.token_identity("nope", now), Err(Denial::Unauthenticated));
    assert_eq!(token_hash("password"), p_hash0());
}

fn p_hash0() -> String {
    "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8".into()
}

#[test]
fn grants_default_deny() {
    let p = policy(BASE);
    assert!(p.allows("payments", Op::Sign, "pay-eu"));
    assert!(!p.allows("payments", Op::Sign, "other"));
    assert!(!p.allows("payments", Op::PublicKey, "pay-eu"));
    assert!(p.allows("payments", Op::HttpSign, "stripe"));
    assert!(!p.allows("payments", Op::HttpVerify, "stripe"));
    assert!(!p.allows("payments", Op::AdminRotate, "pay-eu"));
    assert!(p.allows("custodian", Op::AdminDestroy, "pay-eu"));
    assert!(!p.allows("custodian", Op::Sign, "pay-eu"));
    assert!(!p.allows("stranger", Op::Sign, "pay-eu"));
    // Neither wildcard covers handing a secret out: admin.export is named.
    assert!(!p.allows("custodian", Op::AdminExport, "pay-eu"));
    let named = policy(
        r#"
[[auth.identities]]
name = "all"
[[auth.identities.grants]]
operations = ["*"]
keys = ["*"]
[[auth.identities]]
name = "exporter"
[[auth.identities.grants]]
operations = ["admin.export"]
keys = ["shared-*"]
"#,
    );
    assert!(named.allows("all", Op::AdminDestroy, "shared-a"));
    assert!(!named.allows("all", Op::AdminExport, "shared-a"));
    assert!(named.allows("exporter", Op::AdminExport, "shared-a"));
    assert!(!named.allows("exporter", Op::AdminExport, "other"));
    // No identities: authorization off.
    let open = policy("");
    assert!(!open.enabled());
    assert!(open.allows(ANONYMOUS, Op::AdminDestroy, "x"));
}

#[test]
fn allow_lists_and_rates() {
    let p = policy(BASE);
    let inside: IpAddr = "10.1.2.3".parse().unwrap();
    assert_eq!(
        p.admit("payments", "10.2.0.1".parse().unwrap()),
        Err(Denial::PermissionDenied)
    );
    assert_eq!(p.admit("stranger", inside), Err(Denial::PermissionDenied));
    assert!(p.admit("payments", "2001:db8::1".parse().unwrap()).is_ok());
    assert!(p.admit("payments", inside).is_ok());
    match p.admit("payments", inside) {
        Err(Denial::RateLimited(d)) => assert!(d <= Duration::from_secs(1), "{d:?}"),
        other => panic!("third call in a burst of 2: {other:?}"),
    }
    assert!(p.admit("custodian", "192.0.2.1".parse().unwrap()).is_ok());
}

#[test]
fn forwarded_addresses_only_from_trusted_proxies() {
    let p = policy(BASE);
    let proxy: IpAddr = "10.9.0.5".parse().unwrap();
    let outsider: IpAddr = "192.0.2.1".parse().unwrap();
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert_eq!(p.client_address(outsider, Some("10.1.2.3")), outsider);
    assert_eq!(p.client_address(proxy, Some("10.1.2.3")), ip("10.1.2.3"));
    assert_eq!(
        p.client_address(proxy, Some("6.6.6.6, 10.1.2.3, 10.9.0.7")),
        ip("10.1.2.3"),
        "the rightmost untrusted hop, not the client-supplied leftmost"
    );
    assert_eq!(p.client_address(proxy, Some("junk")), proxy);
    assert_eq!(p.client_address(proxy, None), proxy);
}

#[test]
fn bad_policies_name_the_field() {
    for (toml, want) in [
        (
            "[[auth.identities]]\nname = \"a\"\n[[auth.identities.grants]]\noperations = [\"sing\"]\nkeys = [\"*\"]\n",
            "unknown operation \"sing\"",
        ),
        (
            "[[auth.identities]]\nname = \"a\"\n[[auth.identities.grants]]\noperations = [\"sign\"]\n",
            "grants[0]",
        ),
        (
            "[[auth.identities]]\nname = \"a\"\n[[auth.tokens]]\nidentity = \"b\"\nsha256 = \"00\"\n",
            "auth.tokens[0].identity",
        ),
        (
            "[[auth.identities]]\nname = \"a\"\n[[auth.tokens]]\nidentity = \"a\"\nsha256 = \"00\"\n",
            "auth.tokens[0].sha256",
        ),
        (
            "[[auth.identities]]\nname = \"a\"\nallow_from = [\"10.0.0.0/33\"]\n",
            "allow_from",
        ),
    ] {
        // A bad policy stops start-up (the composition root builds it from
        // the parsed file).
        let c = Config::parse(toml).unwrap();
        let Err(e) = Policy::new(&c.auth, &c.limits) else {
            panic!("accepted: {toml}")
        };
        assert!(e.contains(want), "{e}");
    }
}
