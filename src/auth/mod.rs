//! Authentication, admission and authorization.
//!
//! A tower layer in front of every service authenticates the caller (a
//! bearer token, else the identity in its client certificate), checks the
//! identity's source allow-list and rate, and bounds the requests in
//! flight. What it refuses it audits. What it lets in carries a
//! [`CallContext`]; the handlers then authorize the operation on the key
//! or profile the request names (they alone know it) and audit the
//! outcome.

pub mod policy;
pub(crate) mod unhandled;

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use parking_lot::RwLock;
use tokio::sync::Semaphore;

use crate::audit::{Audit, Record};
use crate::error::{Error, Result};
use crate::listener::ConnInfo;
pub(crate) use policy::{Denial, Op, Policy};

/// The header a trusted proxy names the client in.
const X_FORWARDED_FOR: http::HeaderName = http::HeaderName::from_static("x-forwarded-for");

/// A fresh request id: minted here for every call, returned in
/// `x-request-id` and logged next to any error detail. A random (version 4)
/// UUID whose bytes come from `rand`'s thread-local generator (ChaCha,
/// seeded and reseeded from the OS) rather than a `getrandom` system call
/// per call, as `Uuid::new_v4` makes: the id must be unique, not secret,
/// and the call cost about 1 µs of CPU per request (perf).
///
/// Shared (`Arc`): the layer, the handler's context and the audit record
/// hold the same string rather than a copy each.
pub(crate) fn new_request_id() -> Arc<str> {
    use rand::Rng;
    let bytes: [u8; 16] = rand::thread_rng().gen();
    let mut buf = [0u8; uuid::fmt::Simple::LENGTH];
    Arc::from(
        &*uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .simple()
            .encode_lower(&mut buf),
    )
}

/// Who is calling, from where, under which request id.
#[derive(Clone, Debug)]
pub(crate) struct CallContext {
    /// Returned in `x-request-id` and written in the audit record.
    pub request_id: Arc<str>,
    /// The authenticated identity; `anonymous` when authorization is off.
    pub identity: Arc<str>,
    /// The client's address, after trusted proxies.
    pub source: IpAddr,
    /// `signet.v1.Signer/Sign` and the like: the RPC table's own string
    /// for a method signet serves.
    pub rpc: Cow<'static, str>,
}

impl CallContext {
    /// The context a request carries (set by [`AuthLayer`]), taken out of
    /// it; a fresh anonymous one for requests that did not pass through it.
    pub(crate) fn take<T>(request: &mut tonic::Request<T>) -> CallContext {
        request
            .extensions_mut()
            .remove::<CallContext>()
            .unwrap_or_else(|| CallContext {
                request_id: new_request_id(),
                identity: Arc::from(policy::ANONYMOUS),
                source: IpAddr::V4(Ipv4Addr::LOCALHOST),
                rpc: Cow::Borrowed(""),
            })
    }

    /// An audit record of this call.
    pub(crate) fn record(&self, op: Op) -> Record {
        let mut r = Record::call(self.rpc.clone());
        r.request_id = Some(self.request_id.clone());
        r.identity = Some(self.identity.clone());
        r.source = Some(self.source);
        r.operation = Some(op.name());
        r
    }
}

/// The policy (replaceable at run time), the audit trail and the in-flight
/// bound, shared by the layer and the handlers.
pub(crate) struct Security {
    policy: RwLock<Arc<Policy>>,
    audit: Audit,
    in_flight: Arc<Semaphore>,
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Security")
            .field("policy", &*self.policy.read())
            .field("audit", &self.audit)
            .finish()
    }
}

impl Security {
    /// From a built policy, an audit trail and the in-flight bound.
    pub(crate) fn new(policy: Policy, audit: Audit, max_in_flight: usize) -> Arc<Self> {
        Arc::new(Self {
            policy: RwLock::new(Arc::new(policy)),
            audit,
            in_flight: Arc::new(Semaphore::new(max_in_flight.max(1))),
        })
    }

    /// Everything open, no audit: for tests and benchmarks that call the
    /// services directly.
    pub(crate) fn open() -> Arc<Self> {
        let c = crate::config::Config::default();
        Self::new(
            Policy::new(&c.auth, &c.limits).expect("the empty policy is valid"),
            Audit::off(),
            usize::MAX >> 4,
        )
    }

    /// The current policy.
    pub(crate) fn policy(&self) -> Arc<Policy> {
        self.policy.read().clone()
    }

    /// Replaces the policy (a reload); calls in flight keep the old one.
    pub(crate) fn set_policy(&self, p: Policy) {
        *self.policy.write() = Arc::new(p);
    }

    /// The audit trail.
    pub(crate) fn audit(&self) -> &Audit {
        &self.audit
    }

    /// May the caller do `op` on `name`? `PERMISSION_DENIED` (the same text
    /// whether or not the key exists) when not; per-key rate limits apply
    /// to what is allowed.
    pub(crate) fn authorize(&self, ctx: &CallContext, op: Op, name: &str) -> Result<()> {
        let p = self.policy();
        if !p.allows(&ctx.identity, op, name) {
            crate::telemetry::metrics::get().auth_refused("permission_denied");
            return Err(Error::denied());
        }
        if !op.on_profile() {
            if let Err(Denial::RateLimited(wait)) = p.key_rate(name) {
                crate::telemetry::metrics::get().rate_limited("key");
                return Err(Error::exhausted("rate limit exceeded for this key", wait));
            }
        }
        Ok(())
    }

    /// May the caller list what `op` covers? `PERMISSION_DENIED` unless it
    /// holds `op` on at least one key or profile; the list itself then
    /// shows only what [`Security::may`] allows.
    pub(crate) fn authorize_list(&self, ctx: &CallContext, op: Op) -> Result<()> {
        if self.policy().holds_anywhere(&ctx.identity, op) {
            Ok(())
        } else {
            crate::telemetry::metrics::get().auth_refused("permission_denied");
            Err(Error::denied())
        }
    }

    /// Charges the caller's rate for one more item of a batch
    /// ([`Policy::charge`]); `RESOURCE_EXHAUSTED` with the wait when it is
    /// spent.
    pub(crate) fn charge_item(&self, ctx: &CallContext) -> Result<()> {
        match self.policy().charge(&ctx.identity) {
            Err(Denial::RateLimited(wait)) => {
                crate::telemetry::metrics::get().rate_limited("identity");
                Err(Error::exhausted("rate limit exceeded", wait))
            }
            _ => Ok(()),
        }
    }

    /// Does the caller hold `op` on `name`? For filtering lists.
    pub(crate) fn may(&self, ctx: &CallContext, op: Op, name: &str) -> bool {
        self.policy().allows(&ctx.identity, op, name)
    }

    /// Decides on a request before any service sees it.
    fn admit(
        &self,
        conn: Option<&ConnInfo>,
        headers: &http::HeaderMap,
        now: SystemTime,
    ) -> std::result::Result<(Arc<str>, IpAddr), Refusal> {
        let p = self.policy();
        let peer = conn
            .map(|c| c.peer)
            .unwrap_or(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
        let forwarded = headers.get(X_FORWARDED_FOR).and_then(|v| v.to_str().ok());
        let source = p.client_address(peer.ip(), forwarded);
        if !p.enabled() {
            return Ok((Arc::from(policy::ANONYMOUS), source));
        }
        let mut authorization = headers.get_all(http::header::AUTHORIZATION).iter();
        let bearer = authorization
            .next()
            .map(|v| v.to_str().ok().and_then(bearer_token));
        if authorization.next().is_some() {
            // Which one would count is a guess an attacker could exploit.
            return Err((
                None,
                source,
                Error::new(
                    crate::error::ErrorKind::Unauthenticated,
                    "unauthenticated: send one authorization header, not several",
                ),
            ));
        }
        let identity = match bearer {
            Some(Some(token)) => p
                .token_identity(token, now)
                .map_err(|_| (None, source, Error::unauthenticated()))?,
            // An authorization header that is not a bearer token.
            Some(None) => return Err((None, source, Error::unauthenticated())),
            None => match conn.and_then(|c| c.cert_identity.clone()) {
                Some(id) => id,
                None => return Err((None, source, Error::unauthenticated())),
            },
        };
        match p.admit(&identity, source) {
            Ok(()) => Ok((identity, source)),
            Err(Denial::RateLimited(wait)) => Err((
                Some(identity),
                source,
                Error::exhausted("rate limit exceeded", wait),
            )),
            Err(_) => Err((Some(identity), source, Error::denied())),
        }
    }
}

/// The token of an `authorization` value in the `Bearer` scheme, whose
/// name is case-insensitive (RFC 9110 §11.1); `None` for other schemes or
/// an empty token.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim_matches(' ');
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// A refused request: the identity (when known), the source, the error.
type Refusal = (Option<Arc<str>>, IpAddr, Error);

/// The operation a method stands for, for audit records of refusals: the
/// RPC table's ([`crate::rpcs`]), by method name.
pub(crate) fn op_of(rpc: &str) -> Option<Op> {
    let method = rpc.rsplit('/').next()?;
    crate::rpcs::by_method(method).map(|r| r.op)
}

/// The layer.
#[derive(Clone, Debug)]
pub(crate) struct AuthLayer {
    security: Arc<Security>,
}

impl AuthLayer {
    /// A layer over `security`.
    pub(crate) fn new(security: Arc<Security>) -> Self {
        Self { security }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;
    fn layer(&self, inner: S) -> AuthService<S> {
        AuthService {
            inner,
            security: self.security.clone(),
        }
    }
}

/// The layer's service.
#[derive(Clone, Debug)]
pub(crate) struct AuthService<S> {
    inner: S,
    security: Arc<Security>,
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S, B> tower::Service<http::Request<B>> for AuthService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<std::result::Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        // The standard pattern: call the clone that is not the ready one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let sec = self.security.clone();
        let path = req.uri().path();
        let rpc: Cow<'static, str> = match crate::rpcs::by_path(path) {
            Some(r) => Cow::Borrowed(r.path),
            None => Cow::Owned(path.trim_start_matches('/').to_owned()),
        };
        let request_id = new_request_id();
        // Health is for probes (kubelet, load balancers): no credentials,
        // no audit, but a request id like every answer.
        if rpc.starts_with("grpc.health.v1.Health/") {
            return Box::pin(async move {
                let mut r = inner.call(req).await?;
                if let Some(v) = crate::error::request_id_header(&request_id) {
                    r.headers_mut().insert(unhandled::REQUEST_ID, v);
                }
                Ok(r)
            });
        }
        let admitted = (request_id.clone(), rpc.clone());
        let refuse = move |identity: Option<Arc<str>>, source: IpAddr, e: Error| {
            let m = crate::telemetry::metrics::get();
            match e.kind() {
                crate::error::ErrorKind::ResourceExhausted => {
                    m.rate_limited(if identity.is_some() {
                        "identity"
                    } else {
                        "in_flight"
                    })
                }
                crate::error::ErrorKind::Unauthenticated => m.auth_refused("unauthenticated"),
                crate::error::ErrorKind::PermissionDenied => m.auth_refused("permission_denied"),
                _ => {}
            }
            let mut r = Record::call(unhandled::audit_name(&rpc).to_owned());
            r.request_id = Some(request_id.clone());
            r.identity = identity;
            r.source = Some(source);
            r.operation = op_of(&rpc).map(|o| o.name());
            let status = e.into_status(&request_id);
            sec.audit.record(r.with_code(status.code()));
            tracing::info!(%request_id, rpc = unhandled::audit_name(&rpc), %source, code = ?status.code(), "request refused");
            Box::pin(async move { Ok(status.into_http()) }) as Self::Future
        };
        let conn = req.extensions().get::<ConnInfo>().cloned();
        let Ok(permit) = self.security.in_flight.clone().try_acquire_owned() else {
            let source = conn
                .map(|c| c.peer.ip())
                .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
            return refuse(
                None,
                source,
                Error::exhausted("server overloaded", Duration::from_millis(100)),
            );
        };
        match self
            .security
            .admit(conn.as_ref(), req.headers(), SystemTime::now())
        {
            Err((identity, source, e)) => refuse(identity, source, e),
            Ok((identity, source)) => {
                let (request_id, rpc) = admitted;
                crate::telemetry::rpc::note_caller(&identity, &request_id);
                req.extensions_mut().insert(CallContext {
                    request_id: request_id.clone(),
                    identity: identity.clone(),
                    source,
                    rpc: rpc.clone(),
                });
                let sec = self.security.clone();
                Box::pin(async move {
                    let r = inner.call(req).await;
                    drop(permit);
                    r.map(|resp| {
                        unhandled::finish(
                            resp,
                            &request_id,
                            &rpc,
                            Some(&identity),
                            source,
                            sec.audit(),
                        )
                    })
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{bearer_token, new_request_id};

    #[test]
    fn request_ids_are_distinct_version_4_uuids_marked_sensitive() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let id = new_request_id();
            let u = uuid::Uuid::parse_str(&id).unwrap();
            assert_eq!(u.simple().to_string(), &*id, "32 lower-case hex digits");
            assert_eq!(u.get_version_num(), 4);
            assert_eq!(u.get_variant(), uuid::Variant::RFC4122);
            assert!(seen.insert(id), "a repeated id");
        }
        let id = new_request_id();
        let h = crate::error::request_id_header(&id).unwrap();
        assert!(h.is_sensitive());
        assert_eq!(h.to_str().unwrap(), &*id);
        let m = crate::error::request_id_metadata(&id).unwrap();
        assert!(m.is_sensitive());
        assert_eq!(m.to_str().unwrap(), &*id);
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_strict() {
        for v in ["Bearer t0k", "bearer t0k", "BEARER t0k", "Bearer  t0k "] {
            assert_eq!(bearer_token(v), Some("t0k"), "{v}");
        }
        for v in ["Basic dTpw", "Bearer", "Bearer ", "Bearert0k", "Token t0k"] {
            assert_eq!(bearer_token(v), None, "{v}");
        }
    }
}
