//! `[profiles.rfc9421]`: an RFC 9421 profile's settings, as written.
//! Validating them (component identifiers, key ids, field types) is
//! [`crate::httpsig::rfc9421`]'s. docs/presets/rfc9421.md.

use std::collections::BTreeMap;

use serde::Deserialize;

/// An RFC 9530 digest algorithm signet computes and checks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum DigestAlgorithm {
    /// `sha-256`.
    #[default]
    #[serde(rename = "sha-256")]
    Sha256,
    /// `sha-512`.
    #[serde(rename = "sha-512")]
    Sha512,
}

/// The Structured Field type of a header field, for the `sf` and `key`
/// component parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    /// An Item.
    Item,
    /// A List.
    List,
    /// A Dictionary.
    Dictionary,
}

/// The table as written. Every field is optional.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct Rfc9421Config {
    /// The label signet signs under (default `sig1`).
    pub label: Option<String>,
    /// The covered components when signing, in order: a field name
    /// (`content-type`), a derived component (`@method`) or a serialized
    /// component identifier (`"@query-param";name="id"`).
    pub components: Option<Vec<String>>,
    /// The algorithm of the `Content-Digest` signet writes.
    pub content_digest: Option<DigestAlgorithm>,
    /// Whether signatures carry `created` (default true).
    pub created: Option<bool>,
    /// `expires` as `created` plus this many seconds; none when unset.
    pub expires_seconds: Option<u64>,
    /// The `keyid` sent: the version id `NAME:vN` when unset.
    pub keyid: Option<String>,
    /// Whether signatures carry `keyid` at all (default true).
    pub send_keyid: Option<bool>,
    /// Whether signatures carry `alg` (default false).
    pub send_alg: Option<bool>,
    /// The `tag` sent, and the one a signature must carry to verify.
    pub tag: Option<String>,
    /// Also sign with each PENDING version, under `LABEL-2`, `LABEL-3`, ...
    pub sign_pending: Option<bool>,
    /// Only signatures under these labels are considered when verifying
    /// (default: any label).
    pub verify_labels: Option<Vec<String>>,
    /// Components a signature must cover to verify (default: `components`).
    pub required_components: Option<Vec<String>>,
    /// Whether a signature without `created` is refused (default true).
    pub require_created: Option<bool>,
    /// Whether a signature without `keyid` is refused (default false).
    pub require_keyid: Option<bool>,
    /// How far in the future `created` may be, and how long after
    /// `expires` a signature still verifies (default 5).
    pub clock_skew_seconds: Option<u64>,
    /// The counterparty's key ids and the signet key (`NAME`) or version
    /// (`NAME:vN`) each stands for. When set, only these key ids verify.
    pub keyids: Option<BTreeMap<String, String>>,
    /// The Structured Field type of header fields that `sf` or `key`
    /// covers beyond the registered ones.
    pub field_types: Option<BTreeMap<String, FieldType>>,
}
