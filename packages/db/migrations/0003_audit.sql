-- The audit trail (issue 11): append-only. Each service role may add events to its own stream and
-- read them; nobody but the retention role may delete, and nobody may update or truncate (the table
-- belongs to the migrator). Each stream is a hash chain (packages/audit); the audit service signs
-- each stream's head into checkpoints with a key that is not in the database, so whoever can write
-- the database still cannot rewrite or cut history without `keyway audit verify` noticing.
DO $$
BEGIN
  CREATE ROLE keyway_audit_retention NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
  NULL;
END
$$;

CREATE TABLE keyway_audit.events (
  stream text NOT NULL,
  seq bigint NOT NULL CHECK (seq > 0),
  id text NOT NULL,
  time timestamptz NOT NULL,
  tenant text,
  subject text,
  action text NOT NULL,
  outcome text NOT NULL,
  prev_hash text NOT NULL,
  hash text NOT NULL,
  -- the canonical JSON that `hash` is computed over; the columns above are copies for the indexes
  event text NOT NULL,
  PRIMARY KEY (stream, seq)
);
-- queryEvents walks one of these in (id, stream, seq) order: ids start with their time
CREATE INDEX events_by_id ON keyway_audit.events (id, stream, seq);
CREATE INDEX events_by_stream ON keyway_audit.events (stream, id, seq);
CREATE INDEX events_by_tenant ON keyway_audit.events (tenant, id, stream, seq) WHERE tenant IS NOT NULL;
CREATE INDEX events_by_subject ON keyway_audit.events (subject, id, stream, seq) WHERE subject IS NOT NULL;
CREATE INDEX events_by_action ON keyway_audit.events (action, id, stream, seq);
CREATE INDEX events_by_outcome ON keyway_audit.events (outcome, id, stream, seq);

-- The newest trimmed event of each stream: the oldest kept event links to it.
CREATE TABLE keyway_audit.anchors (
  stream text PRIMARY KEY,
  seq bigint NOT NULL,
  hash text NOT NULL
);

-- Signed stream heads: an Ed25519 signature over the canonical JSON of {hash, seq, stream, time}.
CREATE TABLE keyway_audit.checkpoints (
  stream text NOT NULL,
  seq bigint NOT NULL,
  hash text NOT NULL,
  time timestamptz NOT NULL,
  key_id text NOT NULL,
  signature text NOT NULL,
  PRIMARY KEY (stream, seq)
);

-- Signed trims: every anchor the retention function sets comes with the audit service's Ed25519
-- signature over the canonical JSON of {eventTime, hash, purpose: "trim", seq, stream, trimmedAt}
-- (eventTime: when the anchor event, the newest trimmed, was written). An anchor without one means
-- events were deleted by someone other than retention.
CREATE TABLE keyway_audit.trims (
  stream text NOT NULL,
  seq bigint NOT NULL CHECK (seq > 0),
  hash text NOT NULL,
  event_time timestamptz NOT NULL,
  trimmed_at timestamptz NOT NULL,
  key_id text NOT NULL,
  signature text NOT NULL,
  PRIMARY KEY (stream, seq)
);

-- How long events are kept: set by whoever administers the database (UPDATE, as the migrator), not by
-- the audit service, so a compromised service cannot shorten it to erase recent history.
CREATE TABLE keyway_audit.retention (
  one boolean PRIMARY KEY DEFAULT true CHECK (one),
  keep interval NOT NULL CHECK (keep >= interval '0')
);
INSERT INTO keyway_audit.retention (keep) VALUES (interval '400 days');

REVOKE ALL ON keyway_audit.events, keyway_audit.anchors, keyway_audit.checkpoints, keyway_audit.trims, keyway_audit.retention FROM PUBLIC;
GRANT USAGE ON SCHEMA keyway_audit TO keyway_idp, keyway_entitlement, keyway_pas, keyway_pac, keyway_topic, keyway_audit_retention;
GRANT SELECT, INSERT ON keyway_audit.events TO keyway_idp, keyway_entitlement, keyway_pas, keyway_pac, keyway_topic, keyway_audit;
GRANT SELECT ON keyway_audit.anchors TO keyway_idp, keyway_entitlement, keyway_pas, keyway_pac, keyway_topic, keyway_audit;
GRANT SELECT ON keyway_audit.retention TO keyway_audit, keyway_audit_retention;
GRANT SELECT, INSERT ON keyway_audit.checkpoints TO keyway_audit;
GRANT SELECT, DELETE ON keyway_audit.events TO keyway_audit_retention;
GRANT SELECT, INSERT, UPDATE ON keyway_audit.anchors TO keyway_audit_retention;
-- a trim is recorded only inside trim_stream, with the anchor it sets; nobody updates or deletes one
GRANT SELECT ON keyway_audit.trims TO keyway_audit;
GRANT SELECT, INSERT ON keyway_audit.trims TO keyway_audit_retention;

-- A service's stream is its name: role keyway_pas writes and reads stream "pas" only. The audit
-- service reads every stream (query, verify, export); retention reads and trims every stream.
ALTER TABLE keyway_audit.events ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_stream_insert ON keyway_audit.events FOR INSERT WITH CHECK (stream = substr(current_user, 8));
CREATE POLICY own_stream_select ON keyway_audit.events FOR SELECT USING (stream = substr(current_user, 8));
CREATE POLICY audit_reads_all ON keyway_audit.events FOR SELECT TO keyway_audit USING (true);
CREATE POLICY retention_reads_all ON keyway_audit.events FOR SELECT TO keyway_audit_retention USING (true);
CREATE POLICY retention_trims ON keyway_audit.events FOR DELETE TO keyway_audit_retention USING (true);

-- Retention, run by the audit service: deletes a stream's events up to `upto` and moves the anchor to
-- the last of them, in one step, recording the trim the audit service signed for it. It runs as
-- keyway_audit_retention (SECURITY DEFINER), so the audit service's own role never holds DELETE; it
-- can only cut a prefix of events all older than keyway_audit.retention, and the anchor is the
-- database's own copy of the last cut event's hash, which the signed trim must name, so the kept
-- chain stays verifiable. The signature itself is checked by whoever verifies, with the public key.
CREATE FUNCTION keyway_audit.trim_stream(p_stream text, p_upto bigint, p_hash text, p_event_time timestamptz, p_trimmed_at timestamptz, p_key_id text, p_signature text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_hash text;
  v_count bigint;
BEGIN
  SELECT hash INTO v_hash FROM keyway_audit.events WHERE stream = p_stream AND seq = p_upto;
  IF v_hash IS NULL THEN
    RETURN 0;
  END IF;
  IF v_hash <> p_hash THEN
    RAISE EXCEPTION 'audit stream %: the trim names another hash than event % holds', p_stream, p_upto USING ERRCODE = 'data_exception';
  END IF;
  IF EXISTS (SELECT 1 FROM keyway_audit.events WHERE stream = p_stream AND seq <= p_upto AND time >= now() - (SELECT keep FROM keyway_audit.retention)) THEN
    RAISE EXCEPTION 'audit stream %: events up to seq % are not all past the retention', p_stream, p_upto USING ERRCODE = 'insufficient_privilege';
  END IF;
  DELETE FROM keyway_audit.events WHERE stream = p_stream AND seq <= p_upto;
  GET DIAGNOSTICS v_count = ROW_COUNT;
  INSERT INTO keyway_audit.trims (stream, seq, hash, event_time, trimmed_at, key_id, signature)
    VALUES (p_stream, p_upto, p_hash, p_event_time, p_trimmed_at, p_key_id, p_signature)
    ON CONFLICT (stream, seq) DO NOTHING;
  INSERT INTO keyway_audit.anchors AS a (stream, seq, hash) VALUES (p_stream, p_upto, v_hash)
    ON CONFLICT (stream) DO UPDATE SET seq = excluded.seq, hash = excluded.hash WHERE a.seq < excluded.seq;
  RETURN v_count;
END
$$;
ALTER FUNCTION keyway_audit.trim_stream(text, bigint, text, timestamptz, timestamptz, text, text) OWNER TO keyway_audit_retention;
REVOKE ALL ON FUNCTION keyway_audit.trim_stream(text, bigint, text, timestamptz, timestamptz, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION keyway_audit.trim_stream(text, bigint, text, timestamptz, timestamptz, text, text) TO keyway_audit;
