import { type ReleaseRight, type ReleaseRights, type ReleaseVersion, mayOnRelease } from '@keyway/contracts';
import type { AuditScope } from '@keyway/audit';
import { AccessDenied } from '@keyway/kit';
import { type ReleaseAuthorizer, claimAllows, currentRights } from './authorizer.ts';
import type { Principal } from './principal.ts';

/**
 * The check every route that reads or writes a release makes: the token's claim as a first filter,
 * then the entitlement service's answer now (per request: a contract change holds at the next click).
 * A refusal is 403 access_denied and recorded as authorization.denied with its reason.
 */
export async function authorizeRelease(authorizer: ReleaseAuthorizer, scope: AuditScope, principal: Principal, product: string, right: ReleaseRight): Promise<ReleaseRights> {
  scope.note({ detail: { product, right } });
  const deny = denial(scope);
  if (!claimAllows(principal, product, right)) throw deny(`your access token does not grant ${right} on ${product}`, 'token_claim');
  const current = await currentRights(authorizer, principal);
  if (current.denied !== undefined) throw deny(`you have no access to releases (${current.denied})`, current.denied);
  if (!mayOnRelease(current.rights, product, right)) throw deny(`your roles do not grant ${right} on ${product}`, 'right_missing');
  return current.rights;
}

/**
 * Download's second step, once the version and the file are known (the HTTPS link and an SFTP open
 * alike): inside the range of the contract (and of the token's claim), published, scanned clean.
 */
export function requireDownloadable(scope: AuditScope, principal: Principal, rights: ReleaseRights, version: ReleaseVersion, file: { name: string; state: string }): void {
  const { product } = version;
  scope.note({ detail: { version: version.version } });
  const deny = denial(scope);
  if (!claimAllows(principal, product, 'download', version.version) || !mayOnRelease(rights, product, 'download', version.version)) {
    throw deny(`your contract does not include ${product} ${version.version}`, 'version_not_entitled');
  }
  if (version.state !== 'published') throw deny(`${product} ${version.version} is ${version.state === 'withdrawn' ? 'withdrawn' : 'not published'}`, `version_${version.state}`);
  if (file.state !== 'clean') throw deny(`${file.name} is not downloadable (${file.state})`, `file_${file.state}`);
}

const denial = (scope: AuditScope) => (description: string, reason: string) => scope.refuse(new AccessDenied(description, reason), 'authorization.denied', { reason });

/** Publishers see every version of their product; downloaders the published ones inside their range; others none. */
export function visibleVersions(rights: ReleaseRights, product: string, versions: ReleaseVersion[]): ReleaseVersion[] {
  if (mayOnRelease(rights, product, 'publish')) return versions;
  return versions.filter((v) => v.state === 'published' && mayOnRelease(rights, product, 'download', v.version));
}

/** The rights held on a product (empty when none). */
export const rightsOn = (rights: ReleaseRights, product: string): ReleaseRight[] => (Object.hasOwn(rights, product) ? (rights[product]?.rights ?? []) : []);
