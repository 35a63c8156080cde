//! Command line: `signet serve` and the client sub-commands.
//!
//! Client commands talk to a running server (`--endpoint`, or the
//! `SIGNET_ENDPOINT` environment variable). Errors go to standard error as
//! `signet: <message>`, with the gRPC code name for server errors. Exit
//! codes: 0 success, 1 server error or unreachable server, 2 usage or I/O
//! error, 3 `verify` found the signature invalid.

pub(crate) mod args;
pub(crate) mod batch;
pub(crate) mod bench;
pub(crate) mod bench_cipher;
pub(crate) mod bench_floor;
pub(crate) mod bench_limit;
pub(crate) mod bench_local;
pub(crate) mod bench_registry;
pub(crate) mod bench_report;
pub(crate) mod bench_stats;
pub(crate) mod certs;
pub(crate) mod cipher;
pub(crate) mod client;
pub(crate) mod dev_certs;
pub(crate) mod http;
pub(crate) mod keys;
pub(crate) mod public_key;
pub(crate) mod registry;
pub(crate) mod render;
pub(crate) mod sign;
pub(crate) mod token;
pub(crate) mod transport;
pub(crate) mod wrap;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::error::StartupError;
use crate::server::settings::Settings;
use client::{CliError, CliResult, EXIT_USAGE};

/// signet: a gRPC signing service. Keys never leave it.
#[derive(Debug, Parser)]
#[command(
    name = "signet",
    version,
    about,
    after_help = "Exit codes: 0 success, 1 server error (the gRPC code is printed) or \
        server unreachable, 2 usage or I/O error, 3 `verify`: signature invalid."
)]
pub(crate) struct Cli {
    /// Options shared by the client commands.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by the client commands.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Global {
    /// The signet server to talk to.
    #[arg(
        long,
        global = true,
        env = "SIGNET_ENDPOINT",
        default_value = "http://127.0.0.1:50051"
    )]
    pub endpoint: String,
    /// Machine-readable JSON output on standard output.
    #[arg(long, global = true)]
    pub json: bool,
    /// A file holding the bearer token to present (its SHA-256 is in the
    /// server's [[auth.tokens]]). SIGNET_TOKEN, when set, is used instead.
    #[arg(long, global = true, env = "SIGNET_TOKEN_FILE")]
    pub token_file: Option<std::path::PathBuf>,
    /// PEM CA bundle to verify the server's certificate with (TLS; an
    /// https:// endpoint without it uses the bundle of the system).
    #[arg(long, global = true, env = "SIGNET_CA_FILE")]
    pub ca_file: Option<std::path::PathBuf>,
    /// PEM client certificate for mutual TLS (with --key-file).
    #[arg(long, global = true, env = "SIGNET_CERT_FILE", requires = "key_file")]
    pub cert_file: Option<std::path::PathBuf>,
    /// PEM private key of --cert-file.
    #[arg(long, global = true, env = "SIGNET_KEY_FILE", requires = "cert_file")]
    pub key_file: Option<std::path::PathBuf>,
}

/// Sub-commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the server. With no --config: in-memory backend with demo keys.
    Serve(ServeArgs),
    /// Create, import, rotate and inspect keys (KeyAdmin service).
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Sign a message (or a digest) read from a file or standard input.
    Sign(sign::SignArgs),
    /// Verify a signature; exit code 0 when valid, 3 when invalid.
    Verify(sign::VerifyArgs),
    /// Sign a file of messages (JSON Lines) through SignBatch.
    SignBatch(batch::SignBatchArgs),
    /// Verify a file of signatures (JSON Lines) through VerifyBatch.
    VerifyBatch(batch::VerifyBatchArgs),
    /// Encrypt a file or standard input with an AES_256_GCM key
    /// (CipherService).
    Encrypt(cipher::EncryptArgs),
    /// Decrypt what `encrypt` (or a partner's JWE) made.
    Decrypt(cipher::DecryptArgs),
    /// Move a ciphertext to the key's ACTIVE version without the
    /// plaintext leaving signet.
    Reencrypt(cipher::DecryptArgs),
    /// A fresh data key for envelope encryption, encrypted under a key
    /// (and in plaintext to a file with --plaintext-out).
    Datakey(cipher::DataKeyArgs),
    /// Export a key version's public key (PEM, PKCS#1 PEM, DER, JWK) or the
    /// key's JWKS.
    PublicKey(public_key::PublicKeyArgs),
    /// Sign an outbound HTTP request or verify a webhook by profile.
    #[command(subcommand)]
    Http(http::HttpCommand),
    /// Load-test Sign over gRPC (or in-process) and report throughput,
    /// latency percentiles and CPU cost per request.
    Bench(bench::BenchArgs),
    /// The bare tonic server `bench --floor` measures signet against.
    #[command(hide = true)]
    BenchFloorServer(bench_floor::FloorServerArgs),
    /// Time admin changes between two servers sharing a registry: how soon
    /// the other serves them (propagation) and how many per second.
    BenchRegistry(bench_registry::BenchRegistryArgs),
    /// Make bearer tokens for [[auth.tokens]].
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Write a throw-away CA, a server certificate and a client
    /// certificate, and a config that serves mutual TLS with them.
    DevCerts(dev_certs::DevCertsArgs),
    /// Operate on the key registry itself (move it to PostgreSQL).
    #[command(subcommand)]
    Registry(registry::RegistryCommand),
    /// Check a configuration file without starting: syntax, every field,
    /// profiles, identities and grants, and the listener rules. Files it
    /// names (TLS, PIN, tokens_file) are read only by `serve`.
    CheckConfig(CheckConfigArgs),
}

/// `signet check-config`.
#[derive(Debug, clap::Args)]
pub(crate) struct CheckConfigArgs {
    /// TOML configuration file.
    pub config: PathBuf,
}

/// `signet serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// TOML configuration file (see examples/signet.toml).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Listen address; overrides server.listen.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            let text = e.render().to_string();
            let text = text.trim_start_matches("error: ");
            if std::env::args_os().any(|a| a == "--json") {
                let first = text.lines().next().unwrap_or_default();
                report(true, &CliError::usage(first));
            } else {
                eprint!("signet: {text}");
            }
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let json = cli.global.json;
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Command::Bench(a) = &cli.command {
        if !a.in_process {
            builder.worker_threads(a.client_threads as usize);
        }
    }
    let rt = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("signet: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Run the command on a worker thread, not on this one: `block_on` polls
    // its future on the calling thread, so a server run there would drive
    // every connection from one thread while the workers idle.
    let result = rt.block_on(async {
        match tokio::spawn(dispatch(cli)).await {
            Ok(r) => r,
            Err(e) => Err(CliError::rpc(format!("command task failed: {e}"))),
        }
    });
    // Do not wait for lingering connection tasks.
    rt.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(json, &e);
            ExitCode::from(e.code)
        }
    }
}

/// Prints a failed command on standard error: `signet: …` for a person, or
/// with `--json` one JSON object (`{"error": {"code", "message",
/// "request_id", "exit_code"}}`) for a program.
fn report(json: bool, e: &CliError) {
    // An answer already printed (a verification that came out invalid).
    if e.message.is_empty() && e.status.is_none() {
        return;
    }
    if json {
        eprintln!("{}", e.to_json());
    } else if !e.message.is_empty() {
        eprintln!("signet: {}", e.message);
    }
}

/// Runs one parsed command.
pub(crate) async fn dispatch(cli: Cli) -> CliResult {
    let g = &cli.global;
    match cli.command {
        Command::Serve(args) => serve(args).await.map_err(|e| CliError::rpc(e.to_string())),
        Command::Keys(cmd) => keys::run(g, cmd).await,
        Command::Sign(a) => sign::sign(g, a).await,
        Command::Verify(a) => sign::verify(g, a).await,
        Command::SignBatch(a) => batch::sign(g, a).await,
        Command::VerifyBatch(a) => batch::verify(g, a).await,
        Command::PublicKey(a) => public_key::run(g, a).await,
        Command::Encrypt(a) => cipher::encrypt(g, a).await,
        Command::Decrypt(a) => cipher::decrypt(g, a).await,
        Command::Reencrypt(a) => cipher::reencrypt(g, a).await,
        Command::Datakey(a) => cipher::datakey(g, a).await,
        Command::Bench(a) => bench::run(g, a).await,
        Command::BenchFloorServer(a) => bench_floor::serve(a).await,
        Command::BenchRegistry(a) => bench_registry::run(g, a).await,
        Command::Http(c) => http::run(g, c).await,
        Command::Token(c) => token::run(g, c),
        Command::DevCerts(a) => dev_certs::run(g, a),
        Command::Registry(c) => registry::run(g.json, &c).await,
        Command::CheckConfig(a) => {
            check_config(&a.config).map_err(|e| CliError::usage(e.to_string()))
        }
    }
}

/// `signet check-config`: the file parsed and put through
/// [`crate::server::settings::Settings::from_config`], the check `serve`
/// and the SIGHUP reload make.
fn check_config(path: &std::path::Path) -> Result<(), StartupError> {
    let text = std::fs::read_to_string(path).map_err(|source| StartupError::File {
        what: "config",
        path: path.to_path_buf(),
        source,
    })?;
    let in_file = |source| StartupError::InFile {
        path: path.to_path_buf(),
        source,
    };
    let config = Config::parse(&text).map_err(in_file)?;
    let settings = Settings::from_config(&config).map_err(in_file)?;
    println!(
        "{}: ok ({} profiles, {} identities)",
        path.display(),
        settings.profiles.len(),
        config.auth.identities.len()
    );
    Ok(())
}

async fn serve(args: ServeArgs) -> Result<(), StartupError> {
    let config = match &args.config {
        Some(p) => Config::load(p)?,
        None => Config::demo(),
    };
    crate::server::run(config, args.config.clone(), args.listen).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("signet").chain(args.iter().copied()))
    }

    #[test]
    fn globals_anywhere() {
        let c = parse(&["keys", "get", "k", "--json", "--endpoint", "http://h:1"]).unwrap();
        assert!(c.global.json);
        assert_eq!(c.global.endpoint, "http://h:1");
        let c = parse(&["--json", "sign", "--key", "k"]).unwrap();
        assert!(c.global.json);
    }

    #[test]
    fn keys_create_flags() {
        let c = parse(&[
            "keys",
            "create",
            "pay",
            "--algorithm",
            "ecdsa_p256_sha256",
            "--label",
            "a=b",
            "--label",
            "c=d",
            "--rotation-period",
            "90d",
            "--pending-period",
            "7d",
        ])
        .unwrap();
        let Command::Keys(keys::KeysCommand::Create(a)) = c.command else {
            panic!("not create")
        };
        assert_eq!(a.algorithm, crate::keys::Algorithm::EcdsaP256Sha256);
        assert_eq!(a.labels.len(), 2);
        assert_eq!(
            a.rotation_period,
            Some(std::time::Duration::from_secs(90 * 86400))
        );
        // A pending period without a rotation period makes no policy.
        assert!(parse(&[
            "keys",
            "create",
            "p",
            "-a",
            "ED25519",
            "--pending-period",
            "1d"
        ])
        .is_err());
        assert!(parse(&["keys", "create", "p", "-a", "RSA"]).is_err());
        assert!(parse(&["keys", "create", "p", "-a", "ED25519", "--label", "x"]).is_err());
    }

    #[test]
    fn sign_and_verify_flags() {
        let c = parse(&[
            "sign",
            "--key",
            "k",
            "--encoding",
            "hex",
            "--format",
            "raw",
            "--digest",
        ])
        .unwrap();
        let Command::Sign(a) = c.command else {
            panic!()
        };
        assert_eq!(a.encoding, Some(sign::Encoding::Hex));
        assert_eq!(a.input.format, sign::SigFormat::Raw);
        assert!(a.input.digest);
        assert!(parse(&["verify", "--key", "k"]).is_err());
        assert!(parse(&["verify", "--key", "k", "-s", "AA", "--signature-file", "f"]).is_err());
        assert!(parse(&["verify", "--key", "k", "--signature-file", "f"]).is_ok());
        assert!(parse(&["public-key", "--key", "k", "--format", "pem-pkcs1"]).is_ok());
    }

    #[test]
    fn bench_flags() {
        let c = parse(&["bench", "--key", "demo-hmac", "--duration", "3s"]).unwrap();
        let Command::Bench(a) = c.command else {
            panic!()
        };
        assert_eq!((a.concurrency, a.connections, a.message_size), (64, 4, 32));
        assert_eq!(a.duration, std::time::Duration::from_secs(3));
        assert_eq!(a.warmup, std::time::Duration::from_secs(1));
        assert!(parse(&["bench"]).is_err());
        assert!(parse(&["bench", "--in-process", "-a", "ed25519"]).is_ok());
        assert!(parse(&["bench", "--key", "k", "-a", "ed25519"]).is_err());
        assert!(parse(&["bench", "--in-process", "--server-pid", "1"]).is_err());
        assert_eq!(a.client_threads, 1);
        assert!(parse(&["bench", "--in-process", "--client-threads", "2"]).is_err());
        assert!(parse(&["bench", "--key", "k", "--client-threads", "0"]).is_err());
        assert!(!a.floor);
        assert!(parse(&["bench", "--key", "k", "--floor", "--server-pid", "1"]).is_ok());
        assert!(parse(&["bench", "--floor"]).is_err(), "--floor needs --key");
        assert!(parse(&["bench", "--in-process", "-a", "ed25519", "--floor"]).is_err());
    }

    #[test]
    fn floor_server_is_hidden() {
        let help = Cli::command().render_help().to_string();
        assert!(!help.contains("bench-floor-server"), "{help}");
        let c = parse(&["bench-floor-server", "--signature-length", "64"]).unwrap();
        let Command::BenchFloorServer(a) = c.command else {
            panic!()
        };
        assert_eq!((a.signature_length, a.version), (64, 1));
        assert!(parse(&["bench-floor-server"]).is_err());
    }
}
