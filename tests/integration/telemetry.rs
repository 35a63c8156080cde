//! Running it in production, seen from outside a real `signet serve`:
//! traces and metrics received by an OTLP collector (in process, speaking
//! the real OTLP/gRPC protocol), `/metrics` scraped over HTTP, health on
//! the admin port, SIGHUP reloads with good and broken files, and SIGTERM
//! under load.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use signet::api::pb;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// What the collector received.
#[derive(Clone, Default)]
struct Received {
    traces: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
    metrics: Arc<Mutex<Vec<ExportMetricsServiceRequest>>>,
}

#[tonic::async_trait]
impl TraceService for Received {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.traces.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Received {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        self.metrics.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

impl Received {
    /// Every span received so far, with its resource's attributes.
    fn spans(&self) -> Vec<(Vec<KeyValue>, Span)> {
        let mut out = Vec::new();
        for req in self.traces.lock().unwrap().iter() {
            for rs in &req.resource_spans {
                let res = rs
                    .resource
                    .clone()
                    .map(|r| r.attributes)
                    .unwrap_or_default();
                for ss in &rs.scope_spans {
                    for s in &ss.spans {
                        out.push((res.clone(), s.clone()));
                    }
                }
            }
        }
        out
    }

    fn metric_names(&self) -> Vec<String> {
        let mut out = Vec::new();
        for req in self.metrics.lock().unwrap().iter() {
            for rm in &req.resource_metrics {
                for sm in &rm.scope_metrics {
                    out.extend(sm.metrics.iter().map(|m| m.name.clone()));
                }
            }
        }
        out
    }
}

/// An OTLP/gRPC collector on 127.0.0.1.
async fn collector() -> (Received, String) {
    let got = Received::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let svc = got.clone();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(svc.clone()))
            .add_service(MetricsServiceServer::new(svc))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
            .unwrap();
    });
    (got, format!("http://{addr}"))
}

/// A `signet serve` process with its gRPC and admin addresses and its log.
struct Serve {
    child: Child,
    grpc: String,
    admin: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    fn start(config: &Path, env: &[(&str, &str)]) -> Serve {
        Self::spawn(config, env, true)
    }

    /// Waits for the admin port only, and for the gRPC port too if
    /// `grpc`.
    fn spawn(config: &Path, env: &[(&str, &str)], grpc: bool) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_signet"))
            .args(["serve", "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let mut s = Serve {
            child,
            grpc: String::new(),
            admin: String::new(),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline && ((grpc && s.grpc.is_empty()) || s.admin.is_empty()) {
            for line in s.log.lock().unwrap().iter() {
                let addr = line
                    .find("address=")
                    .map(|i| line[i + 8..].split_whitespace().next().unwrap().to_string());
                if line.contains("admin port listening") {
                    s.admin = addr.unwrap();
                } else if line.contains("signet listening") {
                    s.grpc = addr.unwrap();
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            (!grpc || !s.grpc.is_empty()) && !s.admin.is_empty(),
            "no addresses: {:#?}",
            s.log.lock().unwrap()
        );
        s
    }

    async fn channel(&self) -> tonic::transport::Channel {
        tonic::transport::Channel::from_shared(format!("http://{}", self.grpc))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    async fn admin_health(&self, service: &str) -> ServingStatus {
        let ch = tonic::transport::Channel::from_shared(format!("http://{}", self.admin))
            .unwrap()
            .connect()
            .await
            .unwrap();
        HealthClient::new(ch)
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status()
    }

    /// Waits for a log line containing `needle` after line `from`.
    fn wait_log(&self, from: usize, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(l) = self.log.lock().unwrap()[from..]
                .iter()
                .find(|l| l.contains(needle))
            {
                return l.clone();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "no log line with {needle:?}: {:#?}",
            self.log.lock().unwrap()
        );
    }

    fn log_len(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success());
    }
}

/// `GET /metrics` on the admin port, over plain HTTP/1.1.
fn scrape(admin: &str) -> String {
    let mut s = std::net::TcpStream::connect(admin).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: signet\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    out
}

/// The value of the sample `name{labels}` (labels in the exporter's
/// order, which is sorted by name).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn attr_str(attrs: &[KeyValue], key: &str) -> Option<String> {
    match attr(attrs, key) {
        Some(Value::StringValue(s)) => Some(s.clone()),
        _ => None,
    }
}

fn attr_int(attrs: &[KeyValue], key: &str) -> Option<i64> {
    match attr(attrs, key) {
        Some(Value::IntValue(i)) => Some(*i),
        _ => None,
    }
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const BASE: &str = r#"
[server]
listen = "127.0.0.1:0"
plaintext = true
[admin]
listen = "127.0.0.1:0"
[backend]
type = "memory"
demo_keys = true
"#;

fn with_traceparent<T>(msg: T, trace: &str, parent: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut().insert(
        "traceparent",
        format!("00-{trace}-{parent}-01").parse().unwrap(),
    );
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_and_metrics_reach_an_otlp_collector_and_the_scraper() {
    let (got, endpoint) = collector().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "signet.toml",
        &format!(
            "{BASE}\n[[profiles]]\nname = \"hooks\"\npreset = \"standard-webhooks\"\nkey = \"demo-hmac\"\n"
        ),
    );
    let s = Serve::start(
        &config,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_SERVICE_NAME", "signet-under-test"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "300"),
        ],
    );
    let ch = s.channel().await;
    let mut signer = pb::signer_client::SignerClient::new(ch.clone());

    // A payment back-end's trace continues into signet.
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    let secret_message = b"PAN=4111111111111111;amount=100".to_vec();
    let signed = signer
        .sign(with_traceparent(
            pb::SignRequest {
                key: "demo-hmac".into(),
                input: Some(pb::sign_request::Input::Message(secret_message.clone())),
                ..Default::default()
            },
            trace,
            parent,
        ))
        .await
        .unwrap()
        .into_inner();
    // A refused call is traced too, with its status.
    let trace2 = "0af7651916cd43dd8448eb211c80319c";
    let e = signer
        .sign(with_traceparent(
            pb::SignRequest {
                key: "no-such-key".into(),
                input: Some(pb::sign_request::Input::Message(b"x".to_vec())),
                ..Default::default()
            },
            trace2,
            "b7ad6b7169203331",
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    // HTTP verification with a replay-store check.
    let trace3 = "a3ce929d0e0e47364bf92f3577b34da6";
    let body = b"{\"type\":\"payment.succeeded\",\"card\":\"4111111111111111\"}".to_vec();
    let http = signer
        .sign_http_request(pb::SignHttpRequestRequest {
            profile: "hooks".into(),
            method: "POST".into(),
            url: "https://merchant.example/webhooks".into(),
            body: body.clone(),
            nonce: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let verified = signer
        .verify_http_request(with_traceparent(
            pb::VerifyHttpRequestRequest {
                profile: "hooks".into(),
                method: "POST".into(),
                url: "https://merchant.example/webhooks".into(),
                body: body.clone(),
                headers: http.headers.clone(),
                source_ip: String::new(),
            },
            trace3,
            "a902b700f067aa0b",
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(verified.valid, "{verified:?}");

    // Wait for the batch exporter.
    let hex = |b: &[u8]| hex::encode(b);
    let deadline = Instant::now() + Duration::from_secs(30);
    let spans = loop {
        let spans = got.spans();
        let have = |t: &str, name: &str| {
            spans
                .iter()
                .any(|(_, s)| hex(&s.trace_id) == t && s.name == name)
        };
        if have(trace, "backend.sign")
            && have(trace2, "signet.v1.Signer/Sign")
            && have(trace3, "replay_store.check")
        {
            break spans;
        }
        assert!(
            Instant::now() < deadline,
            "spans not received: {:#?}",
            spans.iter().map(|(_, s)| &s.name).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let find = |t: &str, name: &str| {
        spans
            .iter()
            .find(|(_, s)| hex(&s.trace_id) == t && s.name == name)
            .unwrap_or_else(|| panic!("no span {name} in trace {t}"))
            .clone()
    };

    // The call's span: a server span, child of the caller's span.
    let (resource, rpc) = find(trace, "signet.v1.Signer/Sign");
    assert_eq!(
        attr_str(&resource, "service.name").as_deref(),
        Some("signet-under-test")
    );
    assert_eq!(hex(&rpc.parent_span_id), parent);
    assert_eq!(rpc.kind, 2, "SPAN_KIND_SERVER");
    assert_eq!(
        attr_str(&rpc.attributes, "rpc.system").as_deref(),
        Some("grpc")
    );
    assert_eq!(
        attr_str(&rpc.attributes, "rpc.service").as_deref(),
        Some("signet.v1.Signer")
    );
    assert_eq!(
        attr_str(&rpc.attributes, "rpc.method").as_deref(),
        Some("Sign")
    );
    assert_eq!(attr_int(&rpc.attributes, "rpc.grpc.status_code"), Some(0));
    assert_eq!(
        attr_str(&rpc.attributes, "signet.key").as_deref(),
        Some("demo-hmac")
    );
    assert_eq!(
        attr_str(&rpc.attributes, "signet.algorithm").as_deref(),
        Some("HMAC_SHA256")
    );
    assert_eq!(attr_int(&rpc.attributes, "signet.key_version"), Some(1));
    assert_eq!(
        attr_str(&rpc.attributes, "signet.identity").as_deref(),
        Some("anonymous")
    );

    // The backend call: a child of the call's span.
    let (_, backend) = find(trace, "backend.sign");
    assert_eq!(backend.parent_span_id, rpc.span_id);
    assert_eq!(
        attr_str(&backend.attributes, "signet.backend").as_deref(),
        Some("memory")
    );

    // The refused call: status NOT_FOUND, not a server error.
    let (_, refused) = find(trace2, "signet.v1.Signer/Sign");
    assert_eq!(
        attr_int(&refused.attributes, "rpc.grpc.status_code"),
        Some(5)
    );
    assert_eq!(hex(&refused.parent_span_id), "b7ad6b7169203331");
    assert_ne!(
        refused.status.as_ref().map(|s| s.code),
        Some(2),
        "NOT_FOUND is the caller's error"
    );

    // The webhook verification: its replay-store check is a child span.
    let (_, vspan) = find(trace3, "signet.v1.Signer/VerifyHttpRequest");
    assert_eq!(
        attr_str(&vspan.attributes, "signet.profile").as_deref(),
        Some("hooks")
    );
    let (_, replay) = find(trace3, "replay_store.check");
    assert_eq!(replay.parent_span_id, vspan.span_id);
    assert_eq!(
        attr_str(&replay.attributes, "signet.replay_store").as_deref(),
        Some("memory")
    );
    assert_eq!(
        attr_str(&replay.attributes, "signet.replay.result").as_deref(),
        Some("fresh")
    );

    // No message, body, signature or header value in any attribute.
    let forbidden: Vec<String> = vec![
        "4111111111111111".into(),
        hex(&signed.signature),
        base64_std(&signed.signature),
        http.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("webhook-signature"))
            .map(|h| h.value.clone())
            .unwrap(),
    ];
    for (res, span) in &spans {
        let values: Vec<String> = res
            .iter()
            .chain(&span.attributes)
            .chain(span.events.iter().flat_map(|e| &e.attributes))
            .map(|kv| format!("{:?}", kv.value))
            .collect();
        for v in &values {
            for f in &forbidden {
                assert!(!v.contains(f.as_str()), "span {} carries {f:?}", span.name);
            }
        }
    }

    // Metrics over OTLP (each export holds what was recorded by then).
    let wanted = [
        "signet.rpc.requests",
        "signet.rpc.duration",
        "signet.backend.duration",
        "signet.key.versions",
        "signet.replay.checks",
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let names = got.metric_names();
        if wanted.iter().all(|w| names.iter().any(|n| n == w)) {
            break;
        }
        assert!(Instant::now() < deadline, "metrics not received: {names:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // And for Prometheus, on the admin port.
    let text = scrape(&s.admin);
    let ok = sample(
        &text,
        r#"signet_rpc_requests_total{algorithm="HMAC_SHA256",method="Sign",outcome="OK",service="signet.v1.Signer"}"#,
    );
    assert_eq!(ok, Some(1.0), "{text}");
    let nf = sample(
        &text,
        r#"signet_rpc_requests_total{algorithm="",method="Sign",outcome="NOT_FOUND",service="signet.v1.Signer"}"#,
    );
    assert_eq!(nf, Some(1.0), "{text}");
    assert_eq!(
        sample(
            &text,
            r#"signet_key_versions{key="demo-hmac",state="ACTIVE"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"signet_key_versions{key="demo-hmac",state="PENDING"}"#
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"signet_replay_checks_total{result="fresh",store="memory"}"#
        ),
        Some(1.0)
    );
    assert_eq!(sample(&text, "signet_ready"), Some(1.0));
    assert!(
        text.contains("signet_rpc_duration_seconds_bucket{"),
        "{text}"
    );
    assert!(!text.contains("4111111111111111"));

    // A replayed delivery is counted.
    let again = signer
        .verify_http_request(pb::VerifyHttpRequestRequest {
            profile: "hooks".into(),
            method: "POST".into(),
            url: "https://merchant.example/webhooks".into(),
            body,
            headers: http.headers,
            source_ip: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.reason, pb::VerifyFailureReason::Replayed as i32);
    let text = scrape(&s.admin);
    assert_eq!(
        sample(
            &text,
            r#"signet_replay_checks_total{result="replay",store="memory"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"signet_http_verify_failures_total{profile="hooks",reason="REPLAYED"}"#
        ),
        Some(1.0),
        "{text}"
    );

    // Health on the admin port.
    assert_eq!(s.admin_health("").await, ServingStatus::Serving);
    assert_eq!(s.admin_health("liveness").await, ServingStatus::Serving);
    assert_eq!(
        s.admin_health("signet.v1.Signer").await,
        ServingStatus::Serving
    );
}

fn base64_std(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_methods_do_not_mint_metric_labels() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "signet.toml", BASE);
    let s = Serve::start(&config, &[]);
    let ch = s.channel().await;
    let mut grpc = tonic::client::Grpc::new(ch);
    grpc.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_static("/evil.Service/Attacker-Chosen-Name");
    let e = grpc
        .unary::<pb::GetKeyRequest, pb::Key, _>(
            tonic::Request::new(pb::GetKeyRequest::default()),
            path,
            tonic_prost::ProstCodec::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unimplemented);
    let text = scrape(&s.admin);
    assert!(!text.contains("Attacker-Chosen-Name"), "{text}");
    assert_eq!(
        sample(
            &text,
            r#"signet_rpc_requests_total{algorithm="",method="unknown",outcome="UNIMPLEMENTED",service="unknown"}"#
        ),
        Some(1.0),
        "{text}"
    );
}

async fn profile_names(
    ch: &tonic::transport::Channel,
    token: &str,
) -> Result<Vec<String>, tonic::Status> {
    let mut req = tonic::Request::new(pb::ListHttpProfilesRequest::default());
    req.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let mut v: Vec<String> = pb::signer_client::SignerClient::new(ch.clone())
        .list_http_profiles(req)
        .await?
        .into_inner()
        .profiles
        .into_iter()
        .map(|p| p.name)
        .collect();
    v.sort();
    Ok(v)
}

fn reload_config(profile: &str, tokens: &Path) -> String {
    format!(
        "{BASE}\n[auth]\ntokens_file = \"{}\"\n[[auth.identities]]\nname = \"ops\"\n\
         [[auth.identities.grants]]\noperations = [\"http_profiles\"]\nprofiles = [\"*\"]\n\
         [[profiles]]\nname = \"{profile}\"\npreset = \"github\"\nkey = \"demo-hmac\"\n",
        tokens.display()
    )
}

fn tokens_file(token: &str) -> String {
    format!(
        "[[tokens]]\nidentity = \"ops\"\nsha256 = \"{}\"\n",
        signet::auth::policy::token_hash(token)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_profiles_and_tokens_and_a_broken_file_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = write(
        dir.path(),
        "tokens.toml",
        &tokens_file("token-one-0123456789abcdef"),
    );
    let config = write(dir.path(), "signet.toml", &reload_config("first", &tokens));
    let s = Serve::start(&config, &[]);
    let ch = s.channel().await;
    assert_eq!(
        profile_names(&ch, "token-one-0123456789abcdef")
            .await
            .unwrap(),
        ["first"]
    );

    // A new profile and a rotated token, picked up by SIGHUP.
    write(
        dir.path(),
        "tokens.toml",
        &tokens_file("token-two-0123456789abcdef"),
    );
    write(dir.path(), "signet.toml", &reload_config("second", &tokens));
    let from = s.log_len();
    s.signal("-HUP");
    s.wait_log(from, "SIGHUP: reloaded");
    assert_eq!(
        profile_names(&ch, "token-two-0123456789abcdef")
            .await
            .unwrap(),
        ["second"]
    );
    let e = profile_names(&ch, "token-one-0123456789abcdef")
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated);

    // A broken profile: nothing changes, and the log says why.
    let broken = reload_config("third", &tokens)
        .replace("preset = \"github\"", "preset = \"no-such-preset\"");
    write(dir.path(), "signet.toml", &broken);
    let from = s.log_len();
    s.signal("-HUP");
    s.wait_log(from, "config not reloaded");
    let said = s.log.lock().unwrap()[from..].join("\n");
    assert!(said.contains("no-such-preset"), "{said}");
    assert_eq!(
        profile_names(&ch, "token-two-0123456789abcdef")
            .await
            .unwrap(),
        ["second"]
    );

    // A broken tokens file: nothing changes either, and the error does not
    // quote the file.
    write(dir.path(), "signet.toml", &reload_config("fourth", &tokens));
    write(
        dir.path(),
        "tokens.toml",
        "[[tokens]]\nidentity = \"ops\"\nsha256 = \"token-in-the-wrong-place\nbroken",
    );
    let from = s.log_len();
    s.signal("-HUP");
    let line = s.wait_log(from, "config not reloaded");
    assert!(line.contains("tokens_file"), "{line}");
    assert!(!line.contains("token-in-the-wrong-place"), "{line}");
    assert_eq!(
        profile_names(&ch, "token-two-0123456789abcdef")
            .await
            .unwrap(),
        ["second"]
    );
    assert_eq!(s.admin_health("").await, ServingStatus::Serving);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_answers_every_call_it_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let config = write(
        dir.path(),
        "signet.toml",
        &format!(
            "{}\ndrain_delay = \"1s\"\nshutdown_timeout = \"20s\"\n[audit]\noutput = \"file\"\npath = \"{}\"\n",
            BASE,
            audit.display()
        )
        .replacen("[admin]", "[admin]", 1),
    );
    // drain_delay and shutdown_timeout belong to [server]: move them there.
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text
        .replace("\ndrain_delay = \"1s\"\nshutdown_timeout = \"20s\"\n", "\n")
        .replace(
            "plaintext = true\n",
            "plaintext = true\ndrain_delay = \"1s\"\nshutdown_timeout = \"20s\"\n",
        );
    std::fs::write(&config, text).unwrap();
    let s = Serve::start(&config, &[]);
    let channels = [s.channel().await, s.channel().await];
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for i in 0..16 {
        let ch = channels[i % 2].clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut signer = pb::signer_client::SignerClient::new(ch);
            let mut outcomes: HashMap<&'static str, usize> = HashMap::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = signer
                    .sign(pb::SignRequest {
                        // RSA keeps calls in flight long enough to matter.
                        key: if i % 4 == 0 { "demo-rsa" } else { "demo-ecdsa" }.into(),
                        input: Some(pb::sign_request::Input::Message(b"load".to_vec())),
                        ..Default::default()
                    })
                    .await;
                // A call the closing connection never carried fails in the
                // transport (UNAVAILABLE in most gRPC clients; tonic says
                // CANCELLED or UNKNOWN); anything else came from the server.
                let code = match r {
                    Ok(_) => "ok",
                    Err(e) if e.code() == tonic::Code::Unavailable => "transport",
                    Err(e)
                        if std::error::Error::source(&e).is_some_and(|s| {
                            s.downcast_ref::<tonic::transport::Error>().is_some()
                        }) =>
                    {
                        "transport"
                    }
                    Err(e) => panic!("the server answered {:?}: {}", e.code(), e.message()),
                };
                *outcomes.entry(code).or_default() += 1;
                if code != "ok" {
                    // The server is going away: stop this client.
                    break;
                }
            }
            outcomes
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    s.signal("-TERM");
    // Draining: not ready, still alive, still answering.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.admin_health("").await, ServingStatus::NotServing);
    assert_eq!(s.admin_health("liveness").await, ServingStatus::Serving);
    let mut s = s;
    let status = tokio::task::spawn_blocking(move || {
        let st = s.child.wait();
        (st, s)
    })
    .await
    .unwrap();
    let (status, s) = status;
    assert!(status.unwrap().success());
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total: HashMap<&'static str, usize> = HashMap::new();
    for t in tasks {
        for (k, v) in t.await.unwrap() {
            *total.entry(k).or_default() += v;
        }
    }
    let ok = total.get("ok").copied().unwrap_or(0);
    assert!(ok > 0, "{total:?}");
    // Every call the server took, it answered: the audit trail holds
    // exactly the calls the clients saw succeed, so none of the calls that
    // failed in the transport had reached a handler, and none was cut off.
    let audited: Vec<String> = std::fs::read_to_string(&audit)
        .unwrap()
        .lines()
        .filter(|l| l.contains("\"rpc\":\"signet.v1.Signer/Sign\""))
        .map(String::from)
        .collect();
    assert!(audited.iter().all(|l| l.contains("\"outcome\":\"ok\"")));
    assert_eq!(audited.len(), ok, "{total:?}");
    s.wait_log(0, "signet stopped");
}

/// While signet starts (here: waiting for a Redis that does not answer),
/// the admin port is up and says alive but not ready; the gRPC port is not
/// listening yet. Start-up then fails with a clear error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alive_but_not_ready_during_start_up() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "signet.toml",
        &format!(
            "{BASE}\n[http]\nreplay_store = \"redis\"\nredis_url = \"redis://127.0.0.1:{port}\"\n"
        ),
    );
    let mut s = Serve::spawn(&config, &[], false);
    assert_eq!(s.admin_health("liveness").await, ServingStatus::Serving);
    for svc in ["", "signet.v1.Signer", "signet.v1.KeyAdmin"] {
        assert_eq!(
            s.admin_health(svc).await,
            ServingStatus::NotServing,
            "{svc:?}"
        );
    }
    let text = scrape(&s.admin);
    assert_eq!(sample(&text, "signet_ready"), Some(0.0), "{text}");
    assert!(s.grpc.is_empty(), "the gRPC port is not up yet");
    let status = tokio::task::spawn_blocking(move || {
        let st = s.child.wait();
        (st, s)
    })
    .await
    .unwrap();
    assert!(!status.0.unwrap().success());
    // The reader thread may still be draining the last lines.
    status.1.wait_log(0, "Redis");
}
