//! The names of proto enum values as signet shows them to people.
//!
//! buf's STANDARD lint (buf.yaml) has every value name start with its
//! enum's name: `ALGORITHM_ED25519`, `KEY_VERSION_STATE_ACTIVE`. The
//! configuration, the CLI (its arguments and its `--json` output), audit
//! records and metric labels name a value without that prefix (`ED25519`,
//! `ACTIVE`), as the domain types do. [`ShortName`] goes between the two;
//! nothing else should call prost's `as_str_name` to show a value.

use super::pb;

/// A proto enum whose value names all start with [`ShortName::PREFIX`].
pub(crate) trait ShortName: Copy + Sized + 'static {
    /// What every value name starts with: the enum's name in
    /// SCREAMING_SNAKE_CASE and `_`.
    const PREFIX: &'static str;

    /// The value's full proto name (`ALGORITHM_ED25519`).
    fn proto_name(self) -> &'static str;

    /// The value with this full proto name.
    fn from_proto_name(name: &str) -> Option<Self>;

    /// The value's name without the prefix (`ED25519`).
    fn short_name(self) -> &'static str {
        let name = self.proto_name();
        name.strip_prefix(Self::PREFIX).unwrap_or(name)
    }

    /// The value whose name without the prefix is `name`.
    fn from_short_name(name: &str) -> Option<Self> {
        Self::from_proto_name(&format!("{}{name}", Self::PREFIX))
    }
}

macro_rules! short_names {
    ($($enum:ident = $prefix:literal),* $(,)?) => {
        $(
            impl ShortName for pb::$enum {
                const PREFIX: &'static str = $prefix;
                fn proto_name(self) -> &'static str {
                    self.as_str_name()
                }
                fn from_proto_name(name: &str) -> Option<Self> {
                    Self::from_str_name(name)
                }
            }
        )*

        /// Every enum with a [`ShortName`], by proto name, with its prefix.
        #[cfg(test)]
        const ENUMS: &[(&str, &str)] = &[$((stringify!($enum), $prefix)),*];
    };
}

short_names! {
    Algorithm = "ALGORITHM_",
    ProtectionLevel = "PROTECTION_LEVEL_",
    KeyVersionState = "KEY_VERSION_STATE_",
    SignatureFormat = "SIGNATURE_FORMAT_",
    PublicKeyFormat = "PUBLIC_KEY_FORMAT_",
    VerifyFailureReason = "VERIFY_FAILURE_REASON_",
    CiphertextFormat = "CIPHERTEXT_FORMAT_",
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    /// `CamelCase` → `CAMEL_CASE_`, the prefix buf's ENUM_VALUE_PREFIX wants.
    fn buf_prefix(enum_name: &str) -> String {
        let mut out = String::new();
        for (i, c) in enum_name.chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_uppercase());
        }
        out + "_"
    }

    /// Every enum of proto/ has a [`ShortName`] with buf's prefix, and
    /// every one of its values starts with it: a new enum, or a value
    /// without the prefix, fails here.
    #[test]
    fn every_proto_enum_has_its_prefix() {
        let fds = prost_types::FileDescriptorSet::decode(pb::FILE_DESCRIPTOR_SET).unwrap();
        let mut seen = Vec::new();
        for file in fds.file.iter().filter(|f| f.package() == "signet.v1") {
            let nested = file.message_type.iter().flat_map(|m| &m.enum_type);
            for e in file.enum_type.iter().chain(nested) {
                let prefix = buf_prefix(e.name());
                let ours = ENUMS.iter().find(|(n, _)| *n == e.name());
                assert_eq!(ours.map(|(_, p)| *p), Some(prefix.as_str()), "{}", e.name());
                for v in &e.value {
                    assert!(v.name().starts_with(&prefix), "{}", v.name());
                }
                seen.push(e.name().to_owned());
            }
        }
        seen.sort();
        let mut listed: Vec<_> = ENUMS.iter().map(|(n, _)| n.to_string()).collect();
        listed.sort();
        assert_eq!(seen, listed);
    }

    fn round_trips<T: ShortName + TryFrom<i32> + PartialEq + std::fmt::Debug>() -> usize {
        let values: Vec<T> = (0..64).filter_map(|v| T::try_from(v).ok()).collect();
        for &v in &values {
            let short = v.short_name();
            assert_ne!(short, v.proto_name(), "{short} kept its prefix");
            assert_eq!(T::from_short_name(short), Some(v));
            // The full name is not a short name: no double prefix.
            assert_eq!(T::from_short_name(v.proto_name()), None);
        }
        values.len()
    }

    #[test]
    fn short_names_round_trip() {
        assert_eq!(round_trips::<pb::Algorithm>(), 17);
        assert_eq!(round_trips::<pb::CiphertextFormat>(), 3);
        assert_eq!(round_trips::<pb::ProtectionLevel>(), 3);
        assert_eq!(round_trips::<pb::KeyVersionState>(), 7);
        assert_eq!(round_trips::<pb::SignatureFormat>(), 3);
        assert_eq!(round_trips::<pb::PublicKeyFormat>(), 5);
        assert_eq!(round_trips::<pb::VerifyFailureReason>(), 16);
        assert_eq!(
            pb::Algorithm::EcdsaP256Sha256.short_name(),
            "ECDSA_P256_SHA256"
        );
        assert_eq!(pb::KeyVersionState::Active.short_name(), "ACTIVE");
        assert_eq!(pb::PublicKeyFormat::PemPkcs1.short_name(), "PEM_PKCS1");
        assert_eq!(
            pb::VerifyFailureReason::SignatureMismatch.short_name(),
            "SIGNATURE_MISMATCH"
        );
        assert_eq!(pb::Algorithm::from_short_name("ALGORITHM_ED25519"), None);
    }
}
