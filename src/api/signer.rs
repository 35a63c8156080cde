//! `signet.v1.Signer`: what payment back-ends call.

use std::collections::HashMap;
use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::convert;
use super::pb::{self, signer_server::Signer};
use super::{new_request_id, respond};
use crate::error::{Error, Result};
use crate::http::engine;
use crate::http::profile::Profile;
use crate::http::replay::{MemoryReplayStore, ReplayStore};
use crate::keys::registry::{Input, Registry};
use crate::keys::validate_name;

/// Limits applied before any work is done.
#[derive(Clone, Debug)]
pub struct SignerLimits {
    /// Largest message `Sign` and `Verify` accept, in bytes.
    pub max_message_bytes: usize,
}

/// Most headers a `VerifyHttpRequest` may carry.
pub const MAX_HEADERS: usize = 100;
/// Longest header (name plus value) accepted, in bytes.
pub const MAX_HEADER_BYTES: usize = 8 * 1024;
/// Longest URL accepted, in bytes.
pub const MAX_URL_BYTES: usize = 8 * 1024;

/// The Signer service.
#[derive(Clone, Debug)]
pub struct SignerService {
    registry: Arc<Registry>,
    limits: SignerLimits,
    profiles: Arc<HashMap<String, Profile>>,
    replay: Arc<dyn ReplayStore>,
}

impl SignerService {
    /// A service over `registry`, with no HTTP profiles.
    pub fn new(registry: Arc<Registry>, limits: SignerLimits) -> Self {
        Self {
            registry,
            limits,
            profiles: Arc::default(),
            replay: Arc::new(MemoryReplayStore::new(1)),
        }
    }

    /// Adds the HTTP profiles and the replay store they share.
    pub fn with_http(mut self, profiles: Vec<Profile>, replay: Arc<dyn ReplayStore>) -> Self {
        self.profiles = Arc::new(profiles.into_iter().map(|p| (p.name.clone(), p)).collect());
        self.replay = replay;
        self
    }

    fn profile(&self, name: &str) -> Result<&Profile> {
        validate_name("profile", name)?;
        self.profiles
            .get(name)
            .ok_or_else(|| Error::not_found(format!("profile {name} not found")))
    }

    fn check_body(&self, body: &[u8], headers: usize) -> Result<()> {
        if body.len() > self.limits.max_message_bytes {
            return Err(Error::invalid(format!(
                "body is {} bytes; the limit is {}",
                body.len(),
                self.limits.max_message_bytes
            )));
        }
        if headers > MAX_HEADERS {
            return Err(Error::invalid(format!("at most {MAX_HEADERS} headers")));
        }
        Ok(())
    }

    async fn sign_http(
        &self,
        req: pb::SignHttpRequestRequest,
    ) -> Result<pb::SignHttpRequestResponse> {
        let profile = self.profile(&req.profile)?;
        self.check_body(&req.body, 0)?;
        if req.url.len() > MAX_URL_BYTES {
            return Err(Error::invalid(format!(
                "url is longer than {MAX_URL_BYTES} bytes"
            )));
        }
        let nonce = (!req.nonce.is_empty()).then_some(req.nonce.as_str());
        let out = engine::sign(
            profile,
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
        let profile = self.profile(&req.profile)?;
        self.check_body(&req.body, req.headers.len())?;
        if req.url.len() > MAX_URL_BYTES {
            return Err(Error::invalid(format!(
                "url is longer than {MAX_URL_BYTES} bytes"
            )));
        }
        if req
            .headers
            .iter()
            .any(|h| h.name.len() + h.value.len() > MAX_HEADER_BYTES)
        {
            return Err(Error::invalid(format!(
                "a header is longer than {MAX_HEADER_BYTES} bytes"
            )));
        }
        let headers: Vec<(String, String)> =
            req.headers.into_iter().map(|h| (h.name, h.value)).collect();
        let v = engine::verify(
            profile,
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

#[tonic::async_trait]
impl Signer for SignerService {
    async fn sign(
        &self,
        request: Request<pb::SignRequest>,
    ) -> Result<Response<pb::SignResponse>, Status> {
        let rid = new_request_id();
        respond(&rid, self.sign(request.into_inner()).await)
    }

    async fn verify(
        &self,
        request: Request<pb::VerifyRequest>,
    ) -> Result<Response<pb::VerifyResponse>, Status> {
        let rid = new_request_id();
        respond(&rid, self.verify(request.into_inner()).await)
    }

    async fn get_public_key(
        &self,
        request: Request<pb::GetPublicKeyRequest>,
    ) -> Result<Response<pb::GetPublicKeyResponse>, Status> {
        let rid = new_request_id();
        respond(&rid, self.public_key(request.into_inner()))
    }

    async fn get_jwks(
        &self,
        request: Request<pb::GetJwksRequest>,
    ) -> Result<Response<pb::GetJwksResponse>, Status> {
        let rid = new_request_id();
        respond(&rid, self.jwks(request.into_inner()))
    }

    async fn sign_http_request(
        &self,
        request: Request<pb::SignHttpRequestRequest>,
    ) -> Result<Response<pb::SignHttpRequestResponse>, Status> {
        let rid = new_request_id();
        respond(&rid, self.sign_http(request.into_inner()).await)
    }

    async fn list_http_profiles(
        &self,
        _request: Request<pb::ListHttpProfilesRequest>,
    ) -> Result<Response<pb::ListHttpProfilesResponse>, Status> {
        let mut profiles: Vec<pb::HttpProfile> = self
            .profiles
            .values()
            .map(|p| pb::HttpProfile {
                name: p.name.clone(),
                settings: p.settings().into_iter().collect(),
            })
            .collect();
        profiles.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Response::new(pb::ListHttpProfilesResponse { profiles }))
    }

    async fn verify_http_request(
        &self,
        request: Request<pb::VerifyHttpRequestRequest>,
    ) -> Result<Response<pb::VerifyHttpRequestResponse>, Status> {
        let rid = new_request_id();
        respond(&rid, self.verify_http(request.into_inner()).await)
    }
}
