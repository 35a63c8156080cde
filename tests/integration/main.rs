//! Integration tests: a real server on 127.0.0.1:0, real gRPC clients.
//! The conformance suite runs against every backend.

mod support;

#[macro_use]
mod conformance;

/// The conformance suite against the in-memory backend.
mod memory {
    conformance_suite!(crate::support::TestServer::memory());
}

mod cipher;
mod config_checks;
mod http_rotation;
mod listing;
mod pkcs11;
mod postgres;
mod redis;
mod replicas;
mod security;
mod server;

// `signet serve` run as a process (support::process), by concern.
mod bench;
mod cli;
mod metrics;
mod readiness;
mod reload;
mod shutdown;
mod telemetry;
