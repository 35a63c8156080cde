//! What each KeyAdmin RPC does, per request message.

use std::collections::{BTreeMap, HashMap};

use zeroize::Zeroizing;

use super::page_token::{page_token, parse_page_token};
use super::{KeyAdminService, MAX_MATERIAL_BYTES};
use crate::api::{convert, pb, Call};
use crate::audit::Record;
use crate::auth::CallContext;
use crate::error::{Error, Result};
use crate::keys::registry::{ImportSource, KeyView};
use crate::keys::wrap::{OaepHash, Recipient};
use crate::rpcs::{self, Rpc};

fn labels(m: HashMap<String, String>) -> BTreeMap<String, String> {
    m.into_iter().collect()
}

impl Call for pb::CreateKeyRequest {
    type Service = KeyAdminService;
    type Reply = pb::CreateKeyResponse;
    const RPC: &'static Rpc = &rpcs::CREATE_KEY;

    fn subject(&self) -> &str {
        &self.name
    }

    async fn call(self, s: &KeyAdminService, _: &CallContext) -> Result<pb::CreateKeyResponse> {
        let alg = convert::algorithm(self.algorithm)?;
        let policy = self
            .rotation_policy
            .as_ref()
            .map(convert::policy)
            .transpose()?;
        let v = s
            .registry
            .create_key(
                &self.name,
                alg,
                labels(self.labels),
                policy,
                self.exportable,
            )
            .await?;
        tracing::info!(key = %self.name, algorithm = %alg, exportable = self.exportable, "key created");
        Ok(pb::CreateKeyResponse {
            key: Some(convert::key_pb(&v)),
        })
    }
}

impl Call for pb::ImportKeyRequest {
    type Service = KeyAdminService;
    type Reply = pb::ImportKeyResponse;
    const RPC: &'static Rpc = &rpcs::IMPORT_KEY;

    fn subject(&self) -> &str {
        &self.name
    }

    fn audit(&self, _: &KeyAdminService, record: &mut Record) {
        record.reason = Some(
            if self.wrapped_material.is_empty() {
                "material in the clear"
            } else {
                "wrapped material"
            }
            .into(),
        );
    }

    async fn call(self, s: &KeyAdminService, _: &CallContext) -> Result<pb::ImportKeyResponse> {
        let alg = convert::algorithm(self.algorithm)?;
        let longest = self.material.len().max(self.wrapped_material.len());
        if longest.max(self.public_key.len()) > MAX_MATERIAL_BYTES {
            return Err(Error::invalid(format!(
                "material is larger than {MAX_MATERIAL_BYTES} bytes"
            )));
        }
        if !self.wrapped_material.is_empty() {
            if !self.material.is_empty() {
                return Err(Error::invalid(
                    "send material or wrapped_material, not both",
                ));
            }
            let v = s
                .registry
                .import(
                    &self.name,
                    alg,
                    ImportSource::Wrapped {
                        material: &self.wrapped_material,
                        public: (!self.public_key.is_empty()).then_some(&self.public_key[..]),
                    },
                    self.as_new_version,
                    labels(self.labels),
                )
                .await?;
            tracing::info!(key = %self.name, algorithm = %alg, new_version = self.as_new_version, "key imported wrapped");
            return Ok(pb::ImportKeyResponse {
                key: Some(convert::key_pb(&v)),
            });
        }
        if !self.public_key.is_empty() {
            return Err(Error::invalid(
                "public_key goes with wrapped_material only (material in the clear carries its own)",
            ));
        }
        let mut material = Zeroizing::new(self.material);
        // A preset may write its keys in a form of its own (whsec_, and
        // Standard Webhooks' whsk_ and whpk_ for Ed25519).
        material = s
            .profiles
            .current()
            .secret_encoding(&self.name)
            .decode_for(alg, material)?;
        let v = s
            .registry
            .import_key(
                &self.name,
                alg,
                &material,
                self.as_new_version,
                labels(self.labels),
            )
            .await?;
        tracing::info!(key = %self.name, algorithm = %alg, new_version = self.as_new_version, "key imported");
        Ok(pb::ImportKeyResponse {
            key: Some(convert::key_pb(&v)),
        })
    }
}

impl Call for pb::RotateKeyRequest {
    type Service = KeyAdminService;
    type Reply = pb::RotateKeyResponse;
    const RPC: &'static Rpc = &rpcs::ROTATE_KEY;

    fn subject(&self) -> &str {
        &self.name
    }

    async fn call(self, s: &KeyAdminService, _: &CallContext) -> Result<pb::RotateKeyResponse> {
        let grace = convert::grace_period(self.grace_period.as_ref())?;
        let (view, version) = s.registry.rotate(&self.name, self.promote, grace).await?;
        tracing::info!(key = %self.name, version, promote = self.promote, "key rotated");
        Ok(pb::RotateKeyResponse {
            version: convert::key_version_pb(&view, version),
            key: Some(convert::key_pb(&view)),
        })
    }
}

/// The key after a change of one version's state, logged as `what`.
fn version_changed(name: &str, version: u32, what: &str, view: &KeyView) -> Option<pb::Key> {
    tracing::info!(key = %name, version, "key version {what}");
    Some(convert::key_pb(view))
}

/// The five calls that change one version's state: the key is `name`, the
/// version (required) is audited, and the response holds the key after the
/// change.
macro_rules! version_call {
    ($request:ty, $reply:ident, $row:ident, |$r:ident, $s:ident, $v:ident| $call:expr, $what:literal) => {
        impl Call for $request {
            type Service = KeyAdminService;
            type Reply = pb::$reply;
            const RPC: &'static Rpc = &rpcs::$row;

            fn subject(&self) -> &str {
                &self.name
            }

            fn audit(&self, _: &KeyAdminService, record: &mut Record) {
                record.version = (self.version > 0).then_some(self.version);
            }

            async fn call(self, $s: &KeyAdminService, _: &CallContext) -> Result<pb::$reply> {
                let $r = self;
                let $v = convert::required_version($r.version)?;
                let view = $call?;
                Ok(pb::$reply {
                    key: version_changed(&$r.name, $v, $what, &view),
                })
            }
        }
    };
}

version_call!(
    pb::PromoteKeyVersionRequest,
    PromoteKeyVersionResponse,
    PROMOTE_KEY_VERSION,
    |r, s, v| {
        let grace = convert::grace_period(r.grace_period.as_ref())?;
        s.registry.promote(&r.name, v, grace).await
    },
    "promoted"
);
version_call!(
    pb::DisableKeyVersionRequest,
    DisableKeyVersionResponse,
    DISABLE_KEY_VERSION,
    |r, s, v| s.registry.disable(&r.name, v).await,
    "disabled"
);
version_call!(
    pb::EnableKeyVersionRequest,
    EnableKeyVersionResponse,
    ENABLE_KEY_VERSION,
    |r, s, v| {
        let grace = convert::grace_period(r.grace_period.as_ref())?;
        s.registry.enable(&r.name, v, grace).await
    },
    "enabled"
);
version_call!(
    pb::DestroyKeyVersionRequest,
    DestroyKeyVersionResponse,
    DESTROY_KEY_VERSION,
    |r, s, v| s.registry.destroy(&r.name, v).await,
    "scheduled for destruction"
);
version_call!(
    pb::RestoreKeyVersionRequest,
    RestoreKeyVersionResponse,
    RESTORE_KEY_VERSION,
    |r, s, v| s.registry.restore(&r.name, v).await,
    "restored"
);

impl Call for pb::GetKeyRequest {
    type Service = KeyAdminService;
    type Reply = pb::GetKeyResponse;
    const RPC: &'static Rpc = &rpcs::GET_KEY;

    fn subject(&self) -> &str {
        &self.name
    }

    async fn call(self, s: &KeyAdminService, _: &CallContext) -> Result<pb::GetKeyResponse> {
        let v = s.registry.get(&self.name)?;
        Ok(pb::GetKeyResponse {
            key: Some(convert::key_pb(&v)),
        })
    }
}

impl Call for pb::GetImportWrappingKeyRequest {
    type Service = KeyAdminService;
    type Reply = pb::GetImportWrappingKeyResponse;
    const RPC: &'static Rpc = &rpcs::GET_IMPORT_WRAPPING_KEY;

    async fn call(
        self,
        s: &KeyAdminService,
        _: &CallContext,
    ) -> Result<pb::GetImportWrappingKeyResponse> {
        let (der, scheme) = s.registry.import_wrapping_key().await?;
        let pem = der::pem::encode_string("PUBLIC KEY", der::pem::LineEnding::LF, &der)
            .map_err(|_| Error::internal("PEM encoding failed"))?;
        Ok(pb::GetImportWrappingKeyResponse {
            public_key_pem: pem,
            wrapping_scheme: scheme.into(),
        })
    }
}

impl Call for pb::ExportKeyRequest {
    type Service = KeyAdminService;
    type Reply = pb::ExportKeyResponse;
    const RPC: &'static Rpc = &rpcs::EXPORT_KEY;

    fn subject(&self) -> &str {
        &self.name
    }

    /// The version asked for, and whom the key goes to: the SHA-256 of
    /// the recipient's public key (which the response repeats), as the
    /// record's digest.
    fn audit(&self, _: &KeyAdminService, record: &mut Record) {
        record.version = (self.version > 0).then_some(self.version);
        if let Ok(to) = Recipient::parse(&self.wrapping_public_key) {
            record.message_sha256 = Some(crate::api::sha256(to.spki_der()));
        }
        record.reason = Some(format!("wrapped to {}", scheme_name(&self.wrapping_scheme)));
    }

    async fn call(self, s: &KeyAdminService, _: &CallContext) -> Result<pb::ExportKeyResponse> {
        if self.wrapping_public_key.len() > MAX_MATERIAL_BYTES {
            return Err(Error::invalid(format!(
                "wrapping_public_key is larger than {MAX_MATERIAL_BYTES} bytes"
            )));
        }
        let to = Recipient::parse(&self.wrapping_public_key)?;
        let hash = match self.wrapping_scheme.as_str() {
            "" => None,
            name => Some(OaepHash::from_scheme(name).ok_or_else(|| {
                Error::invalid(format!(
                    "unknown wrapping_scheme {:?}: {} or {}, or empty for the backend's best",
                    scheme_name(name),
                    OaepHash::Sha256.scheme(),
                    OaepHash::Sha1.scheme()
                ))
            })?),
        };
        let fingerprint = hex::encode(crate::api::sha256(to.spki_der()));
        let version = (self.version > 0).then_some(self.version);
        let e = s
            .registry
            .export_wrapped(&self.name, version, to, hash)
            .await?;
        Ok(pb::ExportKeyResponse {
            key_version_id: crate::keys::version_id(&self.name, e.version),
            version: e.version,
            algorithm: convert::algorithm_pb(e.algorithm) as i32,
            wrapped_material: e.wrapped,
            wrapping_scheme: e.hash.scheme().into(),
            wrapping_key_sha256: fingerprint,
        })
    }
}

/// A scheme name as sent, for messages and the audit record: at most 64
/// printable ASCII characters, never a caller's arbitrary bytes.
fn scheme_name(name: &str) -> String {
    if name.is_empty() {
        return "the backend's best scheme".into();
    }
    let printable = name.len() <= 64 && name.bytes().all(|b| b.is_ascii_graphic());
    if printable {
        name.into()
    } else {
        "(an unprintable name)".into()
    }
}

impl Call for pb::ListKeysRequest {
    type Service = KeyAdminService;
    type Reply = pb::ListKeysResponse;
    const RPC: &'static Rpc = &rpcs::LIST_KEYS;

    async fn call(self, s: &KeyAdminService, ctx: &CallContext) -> Result<pb::ListKeysResponse> {
        let size = match self.page_size {
            0 => 100,
            n @ 1..=1000 => n as usize,
            _ => return Err(Error::invalid("page_size must be at most 1000")),
        };
        let after = parse_page_token(&ctx.identity, &self.page_token)?;
        // Only the keys the caller may read, filtered before paging.
        let policy = s.security.policy();
        let (views, more) = s.registry.list(after.as_deref(), size, |name| {
            policy.allows(&ctx.identity, Self::RPC.op, name)
        });
        let next = match (more, views.last()) {
            (true, Some(last)) => page_token(&ctx.identity, &last.record.name),
            _ => String::new(),
        };
        Ok(pb::ListKeysResponse {
            keys: views.iter().map(convert::key_pb).collect(),
            next_page_token: next,
        })
    }
}
