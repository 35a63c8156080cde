//! Every RPC signet serves, declared once: its path, the operation a grant
//! must hold for it, and what it acts on.
//!
//! This module sits below `api`, `auth` and `telemetry`, imports nothing of
//! signet's, and owns [`Op`], the operations grants name (re-exported as
//! `auth::policy::Op`): the authorization layer ([`crate::auth::op_of`]), the
//! telemetry method list and the handlers (`crate::api::call`) all read
//! this table, and tests check it against the generated gRPC services and
//! the Python suite. A new RPC is one row here plus its handler.

/// An operation, as grants name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub(crate) enum Op {
    Sign,
    Verify,
    PublicKey,
    HttpSign,
    HttpVerify,
    HttpProfiles,
    AdminRead,
    AdminCreate,
    AdminImport,
    AdminRotate,
    AdminPromote,
    AdminDisable,
    AdminEnable,
    AdminDestroy,
    AdminRestore,
    AdminExport,
    AdminCertify,
    Encrypt,
    Decrypt,
    ReEncrypt,
    GenerateDataKey,
}

impl Op {
    /// Every operation, in the order the docs list them.
    pub(crate) const ALL: [Op; 21] = [
        Op::Sign,
        Op::Verify,
        Op::PublicKey,
        Op::HttpSign,
        Op::HttpVerify,
        Op::HttpProfiles,
        Op::AdminRead,
        Op::AdminCreate,
        Op::AdminImport,
        Op::AdminRotate,
        Op::AdminPromote,
        Op::AdminDisable,
        Op::AdminEnable,
        Op::AdminDestroy,
        Op::AdminRestore,
        Op::AdminExport,
        Op::AdminCertify,
        Op::Encrypt,
        Op::Decrypt,
        Op::ReEncrypt,
        Op::GenerateDataKey,
    ];

    /// The name used in grants and audit records.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Op::Sign => "sign",
            Op::Verify => "verify",
            Op::PublicKey => "public_key",
            Op::HttpSign => "http_sign",
            Op::HttpVerify => "http_verify",
            Op::HttpProfiles => "http_profiles",
            Op::AdminRead => "admin.read",
            Op::AdminCreate => "admin.create",
            Op::AdminImport => "admin.import",
            Op::AdminRotate => "admin.rotate",
            Op::AdminPromote => "admin.promote",
            Op::AdminDisable => "admin.disable",
            Op::AdminEnable => "admin.enable",
            Op::AdminDestroy => "admin.destroy",
            Op::AdminRestore => "admin.restore",
            Op::AdminExport => "admin.export",
            Op::AdminCertify => "admin.certify",
            Op::Encrypt => "encrypt",
            Op::Decrypt => "decrypt",
            Op::ReEncrypt => "re_encrypt",
            Op::GenerateDataKey => "generate_data_key",
        }
    }

    /// True for an operation a grant must name: no wildcard (`admin.*`,
    /// `*`) covers it. Handing a shared secret out of signet is the one.
    pub(crate) fn named_only(self) -> bool {
        matches!(self, Op::AdminExport)
    }

    /// True for KeyAdmin operations.
    pub(crate) fn is_admin(self) -> bool {
        self.name().starts_with("admin.")
    }

    /// True for operations on HTTP profiles (their grants name profiles).
    pub(crate) fn on_profile(self) -> bool {
        matches!(self, Op::HttpSign | Op::HttpVerify | Op::HttpProfiles)
    }
}

/// What a call acts on, which is what its operation is authorized on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Subject {
    /// The key a request field names (`key` or `name`).
    Key,
    /// The HTTP profile the request's `profile` field names.
    Profile,
    /// Nothing by name: a list, allowed to whoever holds the operation on
    /// something and filtered to what the caller holds it on.
    List,
    /// Many keys, one per item of a batch: the call is allowed to whoever
    /// holds the operation on something, and each item is then authorized
    /// on the key it names, as the single call would be.
    Items,
}

impl Subject {
    /// What a name of this kind is called in error messages (`key`,
    /// `profile`); `None` for lists.
    pub(crate) fn noun(self) -> Option<&'static str> {
        match self {
            Subject::Key => Some("key"),
            Subject::Profile => Some("profile"),
            Subject::List | Subject::Items => None,
        }
    }
}

/// One RPC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rpc {
    /// The gRPC service (`signet.v1.Signer`).
    pub service: &'static str,
    /// The method (`Sign`).
    pub method: &'static str,
    /// `service/method`, as the request path has it without its leading `/`.
    pub path: &'static str,
    /// The operation a grant must hold.
    pub op: Op,
    /// What the operation is authorized on.
    pub subject: Subject,
}

/// The Signer service: what payment back-ends call.
#[cfg(test)]
pub(crate) const SIGNER: &str = "signet.v1.Signer";
/// The KeyAdmin service: what key custodians call.
#[cfg(test)]
pub(crate) const KEY_ADMIN: &str = "signet.v1.KeyAdmin";
/// The CipherService: encryption with AES keys.
#[cfg(test)]
pub(crate) const CIPHER: &str = "signet.v1.CipherService";

macro_rules! rpcs {
    ($( $(#[$doc:meta])* $row:ident = $service:literal / $method:literal, $op:ident, $subject:ident; )*) => {
        $(
            $(#[$doc])*
            pub(crate) const $row: Rpc = Rpc {
                service: $service,
                method: $method,
                path: concat!($service, "/", $method),
                op: Op::$op,
                subject: Subject::$subject,
            };
        )*
        /// Every RPC, Signer's, KeyAdmin's then CipherService's, in the
        /// order of the protos.
        pub(crate) const ALL: &[Rpc] = &[$($row),*];
    };
}

rpcs! {
    /// Signs a message or a digest with a named key.
    SIGN = "signet.v1.Signer" / "Sign", Sign, Key;
    /// Verifies a signature with a named key.
    VERIFY = "signet.v1.Signer" / "Verify", Verify, Key;
    /// A key version's public key.
    GET_PUBLIC_KEY = "signet.v1.Signer" / "GetPublicKey", PublicKey, Key;
    /// A key's JWK set.
    GET_JWKS = "signet.v1.Signer" / "GetJwks", PublicKey, Key;
    /// A version's certificate chain.
    GET_CERTIFICATE_CHAIN = "signet.v1.Signer" / "GetCertificateChain", PublicKey, Key;
    /// Signs an HTTP request by profile.
    SIGN_HTTP_REQUEST = "signet.v1.Signer" / "SignHttpRequest", HttpSign, Profile;
    /// Verifies an HTTP request (a webhook) by profile.
    VERIFY_HTTP_REQUEST = "signet.v1.Signer" / "VerifyHttpRequest", HttpVerify, Profile;
    /// The profiles the caller may see.
    LIST_HTTP_PROFILES = "signet.v1.Signer" / "ListHttpProfiles", HttpProfiles, List;
    /// Signs many messages, each item with the key it names.
    SIGN_BATCH = "signet.v1.Signer" / "SignBatch", Sign, Items;
    /// Verifies many signatures, each item with the key it names.
    VERIFY_BATCH = "signet.v1.Signer" / "VerifyBatch", Verify, Items;
    /// Creates a key.
    CREATE_KEY = "signet.v1.KeyAdmin" / "CreateKey", AdminCreate, Key;
    /// Imports key material.
    IMPORT_KEY = "signet.v1.KeyAdmin" / "ImportKey", AdminImport, Key;
    /// Adds a version.
    ROTATE_KEY = "signet.v1.KeyAdmin" / "RotateKey", AdminRotate, Key;
    /// Makes a version ACTIVE.
    PROMOTE_KEY_VERSION = "signet.v1.KeyAdmin" / "PromoteKeyVersion", AdminPromote, Key;
    /// Disables a version.
    DISABLE_KEY_VERSION = "signet.v1.KeyAdmin" / "DisableKeyVersion", AdminDisable, Key;
    /// Re-enables a version.
    ENABLE_KEY_VERSION = "signet.v1.KeyAdmin" / "EnableKeyVersion", AdminEnable, Key;
    /// Schedules a version's destruction.
    DESTROY_KEY_VERSION = "signet.v1.KeyAdmin" / "DestroyKeyVersion", AdminDestroy, Key;
    /// Cancels a scheduled destruction.
    RESTORE_KEY_VERSION = "signet.v1.KeyAdmin" / "RestoreKeyVersion", AdminRestore, Key;
    /// One key's metadata.
    GET_KEY = "signet.v1.KeyAdmin" / "GetKey", AdminRead, Key;
    /// The keys the caller may read, a page at a time.
    LIST_KEYS = "signet.v1.KeyAdmin" / "ListKeys", AdminRead, List;
    /// The public key that import material is wrapped to.
    GET_IMPORT_WRAPPING_KEY = "signet.v1.KeyAdmin" / "GetImportWrappingKey", AdminImport, List;
    /// Exports an exportable key's version, wrapped.
    EXPORT_KEY = "signet.v1.KeyAdmin" / "ExportKey", AdminExport, Key;
    /// A certificate signing request for a version.
    CREATE_CERTIFICATE_REQUEST = "signet.v1.KeyAdmin" / "CreateCertificateRequest", AdminCertify, Key;
    /// Attaches a certificate chain to a version.
    IMPORT_CERTIFICATE_CHAIN = "signet.v1.KeyAdmin" / "ImportCertificateChain", AdminCertify, Key;
    /// Encrypts with an AES key's ACTIVE version.
    ENCRYPT = "signet.v1.CipherService" / "Encrypt", Encrypt, Key;
    /// Decrypts with the version a ciphertext names.
    DECRYPT = "signet.v1.CipherService" / "Decrypt", Decrypt, Key;
    /// Moves a ciphertext to the ACTIVE version.
    RE_ENCRYPT = "signet.v1.CipherService" / "ReEncrypt", ReEncrypt, Key;
    /// A data key, in plaintext and encrypted.
    GENERATE_DATA_KEY = "signet.v1.CipherService" / "GenerateDataKey", GenerateDataKey, Key;
    /// A data key, encrypted only.
    GENERATE_DATA_KEY_WITHOUT_PLAINTEXT = "signet.v1.CipherService" / "GenerateDataKeyWithoutPlaintext", GenerateDataKey, Key;
}

/// The RPC a request path names (with or without its leading `/`).
pub(crate) fn by_path(path: &str) -> Option<&'static Rpc> {
    let path = path.strip_prefix('/').unwrap_or(path);
    ALL.iter().find(|r| r.path == path)
}

/// The RPC a method name stands for, whichever service it is asked of.
pub(crate) fn by_method(method: &str) -> Option<&'static Rpc> {
    ALL.iter().find(|r| r.method == method)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_service_slash_method_and_unique() {
        for (i, r) in ALL.iter().enumerate() {
            assert_eq!(r.path, format!("{}/{}", r.service, r.method));
            assert!([SIGNER, KEY_ADMIN, CIPHER].contains(&r.service), "{r:?}");
            assert!(ALL[..i].iter().all(|o| o.method != r.method), "{r:?}");
            assert_eq!(by_path(&format!("/{}", r.path)), Some(r));
            assert_eq!(by_method(r.method), Some(r));
        }
        assert_eq!(by_path("signet.v1.Signer/Nope"), None);
    }

    #[test]
    fn admin_rpcs_are_the_key_admin_service() {
        for r in ALL {
            assert_eq!(r.op.is_admin(), r.service == KEY_ADMIN, "{r:?}");
            assert_eq!(
                r.op.on_profile(),
                r.service == SIGNER && r.op.name().starts_with("http"),
                "{r:?}"
            );
        }
    }

    /// Every operation a grant can name is reachable by some RPC.
    #[test]
    fn every_op_has_an_rpc() {
        for op in Op::ALL {
            assert!(ALL.iter().any(|r| r.op == op), "{op:?}");
        }
    }
}
