//! The sampling decision, made before a call's span exists.
//!
//! The tracing bridge builds every span it is given (its fields, its
//! OpenTelemetry builder, its parent link) and asks the SDK's sampler only
//! when the span ends, so an unsampled call used to cost nearly what a
//! sampled one does (docs/benchmarks.md, "The cost of telemetry"). Here the
//! sampler configured by the standard variables (`OTEL_TRACES_SAMPLER`,
//! `OTEL_TRACES_SAMPLER_ARG`, read by the SDK's own `Config`) decides at the
//! start of the call; an unsampled call gets no span at all, and the SDK's
//! provider samples whatever span it is then given (`AlwaysOn`), so each
//! decision is made once.
//!
//! The decision is the SDK's sampler's, with its own semantics: a remote
//! parent's sampled flag for the `parentbased_*` samplers, the trace id for
//! `traceidratio` (a fresh random one for a call without a parent, as the
//! SDK would draw). Spans inside a call follow the call's decision; spans
//! outside any call (the scheduler's backend work) are roots and get a
//! decision of their own.

use std::sync::OnceLock;

use opentelemetry::trace::{SpanKind, TraceContextExt, TraceId};
use opentelemetry::Context;
use opentelemetry_sdk::trace::{SamplingDecision, ShouldSample};

static SAMPLER: OnceLock<Box<dyn ShouldSample>> = OnceLock::new();

/// The sampler the standard variables configure, for [`install`]; the SDK
/// provider itself is then built with `Sampler::AlwaysOn`.
pub(crate) fn from_env() -> Box<dyn ShouldSample> {
    opentelemetry_sdk::trace::Config::default().sampler
}

/// Makes `sampler` the one that decides (once per process; a second call
/// keeps the first).
pub(crate) fn install(sampler: Box<dyn ShouldSample>) {
    let _ = SAMPLER.set(sampler);
}

/// Is a span named `name` with `parent` (a remote parent from
/// `traceparent`, or none) to be made and exported? False when no sampler
/// is installed (no traces are exported).
pub(crate) fn sampled(parent: Option<&Context>, name: &str, kind: SpanKind) -> bool {
    SAMPLER
        .get()
        .is_some_and(|s| decide(&**s, parent, name, kind))
}

fn decide(s: &dyn ShouldSample, parent: Option<&Context>, name: &str, kind: SpanKind) -> bool {
    let trace_id = match parent {
        Some(cx) if cx.span().span_context().is_valid() => cx.span().span_context().trace_id(),
        _ => TraceId::from(rand::random::<u128>()),
    };
    let r = s.should_sample(parent, trace_id, name, &kind, &[], &[]);
    // RecordOnly (recorded, never exported) is of no use to anyone here.
    r.decision == SamplingDecision::RecordAndSample
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceState};
    use opentelemetry_sdk::trace::Sampler;

    use super::*;

    fn remote(sampled: bool) -> Context {
        let flags = if sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from(7u128),
            SpanId::from(9u64),
            flags,
            true,
            TraceState::default(),
        ))
    }

    fn yes(s: &Sampler, parent: Option<&Context>) -> bool {
        decide(s, parent, "rpc", SpanKind::Server)
    }

    #[test]
    fn each_sampler_decides_as_its_name_says() {
        assert!(!yes(&Sampler::AlwaysOff, None));
        assert!(!yes(&Sampler::AlwaysOff, Some(&remote(true))));
        assert!(yes(&Sampler::AlwaysOn, None));
        // Parent-based: the caller's flag decides; no caller, the root one.
        let pb = Sampler::ParentBased(Box::new(Sampler::AlwaysOn));
        assert!(yes(&pb, None));
        assert!(yes(&pb, Some(&remote(true))));
        assert!(!yes(&pb, Some(&remote(false))));
        let pb_off = Sampler::ParentBased(Box::new(Sampler::AlwaysOff));
        assert!(!yes(&pb_off, None));
        assert!(yes(&pb_off, Some(&remote(true))));
        // A ratio: a fresh trace id per call without a parent, so about
        // that share of them; with a parent, its trace id decides, the
        // same way every time.
        let ratio = Sampler::TraceIdRatioBased(0.25);
        let n = (0..4000).filter(|_| yes(&ratio, None)).count();
        assert!((800..1200).contains(&n), "{n} of 4000 sampled at 0.25");
        let cx = remote(false);
        let first = yes(&ratio, Some(&cx));
        assert!((0..50).all(|_| yes(&ratio, Some(&cx)) == first));
    }
}
