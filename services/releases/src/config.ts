import { z } from 'zod';
import { configFields, operatorTokenConfig, pasKeysConfig, requiredInProduction, sharedConfig } from '@keyway/kit';
import { clamdConfig } from '@keyway/scan';

const GiB = 1024 ** 3;

export const ReleasesEnv = requiredInProduction(
  z.object({
    ...sharedConfig,
    ...pasKeysConfig,
    ...operatorTokenConfig,
    ...clamdConfig,
    // an upload's PATCH carries up to a whole file: the shared 30 s would cut any large one
    HTTP_REQUEST_TIMEOUT_SEC: z.coerce
      .number()
      .int()
      .positive()
      .max(3600)
      .default(3600)
      .describe('seconds to receive a whole request, body included: an upload PATCH carries up to a whole file (clients may send it in parts)'),
    PORT: configFields.port.default(8447).describe('HTTPS port'),
    PUBLIC_URL: z.string().url().describe('this service\'s URL: the "aud" of the access tokens it accepts (PAS scope `releases`), and the base of its persistent links'),
    PAS_URL: z.string().url().describe('PAS: issuer of the access tokens, their JWKS and their introspection'),
    RELEASES_CLIENT_ID: z
      .string()
      .regex(/^[A-Za-z0-9._:-]{1,128}$/)
      .default('keyway-releases')
      .describe("this site as PAS registers it (PAS's BROWSER_CLIENTS, scope `releases`): the browser login's client; its redirect URI is PUBLIC_URL + /oauth2/callback"),
    ENTITLEMENT_URL: z.string().url().describe('the entitlement service: asked, over mTLS, at every request that reads or writes a release what the person may do'),
    CLOCK_TOLERANCE_SEC: z.coerce.number().int().min(0).max(300).default(30).describe('clock skew accepted when verifying access tokens'),
    RELEASES_STORAGE_DIR: z
      .string()
      .min(1)
      .describe(
        'where files live: sha256/<2 hex>/<64 hex> (clean, content-addressed), uploads/ (tus, in progress), staged/ (received, not yet clean), quarantine/ (infected); one filesystem, so moves are renames',
      ),
    RELEASES_MAX_FILE_BYTES: z.coerce
      .number()
      .int()
      .positive()
      .default(4 * GiB)
      .describe('largest file an upload may announce (Upload-Length); a file above CLAMD_STREAM_MAX_LENGTH is refused at creation too, since it could never be scanned'),
    RELEASES_UPLOAD_EXPIRY_SEC: z.coerce
      .number()
      .int()
      .positive()
      .default(7 * 86_400)
      .describe('an upload not finished this many seconds after its creation is deleted (its bytes and its record); resume before then'),
    IDP_URL: z
      .string()
      .url()
      .optional()
      .describe('the IdP: asked, over mTLS, whether an SFTP user holds the plain SSH key they log in with (keys registered for private_key_jwt); unset: SFTP takes Keyway certificates only'),
    SFTP_PORT: z
      .union([z.literal('off'), configFields.port])
      .default(8448)
      .describe('the SFTP front (SSH, public-key authentication: Keyway user certificates, keys registered at the IdP); 0: any free port; off: none'),
    SFTP_HOST_NAMES: z
      .string()
      .regex(/^[A-Za-z0-9.:*-]+(,[A-Za-z0-9.:*-]+)*$/, 'comma-separated host names')
      .optional()
      .describe("the names clients reach the SFTP server by: its host certificate's principals (default: PUBLIC_URL's host name)"),
    SFTP_HOST_KEY_FILE: z.string().min(1).optional().describe('the SFTP host key, Ed25519 in PKCS#8 PEM; unset: one is made at every start (clients trust the CA, not the key)'),
    SFTP_HOST_CERTIFICATE_FILE: z
      .string()
      .min(1)
      .optional()
      .describe("a host certificate for SFTP_HOST_KEY_FILE issued elsewhere; unset: PAS's SSH CA issues one at start and renews it at half its life"),
    SFTP_REAUTHORIZE_SEC: z.coerce
      .number()
      .int()
      .min(1)
      .max(3600)
      .default(30)
      .describe('an open SFTP file is authorized again (the entitlement service asked) at its first read or write after this many seconds: a contract change holds mid-transfer too'),
    SFTP_TRUSTED_USER_CA_FILE: z.string().min(1).optional().describe("CA keys whose user certificates are accepted besides PAS's (OpenSSH TrustedUserCAKeys format): a CA being rotated in, say"),
    RELEASES_SCAN_RETRY_SEC: z.coerce.number().int().positive().max(3600).default(30).describe('how often files waiting for the scanner (scan_pending) are tried again'),
  }),
  'REDIS_URL',
  'DATABASE_URL',
);
export type ReleasesConfig = z.output<typeof ReleasesEnv>;
