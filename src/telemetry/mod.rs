//! Logs, traces and metrics.
//!
//! Logs: `tracing` with a text or JSON formatter on stderr. Traces: the
//! spans of [`rpc`], exported over OTLP (gRPC) when the standard
//! `OTEL_EXPORTER_OTLP_*` variables name an endpoint. Metrics: see
//! [`metrics`]; always on the admin port's `/metrics`, and over OTLP when
//! configured.

mod bound;
mod cert_metrics;
pub(crate) mod metrics;
pub(crate) mod rpc;
mod sampling;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::error::{ConfigError, StartupError};

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum LogFormat {
    /// Human-readable.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// What to flush at exit.
#[derive(Debug, Default)]
pub(crate) struct Telemetry {
    tracer: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Telemetry {
    /// Exports what is pending and stops the exporters.
    pub(crate) fn shutdown(self) {
        if let Some(t) = self.tracer {
            let _ = t.force_flush();
            let _ = t.shutdown();
        }
        metrics::shutdown();
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Where OTLP goes, from the standard variables: (traces on, metrics on).
fn otlp_wanted() -> Result<(bool, bool), ConfigError> {
    otlp_wanted_from(env)
}

fn otlp_wanted_from(env: impl Fn(&str) -> Option<String>) -> Result<(bool, bool), ConfigError> {
    if env("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Ok((false, false));
    }
    for var in [
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
    ] {
        if let Some(p) = env(var) {
            if p != "grpc" {
                return Err(ConfigError::new(
                    format!("{var}={p}"),
                    "signet exports OTLP over gRPC only; set it to \"grpc\" or unset it",
                ));
            }
        }
    }
    for var in [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    ] {
        if env(var).is_some_and(|e| e.trim().to_ascii_lowercase().starts_with("https:")) {
            return Err(ConfigError::new(
                var,
                "signet sends OTLP to a plaintext gRPC endpoint (http://...), such as a \
                 collector on the node or in the cluster; TLS to the collector is not built in",
            ));
        }
    }
    let common = env("OTEL_EXPORTER_OTLP_ENDPOINT").is_some();
    let off = |var: &str| env(var).is_some_and(|v| v == "none");
    let traces = (common || env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some())
        && !off("OTEL_TRACES_EXPORTER");
    let metrics = (common || env("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT").is_some())
        && !off("OTEL_METRICS_EXPORTER");
    Ok((traces, metrics))
}

/// The resource: `service.name` from `OTEL_SERVICE_NAME`, else the
/// configuration's `service_name`; `OTEL_RESOURCE_ATTRIBUTES` adds to it.
fn resource(service_name: &str) -> opentelemetry_sdk::Resource {
    let mut b = opentelemetry_sdk::Resource::builder().with_attribute(
        opentelemetry::KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
    );
    if env("OTEL_SERVICE_NAME").is_none() {
        b = b.with_service_name(service_name.to_string());
    }
    b.build()
}

fn env_filter(level: &str) -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        // cryptoki logs every mechanism a token lists that it has no name
        // for at ERROR; that is noise, not a fault. Call spans are for the
        // collector; they would only clutter log lines.
        EnvFilter::new(format!(
            "{level},cryptoki::mechanism=off,signet::telemetry=off"
        ))
    })
}

/// Installs logging and, when configured, OTLP export of traces and
/// metrics: `level` is a `tracing` filter, `service_name` the resource's
/// `service.name` unless `OTEL_SERVICE_NAME` is set. Must run inside the
/// Tokio runtime (the gRPC exporter needs it).
pub(crate) fn init(
    level: &str,
    format: LogFormat,
    service_name: &str,
) -> Result<Telemetry, StartupError> {
    let (traces, otlp_metrics) = otlp_wanted()?;
    let resource = resource(service_name);
    let metric_exporter = if otlp_metrics {
        Some(
            opentelemetry_otlp::MetricExporter::builder()
                .with_tonic()
                .build()
                .map_err(|e| StartupError::failed("OTLP metrics exporter", e))?,
        )
    } else {
        None
    };
    metrics::install(resource.clone(), metric_exporter)?;
    let tracer = if traces {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()
            .map_err(|e| StartupError::failed("OTLP trace exporter", e))?;
        // The sampler comes from OTEL_TRACES_SAMPLER (default: parent-based,
        // always on) and decides before a span is made (`sampling`); the
        // provider exports what it is given. Batching from OTEL_BSP_*.
        sampling::install(sampling::from_env());
        Some(
            opentelemetry_sdk::trace::SdkTracerProvider::builder()
                .with_resource(resource)
                .with_sampler(opentelemetry_sdk::trace::Sampler::AlwaysOn)
                .with_batch_exporter(exporter)
                .build(),
        )
    } else {
        None
    };

    use std::io::IsTerminal;
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let fmt = match format {
        LogFormat::Text => fmt.boxed(),
        LogFormat::Json => fmt.json().flatten_event(true).boxed(),
    }
    .with_filter(env_filter(level));
    // Only signet's own spans go to the collector; log events stay in the
    // log.
    let otel = tracer.as_ref().map(|t| {
        use opentelemetry::trace::TracerProvider;
        // No attributes the bridge would add on its own: the source file,
        // line and module, the thread, the target, busy and idle times.
        // They say nothing about the call, and each is encoded and
        // exported with every span (callgrind: an exported call cost about
        // 108,000 instructions, 1.8x a bare tonic call, mostly that). Nor
        // is the OpenTelemetry context made current on each poll: child
        // spans find their parent through tracing, and nothing in signet
        // reads the current context.
        tracing_opentelemetry::layer()
            .with_tracer(t.tracer("signet"))
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_tracked_inactivity(false)
            .with_context_activation(false)
            .with_filter(tracing_subscriber::filter::filter_fn(|m| {
                m.is_span() && m.target().starts_with("signet")
            }))
    });
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(otel)
        .try_init();
    if tracer.is_some() {
        rpc::enable_spans();
    }
    if traces || otlp_metrics {
        tracing::info!(
            traces,
            metrics = otlp_metrics,
            "OpenTelemetry export over OTLP/gRPC"
        );
    }
    Ok(Telemetry { tracer })
}

#[cfg(test)]
mod tests {
    use super::otlp_wanted_from;

    fn wanted(vars: &[(&str, &str)]) -> Result<(bool, bool), String> {
        otlp_wanted_from(|k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
        .map_err(|e| e.to_string())
    }

    #[test]
    fn otlp_follows_the_standard_variables() {
        assert_eq!(wanted(&[]), Ok((false, false)));
        let ep = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317");
        assert_eq!(wanted(&[ep]), Ok((true, true)));
        assert_eq!(
            wanted(&[ep, ("OTEL_SDK_DISABLED", "true")]),
            Ok((false, false))
        );
        assert_eq!(
            wanted(&[ep, ("OTEL_TRACES_EXPORTER", "none")]),
            Ok((false, true))
        );
        assert_eq!(
            wanted(&[ep, ("OTEL_METRICS_EXPORTER", "none")]),
            Ok((true, false))
        );
        assert_eq!(
            wanted(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4317")]),
            Ok((true, false))
        );
        assert_eq!(
            wanted(&[ep, ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]),
            Ok((true, true))
        );
        let e = wanted(&[ep, ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")]).unwrap_err();
        assert!(e.contains("gRPC only"), "{e}");
        let e = wanted(&[("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "https://c:4317")]).unwrap_err();
        assert!(e.contains("plaintext"), "{e}");
    }
}
