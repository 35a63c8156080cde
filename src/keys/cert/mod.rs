//! X.509 for key versions: certificate signing requests signed where the
//! key lives ([`csr`]), and the chains custodians attach to versions,
//! checked before they are stored ([`chain`]). The registry keeps the
//! chains in the version records (`keys/registry/certs.rs`).

pub mod chain;
pub mod csr;

pub use chain::LeafInfo;
pub use csr::CsrSubject;

/// Adds a version's chain to its JWK (RFC 7517 §4.7–4.9): `x5c`, standard
/// base64 DER, leaf first, and `x5t#S256`, the leaf's SHA-256 thumbprint.
pub(crate) fn add_x5c(jwk: &mut serde_json::Value, chain: &[Vec<u8>]) {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use base64::Engine as _;
    let (Some(leaf), Some(m)) = (chain.first(), jwk.as_object_mut()) else {
        return;
    };
    let x5c = chain.iter().map(|d| STANDARD.encode(d).into()).collect();
    m.insert("x5c".into(), serde_json::Value::Array(x5c));
    let thumb = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, leaf);
    m.insert("x5t#S256".into(), URL_SAFE_NO_PAD.encode(thumb).into());
}
