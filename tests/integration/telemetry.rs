//! Telemetry seen from outside a real `signet serve`: traces and metrics
//! received by an OTLP collector (in process, speaking the real OTLP/gRPC
//! protocol), spans continuing the caller's trace and carrying no secret,
//! and the same calls counted on the admin port's `/metrics`.

use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use signet::api::pb;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::support::otlp::collector;
use crate::support::process::{sample, scrape, serve, write_file, WaitFor, DEMO_WITH_ADMIN};

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
    let config = write_file(
        dir.path(),
        "signet.toml",
        &format!(
            "{DEMO_WITH_ADMIN}\n[[profiles]]\nname = \"hooks\"\npreset = \"standard-webhooks\"\nkey = \"demo-hmac\"\n"
        ),
    );
    let s = serve()
        .config(&config)
        .envs(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_SERVICE_NAME", "signet-under-test"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "300"),
        ])
        .wait_for(WaitFor::Both)
        .start();
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
    // A caller that did not sample its trace: under the default
    // parent-based sampler signet decides before making a span, and makes
    // none (nor a child span) for this call.
    let unsampled = "5d2c1e0f9a8b7c6d5e4f3a2b1c0d9e8f";
    let mut req = tonic::Request::new(pb::SignRequest {
        key: "demo-hmac".into(),
        input: Some(pb::sign_request::Input::Message(b"y".to_vec())),
        ..Default::default()
    });
    req.metadata_mut().insert(
        "traceparent",
        format!("00-{unsampled}-1122334455667788-00")
            .parse()
            .unwrap(),
    );
    signer.sign(req).await.unwrap();
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
            headers: Vec::new(),
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
    // Exported in order of ending: the unsampled call ended before trace3's.
    assert!(
        !spans.iter().any(|(_, s)| hex(&s.trace_id) == unsampled),
        "a span of the caller's unsampled trace was exported"
    );
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
    let id = attr_str(&rpc.attributes, "signet.request_id").unwrap_or_default();
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "request id {id:?}"
    );
    // Only what says something about the call: none of the attributes the
    // tracing bridge adds by default (source location, thread, target,
    // busy and idle times).
    for a in [
        "code.filepath",
        "code.file.path",
        "code.lineno",
        "code.namespace",
        "thread.id",
        "thread.name",
        "target",
        "busy_ns",
        "idle_ns",
    ] {
        assert!(attr(&rpc.attributes, a).is_none(), "{a} on the call's span");
    }

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
    // The traced call and the unsampled one.
    assert_eq!(ok, Some(2.0), "{text}");
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

    // A batch: its items counted by outcome, the call once.
    let batch = signer
        .sign_batch(pb::SignBatchRequest {
            items: ["demo-hmac", "demo-hmac", "no-such-key"]
                .iter()
                .map(|k| pb::SignRequest {
                    key: (*k).into(),
                    input: Some(pb::sign_request::Input::Message(b"m".to_vec())),
                    ..Default::default()
                })
                .collect(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(batch.results.len(), 3);
    let text = scrape(&s.admin);
    for (outcome, n) in [("ok", 2.0), ("error", 1.0)] {
        let line = format!(r#"signet_batch_items_total{{method="SignBatch",outcome="{outcome}"}}"#);
        assert_eq!(sample(&text, &line), Some(n), "{line}\n{text}");
    }

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
