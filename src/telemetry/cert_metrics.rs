//! The certificate gauges: how long each signing version's certificate has
//! left, and whether the version will go on signing after it expires (what
//! a counterparty then refuses). `docs/operations.md` has the alert.

use std::time::SystemTime;

use opentelemetry::metrics::Meter;
use opentelemetry::KeyValue;

use super::metrics::{live_sources, KeyGauge};

/// Calls `f` with (key, version) labels, seconds to notAfter (negative
/// once past) and the outlived flag of every certificate.
fn each(mut f: impl FnMut([KeyValue; 2], f64, bool)) {
    let now = SystemTime::now();
    for source in live_sources() {
        for KeyGauge {
            name, certificates, ..
        } in source.key_gauges(now)
        {
            for (version, not_after, outlived) in certificates {
                let secs = match not_after.duration_since(now) {
                    Ok(d) => d.as_secs_f64(),
                    Err(e) => -e.duration().as_secs_f64(),
                };
                let labels = [
                    KeyValue::new("key", name.clone()),
                    KeyValue::new("version", i64::from(version)),
                ];
                f(labels, secs, outlived);
            }
        }
    }
}

pub(super) fn register(m: &Meter) {
    m.f64_observable_gauge("signet.key.certificate_expiry")
        .with_unit("s")
        .with_description(
            "Seconds until the leaf certificate of a PENDING, ACTIVE or RETIRING version \
             expires (negative: expired)",
        )
        .with_callback(|o| each(|labels, secs, _| o.observe(secs, &labels)))
        .build();
    m.u64_observable_gauge("signet.key.certificate_outlived")
        .with_description(
            "1 when a version will still sign after its certificate expires (it is ACTIVE or \
             PENDING and no scheduled rotation replaces it first), else 0",
        )
        .with_callback(|o| each(|labels, _, outlived| o.observe(u64::from(outlived), &labels)))
        .build();
}
