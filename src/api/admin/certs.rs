//! The certificate RPCs of KeyAdmin: a CSR signed by a version's key, and
//! the chain a CA returns attached to the version (`keys/registry/certs.rs`
//! does the work).

use super::KeyAdminService;
use crate::api::{pb, Call};
use crate::audit::Record;
use crate::auth::CallContext;
use crate::error::Result;
use crate::keys::cert::CsrSubject;
use crate::rpcs::{self, Rpc};

impl Call for pb::CreateCertificateRequestRequest {
    type Service = KeyAdminService;
    type Reply = pb::CreateCertificateRequestResponse;
    const RPC: &'static Rpc = &rpcs::CREATE_CERTIFICATE_REQUEST;

    fn subject(&self) -> &str {
        &self.name
    }

    fn audit(&self, _: &KeyAdminService, record: &mut Record) {
        record.version = (self.version > 0).then_some(self.version);
    }

    async fn call(
        self,
        s: &KeyAdminService,
        _: &CallContext,
    ) -> Result<pb::CreateCertificateRequestResponse> {
        let subject = CsrSubject {
            attributes: self
                .subject
                .into_iter()
                .map(|a| (a.r#type, a.value))
                .collect(),
            dns_names: self.dns_names,
            uris: self.uris,
            emails: self.emails,
        };
        let version = (self.version > 0).then_some(self.version);
        let r = s
            .registry
            .certificate_request(&self.name, version, &subject)
            .await?;
        Ok(pb::CreateCertificateRequestResponse {
            key_version_id: r.key_version_id,
            version: r.version,
            csr_pem: crate::keys::public::pem_encode("CERTIFICATE REQUEST", &r.der),
            csr_der: r.der,
        })
    }
}

impl Call for pb::ImportCertificateChainRequest {
    type Service = KeyAdminService;
    type Reply = pb::ImportCertificateChainResponse;
    const RPC: &'static Rpc = &rpcs::IMPORT_CERTIFICATE_CHAIN;

    fn subject(&self) -> &str {
        &self.name
    }

    /// The version, and the SHA-256 of the chain as sent.
    fn audit(&self, _: &KeyAdminService, record: &mut Record) {
        record.version = (self.version > 0).then_some(self.version);
        record.message_sha256 = Some(crate::api::sha256(&self.chain));
    }

    async fn call(
        self,
        s: &KeyAdminService,
        _: &CallContext,
    ) -> Result<pb::ImportCertificateChainResponse> {
        let version = (self.version > 0).then_some(self.version);
        let c = s
            .registry
            .import_certificate_chain(&self.name, version, &self.chain)
            .await?;
        Ok(pb::ImportCertificateChainResponse {
            key_version_id: c.key_version_id,
            version: c.version,
            certificates: c.certificates.len() as u32,
            not_after: Some(crate::api::convert::timestamp(c.leaf.not_after)),
        })
    }
}
