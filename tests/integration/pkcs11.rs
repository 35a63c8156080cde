//! The PKCS#11 backend on SoftHSM2: the conformance suite unchanged, plus
//! what only a persistent HSM backend has (restart, a second registry on
//! the same token, interrupted rotations, wrong PIN, missing token).
//!
//! Every test gets its own token, initialised through PKCS#11 itself in
//! one SoftHSM2 token directory for the test process, so the tests run in
//! parallel. SoftHSM2 missing is a failure, never a skip.

use std::path::PathBuf;
use std::sync::OnceLock;

use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use signet::api::pb;
use signet::config::{BackendConfig, Config, Pkcs11Config};

use crate::support::process::{serve, Serve};
use crate::support::TestServer;

const MODULE_CANDIDATES: &[&str] = &[
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
];

struct Env {
    module: PathBuf,
    dir: PathBuf,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let module = std::env::var_os("SIGNET_PKCS11_MODULE")
            .map(PathBuf::from)
            .or_else(|| {
                MODULE_CANDIDATES
                    .iter()
                    .map(PathBuf::from)
                    .find(|p| p.is_file())
            })
            .expect(
                "SoftHSM2 is required for the PKCS#11 tests (apt-get install softhsm2); \
                 set SIGNET_PKCS11_MODULE if it is installed elsewhere",
            );
        let dir = tempfile::Builder::new()
            .prefix("signet-softhsm-")
            .tempdir()
            .unwrap()
            .keep();
        std::fs::create_dir_all(dir.join("tokens")).unwrap();
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                dir.join("tokens").display()
            ),
        )
        .unwrap();
        // Before the module is first initialised: SoftHSM2 reads it then.
        std::env::set_var("SOFTHSM2_CONF", &conf);
        Env { module, dir }
    })
}

/// Initialises a fresh token labelled `label` and returns a backend
/// config for it (the user PIN in a file, as in production).
pub fn new_token(label: &str) -> Pkcs11Config {
    static LOCK: parking_lot::Mutex<()> = parking_lot::Mutex::new(());
    let env = env();
    let _g = LOCK.lock();
    let ctx = signet::keys::pkcs11::module_context(&env.module).expect("load SoftHSM2");
    let slot = ctx
        .get_all_slots()
        .unwrap()
        .into_iter()
        .find(|s| {
            ctx.get_token_info(*s)
                .map(|i| !i.token_initialized())
                .unwrap_or(false)
        })
        .expect("SoftHSM2 always offers a free slot");
    let so_pin = AuthPin::new(format!("so-{label}").into());
    let user_pin = format!("user-{label}");
    crate::support::remember_secret(user_pin.as_bytes());
    crate::support::remember_secret(format!("so-{label}").as_bytes());
    ctx.init_token(slot, &so_pin, label).unwrap();
    let session = ctx.open_rw_session(slot).unwrap();
    session.login(UserType::So, Some(&so_pin)).unwrap();
    session
        .init_pin(&AuthPin::new(user_pin.clone().into()))
        .unwrap();
    session.logout().unwrap();
    drop(session);
    let pin_file = env.dir.join(format!("{label}.pin"));
    std::fs::write(&pin_file, format!("{user_pin}\n")).unwrap();
    Pkcs11Config {
        module: env.module.clone(),
        token_label: Some(label.to_string()),
        token_serial: None,
        pin_file: Some(pin_file),
        pin_env: None,
        max_sessions: 8,
        session_wait: std::time::Duration::from_secs(5),
        threads: 0,
        destroy_orphans: false,
    }
}

pub fn config(p: Pkcs11Config) -> Config {
    Config {
        backend: BackendConfig::Pkcs11(p),
        ..Default::default()
    }
}

/// A server on a token of its own.
pub async fn start_fresh() -> TestServer {
    let label = format!("t{}", uuid::Uuid::new_v4().simple());
    let label = &label[..32];
    TestServer::start(config(new_token(label))).await
}

/// The conformance suite, unchanged, on SoftHSM2.
mod conformance_on_softhsm {
    conformance_suite!(super::start_fresh());
}

/// The registry's change marker: what a polled refresh reads.
mod marker;
/// Token loss and return, with signet in a process of its own.
mod outage;
/// Key objects lost and returned on a token that keeps answering.
mod outage_objects;
/// Restart, a second registry, a kill during rotations.
mod persistence;
/// Several `signet serve` processes on one token.
mod replicas;
/// Shutdown leaves no PKCS#11 call in flight.
mod shutdown;
/// A token not listed for a moment when a process starts.
mod startup;
/// PIN, token and module errors; key attributes; sessions; bench.
mod token;

mod wrapped;

pub(crate) fn fresh_label() -> String {
    format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..30])
}

async fn get_key(s: &TestServer, name: &str) -> pb::Key {
    s.admin()
        .get_key(pb::GetKeyRequest { name: name.into() })
        .await
        .unwrap()
        .into_inner()
        .key
        .unwrap()
}

async fn rotate(s: &TestServer, name: &str, promote: bool) -> Result<pb::Key, tonic::Status> {
    s.admin()
        .rotate_key(pb::RotateKeyRequest {
            name: name.into(),
            promote,
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().key.expect("key in RotateKeyResponse"))
}

/// What a restart must keep: every key, version, state and public key.
fn summary(k: &pb::Key) -> Vec<(u32, i32, String)> {
    k.versions
        .iter()
        .map(|v| (v.version, v.state, v.key_version_id.clone()))
        .collect()
}

/// Writes a config file for the token `cfg` describes, plus `extra` TOML.
fn write_config(cfg: &Pkcs11Config, extra: &str) -> PathBuf {
    let path = env()
        .dir
        .join(format!("{}.toml", uuid::Uuid::new_v4().simple()));
    std::fs::write(
        &path,
        format!(
            "[server]\nplaintext = true\n[backend]\ntype = \"pkcs11\"\nmodule = \"{}\"\ntoken_label = \"{}\"\npin_file = \"{}\"\n{extra}",
            cfg.module.display(),
            cfg.token_label.as_deref().unwrap(),
            cfg.pin_file.as_ref().unwrap().display()
        ),
    )
    .unwrap();
    path
}

fn open_backend(cfg: &Pkcs11Config) -> signet::keys::pkcs11::Pkcs11Backend {
    signet::keys::pkcs11::Pkcs11Backend::open(signet::keys::pkcs11::Pkcs11Settings {
        module: cfg.module.clone(),
        token: signet::keys::pkcs11::TokenSelector::Label(cfg.token_label.clone().unwrap()),
        pin: cfg.read_pin().unwrap(),
        max_sessions: 2,
        session_wait: std::time::Duration::from_secs(5),
        threads: 1,
    })
    .unwrap()
}

/// A `signet serve` child process on a token, so a test can kill it.
pub(crate) struct Child {
    serve: Serve,
}

impl Child {
    fn spawn(cfg: &Pkcs11Config) -> Child {
        Self::spawn_with(cfg, "")
    }

    /// With `extra` appended to the config file.
    pub(crate) fn spawn_with(cfg: &Pkcs11Config, extra: &str) -> Child {
        let path = write_config(
            cfg,
            &format!("[keys]\ntick_interval = \"100ms\"\ndestroy_delay = \"0s\"\n[log]\nlevel = \"info\"\n{extra}"),
        );
        let serve = serve()
            .args(["--listen", "127.0.0.1:0"])
            .config(&path)
            .env("SOFTHSM2_CONF", env().dir.join("softhsm2.conf"))
            .log_level_from_config()
            .ready_within(None)
            .start();
        Child { serve }
    }

    pub(crate) async fn admin(
        &self,
    ) -> pb::key_admin_client::KeyAdminClient<tonic::transport::Channel> {
        pb::key_admin_client::KeyAdminClient::connect(self.serve.endpoint())
            .await
            .unwrap()
    }

    pub(crate) async fn signer(
        &self,
    ) -> pb::signer_client::SignerClient<tonic::transport::Channel> {
        pb::signer_client::SignerClient::connect(self.serve.endpoint())
            .await
            .unwrap()
    }
}
