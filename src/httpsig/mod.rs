//! HTTP request signing and webhook verification by profile, exactly as
//! `http-signing.md` defines them.

pub mod engine;
pub mod json;
pub mod profile;
pub mod replay;
pub mod template;
