//! The gRPC services: validate, call the registry, map errors.

pub mod admin;
pub mod convert;
pub mod signer;

use tonic::{Response, Status};

use crate::error::Result;

/// Generated protobuf and gRPC code for `signet.v1`.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    tonic::include_proto!("signet.v1");

    /// The encoded descriptor set of `proto/`, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/signet_descriptor.bin"));
}

/// A fresh request id: returned in `x-request-id` response metadata and
/// logged next to any error detail.
pub fn new_request_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Turns a handler's result into a gRPC response carrying the request id.
pub fn respond<T>(request_id: &str, result: Result<T>) -> Result<Response<T>, Status> {
    match result {
        Ok(v) => {
            let mut r = Response::new(v);
            if let Ok(val) = request_id.parse() {
                r.metadata_mut().insert("x-request-id", val);
            }
            Ok(r)
        }
        Err(e) => Err(e.into_status(request_id)),
    }
}
