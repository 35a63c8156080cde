//! `signet bench --rpc encrypt|decrypt|data-key`: the load of
//! `signet bench` on `CipherService` instead of `Sign`, with an
//! `AES_256_GCM` key. `--floor` compares it with a bare tonic call that
//! moves the same bytes each way (the floor's `Sign` gets a message as
//! long as the cipher request's payload and answers as many bytes as the
//! cipher answer), and the in-process cost is the same operation on a
//! fresh in-memory AES key (or, with `--backend-config`, on the token).

use clap::ValueEnum;

use super::client::{CliError, CliResult, Conn};
use crate::api::pb;
use crate::api::pb::cipher_service_client::CipherServiceClient;

/// Associated data of every benchmarked call: a short record id, as a
/// caller binding a ciphertext to its row would send.
pub(crate) const BENCH_AAD: &[u8] = b"bench/row-42";

/// Which RPC `signet bench` sends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum BenchRpc {
    /// `Signer/Sign` (or `SignBatch` with --batch).
    #[default]
    Sign,
    /// `CipherService/Encrypt` of a --message-size plaintext.
    Encrypt,
    /// `CipherService/Decrypt` of one ciphertext of a --message-size
    /// plaintext.
    Decrypt,
    /// `CipherService/GenerateDataKey`: a 32-byte data key and its
    /// ciphertext.
    DataKey,
}

/// What a cipher worker sends, over and over.
#[derive(Clone, Debug)]
pub(crate) enum CipherLoad {
    Encrypt(pb::EncryptRequest),
    Decrypt(pb::DecryptRequest),
    DataKey(pb::GenerateDataKeyRequest),
}

/// The bytes a cipher call moves: the floor is made to move as many.
pub(crate) struct Shape {
    /// Length of the request's payload (plaintext or ciphertext).
    pub request: usize,
    /// Length of the answer's payload.
    pub answer: usize,
    /// The version that answered.
    pub version: u32,
    /// "NAME:vN".
    pub key_version_id: String,
}

impl CipherLoad {
    /// The load of `rpc` on `key` with `message` as the plaintext, and
    /// the shape of one call, from one call made now (a Decrypt load
    /// first encrypts `message` to have a ciphertext). A key that cannot
    /// encrypt fails here, as `Sign`'s probe does.
    pub(crate) async fn prepare(
        conn: &Conn,
        rpc: BenchRpc,
        key: &str,
        message: Vec<u8>,
    ) -> CliResult<(CipherLoad, Shape)> {
        let mut client = CipherServiceClient::new(conn.clone());
        let encrypt = pb::EncryptRequest {
            key: key.into(),
            plaintext: message.clone(),
            associated_data: BENCH_AAD.to_vec(),
            format: pb::CiphertextFormat::Signet as i32,
        };
        let sealed = client.encrypt(encrypt.clone()).await?.into_inner();
        let shape = |request: usize, answer: usize| Shape {
            request,
            answer,
            version: sealed.version,
            key_version_id: sealed.key_version_id.clone(),
        };
        Ok(match rpc {
            BenchRpc::Encrypt => {
                let s = shape(message.len(), sealed.ciphertext.len());
                (CipherLoad::Encrypt(encrypt), s)
            }
            BenchRpc::Decrypt => {
                let s = shape(sealed.ciphertext.len(), message.len());
                let load = CipherLoad::Decrypt(pb::DecryptRequest {
                    key: key.into(),
                    ciphertext: sealed.ciphertext.clone(),
                    associated_data: BENCH_AAD.to_vec(),
                });
                (load, s)
            }
            BenchRpc::DataKey => {
                let req = pb::GenerateDataKeyRequest {
                    key: key.into(),
                    associated_data: BENCH_AAD.to_vec(),
                };
                let r = client.generate_data_key(req.clone()).await?.into_inner();
                let s = shape(0, r.plaintext.len() + r.ciphertext.len());
                (CipherLoad::DataKey(req), s)
            }
            BenchRpc::Sign => {
                return Err(CliError::usage("internal: Sign is not a cipher load"));
            }
        })
    }

    /// One call.
    pub(crate) async fn send(
        &self,
        client: &mut CipherServiceClient<Conn>,
    ) -> Result<(), tonic::Status> {
        match self {
            CipherLoad::Encrypt(r) => client.encrypt(r.clone()).await.map(drop),
            CipherLoad::Decrypt(r) => client.decrypt(r.clone()).await.map(drop),
            CipherLoad::DataKey(r) => client.generate_data_key(r.clone()).await.map(drop),
        }
    }
}

/// One in-process call of `rpc` on `handle` (an AES key) with `message`
/// as the plaintext: what the registry asks the backend for per call, a
/// fresh nonce from the OS CSPRNG included. Decrypt opens one ciphertext
/// made here first; a data key is 32 fresh random bytes, encrypted.
pub(crate) fn local_op(
    handle: std::sync::Arc<dyn crate::keys::KeyHandle>,
    rpc: BenchRpc,
    message: std::sync::Arc<Vec<u8>>,
) -> CliResult<Box<dyn FnMut() -> crate::error::Result<Vec<u8>> + Send>> {
    use crate::keys::sealed;
    if !handle.algorithm().encrypts() {
        return Err(CliError::usage(format!(
            "--rpc {} needs an AES_256_GCM key (--algorithm AES_256_GCM), not {}",
            rpc.to_possible_value()
                .map_or("?".into(), |v| v.get_name().to_string()),
            handle.algorithm()
        )));
    }
    let aad = sealed::aad(1, "in-process", BENCH_AAD);
    let failed = |e: crate::error::Error| CliError::rpc(format!("cannot encrypt: {}", e.message()));
    Ok(match rpc {
        BenchRpc::Sign => return Err(CliError::usage("internal: Sign is not a cipher op")),
        BenchRpc::Encrypt => Box::new(move || {
            let nonce = sealed::fresh_nonce()?;
            handle.encrypt(&nonce, &aad, &message)
        }),
        BenchRpc::Decrypt => {
            let nonce = sealed::fresh_nonce().map_err(failed)?;
            let body = handle.encrypt(&nonce, &aad, &message).map_err(failed)?;
            Box::new(move || handle.decrypt(&nonce, &aad, &body).map(|p| p.to_vec()))
        }
        BenchRpc::DataKey => Box::new(move || {
            let mut key = zeroize::Zeroizing::new([0u8; 32]);
            crate::keys::fill_random(key.as_mut())?;
            let nonce = sealed::fresh_nonce()?;
            handle.encrypt(&nonce, &aad, key.as_ref())
        }),
    })
}
