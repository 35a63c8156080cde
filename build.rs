//! Compiles `proto/` with protox (a pure-Rust protobuf compiler), so no
//! system `protoc` is needed, and keeps the encoded descriptor set for
//! server reflection.
use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/signet/v1/common.proto",
        "proto/signet/v1/signer.proto",
        "proto/signet/v1/key_admin.proto",
        "proto/signet/v1/cipher.proto",
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    std::fs::write(
        out.join("signet_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Messages that carry a secret, a plaintext or a caller's payload
        // get a Debug of their own that prints lengths only
        // (src/api/redacted.rs).
        .skip_debug([
            ".signet.v1.ImportKeyRequest",
            ".signet.v1.SignRequest",
            ".signet.v1.VerifyRequest",
            ".signet.v1.SignHttpRequestRequest",
            ".signet.v1.VerifyHttpRequestRequest",
            ".signet.v1.EncryptRequest",
            ".signet.v1.DecryptResponse",
            ".signet.v1.GenerateDataKeyResponse",
        ])
        .compile_fds(fds)?;
    Ok(())
}
