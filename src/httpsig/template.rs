//! Profile templates: literal text with `{placeholder}`s; `{{` and `}}`
//! stand for literal braces; nothing else is special (docs/http-signing.md,
//! "Templates").

use std::fmt;

/// A placeholder of a template.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Placeholder {
    /// T, the timestamp.
    Timestamp,
    /// N, the nonce.
    Nonce,
    /// The profile's identity.
    Identity,
    /// The profile's client id.
    ClientId,
    /// The profile's merchant id.
    MerchantId,
    /// M, the method.
    RequestMethod,
    /// U, the URL in the profile's form.
    Url,
    /// P, the encoded body.
    Payload,
    /// E, the encoded signature (signature template only).
    Signature,
}

impl Placeholder {
    /// Every placeholder, in the table's order.
    pub(crate) const ALL: [Placeholder; 9] = [
        Placeholder::Timestamp,
        Placeholder::Nonce,
        Placeholder::Identity,
        Placeholder::ClientId,
        Placeholder::MerchantId,
        Placeholder::RequestMethod,
        Placeholder::Url,
        Placeholder::Payload,
        Placeholder::Signature,
    ];

    /// The name between the braces.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Placeholder::Timestamp => "timestamp",
            Placeholder::Nonce => "nonce",
            Placeholder::Identity => "identity",
            Placeholder::ClientId => "client_id",
            Placeholder::MerchantId => "merchant_id",
            Placeholder::RequestMethod => "request_method",
            Placeholder::Url => "url",
            Placeholder::Payload => "payload",
            Placeholder::Signature => "signature",
        }
    }
}

impl fmt::Display for Placeholder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{}}}", self.name())
    }
}

/// One piece of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Part {
    /// Literal text (braces already unescaped).
    Literal(String),
    /// A placeholder.
    Placeholder(Placeholder),
}

/// A parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Parses `text`. Errors name the problem: an unknown placeholder, an
    /// unclosed `{`, or a lone `}`.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            if rest.starts_with("{{") {
                lit.push('{');
                rest = &rest[2..];
            } else if rest.starts_with("}}") {
                lit.push('}');
                rest = &rest[2..];
            } else if c == '{' {
                let end = rest
                    .find('}')
                    .ok_or_else(|| format!("unclosed '{{' in template {text:?}"))?;
                let name = &rest[1..end];
                let p = Placeholder::ALL
                    .into_iter()
                    .find(|p| p.name() == name)
                    .ok_or_else(|| format!("unknown placeholder {{{name}}}"))?;
                if !lit.is_empty() {
                    parts.push(Part::Literal(std::mem::take(&mut lit)));
                }
                parts.push(Part::Placeholder(p));
                rest = &rest[end + 1..];
            } else if c == '}' {
                return Err(format!("lone '}}' in template {text:?} (write '}}}}')"));
            } else {
                lit.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Literal(lit));
        }
        Ok(Self { parts })
    }

    /// The pieces, in order.
    pub(crate) fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// How many times `p` occurs.
    pub(crate) fn count(&self, p: Placeholder) -> usize {
        self.parts
            .iter()
            .filter(|x| **x == Part::Placeholder(p))
            .count()
    }

    /// True when `p` occurs.
    pub(crate) fn uses(&self, p: Placeholder) -> bool {
        self.count(p) > 0
    }

    /// Substitutes every placeholder with `value(p)`.
    pub(crate) fn render(&self, mut value: impl FnMut(Placeholder) -> String) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(l) => out.push_str(l),
                Part::Placeholder(p) => out.push_str(&value(*p)),
            }
        }
        out
    }
}

impl fmt::Display for Template {
    /// The template as it would be written (braces in literals doubled).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.parts {
            match part {
                Part::Literal(l) => f.write_str(&l.replace('{', "{{").replace('}', "}}"))?,
                Part::Placeholder(p) => write!(f, "{p}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_placeholders_and_escapes() {
        let t = Template::parse("t={timestamp},v1={signature} {{x}}").unwrap();
        assert_eq!(
            t.parts(),
            &[
                Part::Literal("t=".into()),
                Part::Placeholder(Placeholder::Timestamp),
                Part::Literal(",v1=".into()),
                Part::Placeholder(Placeholder::Signature),
                Part::Literal(" {x}".into()),
            ]
        );
        assert_eq!(t.count(Placeholder::Signature), 1);
        let s = t.render(|p| p.name().to_uppercase());
        assert_eq!(s, "t=TIMESTAMP,v1=SIGNATURE {x}");
    }

    #[test]
    fn refuses_what_is_not_a_template() {
        assert!(Template::parse("{nope}")
            .unwrap_err()
            .contains("unknown placeholder {nope}"));
        assert!(Template::parse("{timestamp")
            .unwrap_err()
            .contains("unclosed"));
        assert!(Template::parse("a}b").unwrap_err().contains("lone"));
        assert!(Template::parse("{}").is_err());
        assert!(Template::parse("{ timestamp}").is_err());
        assert_eq!(Template::parse("").unwrap().parts(), &[]);
        assert_eq!(
            Template::parse("{{}}").unwrap().parts(),
            &[Part::Literal("{}".into())]
        );
    }

    proptest! {
        /// No input panics; what parses renders back to an equivalent
        /// template when every placeholder is written as itself.
        #[test]
        fn never_panics_and_round_trips(s in "\\PC*") {
            if let Ok(t) = Template::parse(&s) {
                prop_assert_eq!(Template::parse(&t.to_string()).unwrap(), t);
            }
        }

        #[test]
        fn brace_heavy_inputs_never_panic(s in "[{}a-z_]{0,40}") {
            let _ = Template::parse(&s);
        }
    }
}
