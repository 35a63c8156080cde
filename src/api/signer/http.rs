//! HTTP signing by profile: `SignHttpRequest`, `VerifyHttpRequest`,
//! `ListHttpProfiles`.

use std::sync::Arc;

use super::keys::sha256;
use super::SignerService;
use crate::api::names::ShortName;
use crate::api::pb;
use crate::api::Call;
use crate::audit::Record;
use crate::auth::CallContext;
use crate::error::{Error, Result};
use crate::httpsig::engine;
use crate::httpsig::profile::Profile;
use crate::rpcs::{self, Rpc};

impl SignerService {
    /// The profile in force called `name` (a valid name: [`crate::api::serve`]
    /// checked it).
    fn profile(&self, name: &str) -> Result<Arc<Profile>> {
        let p = self
            .profiles
            .current()
            .get(name)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("profile {name} not found")))?;
        crate::telemetry::rpc::note_profile(name);
        Ok(p)
    }

    fn check_http(&self, body: &[u8], url: &str, headers: &[pb::HttpHeader]) -> Result<()> {
        let l = &self.limits;
        if body.len() > l.max_http_body_bytes {
            return Err(Error::invalid(format!(
                "body is {} bytes; the limit is {}",
                body.len(),
                l.max_http_body_bytes
            )));
        }
        if url.len() > l.max_url_bytes {
            return Err(Error::invalid(format!(
                "url is longer than {} bytes",
                l.max_url_bytes
            )));
        }
        if headers.len() > l.max_http_headers {
            return Err(Error::invalid(format!(
                "at most {} headers",
                l.max_http_headers
            )));
        }
        if headers
            .iter()
            .any(|h| h.name.len() + h.value.len() > l.max_http_header_bytes)
        {
            return Err(Error::invalid(format!(
                "a header is longer than {} bytes",
                l.max_http_header_bytes
            )));
        }
        Ok(())
    }

    /// The key the audit record names for a call on profile `name`.
    fn profile_key(&self, name: &str, which: fn(&Profile) -> &Option<String>) -> Option<String> {
        self.profiles
            .current()
            .get(name)
            .and_then(|p| which(p).clone())
    }
}

impl Call for pb::SignHttpRequestRequest {
    type Service = SignerService;
    type Reply = pb::SignHttpRequestResponse;
    const RPC: &'static Rpc = &rpcs::SIGN_HTTP_REQUEST;

    fn subject(&self) -> &str {
        &self.profile
    }

    fn audit(&self, s: &SignerService, record: &mut Record) {
        record.key = s.profile_key(&self.profile, |p| &p.key);
        record.message_sha256 = Some(sha256(&self.body));
    }

    fn check(&self, s: &SignerService) -> Result<()> {
        s.check_http(&self.body, &self.url, &self.headers)
    }

    async fn call(self, s: &SignerService, _: &CallContext) -> Result<pb::SignHttpRequestResponse> {
        let profile = s.profile(&self.profile)?;
        let nonce = (!self.nonce.is_empty()).then_some(self.nonce.as_str());
        let headers: Vec<(String, String)> = self
            .headers
            .into_iter()
            .map(|h| (h.name, h.value))
            .collect();
        let out = engine::sign(
            &profile,
            &s.registry,
            engine::Request {
                method: &self.method,
                url: &self.url,
                body: &self.body,
            },
            &headers,
            nonce,
            s.registry.clock().now(),
        )
        .await?;
        Ok(pb::SignHttpRequestResponse {
            headers: out
                .headers
                .into_iter()
                .map(|(name, value)| pb::HttpHeader { name, value })
                .collect(),
            timestamp: out.timestamp,
            nonce: out.nonce,
            version: out.version,
            key_version_id: out.key_version_id,
            string_to_sign: out.string_to_sign,
        })
    }
}

impl Call for pb::VerifyHttpRequestRequest {
    type Service = SignerService;
    type Reply = pb::VerifyHttpRequestResponse;
    const RPC: &'static Rpc = &rpcs::VERIFY_HTTP_REQUEST;

    fn subject(&self) -> &str {
        &self.profile
    }

    fn audit(&self, s: &SignerService, record: &mut Record) {
        record.key = s.profile_key(&self.profile, |p| &p.verify_key);
        record.message_sha256 = Some(sha256(&self.body));
    }

    fn check(&self, s: &SignerService) -> Result<()> {
        s.check_http(&self.body, &self.url, &self.headers)
    }

    async fn call(
        self,
        s: &SignerService,
        _: &CallContext,
    ) -> Result<pb::VerifyHttpRequestResponse> {
        use engine::Reason;
        use pb::VerifyFailureReason as R;

        let profile = s.profile(&self.profile)?;
        let headers: Vec<(String, String)> = self
            .headers
            .into_iter()
            .map(|h| (h.name, h.value))
            .collect();
        let v = engine::verify(
            &profile,
            &s.registry,
            s.replay.as_ref(),
            engine::Request {
                method: &self.method,
                url: &self.url,
                body: &self.body,
            },
            &headers,
            &self.source_ip,
            s.registry.clock().now(),
        )
        .await?;
        let reason = match v.reason {
            None => R::Unspecified,
            Some(Reason::MissingHeader) => R::MissingHeader,
            Some(Reason::MalformedHeader) => R::MalformedHeader,
            Some(Reason::MalformedBody) => R::MalformedBody,
            Some(Reason::SourceIpNotAllowed) => R::SourceIpNotAllowed,
            Some(Reason::TimestampOutOfWindow) => R::TimestampOutOfWindow,
            Some(Reason::SignatureMismatch) => R::SignatureMismatch,
            Some(Reason::Replayed) => R::Replayed,
            Some(Reason::ComponentNotCovered) => R::ComponentNotCovered,
            Some(Reason::DigestMismatch) => R::DigestMismatch,
            Some(Reason::UnknownKey) => R::UnknownKey,
            Some(Reason::AlgorithmMismatch) => R::AlgorithmMismatch,
            Some(Reason::ParameterMissing) => R::ParameterMissing,
            Some(Reason::ParameterMismatch) => R::ParameterMismatch,
            Some(Reason::SignatureExpired) => R::SignatureExpired,
            Some(Reason::LabelNotFound) => R::LabelNotFound,
        };
        if v.reason.is_some() {
            crate::telemetry::metrics::get().http_verify_failed(&profile.name, reason.short_name());
        }
        Ok(pb::VerifyHttpRequestResponse {
            valid: v.reason.is_none(),
            reason: reason as i32,
            version: v.version.unwrap_or(0),
            key_version_id: v.key_version_id.unwrap_or_default(),
            timestamp: v.timestamp.unwrap_or_default(),
        })
    }
}

impl Call for pb::ListHttpProfilesRequest {
    type Service = SignerService;
    type Reply = pb::ListHttpProfilesResponse;
    const RPC: &'static Rpc = &rpcs::LIST_HTTP_PROFILES;

    async fn call(
        self,
        s: &SignerService,
        ctx: &CallContext,
    ) -> Result<pb::ListHttpProfilesResponse> {
        // Only the profiles the caller holds `http_profiles` on.
        let mut profiles: Vec<pb::HttpProfile> = s
            .profiles
            .current()
            .iter()
            .filter(|p| s.security.may(ctx, Self::RPC.op, &p.name))
            .map(|p| pb::HttpProfile {
                name: p.name.clone(),
                settings: p.settings().into_iter().collect(),
            })
            .collect();
        profiles.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(pb::ListHttpProfilesResponse { profiles })
    }
}
