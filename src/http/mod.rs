//! HTTP request signing and webhook verification by profile, exactly as
//! `http-signing.md` defines them.

pub mod json;
pub mod template;
