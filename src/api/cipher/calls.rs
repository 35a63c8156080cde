//! What each CipherService RPC does.
//!
//! Audit records carry the SHA-256 of a ciphertext the caller sends
//! (Decrypt, ReEncrypt), never of a plaintext: a digest of a card number
//! or a name would let anyone who reads the trail test guesses.

use zeroize::Zeroizing;

use super::CipherService;
use crate::api::pb;
use crate::api::{sha256, Call};
use crate::audit::Record;
use crate::auth::CallContext;
use crate::error::{Error, Result};
use crate::keys::registry::CipherFormat;
use crate::rpcs::{self, Rpc};

impl CipherService {
    /// Refuses a plaintext or associated data over the limit, and a
    /// ciphertext longer than the largest plaintext's (in base64, as a
    /// JWE, with room for its header).
    fn within(&self, what: &str, len: usize) -> Result<()> {
        let limit = match what {
            "ciphertext" => self.max_message_bytes / 3 * 4 + 1024,
            _ => self.max_message_bytes,
        };
        if len > limit {
            return Err(Error::invalid(format!(
                "{what} is {len} bytes; the limit is {limit}"
            )));
        }
        Ok(())
    }

    /// The checks of a call that sends a ciphertext (Decrypt, ReEncrypt).
    fn within_sealed(&self, ciphertext: &[u8], associated_data: &[u8]) -> Result<()> {
        self.within("ciphertext", ciphertext.len())?;
        self.within("associated_data", associated_data.len())
    }
}

fn format(v: i32) -> Result<CipherFormat> {
    match pb::CiphertextFormat::try_from(v) {
        Ok(pb::CiphertextFormat::Unspecified | pb::CiphertextFormat::Signet) => {
            Ok(CipherFormat::Signet)
        }
        Ok(pb::CiphertextFormat::JweCompact) => Ok(CipherFormat::JweCompact),
        Err(_) => Err(Error::invalid(format!("unknown ciphertext format {v}"))),
    }
}

impl Call for pb::EncryptRequest {
    type Service = CipherService;
    type Reply = pb::EncryptResponse;
    const RPC: &'static Rpc = &rpcs::ENCRYPT;

    fn subject(&self) -> &str {
        &self.key
    }

    fn check(&self, s: &CipherService) -> Result<()> {
        s.within("plaintext", self.plaintext.len())?;
        s.within("associated_data", self.associated_data.len())
    }

    async fn call(self, s: &CipherService, _: &CallContext) -> Result<pb::EncryptResponse> {
        let format = format(self.format)?;
        let e = s
            .registry
            .encrypt(
                &self.key,
                Zeroizing::new(self.plaintext),
                &self.associated_data,
                format,
            )
            .await?;
        Ok(pb::EncryptResponse {
            ciphertext: e.ciphertext,
            version: e.version,
            key_version_id: e.key_version_id,
        })
    }
}

impl Call for pb::DecryptRequest {
    type Service = CipherService;
    type Reply = pb::DecryptResponse;
    const RPC: &'static Rpc = &rpcs::DECRYPT;

    fn subject(&self) -> &str {
        &self.key
    }

    fn audit(&self, _: &CipherService, record: &mut Record) {
        record.message_sha256 = Some(sha256(&self.ciphertext));
    }

    fn check(&self, s: &CipherService) -> Result<()> {
        s.within_sealed(&self.ciphertext, &self.associated_data)
    }

    async fn call(self, s: &CipherService, _: &CallContext) -> Result<pb::DecryptResponse> {
        let d = s
            .registry
            .decrypt(&self.key, &self.ciphertext, &self.associated_data)
            .await?;
        Ok(pb::DecryptResponse {
            plaintext: d.plaintext.to_vec(),
            version: d.version,
            key_version_id: d.key_version_id,
        })
    }
}

impl Call for pb::ReEncryptRequest {
    type Service = CipherService;
    type Reply = pb::ReEncryptResponse;
    const RPC: &'static Rpc = &rpcs::RE_ENCRYPT;

    fn subject(&self) -> &str {
        &self.key
    }

    fn audit(&self, _: &CipherService, record: &mut Record) {
        record.message_sha256 = Some(sha256(&self.ciphertext));
    }

    fn check(&self, s: &CipherService) -> Result<()> {
        s.within_sealed(&self.ciphertext, &self.associated_data)
    }

    async fn call(self, s: &CipherService, _: &CallContext) -> Result<pb::ReEncryptResponse> {
        let (e, source) = s
            .registry
            .re_encrypt(&self.key, &self.ciphertext, &self.associated_data)
            .await?;
        Ok(pb::ReEncryptResponse {
            ciphertext: e.ciphertext,
            version: e.version,
            key_version_id: e.key_version_id,
            source_version: source,
        })
    }
}

impl Call for pb::GenerateDataKeyRequest {
    type Service = CipherService;
    type Reply = pb::GenerateDataKeyResponse;
    const RPC: &'static Rpc = &rpcs::GENERATE_DATA_KEY;

    fn subject(&self) -> &str {
        &self.key
    }

    fn check(&self, s: &CipherService) -> Result<()> {
        s.within("associated_data", self.associated_data.len())
    }

    async fn call(self, s: &CipherService, _: &CallContext) -> Result<pb::GenerateDataKeyResponse> {
        let (key, e) = s
            .registry
            .generate_data_key(&self.key, &self.associated_data)
            .await?;
        Ok(pb::GenerateDataKeyResponse {
            plaintext: key.to_vec(),
            ciphertext: e.ciphertext,
            version: e.version,
            key_version_id: e.key_version_id,
        })
    }
}

impl Call for pb::GenerateDataKeyWithoutPlaintextRequest {
    type Service = CipherService;
    type Reply = pb::GenerateDataKeyWithoutPlaintextResponse;
    const RPC: &'static Rpc = &rpcs::GENERATE_DATA_KEY_WITHOUT_PLAINTEXT;

    fn subject(&self) -> &str {
        &self.key
    }

    fn check(&self, s: &CipherService) -> Result<()> {
        s.within("associated_data", self.associated_data.len())
    }

    async fn call(
        self,
        s: &CipherService,
        _: &CallContext,
    ) -> Result<pb::GenerateDataKeyWithoutPlaintextResponse> {
        let (_, e) = s
            .registry
            .generate_data_key(&self.key, &self.associated_data)
            .await?;
        Ok(pb::GenerateDataKeyWithoutPlaintextResponse {
            ciphertext: e.ciphertext,
            version: e.version,
            key_version_id: e.key_version_id,
        })
    }
}
