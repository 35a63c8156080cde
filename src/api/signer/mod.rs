//! `signet.v1.Signer`: what payment back-ends call.
//!
//! The service's state and limits, and the gRPC trait, whose methods all
//! go through [`serve`]. What each RPC does is its request message's
//! [`super::Call`] implementation: [`keys`] for the key operations,
//! [`http`] for HTTP signing by profile, [`batch`] for many keys'
//! operations in one call.

mod batch;
mod http;
mod keys;

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::pb::{self, signer_server::Signer};
use super::{serve, Served};
use crate::auth::Security;
use crate::httpsig::profile::ProfileSet;
use crate::httpsig::replay::{MemoryReplayStore, ReplayStore};
use crate::keys::registry::Registry;

/// Limits applied before any work is done (`[server]` and `[limits]`).
#[derive(Clone, Debug)]
pub(crate) struct SignerLimits {
    /// Largest message `Sign` and `Verify` accept, in bytes.
    pub max_message_bytes: usize,
    /// Largest HTTP body, in bytes.
    pub max_http_body_bytes: usize,
    /// Most headers a `VerifyHttpRequest` may carry.
    pub max_http_headers: usize,
    /// Longest header (name plus value), in bytes.
    pub max_http_header_bytes: usize,
    /// Longest URL, in bytes.
    pub max_url_bytes: usize,
    /// Most items in one batch.
    pub max_batch_items: usize,
    /// Most bytes in one batch (names, inputs, signatures).
    pub max_batch_bytes: usize,
}

impl SignerLimits {
    /// The limits a configuration sets.
    pub(crate) fn from_config(c: &crate::config::Config) -> Self {
        Self {
            max_message_bytes: c.server.max_message_bytes,
            max_http_body_bytes: c.limits.max_http_body_bytes,
            max_http_headers: c.limits.max_http_headers,
            max_http_header_bytes: c.limits.max_http_header_bytes,
            max_url_bytes: c.limits.max_url_bytes,
            max_batch_items: c.limits.max_batch_items,
            max_batch_bytes: c.limits.max_batch_bytes,
        }
    }
}

impl Default for SignerLimits {
    fn default() -> Self {
        Self::from_config(&crate::config::Config::default())
    }
}

/// The Signer service.
#[derive(Clone, Debug)]
pub(crate) struct SignerService {
    registry: Arc<Registry>,
    limits: SignerLimits,
    profiles: Arc<ProfileSet>,
    replay: Arc<dyn ReplayStore>,
    security: Arc<Security>,
}

impl SignerService {
    /// A service over `registry`, with no HTTP profiles.
    pub(crate) fn new(registry: Arc<Registry>, limits: SignerLimits) -> Self {
        Self {
            registry,
            limits,
            profiles: Arc::default(),
            replay: Arc::new(MemoryReplayStore::new(1)),
            security: Security::open(),
        }
    }

    /// Puts the service under `security` (authorization, audit).
    pub(crate) fn with_security(mut self, security: Arc<Security>) -> Self {
        self.security = security;
        self
    }

    /// Adds the HTTP profiles and the replay store they share.
    pub(crate) fn with_http(
        mut self,
        profiles: Arc<ProfileSet>,
        replay: Arc<dyn ReplayStore>,
    ) -> Self {
        self.profiles = profiles;
        self.replay = replay;
        self
    }
}

impl Served for SignerService {
    fn security(&self) -> &Security {
        &self.security
    }
}

#[tonic::async_trait]
impl Signer for SignerService {
    async fn sign(
        &self,
        request: Request<pb::SignRequest>,
    ) -> Result<Response<pb::SignResponse>, Status> {
        serve(self, request).await
    }

    async fn verify(
        &self,
        request: Request<pb::VerifyRequest>,
    ) -> Result<Response<pb::VerifyResponse>, Status> {
        serve(self, request).await
    }

    async fn get_certificate_chain(
        &self,
        request: Request<pb::GetCertificateChainRequest>,
    ) -> Result<Response<pb::GetCertificateChainResponse>, Status> {
        serve(self, request).await
    }

    async fn get_public_key(
        &self,
        request: Request<pb::GetPublicKeyRequest>,
    ) -> Result<Response<pb::GetPublicKeyResponse>, Status> {
        serve(self, request).await
    }

    async fn get_jwks(
        &self,
        request: Request<pb::GetJwksRequest>,
    ) -> Result<Response<pb::GetJwksResponse>, Status> {
        serve(self, request).await
    }

    async fn sign_http_request(
        &self,
        request: Request<pb::SignHttpRequestRequest>,
    ) -> Result<Response<pb::SignHttpRequestResponse>, Status> {
        serve(self, request).await
    }

    async fn list_http_profiles(
        &self,
        request: Request<pb::ListHttpProfilesRequest>,
    ) -> Result<Response<pb::ListHttpProfilesResponse>, Status> {
        serve(self, request).await
    }

    async fn sign_batch(
        &self,
        request: Request<pb::SignBatchRequest>,
    ) -> Result<Response<pb::SignBatchResponse>, Status> {
        serve(self, request).await
    }

    async fn verify_batch(
        &self,
        request: Request<pb::VerifyBatchRequest>,
    ) -> Result<Response<pb::VerifyBatchResponse>, Status> {
        serve(self, request).await
    }

    async fn verify_http_request(
        &self,
        request: Request<pb::VerifyHttpRequestRequest>,
    ) -> Result<Response<pb::VerifyHttpRequestResponse>, Status> {
        serve(self, request).await
    }
}
