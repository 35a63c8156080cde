//! The gRPC services: every call goes through [`serve`] (authorize,
//! validate, call, audit, respond); each request message says, once, what
//! it acts on and what its audit record shows ([`Call`]).

pub(crate) mod admin;
pub(crate) mod call;
pub(crate) mod cipher;
pub(crate) mod convert;
pub(crate) mod names;
mod redacted;
pub(crate) mod signer;

use tonic::{Response, Status};

use crate::error::Result;
pub(crate) use call::{serve, Call, Served};
use names::ShortName;

/// Generated protobuf and gRPC code for `signet.v1`.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    tonic::include_proto!("signet.v1");

    /// The encoded descriptor set of `proto/`, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/signet_descriptor.bin"));
}

/// SHA-256 of what a call signs, verifies or decrypts, for the audit
/// record (never the data itself); the writer thread hex-encodes it.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(data).into()
}

/// Turns a handler's result into a gRPC response carrying the request id.
pub(crate) fn respond<T>(request_id: &str, result: Result<T>) -> Result<Response<T>, Status> {
    match result {
        Ok(v) => {
            let mut r = Response::new(v);
            if let Some(val) = crate::error::request_id_metadata(request_id) {
                r.metadata_mut().insert(crate::error::request_id_key(), val);
            }
            Ok(r)
        }
        Err(e) => Err(e.into_status(request_id)),
    }
}

/// What an audit record takes from a response.
pub(crate) trait Audited {
    /// The key version used.
    fn version(&self) -> Option<u32> {
        None
    }
    /// A verdict, for verification.
    fn verdict(&self) -> Option<String> {
        None
    }
    /// For batches: each item's outcome, into the entries the request's
    /// [`Call::audit`] listed (in the same order).
    fn complete_items(&self, _items: &mut [crate::audit::ItemRecord]) {}
}

impl Audited for pb::SignResponse {
    fn version(&self) -> Option<u32> {
        Some(self.version)
    }
}
impl Audited for pb::VerifyResponse {
    fn version(&self) -> Option<u32> {
        (self.version > 0).then_some(self.version)
    }
    fn verdict(&self) -> Option<String> {
        Some(if self.valid { "valid" } else { "invalid" }.into())
    }
}
impl Audited for pb::SignHttpRequestResponse {
    fn version(&self) -> Option<u32> {
        Some(self.version)
    }
}
impl Audited for pb::VerifyHttpRequestResponse {
    fn version(&self) -> Option<u32> {
        (self.version > 0).then_some(self.version)
    }
    fn verdict(&self) -> Option<String> {
        Some(if self.valid {
            "valid".to_string()
        } else {
            pb::VerifyFailureReason::try_from(self.reason)
                .map(|r| r.short_name().to_string())
                .unwrap_or_default()
        })
    }
}
impl Audited for pb::GetPublicKeyResponse {
    fn version(&self) -> Option<u32> {
        Some(self.version)
    }
}
impl Audited for pb::GetJwksResponse {}
impl Audited for pb::GetCertificateChainResponse {
    fn version(&self) -> Option<u32> {
        Some(self.version)
    }
}
impl Audited for pb::CreateCertificateRequestResponse {
    fn version(&self) -> Option<u32> {
        Some(self.version)
    }
}
impl Audited for pb::ImportCertificateChainResponse {
    fn version(&self) -> Option<u32> {
        Some(self.version)
    }
}
impl Audited for pb::ListHttpProfilesResponse {}
impl Audited for pb::CreateKeyResponse {}
impl Audited for pb::ImportKeyResponse {}
impl Audited for pb::PromoteKeyVersionResponse {}
impl Audited for pb::DisableKeyVersionResponse {}
impl Audited for pb::EnableKeyVersionResponse {}
impl Audited for pb::DestroyKeyVersionResponse {}
impl Audited for pb::RestoreKeyVersionResponse {}
impl Audited for pb::GetKeyResponse {}
impl Audited for pb::ListKeysResponse {}
impl Audited for pb::GetImportWrappingKeyResponse {}
impl Audited for pb::ExportKeyResponse {
    fn version(&self) -> Option<u32> {
        Some(self.version)
    }
}
impl Audited for pb::EncryptResponse {
    fn version(&self) -> Option<u32> {
        Some(self.version)
    }
}
impl Audited for pb::DecryptResponse {
    fn version(&self) -> Option<u32> {
        Some(self.version)
    }
}
impl Audited for pb::ReEncryptResponse {
    fn version(&self) -> Option<u32> {
        Some(self.version)
    }
}
impl Audited for pb::GenerateDataKeyResponse {
    fn version(&self) -> Option<u32> {
        Some(self.version)
    }
}
impl Audited for pb::GenerateDataKeyWithoutPlaintextResponse {
    fn version(&self) -> Option<u32> {
        Some(self.version)
    }
}
impl Audited for pb::RotateKeyResponse {
    fn version(&self) -> Option<u32> {
        self.version.as_ref().map(|v| v.version)
    }
}

#[cfg(test)]
#[path = "rpcs_tests.rs"]
mod rpcs_tests;

#[cfg(test)]
#[path = "serve_tests.rs"]
mod serve_tests;
