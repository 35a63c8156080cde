//! The signature base (RFC 9421 §2.5) and the signature parameters
//! (§2.3), serialized by `sfv`.

use sfv::{BareItem, FieldType as _, InnerList, Integer, Item, Key, List, ListEntry, Parameters};

use super::components::{Component, Message, Unresolved};

/// The parameters of one signature.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Params {
    pub created: Option<i64>,
    pub expires: Option<i64>,
    pub keyid: Option<String>,
    pub alg: Option<String>,
    pub nonce: Option<String>,
    pub tag: Option<String>,
}

impl Params {
    /// The parameters in the order signet writes them (the order of the
    /// RFC's examples): created, expires, keyid, alg, nonce, tag.
    pub(crate) fn to_sfv(&self) -> Result<Parameters, String> {
        let mut p = Parameters::new();
        let key = |k: &str| Key::from_string(k.to_string()).expect("static key");
        let int = |v: i64| {
            Integer::try_from(v)
                .map(BareItem::Integer)
                .map_err(|_| format!("{v} is out of range for an Integer"))
        };
        let string = |k: &str, v: &str| {
            sfv::String::from_string(v.to_string())
                .map(BareItem::String)
                .map_err(|_| format!("{k} must be printable ASCII"))
        };
        if let Some(v) = self.created {
            p.insert(key("created"), int(v)?);
        }
        if let Some(v) = self.expires {
            p.insert(key("expires"), int(v)?);
        }
        for (k, v) in [
            ("keyid", &self.keyid),
            ("alg", &self.alg),
            ("nonce", &self.nonce),
            ("tag", &self.tag),
        ] {
            if let Some(v) = v {
                p.insert(key(k), string(k, v)?);
            }
        }
        Ok(p)
    }

    /// Reads the parameters of a received signature. A known parameter of
    /// the wrong type is an error; others are kept in the base as sent but
    /// not interpreted.
    pub(crate) fn from_sfv(p: &Parameters) -> Result<Self, String> {
        let int = |k: &str| -> Result<Option<i64>, String> {
            p.get(k)
                .map(|v| {
                    v.as_integer()
                        .map(i64::from)
                        .ok_or_else(|| format!("{k} must be an Integer"))
                })
                .transpose()
        };
        let string = |k: &str| -> Result<Option<String>, String> {
            p.get(k)
                .map(|v| {
                    v.as_string()
                        .map(|s| s.as_str().to_string())
                        .ok_or_else(|| format!("{k} must be a String"))
                })
                .transpose()
        };
        Ok(Self {
            created: int("created")?,
            expires: int("expires")?,
            keyid: string("keyid")?,
            alg: string("alg")?,
            nonce: string("nonce")?,
            tag: string("tag")?,
        })
    }
}

/// The `@signature-params` value: the inner list of `components` with
/// `params`, serialized.
pub(crate) fn signature_params(components: &[Component], params: Parameters) -> String {
    let inner = InnerList::with_params(components.iter().map(|c| c.0.clone()).collect(), params);
    let list: List = vec![ListEntry::InnerList(inner)];
    list.serialize().expect("a one-member list serializes")
}

/// The signature base of `components` over `msg`, ending with the
/// `@signature-params` line `params_value`.
pub(crate) fn signature_base(
    msg: &Message<'_>,
    components: &[Component],
    params_value: &str,
) -> Result<String, Unresolved> {
    let mut base = String::new();
    for (i, c) in components.iter().enumerate() {
        if components[..i].iter().any(|o| o.same(c)) {
            return Err(Unresolved::Invalid(format!(
                "{} is covered twice",
                c.serialized()
            )));
        }
        let v = msg.value(c)?;
        if v.bytes()
            .any(|b| !(b == b'\t' || (b' '..=b'~').contains(&b)))
        {
            return Err(Unresolved::Invalid(format!(
                "the value of {} is not printable ASCII",
                c.serialized()
            )));
        }
        base.push_str(&c.serialized());
        base.push_str(": ");
        base.push_str(&v);
        base.push('\n');
    }
    base.push_str("\"@signature-params\": ");
    base.push_str(params_value);
    Ok(base)
}

/// The inner list of a received `Signature-Input` member: its components
/// (checked) and its parameters.
pub(crate) fn read_input(entry: &ListEntry) -> Result<(Vec<Component>, Parameters), String> {
    let ListEntry::InnerList(inner) = entry else {
        return Err("a Signature-Input member is an inner list".into());
    };
    let components = inner
        .items
        .iter()
        .cloned()
        .map(Component::check)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((components, inner.params.clone()))
}

/// The bytes of a received `Signature` member.
pub(crate) fn read_signature(entry: &ListEntry) -> Option<Vec<u8>> {
    match entry {
        ListEntry::Item(Item {
            bare_item: BareItem::ByteSequence(b),
            ..
        }) => Some(b.clone()),
        _ => None,
    }
}
