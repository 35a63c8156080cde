//! Generating keys on the token: `C_GenerateKey` for HMAC secrets and AES
//! keys, `C_GenerateKeyPair` for the rest, with the templates of `objects` and
//! the mechanisms of `mechanisms`.

use std::sync::Arc;

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::types::Ulong;

use super::mechanisms::{ec_params, key_pair_gen, key_type};
use super::objects::{
    aes_template, private_template, public_template, PRIVATE_KEY_USAGES, SECRET_KEY_USAGES,
};
use super::Pkcs11Backend;
use crate::error::Result;
use crate::keys::public::mismatch;
use crate::keys::{Algorithm, Family, KeyBackend, KeyHandle};

/// The public exponent of every RSA key signet generates: 65537.
const RSA_PUBLIC_EXPONENT: [u8; 3] = [0x01, 0x00, 0x01];

/// Turns a secret key template's `CKA_EXTRACTABLE` on, and nothing else
/// (`CKA_SENSITIVE` stays on).
fn extractable(template: &mut [Attribute]) {
    for a in template {
        if let Attribute::Extractable(e) = a {
            *e = true;
        }
    }
}

impl Pkcs11Backend {
    /// `KeyBackend::generate`: a sensitive, non-extractable key (pair)
    /// under `label`; a key that cannot be read back is destroyed again.
    /// With `exportable` (HMAC and AES only; the backend checks), the
    /// secret key is extractable: still sensitive, so the token never
    /// gives it in the clear, but it will wrap it (`export`).
    pub(super) fn generate_key(
        &self,
        label: &str,
        alg: Algorithm,
        exportable: bool,
    ) -> Result<Arc<dyn KeyHandle>> {
        self.check_algorithm(alg)?;
        let generation = self.pool.generation();
        let mut private = private_template(label);
        let mut public = public_template(label);
        let object = match alg.family() {
            Family::Hmac => {
                let len = alg.hash().ok_or_else(|| mismatch(alg))?.output_len() as u64;
                private.extend([
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(key_type(alg)),
                    Attribute::ValueLen(Ulong::from(len)),
                ]);
                private.extend(SECRET_KEY_USAGES);
                if exportable {
                    extractable(&mut private);
                }
                self.pool.with("generate key", |s| {
                    s.generate_key(&Mechanism::GenericSecretKeyGen, &private)
                })?
            }
            Family::AesGcm => {
                let mut template = aes_template(label);
                template.push(Attribute::ValueLen(Ulong::from(32u64)));
                if exportable {
                    extractable(&mut template);
                }
                self.pool.with("generate key", |s| {
                    s.generate_key(&Mechanism::AesKeyGen, &template)
                })?
            }
            family => {
                if matches!(family, Family::RsaPkcs1 | Family::RsaPss) {
                    let bits = alg.rsa_bits().ok_or_else(|| mismatch(alg))? as u64;
                    public.extend([
                        Attribute::ModulusBits(Ulong::from(bits)),
                        Attribute::PublicExponent(RSA_PUBLIC_EXPONENT.to_vec()),
                    ]);
                } else {
                    public.push(Attribute::EcParams(ec_params(alg)?));
                }
                private.extend(PRIVATE_KEY_USAGES);
                let mechanism = key_pair_gen(alg)?;
                let (_, private) = self.pool.with("generate key pair", |s| {
                    s.generate_key_pair(&mechanism, &public, &private)
                })?;
                private
            }
        };
        self.handle(label, alg, generation, object)
            .inspect_err(|_| {
                let _ = self.destroy(label);
            })
    }
}
