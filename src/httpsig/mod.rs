//! HTTP request signing and webhook verification by profile, exactly as
//! `http-signing.md` defines them.
//!
//! A preset is one row of [`presets::PRESETS`]; the signature header
//! formats its rows name are [`headers`]; a profile is configured in
//! [`profile`], validated in `resolve.rs` and held in force by
//! [`profile::ProfileSet`]; [`engine`] signs and verifies.

mod cidr;
pub mod engine;
pub mod headers;
pub mod json;
pub mod presets;
pub mod profile;
pub mod replay;
mod resolve;
mod set;
pub mod template;
