//! PKCS#10 certificate signing requests (RFC 2986) for key versions, built
//! by rcgen and signed by the version's own key where it lives: the private
//! key never leaves the backend, rcgen only asks it for one signature.

use std::sync::Arc;

use parking_lot::Mutex;
use rcgen::string::{Ia5String, PrintableString};
use rcgen::{
    CertificateParams, DistinguishedName, DnType, DnValue, PublicKeyData, SanType,
    SignatureAlgorithm, SigningKey,
};

use crate::error::{Error, Result};
use crate::keys::ecdsa_sig;
use crate::keys::{Algorithm, Curve, Family, Hash, KeyHandle, PublicKey, SignInput};

/// Most subject attributes, and most subject alternative names, a request
/// may carry.
const MAX_ATTRIBUTES: usize = 16;
const MAX_ALT_NAMES: usize = 32;
/// Longest attribute value or alternative name, in characters.
const MAX_VALUE: usize = 256;

/// What the caller asks a CA to certify.
#[derive(Clone, Debug, Default)]
pub struct CsrSubject {
    /// Distinguished name attributes (type, value), most significant first.
    pub attributes: Vec<(String, String)>,
    /// subjectAltName dNSName entries.
    pub dns_names: Vec<String>,
    /// subjectAltName uniformResourceIdentifier entries.
    pub uris: Vec<String>,
    /// subjectAltName rfc822Name entries.
    pub emails: Vec<String>,
}

/// How an attribute's value is written.
#[derive(Clone, Copy)]
enum Encoding {
    /// UTF8String (RFC 5280 §4.1.2.6: what new certificates use).
    Utf8,
    /// PrintableString, which X.520 requires for these types.
    Printable,
    /// IA5String (PKCS#9 emailAddress).
    Ia5,
}

/// `(type, encoding)` of an attribute named as in RFC 4514 (and the names
/// the PSD2 certificate profile, ETSI TS 119 495, uses), or a dotted OID.
fn attribute_type(name: &str) -> Result<(DnType, Encoding)> {
    let known = |t: DnType| Ok((t, Encoding::Utf8));
    let oid = |arcs: &[u64], e: Encoding| Ok((DnType::CustomDnType(arcs.to_vec()), e));
    match name.to_ascii_lowercase().as_str() {
        "c" => Ok((DnType::CountryName, Encoding::Printable)),
        "st" => known(DnType::StateOrProvinceName),
        "l" => known(DnType::LocalityName),
        "o" => known(DnType::OrganizationName),
        "ou" => known(DnType::OrganizationalUnitName),
        "cn" => known(DnType::CommonName),
        "serialnumber" => oid(&[2, 5, 4, 5], Encoding::Printable),
        "organizationidentifier" => oid(&[2, 5, 4, 97], Encoding::Utf8),
        "emailaddress" => oid(&[1, 2, 840, 113549, 1, 9, 1], Encoding::Ia5),
        "street" => oid(&[2, 5, 4, 9], Encoding::Utf8),
        "postalcode" => oid(&[2, 5, 4, 17], Encoding::Utf8),
        _ => match dotted_oid(name) {
            Some(arcs) => Ok((DnType::CustomDnType(arcs), Encoding::Utf8)),
            None => Err(Error::invalid(format!(
                "unknown subject attribute type {:?}: C, ST, L, O, OU, CN, serialNumber, \
                 organizationIdentifier, emailAddress, street, postalCode, or a dotted OID",
                shown(name)
            ))),
        },
    }
}

/// `2.5.4.97` as arcs: at least two, the first 0, 1 or 2.
fn dotted_oid(s: &str) -> Option<Vec<u64>> {
    let arcs: Vec<u64> = s
        .split('.')
        .map(|a| {
            (!a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()))
                .then(|| a.parse().ok())
                .flatten()
        })
        .collect::<Option<_>>()?;
    (arcs.len() >= 2 && arcs[0] <= 2 && arcs.len() <= 20).then_some(arcs)
}

/// A caller's text in a message: at most 64 printable characters.
fn shown(s: &str) -> String {
    if s.len() <= 64 && !s.chars().any(char::is_control) {
        s.into()
    } else {
        "(too long or unprintable)".into()
    }
}

fn checked_value<'a>(what: &str, v: &'a str) -> Result<&'a str> {
    let n = v.chars().count();
    if n == 0 || n > MAX_VALUE || v.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "{what} must be 1 to {MAX_VALUE} characters with no control characters"
        )));
    }
    Ok(v)
}

fn ia5(what: &str, v: &str) -> Result<Ia5String> {
    Ia5String::try_from(checked_value(what, v)?)
        .map_err(|_| Error::invalid(format!("{what} must be ASCII")))
}

impl CsrSubject {
    /// The request's parameters, every value checked.
    pub(crate) fn params(&self) -> Result<CertificateParams> {
        if self.attributes.is_empty() && self.dns_names.is_empty() && self.uris.is_empty() {
            return Err(Error::invalid(
                "a certificate request needs a subject or a subject alternative name",
            ));
        }
        if self.attributes.len() > MAX_ATTRIBUTES {
            return Err(Error::invalid(format!(
                "at most {MAX_ATTRIBUTES} subject attributes"
            )));
        }
        let mut dn = DistinguishedName::new();
        for (name, value) in &self.attributes {
            let (ty, encoding) = attribute_type(name)?;
            let what = format!("subject attribute {}", shown(name));
            let value = checked_value(&what, value)?;
            if dn.get(&ty).is_some() {
                return Err(Error::invalid(format!(
                    "subject attribute {} is given twice",
                    shown(name)
                )));
            }
            if matches!(ty, DnType::CountryName)
                && !(value.len() == 2 && value.bytes().all(|b| b.is_ascii_uppercase()))
            {
                return Err(Error::invalid(
                    "subject attribute C must be a two-letter ISO 3166 code in capitals",
                ));
            }
            let value = match encoding {
                Encoding::Utf8 => DnValue::Utf8String(value.into()),
                Encoding::Ia5 => DnValue::Ia5String(ia5(&what, value)?),
                Encoding::Printable => {
                    DnValue::PrintableString(PrintableString::try_from(value).map_err(|_| {
                        Error::invalid(format!(
                            "{what} must be a PrintableString (letters, digits, space and '()+,-./:=?)"
                        ))
                    })?)
                }
            };
            dn.push(ty, value);
        }
        let total = self.dns_names.len() + self.uris.len() + self.emails.len();
        if total > MAX_ALT_NAMES {
            return Err(Error::invalid(format!(
                "at most {MAX_ALT_NAMES} subject alternative names"
            )));
        }
        let mut sans = Vec::with_capacity(total);
        for d in &self.dns_names {
            let name = ia5("a DNS name", d)?;
            let ok = d
                .split('.')
                .enumerate()
                .all(|(i, label)| label_ok(label) || (i == 0 && label == "*"));
            if !ok || d.len() > 253 {
                return Err(Error::invalid(format!(
                    "{:?} is not a DNS name (labels of letters, digits and hyphens)",
                    shown(d)
                )));
            }
            sans.push(SanType::DnsName(name));
        }
        for u in &self.uris {
            let uri = ia5("a URI", u)?;
            let parsed: http::Uri = u
                .parse()
                .map_err(|_| Error::invalid(format!("{:?} is not a URI", shown(u))))?;
            if parsed.scheme().is_none() {
                return Err(Error::invalid(format!(
                    "{:?} is not an absolute URI",
                    shown(u)
                )));
            }
            sans.push(SanType::URI(uri));
        }
        for e in &self.emails {
            let mail = ia5("an email address", e)?;
            match e.split_once('@') {
                Some((local, domain)) if !local.is_empty() && !domain.is_empty() => {}
                _ => {
                    return Err(Error::invalid(format!(
                        "{:?} is not an email address",
                        shown(e)
                    )))
                }
            }
            sans.push(SanType::Rfc822Name(mail));
        }
        let mut params = CertificateParams::default();
        params.distinguished_name = dn;
        params.subject_alt_names = sans;
        Ok(params)
    }
}

fn label_ok(label: &str) -> bool {
    (1..=63).contains(&label.len())
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// The X.509 signature algorithm a version's key signs a request with: its
/// own scheme. RSA-PSS keys would need RSASSA-PSS parameters rcgen does not
/// write, and symmetric keys have no public key.
fn scheme(alg: Algorithm) -> Result<&'static SignatureAlgorithm> {
    match (alg.family(), alg.hash(), alg.curve()) {
        (Family::RsaPkcs1, Some(Hash::Sha256), _) => Ok(&rcgen::PKCS_RSA_SHA256),
        (Family::RsaPkcs1, Some(Hash::Sha384), _) => Ok(&rcgen::PKCS_RSA_SHA384),
        (Family::RsaPkcs1, Some(Hash::Sha512), _) => Ok(&rcgen::PKCS_RSA_SHA512),
        (Family::Ecdsa, _, Some(Curve::P256)) => Ok(&rcgen::PKCS_ECDSA_P256_SHA256),
        (Family::Ecdsa, _, Some(Curve::P384)) => Ok(&rcgen::PKCS_ECDSA_P384_SHA384),
        (Family::Ed25519, _, _) => Ok(&rcgen::PKCS_ED25519),
        (Family::RsaPss, _, _) => Err(Error::new(
            crate::error::ErrorKind::Unimplemented,
            format!(
                "certificate requests for {alg} keys are not supported: use an RSA PKCS#1 v1.5, \
                 ECDSA or Ed25519 key"
            ),
        )),
        _ => Err(Error::invalid(format!(
            "{alg} keys have no public key to certify"
        ))),
    }
}

/// Checks that a certificate request can be made for `alg`.
pub(crate) fn check_algorithm(alg: Algorithm) -> Result<()> {
    scheme(alg).map(|_| ())
}

/// The version's key, as rcgen's signer: rcgen asks it for the one
/// signature over the request's CertificationRequestInfo.
struct VersionSigner {
    handle: Arc<dyn KeyHandle>,
    alg: Algorithm,
    scheme: &'static SignatureAlgorithm,
    /// The subjectPublicKey bits of the version's SPKI.
    public_bits: Vec<u8>,
    /// The backend's error, kept for the caller (rcgen has no room for it).
    failed: Mutex<Option<Error>>,
}

impl PublicKeyData for VersionSigner {
    fn der_bytes(&self) -> &[u8] {
        &self.public_bits
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.scheme
    }
}

impl SigningKey for VersionSigner {
    fn sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, rcgen::Error> {
        let signed = self.handle.sign(SignInput::Message(msg)).and_then(|raw| {
            match (self.alg.family(), self.alg.curve()) {
                // X.509 carries ECDSA-Sig-Value (DER), low-S as everything
                // signet signs.
                (Family::Ecdsa, Some(c)) => {
                    let mut raw = raw;
                    ecdsa_sig::normalize_low_s(c, &mut raw)?;
                    ecdsa_sig::raw_to_der(c, &raw)
                }
                _ => Ok(raw),
            }
        });
        signed.map_err(|e| {
            *self.failed.lock() = Some(e);
            rcgen::Error::RemoteKeyError
        })
    }
}

/// A request for `subject` signed by `handle` (blocking: the backend signs).
/// Returns its DER, after checking it as a CA would: the signature verifies
/// under the public key it carries, which is the version's.
pub(crate) fn sign_request(
    params: &CertificateParams,
    handle: Arc<dyn KeyHandle>,
    public: &PublicKey,
) -> Result<Vec<u8>> {
    let alg = public.algorithm();
    let spki = spki::SubjectPublicKeyInfoRef::try_from(public.spki_der())
        .map_err(|e| Error::internal(format!("a version's SPKI does not parse: {e}")))?;
    let signer = VersionSigner {
        handle,
        alg,
        scheme: scheme(alg)?,
        public_bits: spki.subject_public_key.raw_bytes().to_vec(),
        failed: Mutex::new(None),
    };
    let csr = match params.serialize_request(&signer) {
        Ok(csr) => csr,
        Err(e) => {
            return Err(signer
                .failed
                .lock()
                .take()
                .unwrap_or_else(|| Error::internal(format!("building the request: {e}"))))
        }
    };
    let der = csr.der().to_vec();
    self_check(&der, public.spki_der())?;
    Ok(der)
}

fn self_check(der: &[u8], spki: &[u8]) -> Result<()> {
    use x509_parser::prelude::FromDer;
    let (rest, req) =
        x509_parser::certification_request::X509CertificationRequest::from_der(der)
            .map_err(|e| Error::internal(format!("the request made does not parse: {e}")))?;
    if !rest.is_empty() || req.certification_request_info.subject_pki.raw != spki {
        return Err(Error::internal(
            "the request made does not carry the version's public key",
        ));
    }
    req.verify_signature().map_err(|e| {
        Error::internal(format!(
            "the request made does not verify under the version's key: {e}"
        ))
    })
}
