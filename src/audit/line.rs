//! One record as one JSON line, written by the writer thread straight into
//! its buffer.
//!
//! The bytes are those serde_json writes for [`Record`]'s derived
//! `Serialize` (the tests hold the two to the same output for any record),
//! made cheaper where the profile found the cost (issue 18,
//! docs/benchmarks.md): serde_json scans every string a byte at a time for
//! characters to escape, about 3,000 instructions for a `Sign` record.
//! Nearly every string here is a name, an id or a code that needs no
//! escape; such a string is checked in one pass the compiler vectorises
//! and copied as it is. Any other string, and a batch's items, go through
//! serde_json. The time is formatted once per second, then its
//! milliseconds appended; the source address once for a run of records
//! from it.

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use super::Record;

/// Formats records; keeps the current second's text.
#[derive(Default)]
pub(super) struct Line {
    /// The whole second last formatted, and its text up to the `.`.
    second: Option<(u64, String)>,
    /// The source address last formatted, and its text: a connection's
    /// calls come from one address.
    source: Option<(IpAddr, String)>,
}

impl Line {
    /// Appends `r` as JSON (without the newline).
    pub(super) fn write(&mut self, r: &Record, out: &mut Vec<u8>) -> serde_json::Result<()> {
        out.extend_from_slice(b"{\"time\":\"");
        self.time(r.time, out);
        out.push(b'"');
        if let Some(v) = &r.request_id {
            field(out, "request_id", v)?;
        }
        if let Some(v) = &r.identity {
            field(out, "identity", v)?;
        }
        if let Some(ip) = r.source {
            // An address's text never needs escaping.
            name(out, "source");
            let text = match &self.source {
                Some((last, text)) if *last == ip => text,
                _ => &self.source.insert((ip, ip.to_string())).1,
            };
            out.push(b'"');
            out.extend_from_slice(text.as_bytes());
            out.push(b'"');
        }
        field(out, "rpc", &r.rpc)?;
        if let Some(v) = r.operation {
            field(out, "operation", v)?;
        }
        if let Some(v) = &r.key {
            field(out, "key", v)?;
        }
        if let Some(v) = r.version {
            name(out, "version");
            serde_json::to_writer(&mut *out, &v)?;
        }
        if let Some(v) = &r.profile {
            field(out, "profile", v)?;
        }
        field(out, "outcome", r.outcome)?;
        if let Some(v) = r.code {
            field(out, "code", v)?;
        }
        if let Some(v) = &r.reason {
            field(out, "reason", v)?;
        }
        if let Some(d) = &r.message_sha256 {
            name(out, "message_sha256");
            let mut hex = [0u8; 64];
            hex::encode_to_slice(d, &mut hex).map_err(|_| serde::ser::Error::custom("hex"))?;
            out.push(b'"');
            out.extend_from_slice(&hex);
            out.push(b'"');
        }
        if let Some(items) = &r.items {
            name(out, "items");
            serde_json::to_writer(&mut *out, items)?;
        }
        out.push(b'}');
        Ok(())
    }

    /// RFC 3339, UTC, milliseconds, as `humantime` writes it.
    fn time(&mut self, t: SystemTime, out: &mut Vec<u8>) {
        let Ok(since) = t.duration_since(UNIX_EPOCH) else {
            out.extend_from_slice(humantime::format_rfc3339_millis(t).to_string().as_bytes());
            return;
        };
        let secs = since.as_secs();
        let prefix = match &self.second {
            Some((s, p)) if *s == secs => p,
            _ => {
                let whole = UNIX_EPOCH + std::time::Duration::from_secs(secs);
                let mut p = humantime::format_rfc3339_seconds(whole).to_string();
                // `...:SSZ`: the text before the fraction.
                p.pop();
                p.push('.');
                &self.second.insert((secs, p)).1
            }
        };
        out.extend_from_slice(prefix.as_bytes());
        let ms = since.subsec_millis();
        out.extend_from_slice(&[
            b'0' + (ms / 100) as u8,
            b'0' + (ms / 10 % 10) as u8,
            b'0' + (ms % 10) as u8,
            b'Z',
        ]);
    }
}

/// `,"name":`
fn name(out: &mut Vec<u8>, name: &'static str) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
}

/// `,"name":"value"`, the value escaped as JSON requires.
fn field(out: &mut Vec<u8>, n: &'static str, v: &str) -> serde_json::Result<()> {
    name(out, n);
    if needs_no_escape(v) {
        out.push(b'"');
        out.extend_from_slice(v.as_bytes());
        out.push(b'"');
        Ok(())
    } else {
        serde_json::to_writer(&mut *out, v)
    }
}

/// No byte serde_json escapes: a control character, `"` or `\`. (It
/// writes every other character, non-ASCII too, as it is.) No early exit,
/// so the loop vectorises.
fn needs_no_escape(s: &str) -> bool {
    s.bytes()
        .fold(true, |ok, b| ok & (b >= 0x20) & (b != b'"') & (b != b'\\'))
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;
    use crate::audit::ItemRecord;

    fn line(r: &Record) -> String {
        let mut out = Vec::new();
        Line::default().write(r, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_sign_record_is_what_serde_writes() {
        let mut r = Record::call("signet.v1.Signer/Sign");
        r.time = UNIX_EPOCH + Duration::from_millis(1_764_752_687_007);
        r.request_id = Some("4f2a".into());
        r.identity = Some("payments".into());
        r.source = Some(IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, 7]));
        r.operation = Some("sign");
        r.key = Some("merchant-42".into());
        r.version = Some(3);
        r.message_sha256 = Some([0xab; 32]);
        assert_eq!(line(&r), serde_json::to_string(&r).unwrap());
        assert!(line(&r).starts_with("{\"time\":\"2025-12-03T09:04:47.007Z\""));
    }

    #[test]
    fn strings_that_need_escaping_are_escaped() {
        let mut r = Record::call("x");
        r.reason = Some("a \"quote\", a \\ and a\nnewline\u{1} é".into());
        r.key = Some("\u{7f}".into());
        let text = line(&r);
        assert_eq!(text, serde_json::to_string(&r).unwrap());
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["reason"], "a \"quote\", a \\ and a\nnewline\u{1} é");
    }

    #[test]
    fn one_formatter_keeps_the_time_right_across_seconds() {
        let mut l = Line::default();
        for ms in [999u64, 1_000, 1_001, 61_000, 59_999, 86_400_000] {
            let mut r = Record::call("x");
            r.time = UNIX_EPOCH + Duration::from_millis(1_700_000_000_000 + ms);
            let mut out = Vec::new();
            l.write(&r, &mut out).unwrap();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(&r).unwrap()
            );
        }
    }

    #[test]
    fn one_formatter_keeps_the_source_right_across_addresses() {
        let mut l = Line::default();
        let a = IpAddr::from([192, 0, 2, 7]);
        let b = IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]);
        for ip in [a, a, b, a, b, b] {
            let mut r = Record::call("x");
            r.source = Some(ip);
            let mut out = Vec::new();
            l.write(&r, &mut out).unwrap();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(&r).unwrap()
            );
        }
    }

    fn opt_str() -> impl Strategy<Value = Option<String>> {
        proptest::option::of(any::<String>())
    }

    proptest! {
        #[test]
        fn any_record_is_what_serde_writes(
            ms in 0u64..4_102_444_800_000,
            request_id in opt_str(),
            identity in opt_str(),
            source in proptest::option::of(any::<IpAddr>()),
            rpc in any::<String>(),
            key in opt_str(),
            version in proptest::option::of(any::<u32>()),
            profile in opt_str(),
            reason in opt_str(),
            digest in proptest::option::of(any::<[u8; 32]>()),
            items in proptest::option::of(proptest::collection::vec((any::<String>(), any::<Option<u32>>()), 0..3)),
        ) {
            let r = Record {
                time: UNIX_EPOCH + Duration::from_millis(ms),
                request_id: request_id.map(Into::into),
                identity: identity.map(Into::into),
                source,
                rpc: Cow::Owned(rpc),
                operation: Some("admin.read"),
                key,
                version,
                profile,
                outcome: "error",
                code: Some("INVALID_ARGUMENT"),
                reason,
                message_sha256: digest,
                items: items.map(|v| v.into_iter().map(|(key, version)| ItemRecord {
                    key,
                    version,
                    code: Some("OK"),
                    ..Default::default()
                }).collect()),
            };
            prop_assert_eq!(line(&r), serde_json::to_string(&r).unwrap());
        }
    }
}
