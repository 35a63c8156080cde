//! `signet.v1.Signer`: what payment back-ends call.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::convert;
use super::pb::{self, signer_server::Signer};
use super::{new_request_id, respond};
use crate::error::{Error, Result};
use crate::keys::registry::{Input, Registry};
use crate::keys::validate_name;

/// Limits applied before any work is done.
#[derive(Clone, Debug)]
pub struct SignerLimits {
    /// Largest message `Sign` and `Verify` accept, in bytes.
    pub max_message_bytes: usize,
}

/// The Signer service.
#[derive(Clone, Debug)]
pub struct SignerService {
    registry: Arc<Registry>,
    limits: SignerLimits,
}

impl SignerService {
    /// A service over `registry`.
    pub fn new(registry: Arc<Registry>, limits: SignerLimits) -> Self {
        Self { registry, limits }
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
        _request: Request<pb::SignHttpRequestRequest>,
    ) -> Result<Response<pb::SignHttpRequestResponse>, Status> {
        Err(Status::unimplemented(
            "HTTP signing profiles are not implemented yet",
        ))
    }

    async fn verify_http_request(
        &self,
        _request: Request<pb::VerifyHttpRequestRequest>,
    ) -> Result<Response<pb::VerifyHttpRequestResponse>, Status> {
        Err(Status::unimplemented(
            "HTTP signing profiles are not implemented yet",
        ))
    }
}
