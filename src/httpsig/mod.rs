//! HTTP request signing and webhook verification by profile, exactly as
//! `docs/http-signing.md` defines them.
//!
//! A preset is one row of [`presets::PRESETS`]; the signature header
//! formats its rows name are [`headers`]; a profile is configured in
//! [`profile`], validated in `resolve.rs` and held in force by
//! [`profile::ProfileSet`]; [`engine`] signs and verifies by template,
//! [`rfc9421`] by RFC 9421.

pub(crate) mod engine;
pub(crate) mod headers;
pub(crate) mod json;
pub(crate) mod presets;
pub(crate) mod profile;
pub mod replay;
mod resolve;
pub(crate) mod rfc9421;
mod set;
pub(crate) mod template;
pub(crate) mod whsk;
