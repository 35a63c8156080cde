//! `signet.v1.Signer`: what payment back-ends call.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::convert;
use super::pb::{self, signer_server::Signer};
use super::run;
use crate::auth::{CallContext, Op, Security};
use crate::error::{Error, Result};
use crate::httpsig::engine;
use crate::httpsig::profile::{Profile, ProfileSet};
use crate::httpsig::replay::{MemoryReplayStore, ReplayStore};
use crate::keys::registry::{Input, Registry};
use crate::keys::validate_name;

/// Limits applied before any work is done (`[server]` and `[limits]`).
#[derive(Clone, Debug)]
pub struct SignerLimits {
    /// Largest message `Sign` and `Verify` accept, in bytes.
    pub max_message_bytes: usize,
    /// Largest HTTP body, in bytes.
    pub max_http_body_bytes: usize,
    /// Most headers a `VerifyHttpRequest` may carry.
    pub max_http_headers: usize,
    /// Longest header (name plus value), in bytes.
    pub max_http_header_bytes: usize,
    /// Longest URL, in bytes.
    pub max_url_bytes: usize,
}

impl SignerLimits {
    /// The limits a configuration sets.
    pub fn from_config(c: &crate::config::Config) -> Self {
        Self {
            max_message_bytes: c.server.max_message_bytes,
            max_http_body_bytes: c.limits.max_http_body_bytes,
            max_http_headers: c.limits.max_http_headers,
            max_http_header_bytes: c.limits.max_http_header_bytes,
            max_url_bytes: c.limits.max_url_bytes,
        }
    }
}

impl Default for SignerLimits {
    fn default() -> Self {
        Self::from_config(&crate::config::Config::default())
    }
}

/// The Signer service.
#[derive(Clone, Debug)]
pub struct SignerService {
    registry: Arc<Registry>,
    limits: SignerLimits,
    profiles: Arc<ProfileSet>,
    replay: Arc<dyn ReplayStore>,
    security: Arc<Security>,
}

impl SignerService {
    /// A service over `registry`, with no HTTP profiles.
    pub fn new(registry: Arc<Registry>, limits: SignerLimits) -> Self {
        Self {
            registry,
            limits,
            profiles: Arc::default(),
            replay: Arc::new(MemoryReplayStore::new(1)),
            security: Security::open(),
        }
    }

    /// Puts the service under `security` (authorization, audit).
    pub fn with_security(mut self, security: Arc<Security>) -> Self {
        self.security = security;
        self
    }

    /// Adds the HTTP profiles and the replay store they share.
    pub fn with_http(mut self, profiles: Arc<ProfileSet>, replay: Arc<dyn ReplayStore>) -> Self {
        self.profiles = profiles;
        self.replay = replay;
        self
    }

    fn profile(&self, name: &str) -> Result<Arc<Profile>> {
        validate_name("profile", name)?;
        let p = self
            .profiles
            .current()
            .get(name)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("profile {name} not found")))?;
        crate::telemetry::rpc::note_profile(name);
        Ok(p)
    }

    fn check_http(&self, body: &[u8], url: &str, headers: &[pb::HttpHeader]) -> Result<()> {
        let l = &self.limits;
        if body.len() > l.max_http_body_bytes {
            return Err(Error::invalid(format!(
                "body is {} bytes; the limit is {}",
                body.len(),
                l.max_http_body_bytes
            )));
        }
        if url.len() > l.max_url_bytes {
            return Err(Error::invalid(format!(
                "url is longer than {} bytes",
                l.max_url_bytes
            )));
        }
        if headers.len() > l.max_http_headers {
            return Err(Error::invalid(format!(
                "at most {} headers",
                l.max_http_headers
            )));
        }
        if headers
            .iter()
            .any(|h| h.name.len() + h.value.len() > l.max_http_header_bytes)
        {
            return Err(Error::invalid(format!(
                "a header is longer than {} bytes",
                l.max_http_header_bytes
            )));
        }
        Ok(())
    }

    async fn sign_http(
        &self,
        req: pb::SignHttpRequestRequest,
    ) -> Result<pb::SignHttpRequestResponse> {
        self.check_http(&req.body, &req.url, &[])?;
        let profile = self.profile(&req.profile)?;
        let nonce = (!req.nonce.is_empty()).then_some(req.nonce.as_str());
        let out = engine::sign(
            &profile,
            &self.registry,
            engine::Request {
                method: &req.method,
                url: &req.url,
                body: &req.body,
            },
            nonce,
            self.registry.clock().now(),
        )
        .await?;
        Ok(pb::SignHttpRequestResponse {
            headers: out
                .headers
                .into_iter()
                .map(|(name, value)| pb::HttpHeader { name, value })
                .collect(),
            timestamp: out.timestamp,
            nonce: out.nonce,
            version: out.version,
            key_version_id: out.key_version_id,
            string_to_sign: out.string_to_sign,
        })
    }

    async fn verify_http(
        &self,
        req: pb::VerifyHttpRequestRequest,
    ) -> Result<pb::VerifyHttpRequestResponse> {
        self.check_http(&req.body, &req.url, &req.headers)?;
        let profile = self.profile(&req.profile)?;
        let headers: Vec<(String, String)> =
            req.headers.into_iter().map(|h| (h.name, h.value)).collect();
        let v = engine::verify(
            &profile,
            &self.registry,
            self.replay.as_ref(),
            engine::Request {
                method: &req.method,
                url: &req.url,
                body: &req.body,
            },
            &headers,
            &req.source_ip,
            self.registry.clock().now(),
        )
        .await?;
        use engine::Reason;
        use pb::VerifyFailureReason as R;

        let reason = match v.reason {
            None => R::Unspecified,
            Some(Reason::MissingHeader) => R::MissingHeader,
            Some(Reason::MalformedHeader) => R::MalformedHeader,
            Some(Reason::MalformedBody) => R::MalformedBody,
            Some(Reason::SourceIpNotAllowed) => R::SourceIpNotAllowed,
            Some(Reason::TimestampOutOfWindow) => R::TimestampOutOfWindow,
            Some(Reason::SignatureMismatch) => R::SignatureMismatch,
            Some(Reason::Replayed) => R::Replayed,
        };
        if v.reason.is_some() {
            crate::telemetry::metrics::get()
                .http_verify_failed(&profile.name, reason.as_str_name());
        }
        Ok(pb::VerifyHttpRequestResponse {
            valid: v.reason.is_none(),
            reason: reason as i32,
            version: v.version.unwrap_or(0),
            key_version_id: v.key_version_id.unwrap_or_default(),
            timestamp: v.timestamp.unwrap_or_default(),
        })
    }

    fn check_input(&self, input: &Input) -> Result<()> {
        if let Input::Message(m) = input {
            if m.len() > self.limits.max_message_bytes {
                return Err(Error::invalid(format!(
                    "message is {} bytes; the limit is {}",
                    m.len(),
                    self.limits.max_message_bytes
                )));
            }
        }
        Ok(())
    }

    async fn sign(&self, req: pb::SignRequest) -> Result<pb::SignResponse> {
        validate_name("key", &req.key)?;
        let format = convert::signature_format(req.signature_format)?;
        let input = match req.input {
            Some(pb::sign_request::Input::Message(m)) => convert::input(Some(m), None)?,
            Some(pb::sign_request::Input::Digest(d)) => convert::input(None, Some(d))?,
            None => convert::input(None, None)?,
        };
        self.check_input(&input)?;
        let s = self
            .registry
            .sign(&req.key, convert::version(req.version), input, format)
            .await?;
        Ok(pb::SignResponse {
            signature: s.signature,
            version: s.version,
            key_version_id: s.key_version_id,
            algorithm: convert::algorithm_pb(s.algorithm) as i32,
        })
    }

    async fn verify(&self, req: pb::VerifyRequest) -> Result<pb::VerifyResponse> {
        validate_name("key", &req.key)?;
        let format = convert::signature_format(req.signature_format)?;
        let input = match req.input {
            Some(pb::verify_request::Input::Message(m)) => convert::input(Some(m), None)?,
            Some(pb::verify_request::Input::Digest(d)) => convert::input(None, Some(d))?,
            None => convert::input(None, None)?,
        };
        self.check_input(&input)?;
        let v = self
            .registry
            .verify(
                &req.key,
                convert::version(req.version),
                input,
                req.signature,
                format,
            )
            .await?;
        Ok(pb::VerifyResponse {
            valid: v.valid,
            version: v.version.unwrap_or(0),
            key_version_id: v.key_version_id.unwrap_or_default(),
        })
    }

    fn public_key(&self, req: pb::GetPublicKeyRequest) -> Result<pb::GetPublicKeyResponse> {
        validate_name("key", &req.key)?;
        let format = pb::PublicKeyFormat::try_from(req.format)
            .map_err(|_| Error::invalid(format!("unknown public key format {}", req.format)))?;
        let e = self
            .registry
            .public_key(&req.key, convert::version(req.version))?;
        let (format, bytes) = match format {
            pb::PublicKeyFormat::Unspecified | pb::PublicKeyFormat::Pem => {
                (pb::PublicKeyFormat::Pem, e.key.to_pem().into_bytes())
            }
            pb::PublicKeyFormat::PemPkcs1 => (
                pb::PublicKeyFormat::PemPkcs1,
                e.key.to_pkcs1_pem()?.into_bytes(),
            ),
            pb::PublicKeyFormat::Der => (pb::PublicKeyFormat::Der, e.key.spki_der().to_vec()),
            pb::PublicKeyFormat::Jwk => (
                pb::PublicKeyFormat::Jwk,
                e.key.to_jwk(&e.key_version_id).to_string().into_bytes(),
            ),
        };
        Ok(pb::GetPublicKeyResponse {
            public_key: bytes,
            format: format as i32,
            algorithm: convert::algorithm_pb(e.key.algorithm()) as i32,
            version: e.version,
            key_version_id: e.key_version_id,
            state: convert::state_pb(e.state) as i32,
        })
    }

    fn jwks(&self, req: pb::GetJwksRequest) -> Result<pb::GetJwksResponse> {
        validate_name("key", &req.key)?;
        Ok(pb::GetJwksResponse {
            jwks: self.registry.jwks(&req.key)?.to_string(),
        })
    }
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(data))
}

fn input_sha256(message: Option<&[u8]>) -> Option<String> {
    message.map(sha256_hex)
}

#[tonic::async_trait]
impl Signer for SignerService {
    async fn sign(
        &self,
        request: Request<pb::SignRequest>,
    ) -> Result<Response<pb::SignResponse>, Status> {
        let ctx = CallContext::of(&request);
        let req = request.into_inner();
        let mut rec = ctx.record(Op::Sign);
        rec.key = Some(req.key.clone());
        rec.version = (req.version > 0).then_some(req.version);
        rec.message_sha256 = input_sha256(match &req.input {
            Some(pb::sign_request::Input::Message(m)) => Some(m),
            Some(pb::sign_request::Input::Digest(d)) => Some(d),
            None => None,
        });
        let key = req.key.clone();
        run(&self.security, &ctx, rec, Op::Sign, Some(&key), || {
            self.sign(req)
        })
        .await
    }

    async fn verify(
        &self,
        request: Request<pb::VerifyRequest>,
    ) -> Result<Response<pb::VerifyResponse>, Status> {
        let ctx = CallContext::of(&request);
        let req = request.into_inner();
        let mut rec = ctx.record(Op::Verify);
        rec.key = Some(req.key.clone());
        rec.version = (req.version > 0).then_some(req.version);
        rec.message_sha256 = input_sha256(match &req.input {
            Some(pb::verify_request::Input::Message(m)) => Some(m),
            Some(pb::verify_request::Input::Digest(d)) => Some(d),
            None => None,
        });
        let key = req.key.clone();
        run(&self.security, &ctx, rec, Op::Verify, Some(&key), || {
            self.verify(req)
        })
        .await
    }

    async fn get_public_key(
        &self,
        request: Request<pb::GetPublicKeyRequest>,
    ) -> Result<Response<pb::GetPublicKeyResponse>, Status> {
        let ctx = CallContext::of(&request);
        let req = request.into_inner();
        let mut rec = ctx.record(Op::PublicKey);
        rec.key = Some(req.key.clone());
        let key = req.key.clone();
        run(
            &self.security,
            &ctx,
            rec,
            Op::PublicKey,
            Some(&key),
            || async { self.public_key(req) },
        )
        .await
    }

    async fn get_jwks(
        &self,
        request: Request<pb::GetJwksRequest>,
    ) -> Result<Response<pb::GetJwksResponse>, Status> {
        let ctx = CallContext::of(&request);
        let req = request.into_inner();
        let mut rec = ctx.record(Op::PublicKey);
        rec.key = Some(req.key.clone());
        let key = req.key.clone();
        run(
            &self.security,
            &ctx,
            rec,
            Op::PublicKey,
            Some(&key),
            || async { self.jwks(req) },
        )
        .await
    }

    async fn sign_http_request(
        &self,
        request: Request<pb::SignHttpRequestRequest>,
    ) -> Result<Response<pb::SignHttpRequestResponse>, Status> {
        let ctx = CallContext::of(&request);
        let req = request.into_inner();
        let mut rec = ctx.record(Op::HttpSign);
        rec.profile = Some(req.profile.clone());
        rec.key = self
            .profiles
            .current()
            .get(&req.profile)
            .and_then(|p| p.key.clone());
        rec.message_sha256 = Some(sha256_hex(&req.body));
        let profile = req.profile.clone();
        run(
            &self.security,
            &ctx,
            rec,
            Op::HttpSign,
            Some(&profile),
            || self.sign_http(req),
        )
        .await
    }

    async fn list_http_profiles(
        &self,
        request: Request<pb::ListHttpProfilesRequest>,
    ) -> Result<Response<pb::ListHttpProfilesResponse>, Status> {
        let ctx = CallContext::of(&request);
        let rec = ctx.record(Op::HttpProfiles);
        run(
            &self.security,
            &ctx,
            rec,
            Op::HttpProfiles,
            None,
            || async {
                // Only the profiles the caller holds `http_profiles` on.
                let mut profiles: Vec<pb::HttpProfile> = self
                    .profiles
                    .current()
                    .iter()
                    .filter(|p| self.security.may(&ctx, Op::HttpProfiles, &p.name))
                    .map(|p| pb::HttpProfile {
                        name: p.name.clone(),
                        settings: p.settings().into_iter().collect(),
                    })
                    .collect();
                profiles.sort_by(|a, b| a.name.cmp(&b.name));
                Ok(pb::ListHttpProfilesResponse { profiles })
            },
        )
        .await
    }

    async fn verify_http_request(
        &self,
        request: Request<pb::VerifyHttpRequestRequest>,
    ) -> Result<Response<pb::VerifyHttpRequestResponse>, Status> {
        let ctx = CallContext::of(&request);
        let req = request.into_inner();
        let mut rec = ctx.record(Op::HttpVerify);
        rec.profile = Some(req.profile.clone());
        rec.key = self
            .profiles
            .current()
            .get(&req.profile)
            .and_then(|p| p.verify_key.clone());
        rec.message_sha256 = Some(sha256_hex(&req.body));
        let profile = req.profile.clone();
        run(
            &self.security,
            &ctx,
            rec,
            Op::HttpVerify,
            Some(&profile),
            || self.verify_http(req),
        )
        .await
    }
}
