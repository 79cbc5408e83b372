import type { ReleaseVersion, VersionState } from '@keyway/contracts';
import { Conflict, NotFound } from '@keyway/kit';
import type { Catalog } from './catalog.ts';

/** The two moves a publisher makes on a version (HTTPS publish/withdraw, SFTP rename). */
export type VersionMove = 'published' | 'withdrawn';

/**
 * Publishes or withdraws a version, whichever way the publisher came: a version is published only
 * with files, all scanned clean; only a published one is withdrawn; two publishers at once change it
 * once (compare and set). The caller has authorized the publisher already.
 */
export function moveVersion(catalog: Catalog, product: string, version: string, to: VersionMove, now: Date, from?: VersionState): Promise<ReleaseVersion> {
  // no file is staged into it between the check of its files and the move
  return catalog.whileVersionHeld(product, version, () => move(catalog, product, version, to, now, from));
}

/** `from`: the state the caller named it in (SFTP's drafts/<v> is only ever a draft); another is as if it did not exist */
async function move(catalog: Catalog, product: string, version: string, to: VersionMove, now: Date, from?: VersionState): Promise<ReleaseVersion> {
  const current = await catalog.version(product, version);
  if (!current || (from !== undefined && current.state !== from)) throw new NotFound(`no version ${version} of ${product}`);
  if (to === 'published') {
    if (current.state === 'published') throw new Conflict(`${product} ${version} is published already`);
    const files = await catalog.files({ kind: 'version', product, version });
    if (files.length === 0) throw new Conflict(`${product} ${version} has no files: nothing to publish`);
    const unclean = files.filter((file) => file.state !== 'clean');
    if (unclean.length > 0) throw new Conflict(`not every file is scanned clean: ${unclean.map((file) => `${file.name} (${file.state})`).join(', ')}`);
  } else if (current.state !== 'published') {
    throw new Conflict(`${product} ${version} is ${current.state}, not published`);
  }
  const next = await catalog.setVersionState(current, to, now);
  if (!next) throw new Conflict(`${product} ${version} changed meanwhile; look again`);
  return next;
}
