//! Component identifiers and their values (RFC 9421 §2): the derived
//! components of a request and its header fields, with the `sf`, `key`
//! and `bs` parameters. Structured Fields are parsed and serialized by
//! `sfv`; URLs are split by `http::Uri`, queries decoded by
//! `form_urlencoded`.

use std::collections::BTreeMap;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sfv::{BareItem, Dictionary, FieldType as _, Item, List, ListEntry, Parser};

use crate::config::rfc9421::FieldType;

/// The derived components a request signature may cover (§2.2).
pub(crate) const DERIVED: [&str; 8] = [
    "@method",
    "@target-uri",
    "@authority",
    "@scheme",
    "@request-target",
    "@path",
    "@query",
    "@query-param",
];

/// Header fields of registered Structured Field types (RFC 9651's
/// registry, the fields a request carries), for `sf` and `key`.
const REGISTERED: [(&str, FieldType); 9] = [
    ("accept-ch", FieldType::List),
    ("cache-status", FieldType::List),
    ("client-cert", FieldType::Item),
    ("content-digest", FieldType::Dictionary),
    ("priority", FieldType::Dictionary),
    ("repr-digest", FieldType::Dictionary),
    ("signature", FieldType::Dictionary),
    ("signature-input", FieldType::Dictionary),
    ("want-content-digest", FieldType::Dictionary),
];

/// Why a component has no value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Unresolved {
    /// The header field is not in the message.
    Absent(String),
    /// The message cannot give the value (a malformed field, a repeated
    /// query parameter, an origin-form URL for `@scheme`).
    Invalid(String),
}

/// A checked component identifier: a lowercase String item whose
/// parameters are the ones RFC 9421 defines for it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Component(pub(crate) Item);

impl Component {
    /// Parses `text`: a bare name (`content-type`, `@method`) or a
    /// serialized identifier (`"@query-param";name="id"`).
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let item = if text.starts_with('"') {
            Parser::new(text)
                .parse_item()
                .map_err(|_| format!("{text:?} is not a component identifier"))?
        } else {
            let s = sfv::String::from_string(text.to_string())
                .map_err(|_| format!("{text:?} is not a component name"))?;
            Item::new(BareItem::String(s))
        };
        Self::check(item)
    }

    /// Checks an identifier read from a `Signature-Input` inner list.
    pub(crate) fn check(item: Item) -> Result<Self, String> {
        let Some(name) = item.bare_item.as_string().map(|s| s.as_str().to_string()) else {
            return Err("a component identifier is a String".into());
        };
        let params: Vec<&str> = item.params.keys().map(|k| k.as_str()).collect();
        let flag = |k: &str| item.params.get(k).map(|v| v.as_boolean() == Some(true));
        if name.starts_with('@') {
            if !DERIVED.contains(&name.as_str()) {
                return Err(format!("{name} is not a derived component of a request"));
            }
            if name == "@query-param" {
                let ok = params == ["name"]
                    && item
                        .params
                        .get("name")
                        .and_then(BareItem::as_string)
                        .is_some();
                if !ok {
                    return Err("@query-param takes one parameter, name, a String".into());
                }
            } else if !params.is_empty() {
                return Err(format!("{name} takes no parameters"));
            }
        } else {
            let token = !name.is_empty()
                && name.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
                });
            if !token {
                return Err(format!("{name:?} is not a lowercase field name"));
            }
            for p in &params {
                match *p {
                    "sf" | "bs" if flag(p) == Some(true) => {}
                    "key"
                        if item
                            .params
                            .get("key")
                            .and_then(BareItem::as_string)
                            .is_some() => {}
                    "req" | "tr" => {
                        return Err(format!(
                            "{p} (responses and trailers) is not for a request signer"
                        ))
                    }
                    _ => return Err(format!("{name}: unknown or malformed parameter {p}")),
                }
            }
            if params.contains(&"bs") && params.len() > 1 {
                return Err(format!("{name}: bs cannot be combined with sf or key"));
            }
        }
        Ok(Self(item))
    }

    /// The component's name (`@method`, `content-type`).
    pub(crate) fn name(&self) -> &str {
        self.0.bare_item.as_string().map_or("", |s| s.as_str())
    }

    fn param_str(&self, k: &str) -> Option<&str> {
        self.0
            .params
            .get(k)
            .and_then(BareItem::as_string)
            .map(|s| s.as_str())
    }

    fn has(&self, k: &str) -> bool {
        self.0.params.contains_key(k)
    }

    /// Whether `other` is the same component (the same name and the same
    /// parameters, in any order).
    pub(crate) fn same(&self, other: &Component) -> bool {
        self.0.bare_item == other.0.bare_item
            && self.0.params.len() == other.0.params.len()
            && self
                .0
                .params
                .iter()
                .all(|(k, v)| other.0.params.get(k) == Some(v))
    }

    /// The identifier as the signature base writes it.
    pub(crate) fn serialized(&self) -> String {
        self.0.serialize()
    }
}

/// A request as the components see it.
pub(crate) struct Message<'a> {
    pub method: &'a str,
    pub uri: http::Uri,
    pub headers: &'a [(String, String)],
    pub field_types: &'a BTreeMap<String, FieldType>,
}

/// The HTML form percent-encode set with space as `%20` (RFC 9421
/// §2.2.8): everything but ASCII alphanumerics and `*-._`.
const QUERY_PARAM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'*')
    .remove(b'-')
    .remove(b'.')
    .remove(b'_');

impl Message<'_> {
    /// The value of `c`.
    pub(crate) fn value(&self, c: &Component) -> Result<String, Unresolved> {
        let invalid = |m: String| Unresolved::Invalid(m);
        let path = || match self.uri.path() {
            "" => "/".to_string(),
            p => p.to_string(),
        };
        let query = || {
            self.uri
                .query()
                .map(|q| format!("?{q}"))
                .unwrap_or_default()
        };
        let need_absolute = |what: &str| {
            invalid(format!(
                "{what} needs an absolute URL (scheme://authority/...)"
            ))
        };
        match c.name() {
            "@method" => Ok(self.method.to_string()),
            "@target-uri" => {
                let (Some(s), Some(a)) = (self.uri.scheme_str(), self.uri.authority()) else {
                    return Err(need_absolute("@target-uri"));
                };
                Ok(format!("{s}://{a}{}{}", path(), query()))
            }
            "@authority" => self.authority(),
            "@scheme" => self
                .uri
                .scheme_str()
                .map(str::to_ascii_lowercase)
                .ok_or_else(|| need_absolute("@scheme")),
            "@request-target" => Ok(format!("{}{}", path(), query())),
            "@path" => Ok(path()),
            "@query" => Ok(format!("?{}", self.uri.query().unwrap_or(""))),
            "@query-param" => self.query_param(c.param_str("name").unwrap_or_default()),
            _ => self.field(c),
        }
    }

    /// `@authority`: the host in lowercase and the port unless it is the
    /// scheme's default; from `Host` for an origin-form URL.
    fn authority(&self) -> Result<String, Unresolved> {
        let Some(a) = self.uri.authority() else {
            let host = self.lines("host");
            return match host.as_slice() {
                [h] if !h.is_empty() => Ok(h.to_ascii_lowercase()),
                [] => Err(Unresolved::Absent("host".into())),
                _ => Err(Unresolved::Invalid("one Host field is needed".into())),
            };
        };
        let host = a.host().to_ascii_lowercase();
        let default = match self
            .uri
            .scheme_str()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("http") => Some(80),
            Some("https") => Some(443),
            _ => None,
        };
        Ok(match a.port_u16() {
            Some(p) if Some(p) != default => format!("{host}:{p}"),
            _ => host,
        })
    }

    fn query_param(&self, name: &str) -> Result<String, Unresolved> {
        let want = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
        let query = self.uri.query().unwrap_or("");
        let values: Vec<_> = form_urlencoded::parse(query.as_bytes())
            .filter(|(k, _)| *k == want)
            .map(|(_, v)| v)
            .collect();
        match values.as_slice() {
            [v] => Ok(utf8_percent_encode(v, QUERY_PARAM).to_string()),
            [] => Err(Unresolved::Absent(format!("query parameter {name}"))),
            _ => Err(Unresolved::Invalid(format!(
                "query parameter {name} occurs more than once (RFC 9421 §2.2.8)"
            ))),
        }
    }

    /// Every line of the header field `name`, trimmed.
    fn lines(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim_matches([' ', '\t']))
            .collect()
    }

    fn field(&self, c: &Component) -> Result<String, Unresolved> {
        let name = c.name();
        let lines = self.lines(name);
        if lines.is_empty() {
            return Err(Unresolved::Absent(name.to_string()));
        }
        if lines
            .iter()
            .any(|l| l.bytes().any(|b| b.is_ascii_control() && b != b'\t'))
        {
            return Err(Unresolved::Invalid(format!(
                "{name} holds a control character"
            )));
        }
        let joined = lines.join(", ");
        let malformed = || Unresolved::Invalid(format!("{name} is not a valid Structured Field"));
        if c.has("bs") {
            let list: List = lines
                .iter()
                .map(|l| ListEntry::from(Item::new(BareItem::ByteSequence(l.as_bytes().to_vec()))))
                .collect();
            return list.serialize().ok_or_else(malformed);
        }
        if let Some(key) = c.param_str("key") {
            let dict: Dictionary = Parser::new(&joined).parse().map_err(|_| malformed())?;
            let member = dict
                .get(key)
                .ok_or_else(|| Unresolved::Absent(format!("{name} member {key}")))?;
            return vec![member.clone()].serialize().ok_or_else(malformed);
        }
        if c.has("sf") {
            let ty = self
                .field_types
                .get(name)
                .copied()
                .or_else(|| REGISTERED.iter().find(|(n, _)| *n == name).map(|(_, t)| *t))
                .ok_or_else(|| {
                    Unresolved::Invalid(format!(
                        "{name} has no known Structured Field type (set field_types)"
                    ))
                })?;
            let p = Parser::new(&joined);
            let out = match ty {
                FieldType::Item => p.parse::<Item>().map(|i| Some(i.serialize())),
                FieldType::List => p.parse::<List>().map(|l| l.serialize()),
                FieldType::Dictionary => p.parse::<Dictionary>().map(|d| d.serialize()),
            };
            return out.ok().flatten().ok_or_else(malformed);
        }
        Ok(joined)
    }
}
