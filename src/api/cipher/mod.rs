//! `signet.v1.CipherService`: encryption with AES-256-GCM keys.
//!
//! The service's state and the gRPC trait, whose methods all go through
//! [`serve`]. What each RPC does is its request message's
//! [`super::Call`] implementation, in [`calls`].

mod calls;

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::pb::{self, cipher_service_server::CipherService as Cipher};
use super::{serve, Served};
use crate::auth::Security;
use crate::keys::registry::Registry;

/// The CipherService.
#[derive(Clone, Debug)]
pub(crate) struct CipherService {
    registry: Arc<Registry>,
    security: Arc<Security>,
    /// Largest plaintext or ciphertext accepted (`server.max_message_bytes`).
    max_message_bytes: usize,
}

impl CipherService {
    /// A service over `registry`.
    pub(crate) fn new(registry: Arc<Registry>, max_message_bytes: usize) -> Self {
        Self {
            registry,
            security: Security::open(),
            max_message_bytes,
        }
    }

    /// Puts the service under `security` (authorization, audit).
    pub(crate) fn with_security(mut self, security: Arc<Security>) -> Self {
        self.security = security;
        self
    }
}

impl Served for CipherService {
    fn security(&self) -> &Security {
        &self.security
    }
}

#[tonic::async_trait]
impl Cipher for CipherService {
    async fn encrypt(
        &self,
        request: Request<pb::EncryptRequest>,
    ) -> Result<Response<pb::EncryptResponse>, Status> {
        serve(self, request).await
    }

    async fn decrypt(
        &self,
        request: Request<pb::DecryptRequest>,
    ) -> Result<Response<pb::DecryptResponse>, Status> {
        serve(self, request).await
    }

    async fn re_encrypt(
        &self,
        request: Request<pb::ReEncryptRequest>,
    ) -> Result<Response<pb::ReEncryptResponse>, Status> {
        serve(self, request).await
    }

    async fn generate_data_key(
        &self,
        request: Request<pb::GenerateDataKeyRequest>,
    ) -> Result<Response<pb::GenerateDataKeyResponse>, Status> {
        serve(self, request).await
    }

    async fn generate_data_key_without_plaintext(
        &self,
        request: Request<pb::GenerateDataKeyWithoutPlaintextRequest>,
    ) -> Result<Response<pb::GenerateDataKeyWithoutPlaintextResponse>, Status> {
        serve(self, request).await
    }
}
