//! Certificate chains attached to key versions: read from PEM or DER, and
//! checked before they are stored. signet does not decide whom to trust
//! (the counterparty does, against its own roots); it refuses a chain that
//! could never be right for the version: a leaf that holds another key,
//! links that do not chain, an issuer that is not a CA, a leaf already
//! expired.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use x509_parser::prelude::{FromDer, X509Certificate};

use crate::error::{Error, Result};

/// Most certificates a chain may hold, and its largest size in bytes.
pub const MAX_CERTIFICATES: usize = 10;
/// See [`MAX_CERTIFICATES`].
pub const MAX_CHAIN_BYTES: usize = 64 * 1024;

/// What callers are told about a leaf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeafInfo {
    /// notBefore.
    pub not_before: SystemTime,
    /// notAfter.
    pub not_after: SystemTime,
    /// The serial number in hexadecimal, upper case, no leading zeros: as
    /// Berlin Group `keyId`s write it (`SN=...`).
    pub serial_hex: String,
    /// The issuer's distinguished name, RFC 4514.
    pub issuer: String,
    /// The subject's distinguished name, RFC 4514.
    pub subject: String,
}

/// The certificates in `input`: PEM blocks (`CERTIFICATE` only), or one DER
/// certificate.
pub fn read_chain(input: &[u8]) -> Result<Vec<Vec<u8>>> {
    if input.is_empty() {
        return Err(Error::invalid("chain is empty"));
    }
    if input.len() > MAX_CHAIN_BYTES {
        return Err(Error::invalid(format!(
            "chain is larger than {MAX_CHAIN_BYTES} bytes"
        )));
    }
    let certs = if input[0] == 0x30 {
        vec![input.to_vec()]
    } else {
        let mut out = Vec::new();
        for block in x509_parser::pem::Pem::iter_from_buffer(input) {
            let block = block.map_err(|_| {
                Error::invalid("chain is neither DER nor PEM certificates that decode")
            })?;
            if block.label != "CERTIFICATE" {
                return Err(Error::invalid(format!(
                    "chain holds a PEM block that is not a certificate ({})",
                    if block.label.len() <= 40 && block.label.is_ascii() {
                        block.label.as_str()
                    } else {
                        "an unreadable label"
                    }
                )));
            }
            out.push(block.contents);
        }
        out
    };
    if certs.is_empty() {
        return Err(Error::invalid(
            "chain is neither DER nor PEM certificates: it holds no PEM block",
        ));
    }
    if certs.len() > MAX_CERTIFICATES {
        return Err(Error::invalid(format!(
            "a chain holds at most {MAX_CERTIFICATES} certificates"
        )));
    }
    Ok(certs)
}

fn parse(i: usize, der: &[u8]) -> Result<X509Certificate<'_>> {
    match X509Certificate::from_der(der) {
        Ok((&[], c)) => Ok(c),
        _ => Err(Error::invalid(format!(
            "certificate {} of the chain is not a DER X.509 certificate",
            i + 1
        ))),
    }
}

fn time(t: x509_parser::time::ASN1Time) -> SystemTime {
    let s = t.timestamp();
    if s >= 0 {
        UNIX_EPOCH + Duration::from_secs(s as u64)
    } else {
        UNIX_EPOCH - Duration::from_secs(s.unsigned_abs())
    }
}

fn rfc4514(raw: &[u8]) -> String {
    use der::Decode;
    x509_cert::name::Name::from_der(raw)
        .map(|n| n.to_string())
        .unwrap_or_default()
}

/// Signature algorithms a link may use: SHA-1 ones are refused (RFC 9155
/// deprecates them; CAs stopped issuing them years ago).
fn weak(c: &X509Certificate<'_>) -> bool {
    use x509_parser::oid_registry::{OID_PKCS1_SHA1WITHRSA, OID_SHA1_WITH_RSA};
    let oid = &c.signature_algorithm.algorithm;
    *oid == OID_PKCS1_SHA1WITHRSA
        || *oid == OID_SHA1_WITH_RSA
        || oid.to_id_string() == "1.2.840.10045.4.1"
}

/// Checks `chain` (leaf first) for a version whose public key is `spki`
/// (SubjectPublicKeyInfo DER), at `now`.
pub fn check_chain(chain: &[Vec<u8>], spki: &[u8], now: SystemTime) -> Result<LeafInfo> {
    let certs = chain
        .iter()
        .enumerate()
        .map(|(i, d)| parse(i, d))
        .collect::<Result<Vec<_>>>()?;
    let leaf = &certs[0];
    if leaf.public_key().raw != spki {
        return Err(Error::invalid(
            "the chain's first certificate does not hold this version's public key",
        ));
    }
    match leaf.key_usage() {
        Ok(Some(ku)) if !(ku.value.digital_signature() || ku.value.non_repudiation()) => {
            return Err(Error::invalid(
                "the leaf's key usage allows neither digitalSignature nor nonRepudiation",
            ))
        }
        Ok(_) => {}
        Err(_) => {
            return Err(Error::invalid(
                "the leaf's key usage extension does not parse",
            ))
        }
    }
    for (i, pair) in certs.windows(2).enumerate() {
        let (child, issuer) = (&pair[0], &pair[1]);
        let n = i + 1;
        if child.issuer().as_raw() != issuer.subject().as_raw() {
            return Err(Error::invalid(format!(
                "certificate {n} of the chain was not issued by certificate {}: its issuer is not that subject",
                n + 1
            )));
        }
        if !issuer.is_ca() {
            return Err(Error::invalid(format!(
                "certificate {} of the chain is not a CA (basicConstraints cA is not set)",
                n + 1
            )));
        }
        if weak(child) {
            return Err(Error::invalid(format!(
                "certificate {n} of the chain is signed with SHA-1"
            )));
        }
        if child.verify_signature(Some(issuer.public_key())).is_err() {
            return Err(Error::invalid(format!(
                "certificate {n} of the chain does not verify under certificate {}'s key",
                n + 1
            )));
        }
    }
    let info = leaf_info_of(leaf);
    if info.not_after <= now {
        return Err(Error::invalid(
            "the leaf certificate has expired (notAfter is past)",
        ));
    }
    Ok(info)
}

fn leaf_info_of(c: &X509Certificate<'_>) -> LeafInfo {
    LeafInfo {
        not_before: time(c.validity().not_before),
        not_after: time(c.validity().not_after),
        serial_hex: c.serial.to_str_radix(16).to_uppercase(),
        issuer: rfc4514(c.issuer().as_raw()),
        subject: rfc4514(c.subject().as_raw()),
    }
}

/// What a stored leaf says (`None` if it no longer parses, which a checked
/// chain always does).
pub fn leaf_info(der: &[u8]) -> Option<LeafInfo> {
    parse(0, der).ok().map(|c| leaf_info_of(&c))
}

/// The chain as PEM, leaf first, LF line ends.
pub fn chain_pem(chain: &[Vec<u8>]) -> String {
    chain
        .iter()
        .map(|d| crate::keys::public::pem_encode("CERTIFICATE", d))
        .collect()
}
