//! What a SIGHUP reload applies, and what only a restart does.
//!
//! A reload installs `[auth]` (with `tokens_file`), `[[limits.keys]]`,
//! `[[profiles]]` and the TLS section (files, client CA, versions,
//! handshake timeout). Every other setting is read once at start-up: when
//! the file changes one, the reload says so by name.
//!
//! The lists below destructure every section without `..`: a new field
//! does not compile until it is sorted into "restart" or "reloaded", so no
//! setting can silently change only on paper.

use super::{
    AdminConfig, AuditConfig, BackendConfig, Config, HttpConfig, KeysConfig, LimitsConfig,
    LogConfig, Pkcs11Config, PostgresConfig, RegistryConfig, ServerConfig, TelemetryConfig,
    TlsConfig,
};

/// Compares the fields of one section: those under `restart` are reported
/// when they differ; those under `reloaded` are listed only so that the
/// destructuring is exhaustive.
macro_rules! restart_only {
    ($out:ident, $prefix:literal, $ty:ident, $old:expr, $new:expr,
     restart: [$($r:ident),* $(,)?], reloaded: [$($l:ident),* $(,)?]) => {{
        let (old, new): (&$ty, &$ty) = ($old, $new);
        let $ty { $($r: _,)* $($l: _,)* } = new;
        $(
            if old.$r != new.$r {
                $out.push(concat!($prefix, stringify!($r)).to_string());
            }
        )*
    }};
}

/// The restart-only settings that differ between the configuration in
/// force (`old`) and a reloaded file (`new`), by their config names, e.g.
/// `server.listen`. Empty when the reload applies everything that changed.
pub(crate) fn restart_only_changes(old: &Config, new: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let Config {
        server,
        backend,
        keys,
        registry,
        postgres,
        log,
        http,
        profiles: _,
        auth: _,
        limits,
        audit,
        admin,
        telemetry,
    } = new;
    restart_only!(out, "server.", ServerConfig, &old.server, server,
        restart: [listen, max_message_bytes, shutdown_timeout, drain_delay,
                  max_concurrent_streams, plaintext],
        reloaded: [tls]);
    match (&old.server.tls, &server.tls) {
        (Some(o), Some(n)) => restart_only!(out, "server.tls.", TlsConfig, o, n,
            restart: [reload_interval],
            reloaded: [cert_file, key_file, client_ca_file, require_client_cert,
                       min_version, handshake_timeout]),
        (None, None) => {}
        _ => out.push("server.tls".into()),
    }
    match (&old.backend, backend) {
        (BackendConfig::Pkcs11(o), BackendConfig::Pkcs11(n)) => {
            restart_only!(out, "backend.", Pkcs11Config, o, n,
                restart: [module, token_label, token_serial, pin_file, pin_env,
                          max_sessions, session_wait, threads, destroy_orphans],
                reloaded: [])
        }
        (BackendConfig::Memory { demo_keys: o }, BackendConfig::Memory { demo_keys: n }) => {
            if o != n {
                out.push("backend.demo_keys".into());
            }
        }
        _ => out.push("backend.type".into()),
    }
    restart_only!(out, "keys.", KeysConfig, &old.keys, keys,
        restart: [default_grace_period, destroy_delay, tick_interval,
                  max_encryptions_per_version, refuse_plaintext_import],
        reloaded: []);
    restart_only!(out, "registry.", RegistryConfig, &old.registry, registry,
        restart: [store, max_staleness],
        reloaded: []);
    match (&old.postgres, postgres) {
        (Some(o), Some(n)) => restart_only!(out, "postgres.", PostgresConfig, o, n,
            restart: [url_file, url_env, schema, pool_size, connect_timeout,
                      statement_timeout, heartbeat, resync_interval, ca_file,
                      client_cert_file, client_key_file],
            reloaded: []),
        (None, None) => {}
        _ => out.push("postgres".into()),
    }
    restart_only!(out, "log.", LogConfig, &old.log, log,
        restart: [level, format],
        reloaded: []);
    restart_only!(out, "http.", HttpConfig, &old.http, http,
        restart: [replay_store, replay_capacity, redis_url, redis_url_env],
        reloaded: []);
    // max_template_bytes bounds the profiles, which are checked (against
    // the new value) when they are reloaded.
    restart_only!(out, "limits.", LimitsConfig, &old.limits, limits,
        restart: [max_in_flight, max_http_body_bytes, max_http_headers,
                  max_http_header_bytes, max_url_bytes, max_batch_items,
                  max_batch_bytes],
        reloaded: [max_template_bytes, keys]);
    restart_only!(out, "audit.", AuditConfig, &old.audit, audit,
        restart: [output, path],
        reloaded: []);
    restart_only!(out, "admin.", AdminConfig, &old.admin, admin,
        restart: [listen],
        reloaded: []);
    restart_only!(out, "telemetry.", TelemetryConfig, &old.telemetry, telemetry,
        restart: [service_name],
        reloaded: []);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_restart_only_setting_that_changed_is_named() {
        let base = "[server]\nlisten = \"127.0.0.1:1\"\nplaintext = true\n";
        let old = Config::parse(base).unwrap();
        // What a reload applies is not reported.
        let reloadable = format!(
            "{base}[[auth.identities]]\nname = \"a\"\n[[auth.identities.grants]]\n\
             operations = [\"sign\"]\nkeys = [\"*\"]\n[[limits.keys]]\nkey = \"k\"\n\
             rate_per_second = 5\n"
        );
        assert_eq!(
            restart_only_changes(&old, &Config::parse(&reloadable).unwrap()),
            Vec::<String>::new()
        );
        for (edit, field) in [
            ("listen = \"127.0.0.1:2\"", "server.listen"),
            ("max_message_bytes = 10", "server.max_message_bytes"),
            ("shutdown_timeout = \"1s\"", "server.shutdown_timeout"),
            ("drain_delay = \"1s\"", "server.drain_delay"),
            (
                "max_concurrent_streams = 2",
                "server.max_concurrent_streams",
            ),
            (
                "[keys]\ndefault_grace_period = \"1d\"",
                "keys.default_grace_period",
            ),
            ("[keys]\ndestroy_delay = \"2d\"", "keys.destroy_delay"),
            ("[keys]\ntick_interval = \"2s\"", "keys.tick_interval"),
            ("[log]\nlevel = \"debug\"", "log.level"),
            ("[log]\nformat = \"json\"", "log.format"),
            ("[http]\nreplay_capacity = 5", "http.replay_capacity"),
            ("[limits]\nmax_in_flight = 5", "limits.max_in_flight"),
            ("[limits]\nmax_url_bytes = 5", "limits.max_url_bytes"),
            ("[audit]\noutput = \"off\"", "audit.output"),
            ("[admin]\nlisten = \"127.0.0.1:9\"", "admin.listen"),
            (
                "[telemetry]\nservice_name = \"x\"",
                "telemetry.service_name",
            ),
            (
                "[backend]\ntype = \"memory\"\ndemo_keys = true",
                "backend.demo_keys",
            ),
        ] {
            let text = if edit.starts_with('[') {
                format!("{base}{edit}\n")
            } else {
                base.replace("plaintext = true\n", &format!("plaintext = true\n{edit}\n"))
                    .replace(
                        "listen = \"127.0.0.1:1\"\nplaintext = true\nlisten",
                        "plaintext = true\nlisten",
                    )
            };
            let new = Config::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(restart_only_changes(&old, &new), [field], "{text}");
        }
    }

    #[test]
    fn the_database_tls_files_take_a_restart() {
        let base = "[server]\nlisten = \"127.0.0.1:1\"\nplaintext = true\n\
                    [postgres]\nurl_env = \"PG_URL\"\n";
        let old = Config::parse(base).unwrap();
        for (edit, fields) in [
            ("ca_file = \"/ca.pem\"", vec!["postgres.ca_file"]),
            (
                "ca_file = \"/ca.pem\"\nclient_cert_file = \"/c.pem\"\nclient_key_file = \"/k.pem\"",
                vec![
                    "postgres.ca_file",
                    "postgres.client_cert_file",
                    "postgres.client_key_file",
                ],
            ),
        ] {
            let new = Config::parse(&format!("{base}{edit}\n")).unwrap();
            assert_eq!(restart_only_changes(&old, &new), fields, "{edit}");
        }
    }
}
