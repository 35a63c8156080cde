//! `signet.v1.KeyAdmin`: what key custodians call.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::{
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
    Engine,
};
use tonic::{Request, Response, Status};
use zeroize::Zeroizing;

use super::convert;
use super::pb::{self, key_admin_server::KeyAdmin};
use super::run;
use crate::auth::{CallContext, Op, Security};
use crate::error::{Error, Result};
use crate::keys::registry::Registry;
use crate::keys::validate_name;

/// Largest import material accepted, in bytes (a 4096-bit RSA PKCS#8 PEM is
/// about 3.3 KiB).
pub const MAX_MATERIAL_BYTES: usize = 64 * 1024;

/// The KeyAdmin service.
#[derive(Clone, Debug)]
pub struct KeyAdminService {
    registry: Arc<Registry>,
    security: Arc<Security>,
    /// Keys named by a `standard-webhooks` profile: an HMAC secret imported
    /// for one of them as `whsec_` + base64 is stored decoded.
    profiles: Arc<crate::httpsig::profile::ProfileSet>,
}

impl KeyAdminService {
    /// A service over `registry`.
    pub fn new(registry: Arc<Registry>) -> Self {
        Self {
            registry,
            security: Security::open(),
            profiles: Arc::default(),
        }
    }

    /// Puts the service under `security` (authorization, audit).
    pub fn with_security(mut self, security: Arc<Security>) -> Self {
        self.security = security;
        self
    }

    /// The HTTP profiles: imports for keys named by a `standard-webhooks`
    /// profile decode a `whsec_` secret (http-signing.md, Presets).
    pub fn with_profiles(mut self, profiles: Arc<crate::httpsig::profile::ProfileSet>) -> Self {
        self.profiles = profiles;
        self
    }
}

/// A Standard Webhooks secret, `whsec_` + standard base64, as the HMAC key
/// bytes it stands for. Other material is returned as it is.
fn decode_whsec(material: Zeroizing<Vec<u8>>) -> Result<Zeroizing<Vec<u8>>> {
    let Some(rest) = material.strip_prefix(b"whsec_") else {
        return Ok(material);
    };
    let rest = rest.trim_ascii_end();
    let decoded = STANDARD
        .decode(rest)
        .map(Zeroizing::new)
        .map_err(|_| Error::invalid("a whsec_ secret must be whsec_ followed by base64"))?;
    if decoded.is_empty() {
        return Err(Error::invalid("the whsec_ secret is empty"));
    }
    Ok(decoded)
}

fn labels(m: std::collections::HashMap<String, String>) -> BTreeMap<String, String> {
    m.into_iter().collect()
}

/// A `ListKeys` page token: where the caller's own filtered view goes on.
///
/// It holds the last name that page showed the caller (a key it may read,
/// so nothing it has not seen), bound to the caller's identity so that a
/// token is no use to anyone else, and the whole is base64url so clients
/// treat it as opaque. Any replica can continue any page: nothing in it
/// depends on process state.
fn page_token(identity: &str, after: &str) -> String {
    let mut t = identity_tag(identity).to_vec();
    t.extend_from_slice(after.as_bytes());
    URL_SAFE_NO_PAD.encode(t)
}

/// The 8-byte tag that binds a page token to one identity.
fn identity_tag(identity: &str) -> [u8; 8] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(b"signet ListKeys page token v1\0");
    h.update(identity.as_bytes());
    let d = h.finalize();
    d[..8].try_into().expect("a SHA-256 digest has 32 bytes")
}

fn parse_page_token(identity: &str, t: &str) -> Result<Option<String>> {
    if t.is_empty() {
        return Ok(None);
    }
    let invalid = || {
        Error::invalid("invalid page_token: pass the next_page_token of the previous page, unchanged, as the same identity")
    };
    let raw = URL_SAFE_NO_PAD.decode(t).map_err(|_| invalid())?;
    let (tag, name) = raw.split_at_checked(8).ok_or_else(invalid)?;
    if tag != identity_tag(identity) {
        return Err(invalid());
    }
    let name = String::from_utf8(name.to_vec()).map_err(|_| invalid())?;
    validate_name("page_token", &name).map_err(|_| invalid())?;
    Ok(Some(name))
}

impl KeyAdminService {
    async fn create(&self, r: pb::CreateKeyRequest) -> Result<pb::Key> {
        validate_name("key", &r.name)?;
        let alg = convert::algorithm(r.algorithm)?;
        let policy = r
            .rotation_policy
            .as_ref()
            .map(convert::policy)
            .transpose()?;
        let v = self
            .registry
            .create_key(&r.name, alg, labels(r.labels), policy)
            .await?;
        tracing::info!(key = %r.name, algorithm = %alg, "key created");
        Ok(convert::key_pb(&v))
    }

    async fn import(&self, r: pb::ImportKeyRequest) -> Result<pb::Key> {
        validate_name("key", &r.name)?;
        let alg = convert::algorithm(r.algorithm)?;
        if r.material.len() > MAX_MATERIAL_BYTES {
            return Err(Error::invalid(format!(
                "material is larger than {MAX_MATERIAL_BYTES} bytes"
            )));
        }
        let mut material = Zeroizing::new(r.material);
        if alg.is_symmetric() && self.profiles.current().takes_whsec(&r.name) {
            material = decode_whsec(material)?;
        }
        let v = self
            .registry
            .import_key(&r.name, alg, &material, r.as_new_version, labels(r.labels))
            .await?;
        tracing::info!(key = %r.name, algorithm = %alg, new_version = r.as_new_version, "key imported");
        Ok(convert::key_pb(&v))
    }

    async fn rotate(&self, r: pb::RotateKeyRequest) -> Result<pb::RotateKeyResponse> {
        validate_name("key", &r.name)?;
        let grace = convert::grace_period(r.grace_period.as_ref())?;
        let (view, version) = self.registry.rotate(&r.name, r.promote, grace).await?;
        tracing::info!(key = %r.name, version, promote = r.promote, "key rotated");
        Ok(pb::RotateKeyResponse {
            version: convert::key_version_pb(&view, version),
            key: Some(convert::key_pb(&view)),
        })
    }
}

macro_rules! version_op {
    ($self:ident, $request:ident, $op:expr, $what:literal, |$r:ident, $name:ident, $v:ident| $call:expr) => {{
        let ctx = CallContext::of(&$request);
        let $r = $request.into_inner();
        let mut rec = ctx.record($op);
        rec.key = Some($r.name.clone());
        rec.version = ($r.version > 0).then_some($r.version);
        let key = $r.name.clone();
        run(&$self.security, &ctx, rec, $op, Some(&key), || async {
            validate_name("key", &$r.name)?;
            let $v = convert::required_version($r.version)?;
            let $name = $r.name.as_str();
            let view = $call?;
            tracing::info!(key = %$r.name, version = $v, concat!("key version ", $what));
            Ok(convert::key_pb(&view))
        })
        .await
    }};
}

macro_rules! key_op {
    ($self:ident, $request:ident, $op:expr, $method:ident) => {{
        let ctx = CallContext::of(&$request);
        let r = $request.into_inner();
        let mut rec = ctx.record($op);
        rec.key = Some(r.name.clone());
        let key = r.name.clone();
        run(&$self.security, &ctx, rec, $op, Some(&key), || {
            $self.$method(r)
        })
        .await
    }};
}

#[tonic::async_trait]
impl KeyAdmin for KeyAdminService {
    async fn create_key(
        &self,
        request: Request<pb::CreateKeyRequest>,
    ) -> Result<Response<pb::Key>, Status> {
        key_op!(self, request, Op::AdminCreate, create)
    }

    async fn import_key(
        &self,
        request: Request<pb::ImportKeyRequest>,
    ) -> Result<Response<pb::Key>, Status> {
        key_op!(self, request, Op::AdminImport, import)
    }

    async fn rotate_key(
        &self,
        request: Request<pb::RotateKeyRequest>,
    ) -> Result<Response<pb::RotateKeyResponse>, Status> {
        key_op!(self, request, Op::AdminRotate, rotate)
    }

    async fn promote_key_version(
        &self,
        request: Request<pb::PromoteKeyVersionRequest>,
    ) -> Result<Response<pb::Key>, Status> {
        version_op!(self, request, Op::AdminPromote, "promoted", |r, name, v| {
            let grace = convert::grace_period(r.grace_period.as_ref())?;
            self.registry.promote(name, v, grace).await
        })
    }

    async fn disable_key_version(
        &self,
        request: Request<pb::DisableKeyVersionRequest>,
    ) -> Result<Response<pb::Key>, Status> {
        version_op!(
            self,
            request,
            Op::AdminDisable,
            "disabled",
            |_r, name, v| self.registry.disable(name, v).await
        )
    }

    async fn enable_key_version(
        &self,
        request: Request<pb::EnableKeyVersionRequest>,
    ) -> Result<Response<pb::Key>, Status> {
        version_op!(self, request, Op::AdminEnable, "enabled", |r, name, v| {
            let grace = convert::grace_period(r.grace_period.as_ref())?;
            self.registry.enable(name, v, grace).await
        })
    }

    async fn destroy_key_version(
        &self,
        request: Request<pb::DestroyKeyVersionRequest>,
    ) -> Result<Response<pb::Key>, Status> {
        version_op!(
            self,
            request,
            Op::AdminDestroy,
            "scheduled for destruction",
            |_r, name, v| self.registry.destroy(name, v).await
        )
    }

    async fn restore_key_version(
        &self,
        request: Request<pb::RestoreKeyVersionRequest>,
    ) -> Result<Response<pb::Key>, Status> {
        version_op!(
            self,
            request,
            Op::AdminRestore,
            "restored",
            |_r, name, v| self.registry.restore(name, v).await
        )
    }

    async fn get_key(
        &self,
        request: Request<pb::GetKeyRequest>,
    ) -> Result<Response<pb::Key>, Status> {
        let ctx = CallContext::of(&request);
        let r = request.into_inner();
        let mut rec = ctx.record(Op::AdminRead);
        rec.key = Some(r.name.clone());
        let key = r.name.clone();
        run(
            &self.security,
            &ctx,
            rec,
            Op::AdminRead,
            Some(&key),
            || async {
                validate_name("key", &r.name)?;
                self.registry.get(&r.name).map(|v| convert::key_pb(&v))
            },
        )
        .await
    }

    async fn list_keys(
        &self,
        request: Request<pb::ListKeysRequest>,
    ) -> Result<Response<pb::ListKeysResponse>, Status> {
        let ctx = CallContext::of(&request);
        let r = request.into_inner();
        let rec = ctx.record(Op::AdminRead);
        run(&self.security, &ctx, rec, Op::AdminRead, None, || async {
            let size = match r.page_size {
                0 => 100,
                n @ 1..=1000 => n as usize,
                _ => return Err(Error::invalid("page_size must be at most 1000")),
            };
            let after = parse_page_token(&ctx.identity, &r.page_token)?;
            // Only the keys the caller may read, filtered before paging.
            let policy = self.security.policy();
            let (views, more) = self.registry.list(after.as_deref(), size, |name| {
                policy.allows(&ctx.identity, Op::AdminRead, name)
            });
            let next = match (more, views.last()) {
                (true, Some(last)) => page_token(&ctx.identity, &last.record.name),
                _ => String::new(),
            };
            Ok(pb::ListKeysResponse {
                keys: views.iter().map(convert::key_pb).collect(),
                next_page_token: next,
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn z(b: &[u8]) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(b.to_vec())
    }

    #[test]
    fn page_tokens_are_bound_to_the_identity_and_checked() {
        let t = page_token("alice", "payments-1");
        assert_eq!(
            parse_page_token("alice", &t).unwrap().as_deref(),
            Some("payments-1")
        );
        assert_eq!(parse_page_token("alice", "").unwrap(), None);
        for (who, token) in [
            ("bob", t.clone()),
            ("alice", URL_SAFE_NO_PAD.encode("payments-1")),
            ("alice", "%%%".into()),
            ("alice", URL_SAFE_NO_PAD.encode([1u8; 5])),
            ("alice", page_token("alice", "Bad Name")),
        ] {
            let e = parse_page_token(who, &token).unwrap_err();
            assert_eq!(
                e.kind(),
                crate::error::ErrorKind::InvalidArgument,
                "{token}"
            );
            assert!(!e.message().contains("payments"), "{}", e.message());
        }
    }

    #[test]
    fn whsec_secrets_decode_and_others_pass_through() {
        let d = decode_whsec(z(b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n")).unwrap();
        assert_eq!(
            d.as_slice(),
            STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap()
        );
        assert_eq!(
            decode_whsec(z(b"raw-secret")).unwrap().as_slice(),
            b"raw-secret"
        );
        let e = decode_whsec(z(b"whsec_not base64!")).unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::InvalidArgument);
        assert!(decode_whsec(z(b"whsec_")).is_err());
    }
}
