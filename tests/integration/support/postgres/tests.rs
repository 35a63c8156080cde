//! The harness's own tests: servers start, restart, freeze and go away.

use super::*;

#[test]
fn the_password_is_the_swept_literal_and_url_safe() {
    assert_eq!(PASSWORD.as_bytes(), PASSWORD_BYTES);
    assert!(PASSWORD.contains("secret"));
    assert!(PASSWORD
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-'));
}

#[test]
fn fresh_schemas_are_unique_plain_identifiers() {
    let (a, b) = (fresh_schema(), fresh_schema());
    assert_ne!(a, b);
    for s in [a, b] {
        assert!(s.len() <= 63, "{s}");
        assert!(s.starts_with("t_"), "{s}");
        assert!(
            s.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_'),
            "{s}"
        );
    }
}

#[test]
fn a_server_starts_answers_and_restarts() {
    let pg = Postgres::start();
    assert_eq!(pg.psql("select 1").trim(), "1");
    // Over TCP, the password is checked (scram-sha-256).
    assert_eq!(
        pg.psql_tcp("select current_user", Duration::from_secs(5))
            .unwrap()
            .trim(),
        USER
    );
    assert!(pg.url().contains(PASSWORD));
    assert!(!pg.url_without_password().contains(PASSWORD));
    assert!(pg.url().ends_with(&format!(":{}/postgres", pg.port())));
    let schema = fresh_schema();
    pg.psql(&format!(
        "create schema {schema}; create table {schema}.t (n int)"
    ));
    pg.psql(&format!("insert into {schema}.t values (7)"));

    pg.stop();
    assert!(pg.psql_tcp("select 1", Duration::from_secs(2)).is_err());
    pg.start_again();
    assert_eq!(pg.psql(&format!("select n from {schema}.t")).trim(), "7");
    pg.restart();
    assert_eq!(pg.psql(&format!("select n from {schema}.t")).trim(), "7");
}

#[test]
fn a_frozen_server_hangs_until_thawed_and_only_it() {
    let (a, b) = (Postgres::start(), Postgres::start());
    assert_ne!(a.port(), b.port());
    a.psql("create table only_in_a (n int)");
    assert_eq!(
        b.psql("select count(*) from pg_tables where tablename = 'only_in_a'")
            .trim(),
        "0"
    );

    a.freeze();
    let t = Instant::now();
    let err = a
        .psql_tcp("select 1", Duration::from_secs(2))
        .expect_err("a frozen server answered");
    assert!(err.contains("timeout"), "{err}");
    assert!(
        t.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
    // The other server is not frozen.
    assert_eq!(b.psql("select 2").trim(), "2");
    assert_eq!(
        b.psql_tcp("select 3", Duration::from_secs(5))
            .unwrap()
            .trim(),
        "3"
    );

    a.thaw();
    assert_eq!(
        a.psql_tcp("select 4", Duration::from_secs(5))
            .unwrap()
            .trim(),
        "4"
    );
    assert_eq!(a.psql("select count(*) from only_in_a").trim(), "0");
}

#[test]
fn dropping_a_server_leaves_no_process_and_no_directory() {
    let pg = Postgres::start();
    let pm = pg.postmaster_pid().unwrap();
    let dir = pg.dir.path().to_path_buf();
    let mut all = descendants(pm);
    all.push(pm);
    pg.freeze();
    drop(pg);
    assert!(!dir.exists(), "{}", dir.display());
    for pid in all {
        assert!(
            proc_stat(pid).is_none_or(|(state, _)| state == 'Z'),
            "process {pid} outlived its server"
        );
    }
}
