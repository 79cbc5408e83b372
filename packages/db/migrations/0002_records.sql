-- The durable key-value records of each service (@keyway/store createPgStore): one row per key in
-- store_keys (its kind, a string's value, its expiry) and one row per hash field / set member /
-- lex-set member in store_members. Keys, members and values are bytea: text cannot hold a NUL byte
-- and bytea compares byte by byte, the order Redis uses for lex sets. Each service's role may read
-- and write its own schema's tables only. The same two tables in every service's schema.
DO $$
DECLARE
  schema text;
BEGIN
  FOREACH schema IN ARRAY ARRAY['keyway_idp', 'keyway_entitlement', 'keyway_pas', 'keyway_pac', 'keyway_topic', 'keyway_audit'] LOOP
    EXECUTE format($sql$
      CREATE TABLE %1$I.store_keys (
        key bytea PRIMARY KEY,
        kind text NOT NULL CHECK (kind IN ('string', 'hash', 'set', 'zset')),
        value bytea,
        expires_at timestamptz
      );
      CREATE INDEX store_keys_expiry ON %1$I.store_keys (expires_at) WHERE expires_at IS NOT NULL;
      CREATE TABLE %1$I.store_members (
        key bytea NOT NULL REFERENCES %1$I.store_keys (key) ON DELETE CASCADE,
        member bytea NOT NULL,
        value bytea,
        PRIMARY KEY (key, member)
      );
      GRANT SELECT, INSERT, UPDATE, DELETE ON %1$I.store_keys, %1$I.store_members TO %1$I;
    $sql$, schema);
  END LOOP;
END
$$;
