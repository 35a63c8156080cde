//! `Debug` for the generated messages that carry a secret or a plaintext
//! (build.rs skips their derived one): names, versions and lengths only,
//! so no log line, trace or panic message can show what they hold.

use std::fmt;

use super::pb;

/// A byte field as its length.
struct Len(usize);

impl fmt::Debug for Len {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes redacted>", self.0)
    }
}

impl fmt::Debug for pb::ImportKeyRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImportKeyRequest")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .field("material", &Len(self.material.len()))
            .field("as_new_version", &self.as_new_version)
            .field("labels", &self.labels)
            .field("wrapped_material", &Len(self.wrapped_material.len()))
            .finish()
    }
}

impl fmt::Debug for pb::EncryptRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptRequest")
            .field("key", &self.key)
            .field("plaintext", &Len(self.plaintext.len()))
            .field("associated_data", &Len(self.associated_data.len()))
            .field("format", &self.format)
            .finish()
    }
}

impl fmt::Debug for pb::DecryptResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecryptResponse")
            .field("plaintext", &Len(self.plaintext.len()))
            .field("version", &self.version)
            .field("key_version_id", &self.key_version_id)
            .finish()
    }
}

impl fmt::Debug for pb::GenerateDataKeyResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GenerateDataKeyResponse")
            .field("plaintext", &Len(self.plaintext.len()))
            .field("ciphertext", &Len(self.ciphertext.len()))
            .field("version", &self.version)
            .field("key_version_id", &self.key_version_id)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_plaintexts_print_as_lengths() {
        let secret = b"do-not-print-me-0123456789".to_vec();
        let shown = [
            format!(
                "{:?}",
                pb::ImportKeyRequest {
                    name: "k".into(),
                    material: secret.clone(),
                    ..Default::default()
                }
            ),
            format!(
                "{:?}",
                pb::EncryptRequest {
                    key: "k".into(),
                    plaintext: secret.clone(),
                    associated_data: secret.clone(),
                    format: 0,
                }
            ),
            format!(
                "{:?}",
                pb::DecryptResponse {
                    plaintext: secret.clone(),
                    ..Default::default()
                }
            ),
            format!(
                "{:?}",
                pb::GenerateDataKeyResponse {
                    plaintext: secret.clone(),
                    ..Default::default()
                }
            ),
        ];
        for s in shown {
            assert!(!s.contains("do-not-print"), "{s}");
            assert!(!s.contains("100, 111"), "bytes as numbers: {s}");
            assert!(s.contains("<26 bytes redacted>"), "{s}");
        }
    }
}
