//! Importing key material: in the clear (recognised by its form,
//! `keys::material`), or wrapped to the import wrapping key
//! (`keys::wrap`), which the backend unwraps; on PKCS#11 inside the token.
//! `keys.refuse_plaintext_import` refuses secret material in the clear
//! (public keys, which are not secret, are still taken).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{new_label, validate_labels, KeyView, Op, Registry, VersionMaterial};
use crate::error::{Error, Result};
use crate::keys::public::{parse_material, Material};
use crate::keys::record::{KeyRecord, VersionRecord, VersionState};
use crate::keys::{validate_name, Algorithm};

/// Import material, as `ImportKey` received it.
#[derive(Clone, Copy)]
pub enum ImportSource<'a> {
    /// In the clear: a secret, PKCS#8, or a public key.
    Plain(&'a [u8]),
    /// Wrapped to [`Registry::import_wrapping_key`], with a private key's
    /// public half when the caller sends it.
    Wrapped {
        /// The wrapping.
        material: &'a [u8],
        /// SubjectPublicKeyInfo PEM or DER.
        public: Option<&'a [u8]>,
    },
}

impl std::fmt::Debug for ImportSource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImportSource::Plain(m) => write!(f, "Plain({} bytes)", m.len()),
            ImportSource::Wrapped { material, .. } => {
                write!(f, "Wrapped({} bytes)", material.len())
            }
        }
    }
}

/// What the import turned out to be.
enum Parsed {
    Public(crate::keys::PublicKey),
    Private(crate::keys::ImportMaterial),
    Wrapped(Vec<u8>, Option<crate::keys::PublicKey>),
}

impl Registry {
    /// The public half of the import wrapping key, SubjectPublicKeyInfo
    /// DER, and the name of the scheme it takes: what custodians wrap
    /// material to.
    pub async fn import_wrapping_key(&self) -> Result<(Vec<u8>, &'static str)> {
        let b = self.backend.clone();
        let (der, hash) = self
            .call(Op::Import, move || b.import_wrapping_key())
            .await?;
        Ok((der, hash.scheme()))
    }

    /// [`Registry::import`] of material in the clear.
    pub async fn import_key(
        &self,
        name: &str,
        alg: Algorithm,
        material: &[u8],
        as_new_version: bool,
        labels: BTreeMap<String, String>,
    ) -> Result<KeyView> {
        self.import(
            name,
            alg,
            ImportSource::Plain(material),
            as_new_version,
            labels,
        )
        .await
    }

    /// Imports material as a new key (version 1 ACTIVE) or, with
    /// `as_new_version`, as a new PENDING version of an existing key.
    pub async fn import(
        &self,
        name: &str,
        alg: Algorithm,
        source: ImportSource<'_>,
        as_new_version: bool,
        labels: BTreeMap<String, String>,
    ) -> Result<KeyView> {
        validate_name("key", name)?;
        validate_labels(&labels)?;
        let parsed = match source {
            ImportSource::Plain(m) => match parse_material(alg, m)? {
                Material::Public(p) => Parsed::Public(p),
                Material::Private(_) if self.settings.refuse_plaintext_import => {
                    return Err(Error::precondition(
                        "this server refuses secret key material in the clear \
                         (keys.refuse_plaintext_import): wrap it to the import wrapping key \
                         (GetImportWrappingKey; docs/byok.md)",
                    ))
                }
                Material::Private(m) => Parsed::Private(m),
            },
            ImportSource::Wrapped { material, public } => {
                let public =
                    match public {
                        None => None,
                        Some(_) if alg.is_symmetric() => {
                            return Err(Error::invalid(format!(
                                "{alg} keys have no public key: send no public_key"
                            )))
                        }
                        Some(p) => match parse_material(alg, p)? {
                            Material::Public(p) => Some(p),
                            Material::Private(_) => return Err(Error::invalid(
                                "public_key must be a public key (SubjectPublicKeyInfo PEM or DER)",
                            )),
                        },
                    };
                Parsed::Wrapped(material.to_vec(), public)
            }
        };
        let public_only = matches!(parsed, Parsed::Public(_));
        if !public_only {
            self.backend.check_algorithm(alg)?;
        }
        let _g = self.admin.lock().await;
        let now = self.clock.now();
        let existing = self.keys.read().get(name).cloned();
        let (version, base) = match (as_new_version, existing) {
            (false, Some(_)) => return Err(Error::exists(format!("key {name} already exists"))),
            (false, None) => (1, None),
            (true, None) => return Err(Error::not_found(format!("key {name} not found"))),
            (true, Some(e)) => {
                let rec = e.state.read().record.clone();
                if rec.algorithm != alg {
                    return Err(Error::invalid(format!(
                        "key {name} is {}, not {alg}",
                        rec.algorithm
                    )));
                }
                if rec.exportable {
                    return Err(Error::precondition(format!(
                        "key {name} is exportable: its versions are generated by signet \
                         (RotateKey), never imported"
                    )));
                }
                if rec.verify_only != public_only {
                    return Err(Error::invalid(if rec.verify_only {
                        format!("key {name} is verify-only: import a public key")
                    } else {
                        format!("key {name} signs: import private key material")
                    }));
                }
                (rec.next_version(), Some((e, rec)))
            }
        };
        let label = new_label(name, version);
        let (vm, spki) = match parsed {
            Parsed::Public(p) => {
                let der = p.spki_der().to_vec();
                (VersionMaterial::Public(Arc::new(p)), Some(der))
            }
            Parsed::Private(m) => {
                let (b, l) = (self.backend.clone(), label.clone());
                let h = self.call(Op::Import, move || b.import(&l, alg, m)).await?;
                (VersionMaterial::Private(h), None)
            }
            Parsed::Wrapped(w, public) => {
                let (b, l) = (self.backend.clone(), label.clone());
                let h = self
                    .call(Op::Import, move || {
                        b.import_wrapped(&l, alg, &w, public.as_ref())
                    })
                    .await?;
                (VersionMaterial::Private(h), None)
            }
        };
        let state = if base.is_some() {
            VersionState::Pending
        } else {
            VersionState::Active
        };
        let mut vrec = VersionRecord::new(version, state, label.clone(), now);
        vrec.public_spki = spki;
        match base {
            None => {
                let record = KeyRecord {
                    name: name.to_string(),
                    algorithm: alg,
                    labels,
                    policy: None,
                    create_time: now,
                    verify_only: public_only,
                    exportable: false,
                    versions: vec![vrec],
                };
                self.insert_new(record, vm, &label).await
            }
            Some((entry, mut rec)) => {
                rec.versions.push(vrec);
                self.commit_version(&entry, rec, version, vm, &label).await
            }
        }
    }
}
