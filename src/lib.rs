//! signet: a gRPC signing service whose callers never hold a private key or
//! an HMAC secret. See README.md and docs/.

pub mod api;
pub mod audit;
pub mod auth;
pub mod bounds;
pub mod cli;
pub mod config;
pub mod error;
pub mod httpsig;
pub mod keys;
pub mod listener;
pub mod net;
pub mod rpcs;
pub mod server;
pub mod telemetry;
pub mod tls;
