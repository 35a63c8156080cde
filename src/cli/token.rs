//! `signet token new`: a fresh bearer token and the hash the server's
//! `[[auth.tokens]]` stores. The token itself is printed once and kept
//! nowhere by signet.

use clap::Args;
use rand::RngCore;

use super::client::{print_json, write_output, CliResult};
use super::Global;
use crate::auth::policy::token_hash;

/// `signet token new`.
#[derive(Debug, Args)]
pub(crate) struct NewArgs {
    /// The identity the token will authenticate as (for the printed
    /// config snippet).
    #[arg(long, default_value = "IDENTITY")]
    pub identity: String,
}

/// Token sub-commands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum TokenCommand {
    /// Print a new random token (256 bits from the OS) and its SHA-256.
    New(NewArgs),
}

/// A new token: `sgt_` and 43 base64url characters.
pub(crate) fn new_token() -> String {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(bytes.as_mut());
    format!("sgt_{}", URL_SAFE_NO_PAD.encode(bytes.as_ref()))
}

/// Runs a token sub-command.
pub(crate) fn run(g: &Global, c: TokenCommand) -> CliResult<()> {
    let TokenCommand::New(a) = c;
    let token = zeroize::Zeroizing::new(new_token());
    let hash = token_hash(&token);
    if g.json {
        return print_json(&serde_json::json!({ "token": *token, "sha256": hash }));
    }
    let text = format!(
        "token:  {}\nsha256: {hash}\n\n# For the server's config (the token itself goes to the client only):\n\
         [[auth.tokens]]\nidentity = {:?}\nsha256 = \"{hash}\"\n",
        *token, a.identity
    );
    write_output(None, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_fresh_and_hash_as_the_server_checks() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 4 + 43);
        assert!(a.starts_with("sgt_"));
        assert_eq!(token_hash(&a).len(), 64);
    }
}
