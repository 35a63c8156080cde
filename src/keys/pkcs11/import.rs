//! Importing keys onto the token with `C_CreateObject`: HMAC secrets as
//! they are (padded, see below), private keys from PKCS#8 after
//! `material::check_pkcs8` has checked them against the algorithm and
//! given their public key.

use std::sync::Arc;

use cryptoki::object::{Attribute, ObjectClass};

use super::mechanisms::{ec_params, key_type};
use super::objects::{
    aes_template, private_template, public_key_template, scrub, PRIVATE_KEY_USAGES,
    SECRET_KEY_USAGES,
};
use super::Pkcs11Backend;
use crate::error::Result;
use crate::keys::material::{check_pkcs8, check_secret, PrivateParts};
use crate::keys::public::{mismatch, KeyParts};
use crate::keys::{Algorithm, Family, ImportMaterial, KeyBackend, KeyHandle, SecretBytes};

impl Pkcs11Backend {
    /// `KeyBackend::import`.
    pub(super) fn import_key(
        &self,
        label: &str,
        alg: Algorithm,
        material: ImportMaterial,
    ) -> Result<Arc<dyn KeyHandle>> {
        self.check_algorithm(alg)?;
        match (&material, alg.family()) {
            (ImportMaterial::Secret(secret), Family::Hmac | Family::AesGcm) => {
                self.import_secret(label, alg, secret)
            }
            (ImportMaterial::Pkcs8(der), _) if !alg.is_symmetric() => {
                self.import_pkcs8(label, alg, der)
            }
            _ => Err(mismatch(alg)),
        }
    }

    fn import_secret(
        &self,
        label: &str,
        alg: Algorithm,
        secret: &SecretBytes,
    ) -> Result<Arc<dyn KeyHandle>> {
        check_secret(alg, secret.len())?;
        let generation = self.pool.generation();
        if alg.encrypts() {
            let mut template = aes_template(label);
            template.push(Attribute::Value(secret.expose().to_vec()));
            let object = self.pool.with("import key", |s| s.create_object(&template));
            scrub(&mut template);
            return self.handle(label, alg, generation, object?);
        }
        // Tokens (SoftHSM2 among them) refuse HMAC keys shorter than the
        // hash output (CKR_KEY_SIZE_RANGE at first use), while platforms
        // hand out shorter webhook secrets. HMAC pads the key with zeros to
        // the hash's block size before use (RFC 2104 §2), so zero-padding
        // up to the output length (never past the block size) gives the
        // same MAC, byte for byte.
        let hash = alg.hash().ok_or_else(|| mismatch(alg))?;
        let mut value = secret.expose().to_vec();
        if value.len() < hash.output_len() {
            value.resize(hash.output_len(), 0);
        }
        let mut private = private_template(label);
        private.extend([
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(key_type(alg)),
            Attribute::Value(value),
        ]);
        private.extend(SECRET_KEY_USAGES);
        let object = self.pool.with("import key", |s| s.create_object(&private));
        scrub(&mut private);
        self.handle(label, alg, generation, object?)
    }

    fn import_pkcs8(
        &self,
        label: &str,
        alg: Algorithm,
        der: &SecretBytes,
    ) -> Result<Arc<dyn KeyHandle>> {
        let key = check_pkcs8(alg, der.expose())?;
        let generation = self.pool.generation();
        let mut private = private_template(label);
        private.extend([
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(key_type(alg)),
        ]);
        private.extend(PRIVATE_KEY_USAGES);
        if matches!(alg.family(), Family::Ecdsa | Family::Ed25519) {
            private.push(Attribute::EcParams(ec_params(alg)?));
        }
        let v = |b: &SecretBytes| b.expose().to_vec();
        match (&key.private, key.public.parts()) {
            (
                PrivateParts::Rsa {
                    d,
                    p,
                    q,
                    dp,
                    dq,
                    qinv,
                },
                KeyParts::Rsa { n, e },
            ) => {
                private.extend([
                    Attribute::Modulus(n.clone()),
                    Attribute::PublicExponent(e.clone()),
                    Attribute::PrivateExponent(v(d)),
                    Attribute::Prime1(v(p)),
                    Attribute::Prime2(v(q)),
                    Attribute::Exponent1(v(dp)),
                    Attribute::Exponent2(v(dq)),
                    Attribute::Coefficient(v(qinv)),
                ]);
            }
            (PrivateParts::Ec { scalar }, KeyParts::Ec { .. }) => {
                private.push(Attribute::Value(v(scalar)));
            }
            (PrivateParts::Ed25519 { seed }, KeyParts::Ed25519 { .. }) => {
                private.push(Attribute::Value(v(seed)));
            }
            _ => return Err(mismatch(alg)),
        }
        let public = public_key_template(label, alg, &key.public)?;
        let created = self.pool.with("import key", |s| {
            let p = s.create_object(&private)?;
            match s.create_object(&public) {
                Ok(_) => Ok(p),
                Err(e) => {
                    let _ = s.destroy_object(p);
                    Err(e)
                }
            }
        });
        scrub(&mut private);
        let object = created?;
        self.handle(label, alg, generation, object)
            .inspect_err(|_| {
                let _ = self.destroy(label);
            })
    }
}
