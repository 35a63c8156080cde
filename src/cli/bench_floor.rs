//! The floor of `signet bench --floor`: a bare tonic server of the
//! `signet.v1.Signer` service whose `Sign` only answers a prepared
//! [`pb::SignResponse`] as long as signet's (same signature length, same
//! version, key version id and algorithm). No interceptor, no auth, no
//! audit, no metrics, no signature: what is left of a call is tonic, HTTP/2
//! and the protobuf codec, which is the limit signet is measured against.
//!
//! It runs in a process of its own (`signet bench-floor-server`, hidden),
//! so its CPU time is measured apart from the load generator's:
//! [`FloorProcess::spawn`] starts it, reads the address it prints and kills
//! it on [`FloorProcess::stop`] or drop. The server also exits when its
//! standard input closes, so it cannot outlive a load generator that was
//! killed.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use clap::Args;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status};

use super::client::{CliError, CliResult};
use crate::api::pb;
use crate::api::pb::signer_server::{Signer, SignerServer};

/// `signet bench-floor-server` (hidden): what its `Sign` answers.
#[derive(Debug, Args)]
pub(crate) struct FloorServerArgs {
    /// Bytes of the signature to answer (zeros).
    #[arg(long)]
    pub signature_length: usize,
    /// The version to answer.
    #[arg(long, default_value_t = 1)]
    pub version: u32,
    /// The key version id to answer ("NAME:vN").
    #[arg(long, default_value = "")]
    pub key_version_id: String,
    /// The algorithm to answer (proto enum value).
    #[arg(long, default_value_t = 0)]
    pub algorithm: i32,
    /// HTTP/2 streams per connection, as signet's server.max_concurrent_streams.
    #[arg(long)]
    pub max_concurrent_streams: Option<u32>,
}

/// The bare service: `Sign` answers `response`, everything else
/// UNIMPLEMENTED.
#[derive(Debug, Clone)]
pub(crate) struct Floor {
    response: pb::SignResponse,
}

impl Floor {
    /// A floor whose `Sign` answers `response`.
    pub(crate) fn new(response: pb::SignResponse) -> Self {
        Self { response }
    }
}

fn unimplemented<T>() -> Result<Response<T>, Status> {
    Err(Status::unimplemented(
        "the bench floor serves only Sign and SignBatch",
    ))
}

#[tonic::async_trait]
impl Signer for Floor {
    async fn sign(
        &self,
        _request: Request<pb::SignRequest>,
    ) -> Result<Response<pb::SignResponse>, Status> {
        Ok(Response::new(self.response.clone()))
    }
    async fn verify(
        &self,
        _: Request<pb::VerifyRequest>,
    ) -> Result<Response<pb::VerifyResponse>, Status> {
        unimplemented()
    }
    async fn get_public_key(
        &self,
        _: Request<pb::GetPublicKeyRequest>,
    ) -> Result<Response<pb::GetPublicKeyResponse>, Status> {
        unimplemented()
    }
    async fn get_jwks(
        &self,
        _: Request<pb::GetJwksRequest>,
    ) -> Result<Response<pb::GetJwksResponse>, Status> {
        unimplemented()
    }
    async fn get_certificate_chain(
        &self,
        _: Request<pb::GetCertificateChainRequest>,
    ) -> Result<Response<pb::GetCertificateChainResponse>, Status> {
        unimplemented()
    }
    async fn sign_http_request(
        &self,
        _: Request<pb::SignHttpRequestRequest>,
    ) -> Result<Response<pb::SignHttpRequestResponse>, Status> {
        unimplemented()
    }
    async fn verify_http_request(
        &self,
        _: Request<pb::VerifyHttpRequestRequest>,
    ) -> Result<Response<pb::VerifyHttpRequestResponse>, Status> {
        unimplemented()
    }
    async fn sign_batch(
        &self,
        request: Request<pb::SignBatchRequest>,
    ) -> Result<Response<pb::SignBatchResponse>, Status> {
        // The same answer per item, so the floor of a batch is the bare cost
        // of moving it.
        let results = (0..request.get_ref().items.len())
            .map(|_| pb::SignBatchResult {
                result: Some(pb::sign_batch_result::Result::Signed(self.response.clone())),
            })
            .collect();
        Ok(Response::new(pb::SignBatchResponse { results }))
    }
    async fn verify_batch(
        &self,
        _: Request<pb::VerifyBatchRequest>,
    ) -> Result<Response<pb::VerifyBatchResponse>, Status> {
        unimplemented()
    }
    async fn list_http_profiles(
        &self,
        _: Request<pb::ListHttpProfilesRequest>,
    ) -> Result<Response<pb::ListHttpProfilesResponse>, Status> {
        unimplemented()
    }
}

/// Runs `signet bench-floor-server`: listens on 127.0.0.1:0, prints the
/// address on standard output, serves until killed or until standard
/// input closes.
pub(crate) async fn serve(a: FloorServerArgs) -> CliResult {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| CliError::usage(format!("bench floor: cannot listen: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| CliError::usage(format!("bench floor: {e}")))?;
    // The parent keeps our standard input open; when it goes, so do we.
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        std::process::exit(0);
    });
    println!("{addr}");
    let floor = Floor::new(pb::SignResponse {
        signature: vec![0; a.signature_length],
        version: a.version,
        key_version_id: a.key_version_id,
        algorithm: a.algorithm,
    });
    // As signet's accept loop: Nagle off on every accepted socket.
    let incoming = TcpListenerStream::new(listener).map(|r| {
        r.inspect(|s| {
            let _ = s.set_nodelay(true);
        })
    });
    // signet's HTTP/2 settings (src/server/mod.rs); tonic's defaults
    // otherwise.
    let streams = a
        .max_concurrent_streams
        .unwrap_or_else(|| crate::config::ServerConfig::default().max_concurrent_streams);
    tonic::transport::Server::builder()
        .max_concurrent_streams(streams)
        .http2_keepalive_interval(Some(Duration::from_secs(60)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        .add_service(SignerServer::new(floor))
        .serve_with_incoming(incoming)
        .await
        .map_err(|e| CliError::rpc(format!("bench floor server: {e}")))
}

/// A running floor server process.
#[derive(Debug)]
pub(crate) struct FloorProcess {
    child: Child,
    /// Its address.
    pub addr: SocketAddr,
}

impl FloorProcess {
    /// Starts `signet bench-floor-server` answering `response` (this
    /// binary, std::env::current_exe) and waits for its address.
    pub(crate) fn spawn(response: &pb::SignResponse) -> CliResult<Self> {
        let exe = std::env::current_exe()
            .map_err(|e| CliError::usage(format!("bench floor: where is this binary? {e}")))?;
        let mut child = Command::new(exe)
            .arg("bench-floor-server")
            .arg("--signature-length")
            .arg(response.signature.len().to_string())
            .arg("--version")
            .arg(response.version.to_string())
            .arg("--key-version-id")
            .arg(&response.key_version_id)
            .arg("--algorithm")
            .arg(response.algorithm.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| CliError::usage(format!("cannot start the bench floor server: {e}")))?;
        let mut line = String::new();
        let read = child
            .stdout
            .take()
            .map(|out| BufReader::new(out).read_line(&mut line));
        let mut p = FloorProcess {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        match (read, line.trim().parse()) {
            (Some(Ok(_)), Ok(addr)) => {
                p.addr = addr;
                Ok(p)
            }
            _ => {
                let status = p.stop();
                Err(CliError::usage(format!(
                    "the bench floor server gave no address (it exited: {status})"
                )))
            }
        }
    }

    /// Its process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its endpoint, for a client.
    pub(crate) fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Kills it and waits for it; returns how it ended, for messages.
    pub(crate) fn stop(&mut self) -> String {
        let _ = self.child.kill();
        match self.child.wait() {
            Ok(s) => s.to_string(),
            Err(e) => format!("unknown: {e}"),
        }
    }
}

impl Drop for FloorProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}
