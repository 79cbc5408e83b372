-- One role and one schema per service (least privilege): a service's role reaches only its own
-- schema, plus what a later migration grants it by name. Roles are cluster-wide, so another database
-- of the same cluster may have made them already; schemas belong to this database.
DO $$
DECLARE
  name text;
BEGIN
  FOREACH name IN ARRAY ARRAY['keyway_idp', 'keyway_entitlement', 'keyway_pas', 'keyway_pac', 'keyway_topic', 'keyway_audit'] LOOP
    BEGIN
      EXECUTE format('CREATE ROLE %I LOGIN', name);
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL;
    END;
  END LOOP;
END
$$;

-- The schemas belong to whoever migrates (the services cannot change their shape); each service
-- may use its own schema and nobody else's.
CREATE SCHEMA keyway_idp;
CREATE SCHEMA keyway_entitlement;
CREATE SCHEMA keyway_pas;
CREATE SCHEMA keyway_pac;
CREATE SCHEMA keyway_topic;
CREATE SCHEMA keyway_audit;
GRANT USAGE ON SCHEMA keyway_idp TO keyway_idp;
GRANT USAGE ON SCHEMA keyway_entitlement TO keyway_entitlement;
GRANT USAGE ON SCHEMA keyway_pas TO keyway_pas;
GRANT USAGE ON SCHEMA keyway_pac TO keyway_pac;
GRANT USAGE ON SCHEMA keyway_topic TO keyway_topic;
GRANT USAGE ON SCHEMA keyway_audit TO keyway_audit;
-- Nothing is created in public by anyone but the migrator.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
-- Services read the ledger to refuse to start on a schema older than their code (pendingMigrations).
GRANT SELECT ON public.keyway_migrations TO keyway_idp, keyway_entitlement, keyway_pas, keyway_pac, keyway_topic, keyway_audit;
