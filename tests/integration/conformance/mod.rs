//! The backend-agnostic conformance suite: what every backend must do,
//! through the gRPC API. `conformance_suite!(start_expr)` instantiates every
//! test against a server started by `start_expr`.
//!
//! One file per operation (the layout of Parsec's
//! `e2e_tests/tests/per_provider/normal_tests/`): `sign_verify`, `import`,
//! `rotation`, `export`, `errors`, `list`, `cipher`. The helpers below are shared by
//! them and by the backend-specific tests.

use signet::api::pb::{self, sign_request, verify_request};
use signet::keys::Algorithm;

use crate::support::TestServer;

mod cipher;
mod errors;
mod export;
mod import;
mod list;
mod rotation;
mod sign_verify;

pub use cipher::*;
pub use errors::*;
pub use export::*;
pub use import::*;
pub use list::*;
pub use rotation::*;
pub use sign_verify::*;

macro_rules! conformance_suite {
    ($start:expr) => {
        conformance_suite!(@tests $start;
            every_algorithm_signs_and_openssl_verifies,
            digests_sign_like_messages,
            ecdsa_raw_and_der,
            hmac_matches_openssl_for_imported_secret,
            imported_private_keys_sign,
            imported_public_keys_verify_only,
            rotation_walk_with_grace,
            rotate_and_promote_in_one_step,
            disable_destroy_restore,
            rotation_policy_rotates,
            public_key_formats,
            jwks_lists_published_versions,
            bad_input_gets_documented_codes,
            concurrent_rotations_of_one_key,
            no_secret_in_responses,
            list_keys_pages,
            aes_keys_encrypt_decrypt_and_rotate
        );
    };
    (@tests $start:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let server = $start.await;
                $crate::conformance::$name(&server).await;
                server.stop().await.expect("clean shutdown");
            }
        )*
    };
}

fn alg_pb(a: Algorithm) -> i32 {
    pb::Algorithm::from(a) as i32
}

pub async fn create(s: &TestServer, name: &str, alg: Algorithm) -> pb::Key {
    s.admin()
        .create_key(pb::CreateKeyRequest {
            name: name.into(),
            algorithm: alg_pb(alg),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .key
        .unwrap()
}

pub async fn sign(s: &TestServer, key: &str, msg: &[u8]) -> pb::SignResponse {
    try_sign(s, key, 0, msg).await.unwrap()
}

pub async fn try_sign(
    s: &TestServer,
    key: &str,
    version: u32,
    msg: &[u8],
) -> Result<pb::SignResponse, tonic::Status> {
    s.signer()
        .sign(pb::SignRequest {
            key: key.into(),
            version,
            input: Some(sign_request::Input::Message(msg.to_vec())),
            signature_format: 0,
        })
        .await
        .map(|r| r.into_inner())
}

pub async fn verify(s: &TestServer, key: &str, msg: &[u8], sig: &[u8]) -> pb::VerifyResponse {
    try_verify(s, key, 0, msg, sig).await.unwrap()
}

pub async fn try_verify(
    s: &TestServer,
    key: &str,
    version: u32,
    msg: &[u8],
    sig: &[u8],
) -> Result<pb::VerifyResponse, tonic::Status> {
    s.signer()
        .verify(pb::VerifyRequest {
            key: key.into(),
            version,
            input: Some(verify_request::Input::Message(msg.to_vec())),
            signature: sig.to_vec(),
            signature_format: 0,
        })
        .await
        .map(|r| r.into_inner())
}

pub async fn pem(s: &TestServer, key: &str, version: u32) -> String {
    let r = s
        .signer()
        .get_public_key(pb::GetPublicKeyRequest {
            key: key.into(),
            version,
            format: pb::PublicKeyFormat::Pem as i32,
        })
        .await
        .unwrap()
        .into_inner();
    String::from_utf8(r.public_key).unwrap()
}

async fn get(s: &TestServer, key: &str) -> pb::Key {
    s.admin()
        .get_key(pb::GetKeyRequest { name: key.into() })
        .await
        .unwrap()
        .into_inner()
        .key
        .unwrap()
}

fn state_of(k: &pb::Key, v: u32) -> pb::KeyVersionState {
    k.versions
        .iter()
        .find(|x| x.version == v)
        .map(|x| x.state())
        .unwrap()
}

fn dur(secs: i64) -> Option<prost_types::Duration> {
    Some(prost_types::Duration {
        seconds: secs,
        nanos: 0,
    })
}
