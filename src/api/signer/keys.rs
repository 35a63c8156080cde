//! The key operations of `signet.v1.Signer`: sign, verify, public keys.

use super::SignerService;
use crate::api::convert;
use crate::api::pb;
use crate::api::Call;
use crate::audit::Record;
use crate::auth::CallContext;
use crate::error::{Error, Result};
use crate::keys::registry::Input;
use crate::rpcs::{self, Rpc};

pub(super) use crate::api::sha256;

/// A requested version: 0 means "the default", which the record leaves out.
fn requested(version: u32) -> Option<u32> {
    (version > 0).then_some(version)
}

/// The audit digest of a Sign or Verify input (message or digest).
fn input_sha256(bytes: Option<&Vec<u8>>) -> Option<[u8; 32]> {
    bytes.map(|b| sha256(b))
}

impl SignerService {
    /// A Sign or Verify input, as the registry takes it: one of message
    /// and digest is required, and a message is within the size limit.
    fn checked_input(&self, message: Option<Vec<u8>>, digest: Option<Vec<u8>>) -> Result<Input> {
        let input = convert::input(message, digest)?;
        if let Input::Message(m) = &input {
            if m.len() > self.limits.max_message_bytes {
                return Err(Error::invalid(format!(
                    "message is {} bytes; the limit is {}",
                    m.len(),
                    self.limits.max_message_bytes
                )));
            }
        }
        Ok(input)
    }

    /// What `Sign` does once the caller is authorized and the key's name
    /// is valid; also each item of `SignBatch`.
    pub(super) async fn sign_one(&self, req: pb::SignRequest) -> Result<pb::SignResponse> {
        let format = convert::signature_format(req.signature_format)?;
        let input = match req.input {
            Some(pb::sign_request::Input::Message(m)) => self.checked_input(Some(m), None)?,
            Some(pb::sign_request::Input::Digest(d)) => self.checked_input(None, Some(d))?,
            None => self.checked_input(None, None)?,
        };
        let signature = self
            .registry
            .sign(&req.key, convert::version(req.version), input, format)
            .await?;
        Ok(pb::SignResponse {
            signature: signature.signature,
            version: signature.version,
            key_version_id: signature.key_version_id,
            algorithm: convert::algorithm_pb(signature.algorithm) as i32,
        })
    }

    /// What `Verify` does once the caller is authorized and the key's name
    /// is valid; also each item of `VerifyBatch`.
    pub(super) async fn verify_one(&self, req: pb::VerifyRequest) -> Result<pb::VerifyResponse> {
        let format = convert::signature_format(req.signature_format)?;
        let input = match req.input {
            Some(pb::verify_request::Input::Message(m)) => self.checked_input(Some(m), None)?,
            Some(pb::verify_request::Input::Digest(d)) => self.checked_input(None, Some(d))?,
            None => self.checked_input(None, None)?,
        };
        let v = self
            .registry
            .verify(
                &req.key,
                convert::version(req.version),
                input,
                vec![req.signature],
                format,
            )
            .await?;
        Ok(pb::VerifyResponse {
            valid: v.valid,
            version: v.version.unwrap_or(0),
            key_version_id: v.key_version_id.unwrap_or_default(),
        })
    }
}

impl Call for pb::SignRequest {
    type Service = SignerService;
    type Reply = pb::SignResponse;
    const RPC: &'static Rpc = &rpcs::SIGN;

    fn subject(&self) -> &str {
        &self.key
    }

    fn audit(&self, _: &SignerService, record: &mut Record) {
        use pb::sign_request::Input as I;
        record.version = requested(self.version);
        record.message_sha256 = input_sha256(match &self.input {
            Some(I::Message(m) | I::Digest(m)) => Some(m),
            None => None,
        });
    }

    async fn call(self, s: &SignerService, _: &CallContext) -> Result<pb::SignResponse> {
        s.sign_one(self).await
    }
}

impl Call for pb::VerifyRequest {
    type Service = SignerService;
    type Reply = pb::VerifyResponse;
    const RPC: &'static Rpc = &rpcs::VERIFY;

    fn subject(&self) -> &str {
        &self.key
    }

    fn audit(&self, _: &SignerService, record: &mut Record) {
        use pb::verify_request::Input as I;
        record.version = requested(self.version);
        record.message_sha256 = input_sha256(match &self.input {
            Some(I::Message(m) | I::Digest(m)) => Some(m),
            None => None,
        });
    }

    async fn call(self, s: &SignerService, _: &CallContext) -> Result<pb::VerifyResponse> {
        s.verify_one(self).await
    }
}

impl Call for pb::GetPublicKeyRequest {
    type Service = SignerService;
    type Reply = pb::GetPublicKeyResponse;
    const RPC: &'static Rpc = &rpcs::GET_PUBLIC_KEY;

    fn subject(&self) -> &str {
        &self.key
    }

    async fn call(self, s: &SignerService, _: &CallContext) -> Result<pb::GetPublicKeyResponse> {
        let format = pb::PublicKeyFormat::try_from(self.format)
            .map_err(|_| Error::invalid(format!("unknown public key format {}", self.format)))?;
        let e = s
            .registry
            .public_key(&self.key, convert::version(self.version))?;
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
}

impl Call for pb::GetJwksRequest {
    type Service = SignerService;
    type Reply = pb::GetJwksResponse;
    const RPC: &'static Rpc = &rpcs::GET_JWKS;

    fn subject(&self) -> &str {
        &self.key
    }

    async fn call(self, s: &SignerService, _: &CallContext) -> Result<pb::GetJwksResponse> {
        Ok(pb::GetJwksResponse {
            jwks: s.registry.jwks(&self.key)?.to_string(),
        })
    }
}

impl Call for pb::GetCertificateChainRequest {
    type Service = SignerService;
    type Reply = pb::GetCertificateChainResponse;
    const RPC: &'static Rpc = &rpcs::GET_CERTIFICATE_CHAIN;

    fn subject(&self) -> &str {
        &self.key
    }

    async fn call(
        self,
        s: &SignerService,
        _: &CallContext,
    ) -> Result<pb::GetCertificateChainResponse> {
        let c = s
            .registry
            .certificate_chain(&self.key, convert::version(self.version))?;
        Ok(pb::GetCertificateChainResponse {
            key_version_id: c.key_version_id,
            version: c.version,
            chain_pem: crate::keys::cert::chain::chain_pem(&c.certificates),
            certificates: c.certificates,
            not_after: Some(convert::timestamp(c.leaf.not_after)),
            serial: c.leaf.serial_hex,
            issuer: c.leaf.issuer,
        })
    }
}
