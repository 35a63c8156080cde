//! The preset table, its secret encodings, and the places outside the code
//! that list presets: the Helm chart's schema and the docs.

use std::collections::BTreeSet;
use std::path::Path;

use base64::{engine::general_purpose::STANDARD, Engine};
use zeroize::Zeroizing;

use super::*;

fn names() -> BTreeSet<String> {
    PRESETS.iter().map(|r| r.name.to_string()).collect()
}

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

#[test]
fn rows_are_in_preset_order_and_named_as_the_config_spells_them() {
    for (i, row) in PRESETS.iter().enumerate() {
        assert_eq!(row.preset as usize, i, "{}", row.name);
        #[derive(serde::Deserialize)]
        struct P {
            preset: Preset,
        }
        let p: P = toml::from_str(&format!("preset = {:?}", row.name)).unwrap();
        assert_eq!(p.preset, row.preset);
        assert_eq!(row.preset.name(), row.name);
    }
}

/// Every `"preset": {"enum": [...]}` in a JSON schema.
fn schema_enums(v: &serde_json::Value, out: &mut Vec<BTreeSet<String>>) {
    match v {
        serde_json::Value::Object(m) => {
            if let Some(e) = m
                .get("preset")
                .and_then(|p| p.get("enum"))
                .and_then(|e| e.as_array())
            {
                out.push(
                    e.iter()
                        .filter_map(|s| s.as_str())
                        .map(String::from)
                        .collect(),
                );
            }
            m.values().for_each(|v| schema_enums(v, out));
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| schema_enums(v, out)),
        _ => {}
    }
}

#[test]
fn the_helm_schema_lists_exactly_the_presets() {
    let text = std::fs::read_to_string(repo("helm/signet/values.schema.json")).unwrap();
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut enums = Vec::new();
    schema_enums(&schema, &mut enums);
    assert!(!enums.is_empty(), "no preset enum in the Helm schema");
    for e in enums {
        assert_eq!(e, names(), "helm/signet/values.schema.json");
    }
}

/// The schemes with a page of their own (`scheme = "..."`).
const SCHEME_PAGES: [&str; 1] = ["rfc9421"];

#[test]
fn every_preset_has_a_docs_page_and_every_page_a_preset() {
    let pages: BTreeSet<String> = std::fs::read_dir(repo("docs/presets"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    // A page per preset, and one per scheme other than the templates'.
    let mut want = names();
    want.extend(SCHEME_PAGES.iter().map(|s| s.to_string()));
    assert_eq!(pages, want, "docs/presets/*.md");
    let index = std::fs::read_to_string(repo("docs/http-profiles.md")).unwrap();
    for scheme in SCHEME_PAGES {
        let page = std::fs::read_to_string(repo(&format!("docs/presets/{scheme}.md"))).unwrap();
        assert!(
            page.starts_with(&format!("# Scheme `{scheme}`")),
            "{scheme}"
        );
        assert!(
            index.contains(&format!(
                "| `{scheme}` | [docs/presets/{scheme}.md](presets/{scheme}.md) |"
            )),
            "docs/http-profiles.md does not list the {scheme} scheme"
        );
    }
    for name in names() {
        let page = std::fs::read_to_string(repo(&format!("docs/presets/{name}.md"))).unwrap();
        assert!(
            page.starts_with(&format!("# Preset `{name}`")),
            "docs/presets/{name}.md"
        );
        assert!(
            index.contains(&format!(
                "| `{name}` | [docs/presets/{name}.md](presets/{name}.md) |"
            )),
            "docs/http-profiles.md does not list {name}"
        );
    }
}

fn z(b: &[u8]) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(b.to_vec())
}

#[test]
fn whsec_secrets_decode_and_others_pass_through() {
    let whsec = SecretEncoding::Whsec;
    let d = whsec
        .decode(z(b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n"))
        .unwrap();
    assert_eq!(
        d.as_slice(),
        STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap()
    );
    assert_eq!(
        whsec.decode(z(b"raw-secret")).unwrap().as_slice(),
        b"raw-secret"
    );
    let e = whsec.decode(z(b"whsec_not base64!")).unwrap_err();
    assert_eq!(e.kind(), crate::error::ErrorKind::InvalidArgument);
    assert!(whsec.decode(z(b"whsec_")).is_err());
    assert_eq!(
        SecretEncoding::Raw
            .decode(z(b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
            .unwrap()
            .as_slice(),
        b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    );
}
