-- The durable key-value records of each service (@keyway/store createPgStore): one row per key in
-- store_keys (its kind, a string's value, its expiry) and one row per hash field / set member /
-- lex-set member in store_members. Keys, members and values are bytea: text cannot hold a NUL byte
-- and bytea compares byte by byte, the order Redis uses for lex sets. Each service's role may read
-- and write its own schema's tables only.

CREATE TABLE keyway_idp.store_keys (
  key bytea PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('string', 'hash', 'set', 'zset')),
  value bytea,
  expires_at timestamptz
);
CREATE INDEX store_keys_expiry ON keyway_idp.store_keys (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE keyway_idp.store_members (
  key bytea NOT NULL REFERENCES keyway_idp.store_keys (key) ON DELETE CASCADE,
  member bytea NOT NULL,
  value bytea,
  PRIMARY KEY (key, member)
);
GRANT SELECT, INSERT, UPDATE, DELETE ON keyway_idp.store_keys, keyway_idp.store_members TO keyway_idp;

CREATE TABLE keyway_entitlement.store_keys (
  key bytea PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('string', 'hash', 'set', 'zset')),
  value bytea,
  expires_at timestamptz
);
CREATE INDEX store_keys_expiry ON keyway_entitlement.store_keys (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE keyway_entitlement.store_members (
  key bytea NOT NULL REFERENCES keyway_entitlement.store_keys (key) ON DELETE CASCADE,
  member bytea NOT NULL,
  value bytea,
  PRIMARY KEY (key, member)
);
GRANT SELECT, INSERT, UPDATE, DELETE ON keyway_entitlement.store_keys, keyway_entitlement.store_members TO keyway_entitlement;

CREATE TABLE keyway_pas.store_keys (
  key bytea PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('string', 'hash', 'set', 'zset')),
  value bytea,
  expires_at timestamptz
);
CREATE INDEX store_keys_expiry ON keyway_pas.store_keys (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE keyway_pas.store_members (
  key bytea NOT NULL REFERENCES keyway_pas.store_keys (key) ON DELETE CASCADE,
  member bytea NOT NULL,
  value bytea,
  PRIMARY KEY (key, member)
);
GRANT SELECT, INSERT, UPDATE, DELETE ON keyway_pas.store_keys, keyway_pas.store_members TO keyway_pas;

CREATE TABLE keyway_pac.store_keys (
  key bytea PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('string', 'hash', 'set', 'zset')),
  value bytea,
  expires_at timestamptz
);
CREATE INDEX store_keys_expiry ON keyway_pac.store_keys (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE keyway_pac.store_members (
  key bytea NOT NULL REFERENCES keyway_pac.store_keys (key) ON DELETE CASCADE,
  member bytea NOT NULL,
  value bytea,
  PRIMARY KEY (key, member)
);
GRANT SELECT, INSERT, UPDATE, DELETE ON keyway_pac.store_keys, keyway_pac.store_members TO keyway_pac;

CREATE TABLE keyway_topic.store_keys (
  key bytea PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('string', 'hash', 'set', 'zset')),
  value bytea,
  expires_at timestamptz
);
CREATE INDEX store_keys_expiry ON keyway_topic.store_keys (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE keyway_topic.store_members (
  key bytea NOT NULL REFERENCES keyway_topic.store_keys (key) ON DELETE CASCADE,
  member bytea NOT NULL,
  value bytea,
  PRIMARY KEY (key, member)
);
GRANT SELECT, INSERT, UPDATE, DELETE ON keyway_topic.store_keys, keyway_topic.store_members TO keyway_topic;

CREATE TABLE keyway_audit.store_keys (
  key bytea PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('string', 'hash', 'set', 'zset')),
  value bytea,
  expires_at timestamptz
);
CREATE INDEX store_keys_expiry ON keyway_audit.store_keys (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE keyway_audit.store_members (
  key bytea NOT NULL REFERENCES keyway_audit.store_keys (key) ON DELETE CASCADE,
  member bytea NOT NULL,
  value bytea,
  PRIMARY KEY (key, member)
);
GRANT SELECT, INSERT, UPDATE, DELETE ON keyway_audit.store_keys, keyway_audit.store_members TO keyway_audit;
