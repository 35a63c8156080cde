//! signet: a gRPC signing service whose callers never hold a private key or
//! an HMAC secret. See README.md and docs/.
//!
//! The library exists for the `signet` binary and the integration tests;
//! its public surface is what they use, and nothing else:
//!
//! - [`cli::main`]: the binary's entry point.
//! - [`api::pb`]: the generated `signet.v1` messages, clients and servers.
//! - [`config`]: the configuration file, parsed and checked.
//! - [`server`]: [`server::build_registry`] and [`server::serve`], to run a
//!   server in-process on a listener of the caller's choosing.
//! - [`keys`]: algorithms, the key registry and the stores and backends it
//!   runs on, for tests that drive them directly (a PKCS#11 token, replicas
//!   racing on one store).
//! - [`error`]: the error types of the above.
//! - [`auth::policy::token_hash`] and [`httpsig::replay`]: for tests that
//!   write token hashes into a configuration or share a replay store.
//!
//! Everything else is private to the crate.

#![warn(missing_docs, unreachable_pub)]

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod error;
#[cfg(any(fuzzing, test))]
#[doc(hidden)]
pub mod fuzz_entry;
pub mod httpsig;
pub mod keys;
pub mod postgres;
pub mod server;

mod audit;
mod bounds;
mod listener;
mod net;
mod rpcs;
mod telemetry;
mod tls;
