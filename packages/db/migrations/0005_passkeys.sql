-- Passkeys (issue 14): the IdP's WebAuthn credentials, one row per credential. Only public keys are
-- held (a COSE key, RFC 9052 §7), so a copy of this table signs nothing; the sign count lets the IdP
-- notice a cloned authenticator (WebAuthn §6.1.1). The IdP's role alone may read or change it (0001:
-- nobody else has USAGE on keyway_idp).
CREATE TABLE keyway_idp.passkeys (
  -- the credential id (WebAuthn §4 "Credential ID"), base64url as the browser reports it
  credential_id text PRIMARY KEY CHECK (credential_id ~ '^[A-Za-z0-9_-]+$' AND length(credential_id) BETWEEN 16 AND 1366),
  sub text NOT NULL,
  public_key bytea NOT NULL,
  sign_count bigint NOT NULL DEFAULT 0 CHECK (sign_count >= 0),
  -- the authenticator's transports (AuthenticatorTransport), as a JSON array of strings
  transports text NOT NULL DEFAULT '[]',
  created_at timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz
);
CREATE INDEX passkeys_by_sub ON keyway_idp.passkeys (sub);
GRANT SELECT, INSERT, UPDATE, DELETE ON keyway_idp.passkeys TO keyway_idp;
