//! `signet.v1.KeyAdmin`: what key custodians call.
//!
//! The service's state and the gRPC trait, whose methods all go through
//! [`serve`]. What each RPC does is its request message's
//! [`super::Call`] implementation, in [`calls`].

mod calls;
mod certs;
mod page_token;

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::pb::{self, key_admin_server::KeyAdmin};
use super::{serve, Served};
use crate::auth::Security;
use crate::httpsig::profile::ProfileSet;
use crate::keys::registry::Registry;

/// Largest import material accepted, in bytes (a 4096-bit RSA PKCS#8 PEM is
/// about 3.3 KiB).
pub(crate) const MAX_MATERIAL_BYTES: usize = 64 * 1024;

/// The KeyAdmin service.
#[derive(Clone, Debug)]
pub(crate) struct KeyAdminService {
    registry: Arc<Registry>,
    security: Arc<Security>,
    /// The HTTP profiles: a preset may say how its keys' secrets are
    /// written (Standard Webhooks' `whsec_`), and an import decodes them.
    profiles: Arc<ProfileSet>,
}

impl KeyAdminService {
    /// A service over `registry`.
    pub(crate) fn new(registry: Arc<Registry>) -> Self {
        Self {
            registry,
            security: Security::open(),
            profiles: Arc::default(),
        }
    }

    /// Puts the service under `security` (authorization, audit).
    pub(crate) fn with_security(mut self, security: Arc<Security>) -> Self {
        self.security = security;
        self
    }

    /// The HTTP profiles: imports for keys named by a `standard-webhooks`
    /// profile decode a `whsec_` secret (docs/http-signing.md, "Presets").
    pub(crate) fn with_profiles(mut self, profiles: Arc<ProfileSet>) -> Self {
        self.profiles = profiles;
        self
    }
}

impl Served for KeyAdminService {
    fn security(&self) -> &Security {
        &self.security
    }
}

#[tonic::async_trait]
impl KeyAdmin for KeyAdminService {
    async fn get_import_wrapping_key(
        &self,
        request: Request<pb::GetImportWrappingKeyRequest>,
    ) -> Result<Response<pb::GetImportWrappingKeyResponse>, Status> {
        serve(self, request).await
    }

    async fn export_key(
        &self,
        request: Request<pb::ExportKeyRequest>,
    ) -> Result<Response<pb::ExportKeyResponse>, Status> {
        serve(self, request).await
    }

    async fn create_key(
        &self,
        request: Request<pb::CreateKeyRequest>,
    ) -> Result<Response<pb::CreateKeyResponse>, Status> {
        serve(self, request).await
    }

    async fn import_key(
        &self,
        request: Request<pb::ImportKeyRequest>,
    ) -> Result<Response<pb::ImportKeyResponse>, Status> {
        serve(self, request).await
    }

    async fn rotate_key(
        &self,
        request: Request<pb::RotateKeyRequest>,
    ) -> Result<Response<pb::RotateKeyResponse>, Status> {
        serve(self, request).await
    }

    async fn promote_key_version(
        &self,
        request: Request<pb::PromoteKeyVersionRequest>,
    ) -> Result<Response<pb::PromoteKeyVersionResponse>, Status> {
        serve(self, request).await
    }

    async fn disable_key_version(
        &self,
        request: Request<pb::DisableKeyVersionRequest>,
    ) -> Result<Response<pb::DisableKeyVersionResponse>, Status> {
        serve(self, request).await
    }

    async fn enable_key_version(
        &self,
        request: Request<pb::EnableKeyVersionRequest>,
    ) -> Result<Response<pb::EnableKeyVersionResponse>, Status> {
        serve(self, request).await
    }

    async fn destroy_key_version(
        &self,
        request: Request<pb::DestroyKeyVersionRequest>,
    ) -> Result<Response<pb::DestroyKeyVersionResponse>, Status> {
        serve(self, request).await
    }

    async fn restore_key_version(
        &self,
        request: Request<pb::RestoreKeyVersionRequest>,
    ) -> Result<Response<pb::RestoreKeyVersionResponse>, Status> {
        serve(self, request).await
    }

    async fn create_certificate_request(
        &self,
        request: Request<pb::CreateCertificateRequestRequest>,
    ) -> Result<Response<pb::CreateCertificateRequestResponse>, Status> {
        serve(self, request).await
    }

    async fn import_certificate_chain(
        &self,
        request: Request<pb::ImportCertificateChainRequest>,
    ) -> Result<Response<pb::ImportCertificateChainResponse>, Status> {
        serve(self, request).await
    }

    async fn get_key(
        &self,
        request: Request<pb::GetKeyRequest>,
    ) -> Result<Response<pb::GetKeyResponse>, Status> {
        serve(self, request).await
    }

    async fn list_keys(
        &self,
        request: Request<pb::ListKeysRequest>,
    ) -> Result<Response<pb::ListKeysResponse>, Status> {
        serve(self, request).await
    }
}
