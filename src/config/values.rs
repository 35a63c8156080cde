//! Closed sets of values (`audit.output`, `server.tls.min_version`,
//! `http.replay_store`, `log.format`) as enums, read from their TOML
//! spelling; a value outside the set is refused with a message naming the
//! field and every accepted spelling.

/// `field must be "a", "b" or "c", not "x"`.
pub(super) fn refusal(field: &str, accepted: &[&str], got: &str) -> String {
    let quoted: Vec<String> = accepted.iter().map(|a| format!("{a:?}")).collect();
    let list = match quoted.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    };
    format!("{field} must be {list}, not {got:?}")
}

/// Declares an enum read from a fixed set of strings, its `as_str` and a
/// `Deserialize` whose error names `$field`.
macro_rules! closed_set {
    (
        $(#[$meta:meta])*
        pub enum $name:ident in $field:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $spelling:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// The spelling in the configuration file.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $spelling, )+
                }
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as serde::Deserialize>::deserialize(d)?;
                match s.as_str() {
                    $( $spelling => Ok($name::$variant), )+
                    _ => Err(serde::de::Error::custom($crate::config::values::refusal(
                        $field,
                        &[$($spelling),+],
                        &s,
                    ))),
                }
            }
        }
    };
}

pub(super) use closed_set;

#[cfg(test)]
mod tests {
    use super::refusal;

    #[test]
    fn refusals_list_every_spelling() {
        assert_eq!(
            refusal("audit.output", &["stdout", "file", "off"], "syslog"),
            "audit.output must be \"stdout\", \"file\" or \"off\", not \"syslog\""
        );
        assert_eq!(
            refusal("server.tls.min_version", &["1.2", "1.3"], "1.1"),
            "server.tls.min_version must be \"1.2\" or \"1.3\", not \"1.1\""
        );
    }
}
