-- The releases service (issue 13): its own role and schema like every service (0001), its durable
-- records (products, versions, file metadata, uploads: the store tables of 0002), and its own audit
-- stream "releases" (0003's row-level policies already limit a role to the stream named after it).
DO $$
BEGIN
  CREATE ROLE keyway_releases LOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
  NULL;
END
$$;
CREATE SCHEMA keyway_releases;
GRANT USAGE ON SCHEMA keyway_releases TO keyway_releases;
GRANT SELECT ON public.keyway_migrations TO keyway_releases;

CREATE TABLE keyway_releases.store_keys (
  key bytea PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('string', 'hash', 'set', 'zset')),
  value bytea,
  expires_at timestamptz
);
CREATE INDEX store_keys_expiry ON keyway_releases.store_keys (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE keyway_releases.store_members (
  key bytea NOT NULL REFERENCES keyway_releases.store_keys (key) ON DELETE CASCADE,
  member bytea NOT NULL,
  value bytea,
  PRIMARY KEY (key, member)
);
GRANT SELECT, INSERT, UPDATE, DELETE ON keyway_releases.store_keys, keyway_releases.store_members TO keyway_releases;

-- its stream only (own_stream_insert / own_stream_select): the download report reads it back
GRANT USAGE ON SCHEMA keyway_audit TO keyway_releases;
GRANT SELECT, INSERT ON keyway_audit.events TO keyway_releases;
GRANT SELECT ON keyway_audit.anchors TO keyway_releases;
