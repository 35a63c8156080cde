//! The verification policy: every tampering and every missing piece is
//! refused with its own reason; rotation signs with each version; a
//! replayed signature is refused.

use std::collections::BTreeMap;

use super::*;

const OWN: &str = r#"name = "own"
scheme = "rfc9421"
key = "shared"
"#;

/// Our own profile over B.2's request, with `extra` TOML in its table.
fn own(extra: &str) -> Profile {
    profile(&format!("{OWN}[rfc9421]\n{extra}\n"))
}

/// `headers()` plus the signature fields, with `edit` applied.
fn signed(out: &engine::SignedRequest) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = headers()
        .into_iter()
        .filter(|(n, _)| n != "Content-Digest")
        .collect();
    h.extend(out.headers.iter().cloned());
    h
}

fn set(h: &mut [(String, String)], name: &str, value: &str) {
    h.iter_mut()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .unwrap_or_else(|| panic!("no {name}"))
        .1 = value.to_string();
}

async fn check(
    reg: &Registry,
    p: &Profile,
    h: &[(String, String)],
    r: Request<'_>,
    now: u64,
) -> Option<Reason> {
    let replay = MemoryReplayStore::new(1024);
    engine::verify(p, reg, &replay, r, h, "", at(now))
        .await
        .unwrap()
        .reason
}

fn plain() -> Vec<(String, String)> {
    headers()
        .into_iter()
        .filter(|(n, _)| n != "Content-Digest")
        .collect()
}

#[tokio::test]
async fn defaults_sign_method_target_and_a_digest_signet_computes() {
    let (reg, _) = registry().await;
    let p = own("");
    let out = engine::sign(&p, &reg, req(), &plain(), None, at(CREATED))
        .await
        .unwrap();
    assert_eq!(
        value(&out.headers, "Content-Digest"),
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
    );
    assert_eq!(
        out.string_to_sign,
        "\"@method\": POST\n\
         \"@target-uri\": https://example.com/foo?param=Value&Pet=dog\n\
         \"content-digest\": sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:\n\
         \"@signature-params\": (\"@method\" \"@target-uri\" \"content-digest\");created=1618884473;keyid=\"shared:v1\""
    );
    assert_eq!(out.key_version_id, "shared:v1");
    let h = signed(&out);
    let replay = MemoryReplayStore::new(1024);
    let v = engine::verify(&p, &reg, &replay, req(), &h, "", at(CREATED + 1))
        .await
        .unwrap();
    assert_eq!((v.reason, v.version), (None, Some(1)));
    assert_eq!(v.timestamp.as_deref(), Some("1618884473"));
    let again = engine::verify(&p, &reg, &replay, req(), &h, "", at(CREATED + 2))
        .await
        .unwrap();
    assert_eq!(again.reason, Some(Reason::Replayed));
}

#[tokio::test]
async fn every_tampering_has_its_reason() {
    let (reg, _) = registry().await;
    let p = own("expires_seconds = 60\ntag = \"pay\"\nverify_labels = [\"sig1\"]");
    let out = engine::sign(&p, &reg, req(), &plain(), None, at(CREATED))
        .await
        .unwrap();
    let good = signed(&out);
    let input = value(&out.headers, "Signature-Input").to_string();
    let sig = value(&out.headers, "Signature").to_string();
    assert_eq!(check(&reg, &p, &good, req(), CREATED).await, None);
    let with = |name: &str, v: &str| {
        let mut h = good.clone();
        set(&mut h, name, v);
        h
    };
    let body = Request {
        body: br#"{"hello": "world!"}"#,
        ..req()
    };
    let other_url = Request {
        url: "https://example.com/foo?param=Value&Pet=cat",
        ..req()
    };
    type Case<'a> = (&'a str, Vec<(String, String)>, Request<'a>, u64, Reason);
    let cases: Vec<Case<'_>> = vec![
        ("body", good.clone(), body, CREATED, Reason::DigestMismatch),
        (
            "digest recomputed for another body",
            with(
                "Content-Digest",
                &super::super::digest::content_digest(
                    crate::config::rfc9421::DigestAlgorithm::Sha256,
                    br#"{"hello": "world!"}"#,
                ),
            ),
            body,
            CREATED,
            Reason::SignatureMismatch,
        ),
        (
            "url",
            good.clone(),
            other_url,
            CREATED,
            Reason::SignatureMismatch,
        ),
        (
            "component dropped",
            with("Signature-Input", &input.replace(" \"content-digest\"", "")),
            req(),
            CREATED,
            Reason::ComponentNotCovered,
        ),
        (
            "label renamed",
            with("Signature-Input", &input.replacen("sig1=", "sig2=", 1)),
            req(),
            CREATED,
            Reason::LabelNotFound,
        ),
        (
            "signature under another label",
            with("Signature", &sig.replacen("sig1=", "sig2=", 1)),
            req(),
            CREATED,
            Reason::MalformedHeader,
        ),
        (
            "created moved",
            with(
                "Signature-Input",
                &input.replace("created=1618884473", "created=1618884474"),
            ),
            req(),
            CREATED,
            Reason::SignatureMismatch,
        ),
        (
            "too old",
            good.clone(),
            req(),
            CREATED + 301,
            Reason::TimestampOutOfWindow,
        ),
        (
            "from the future",
            good.clone(),
            req(),
            CREATED - 6,
            Reason::TimestampOutOfWindow,
        ),
        (
            "expired",
            good.clone(),
            req(),
            CREATED + 66,
            Reason::SignatureExpired,
        ),
        (
            "alg claimed",
            with("Signature-Input", &format!("{input};alg=\"ed25519\"")),
            req(),
            CREATED,
            Reason::AlgorithmMismatch,
        ),
        (
            "unknown keyid",
            with("Signature-Input", &input.replace("shared:v1", "shared:v9")),
            req(),
            CREATED,
            Reason::UnknownKey,
        ),
        (
            "another key's keyid",
            with("Signature-Input", &input.replace("shared:v1", "ed25519:v1")),
            req(),
            CREATED,
            Reason::UnknownKey,
        ),
        (
            "created removed",
            with("Signature-Input", &input.replace(";created=1618884473", "")),
            req(),
            CREATED,
            Reason::ParameterMissing,
        ),
        (
            "tag changed",
            with(
                "Signature-Input",
                &input.replace("tag=\"pay\"", "tag=\"refund\""),
            ),
            req(),
            CREATED,
            Reason::ParameterMismatch,
        ),
        (
            "a repeated label",
            with("Signature-Input", &format!("{input}, {input}")),
            req(),
            CREATED,
            Reason::MalformedHeader,
        ),
        (
            "not a dictionary",
            with("Signature", "sig1=:!!:"),
            req(),
            CREATED,
            Reason::MalformedHeader,
        ),
        (
            "signature bytes changed",
            with("Signature", &{
                let first = if sig.as_bytes()[6] == b'A' { "B" } else { "A" };
                format!("sig1=:{first}{}", &sig[7..])
            }),
            req(),
            CREATED,
            Reason::SignatureMismatch,
        ),
    ];
    for (what, h, r, now, want) in cases {
        assert_eq!(check(&reg, &p, &h, r, now).await, Some(want), "{what}");
    }
    let no_sig: Vec<_> = good
        .iter()
        .filter(|(n, _)| n != "Signature")
        .cloned()
        .collect();
    assert_eq!(
        check(&reg, &p, &no_sig, req(), CREATED).await,
        Some(Reason::MissingHeader)
    );
    let no_digest: Vec<_> = good
        .iter()
        .filter(|(n, _)| n != "Content-Digest")
        .cloned()
        .collect();
    assert_eq!(
        check(&reg, &p, &no_digest, req(), CREATED).await,
        Some(Reason::MissingHeader)
    );
}

/// Found by the interop suite: a digest covered with a parameter (`sf`,
/// `key`) is still checked against the body.
#[tokio::test]
async fn a_digest_covered_in_any_form_must_match_the_body() {
    let (reg, _) = registry().await;
    for c in [
        r#"'"content-digest";sf'"#,
        r#"'"content-digest";key="sha-256"'"#,
        r#"'"content-digest";bs'"#,
    ] {
        let p = own(&format!("components = [\"@method\", {c}]"));
        let out = engine::sign(&p, &reg, req(), &plain(), None, at(CREATED))
            .await
            .unwrap();
        let h = signed(&out);
        assert_eq!(check(&reg, &p, &h, req(), CREATED).await, None, "{c}");
        let body = Request {
            body: b"{}",
            ..req()
        };
        assert_eq!(
            check(&reg, &p, &h, body, CREATED).await,
            Some(Reason::DigestMismatch),
            "{c}"
        );
    }
}

#[tokio::test]
async fn a_nonce_is_required_and_used_once_across_replicas() {
    let (reg, _) = registry().await;
    let p = profile(&format!("{OWN}use_nonce = true\n"));
    let out = engine::sign(&p, &reg, req(), &plain(), None, at(CREATED))
        .await
        .unwrap();
    assert_eq!(out.nonce.len(), 32);
    let h = signed(&out);
    // Two verifiers sharing one replay store: the second sees the nonce.
    let replay = MemoryReplayStore::new(1024);
    for (i, want) in [(0, None), (1, Some(Reason::Replayed))] {
        let v = engine::verify(&p, &reg, &replay, req(), &h, "", at(CREATED + i))
            .await
            .unwrap();
        assert_eq!(v.reason, want);
    }
    // Without a nonce the profile refuses.
    let bare = own("");
    let out = engine::sign(&bare, &reg, req(), &plain(), None, at(CREATED))
        .await
        .unwrap();
    assert_eq!(
        check(&reg, &p, &signed(&out), req(), CREATED).await,
        Some(Reason::ParameterMissing)
    );
}

#[tokio::test]
async fn a_rotation_signs_with_each_version_under_its_own_label() {
    let (reg, _) = registry().await;
    reg.rotate("shared", false, None).await.unwrap();
    let p = own("sign_pending = true");
    let out = engine::sign(&p, &reg, req(), &plain(), None, at(CREATED))
        .await
        .unwrap();
    let input = value(&out.headers, "Signature-Input");
    assert!(
        input.starts_with("sig1=(") && input.contains(", sig1-2=("),
        "{input}"
    );
    assert!(input.contains("keyid=\"shared:v1\"") && input.contains("keyid=\"shared:v2\""));
    // Once v2 is promoted, a receiver that trusts only v2 verifies the
    // request signed during the rotation by its keyid.
    reg.promote("shared", 2, None).await.unwrap();
    let only_new = profile(&format!(
        "{OWN}[rfc9421]\n[rfc9421.keyids]\n\"shared:v2\" = \"shared:v2\"\n"
    ));
    let replay = MemoryReplayStore::new(1024);
    let v = engine::verify(
        &only_new,
        &reg,
        &replay,
        req(),
        &signed(&out),
        "",
        at(CREATED),
    )
    .await
    .unwrap();
    assert_eq!((v.reason, v.version), (None, Some(2)));
}

#[test]
fn configuration_errors_name_the_field() {
    let err = |extra: &str| {
        let c: ProfileConfig = toml::from_str(&format!("{OWN}{extra}")).unwrap();
        c.resolve().unwrap_err().to_string()
    };
    for (extra, want) in [
        (
            "payload_template = \"x\"\n",
            "payload_template: is a template profile's field",
        ),
        (
            "[rfc9421]\ncomponents = [\"@status\"]\n",
            "rfc9421.components: @status is not a derived component",
        ),
        (
            "[rfc9421]\ncomponents = [\"Content-Type\"]\n",
            "not a lowercase field name",
        ),
        (
            "[rfc9421]\ncomponents = [\"date\", \"date\"]\n",
            "listed twice",
        ),
        (
            "[rfc9421]\ncomponents = ['\"@query-param\"']\n",
            "@query-param takes one parameter",
        ),
        (
            "[rfc9421]\ncomponents = ['\"date\";req']\n",
            "not for a request signer",
        ),
        ("[rfc9421]\nlabel = \"Sig\"\n", "rfc9421.label"),
        (
            "[rfc9421]\nkeyids = { a = \"bad name!\" }\n",
            "rfc9421.keyids.a",
        ),
        (
            "[rfc9421]\nexpires_seconds = 0\n",
            "rfc9421.expires_seconds",
        ),
    ] {
        let e = err(extra);
        assert!(
            e.starts_with("profile \"own\": ") && e.contains(want),
            "{extra}: {e}"
        );
    }
    let c: ProfileConfig =
        toml::from_str("name = \"t\"\nkey = \"k\"\nclient_id = \"c\"\n[rfc9421]\n").unwrap();
    assert!(c
        .resolve()
        .unwrap_err()
        .to_string()
        .contains("only for scheme"));
    let _ = BTreeMap::<u8, u8>::new();
}
