-- Version 1: the key registry, the audit record of its changes, and the
-- replay store. `{schema}` is replaced by postgres.schema.

-- One row per key: its whole record (versions, states, times, labels of
-- the HSM objects; never key material) and the generation every change
-- compares and sets.
CREATE TABLE {schema}.keys (
    name        text PRIMARY KEY,
    generation  bigint NOT NULL CHECK (generation > 0),
    record      jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per committed change, written in the change's own transaction.
CREATE TABLE {schema}.audit (
    id          bigserial PRIMARY KEY,
    time        timestamptz NOT NULL DEFAULT now(),
    key         text NOT NULL,
    generation  bigint NOT NULL,
    rpc         text NOT NULL,
    operation   text,
    request_id  text,
    identity    text,
    source      text,
    version     integer,
    replica     text NOT NULL,
    record      jsonb NOT NULL
);
CREATE INDEX audit_key_time ON {schema}.audit (key, time);

-- The trail is append-only for signet's own role: a row is never changed
-- or removed through it.
CREATE FUNCTION {schema}.audit_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the signet audit trail is append-only';
END
$$;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON {schema}.audit
    FOR EACH ROW EXECUTE FUNCTION {schema}.audit_append_only();

-- Seen nonces and signed-content digests, until they expire.
CREATE TABLE {schema}.replay (
    key         bytea PRIMARY KEY,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX replay_expires_at ON {schema}.replay (expires_at);
