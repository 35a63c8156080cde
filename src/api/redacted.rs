//! `Debug` for the generated messages that carry a secret, a plaintext or
//! a caller's payload (build.rs skips their derived one): names, versions
//! and lengths only, so no log line, trace or panic message can show what
//! they hold. A payload to sign or verify is the caller's data (a payment,
//! a webhook body with personal data), and an HTTP request's headers and
//! URL may carry credentials, so they print as lengths too.

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
            .field("public_key", &Len(self.public_key.len()))
            .finish()
    }
}

/// The length of a sign or verify request's input, whichever it is.
fn input_len<T>(input: &Option<T>, len: impl Fn(&T) -> usize) -> Len {
    Len(input.as_ref().map_or(0, len))
}

impl fmt::Debug for pb::SignRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use pb::sign_request::Input;
        let digest = matches!(self.input, Some(Input::Digest(_)));
        f.debug_struct("SignRequest")
            .field("key", &self.key)
            .field("version", &self.version)
            .field("digest", &digest)
            .field(
                "input",
                &input_len(&self.input, |i| match i {
                    Input::Message(b) | Input::Digest(b) => b.len(),
                }),
            )
            .field("signature_format", &self.signature_format)
            .finish()
    }
}

impl fmt::Debug for pb::VerifyRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use pb::verify_request::Input;
        let digest = matches!(self.input, Some(Input::Digest(_)));
        f.debug_struct("VerifyRequest")
            .field("key", &self.key)
            .field("version", &self.version)
            .field("digest", &digest)
            .field(
                "input",
                &input_len(&self.input, |i| match i {
                    Input::Message(b) | Input::Digest(b) => b.len(),
                }),
            )
            .field("signature", &Len(self.signature.len()))
            .field("signature_format", &self.signature_format)
            .finish()
    }
}

impl fmt::Debug for pb::SignHttpRequestRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignHttpRequestRequest")
            .field("profile", &self.profile)
            .field("method", &self.method)
            .field("url", &Len(self.url.len()))
            .field("body", &Len(self.body.len()))
            .field("nonce", &Len(self.nonce.len()))
            .finish()
    }
}

impl fmt::Debug for pb::VerifyHttpRequestRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|h| h.name.as_str()).collect();
        f.debug_struct("VerifyHttpRequestRequest")
            .field("profile", &self.profile)
            .field("method", &self.method)
            .field("url", &Len(self.url.len()))
            .field("body", &Len(self.body.len()))
            .field("header_names", &names)
            .field("source_ip", &self.source_ip)
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
            format!(
                "{:?}",
                pb::SignBatchRequest {
                    items: vec![pb::SignRequest {
                        key: "k".into(),
                        input: Some(pb::sign_request::Input::Message(secret.clone())),
                        ..Default::default()
                    }],
                }
            ),
            format!(
                "{:?}",
                pb::VerifyRequest {
                    key: "k".into(),
                    input: Some(pb::verify_request::Input::Digest(secret.clone())),
                    signature: secret.clone(),
                    ..Default::default()
                }
            ),
            format!(
                "{:?}",
                pb::SignHttpRequestRequest {
                    profile: "p".into(),
                    url: String::from_utf8(secret.clone()).unwrap(),
                    body: secret.clone(),
                    ..Default::default()
                }
            ),
            format!(
                "{:?}",
                pb::VerifyHttpRequestRequest {
                    profile: "p".into(),
                    body: secret.clone(),
                    headers: vec![pb::HttpHeader {
                        name: "authorization".into(),
                        value: String::from_utf8(secret.clone()).unwrap(),
                    }],
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
