import { cpSync, existsSync, linkSync, mkdirSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { basename, dirname, join } from 'node:path';
import type { Metafile } from 'esbuild';

/**
 * The production node_modules of a bundle: the packages its code imports, and theirs, copied as real
 * files out of the pnpm layout into one node_modules tree that Node's resolution walks as npm would
 * lay it out (a second version of a package nested under the one that needs it).
 */

interface Manifest {
  name: string;
  version: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

interface Pkg {
  name: string;
  version: string;
  /** the package's real directory in the pnpm store */
  source: string;
}

/** a place in the output tree: the root node_modules, or a package's own node_modules */
interface Place {
  pkg?: Pkg;
  parent?: Place;
  children: Map<string, Place>;
}

const readManifest = (dir: string): Manifest => JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest;

/** '@scope/name/sub/path' → '@scope/name'; 'name/sub' → 'name' */
function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

/** Node's lookup from `fromDir` upwards, stopping at `stop` (exclusive of anything above it). */
function findUp(name: string, fromDir: string, stop: string): string | undefined {
  for (let dir = fromDir; dir.startsWith(stop); dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return realpathSync(candidate);
    if (dir === stop) break;
  }
  return undefined;
}

/**
 * A third-party package's own dependency: pnpm links it as a sibling (`.pnpm/<id>/node_modules/<dep>`).
 * Looking only there (not further up, where pnpm hoists everything) keeps unrelated packages out.
 */
function dependencyOf(pkg: Pkg, name: string): string | undefined {
  const own = join(pkg.source, 'node_modules', name);
  if (existsSync(join(own, 'package.json'))) return realpathSync(own);
  const siblings = pkg.name.split('/').reduce((dir) => dirname(dir), pkg.source);
  const sibling = join(siblings, name);
  return existsSync(join(sibling, 'package.json')) ? realpathSync(sibling) : undefined;
}

const pkgAt = (source: string): Pkg => {
  const manifest = readManifest(source);
  return { name: manifest.name, version: manifest.version, source };
};

/** what `name` resolves to from inside `place` (its own node_modules first, then up to the root) */
function resolveFrom(place: Place, name: string): Place | undefined {
  for (let at: Place | undefined = place; at; at = at.parent) {
    const found = at.children.get(name);
    if (found) return found;
  }
  return undefined;
}

/**
 * The third-party packages the bundle imports (from its metafile), each resolved from the workspace
 * file that imports it. Two workspace packages importing different versions of one package cannot
 * share one bundle: that stops the build.
 */
export function importedPackages(root: string, metafile: Metafile): Pkg[] {
  const found = new Map<string, Pkg>();
  for (const [input, { imports }] of Object.entries(metafile.inputs)) {
    for (const imported of imports) {
      // '<runtime>': esbuild's own helpers
      if (!imported.external || isBuiltin(imported.path) || /^[.<]/.test(imported.path)) continue;
      const name = packageName(imported.path);
      const source = findUp(name, dirname(join(root, input)), root);
      if (!source) throw new Error(`${input} imports ${name}, which is not installed for it`);
      const pkg = pkgAt(source);
      const seen = found.get(name);
      if (seen && seen.source !== source) throw new Error(`${name}: ${seen.version} and ${pkg.version} are both imported; one bundle can hold one (align them in the pnpm catalog)`);
      found.set(name, pkg);
    }
  }
  return [...found.values()];
}

/** Lays out `direct` and everything they depend on; answers the tree (root place). */
export function layOut(direct: Pkg[]): Place {
  const root: Place = { children: new Map() };
  const queue: Place[] = [];
  const put = (at: Place, pkg: Pkg) => {
    const place: Place = { pkg, parent: at, children: new Map() };
    at.children.set(pkg.name, place);
    queue.push(place);
  };
  for (const pkg of direct) put(root, pkg);
  // breadth first: the packages nearest the bundle take the top level
  while (queue.length > 0) {
    const place = queue.shift()!;
    const pkg = place.pkg!;
    const manifest = readManifest(pkg.source);
    const optional = new Set([...Object.keys(manifest.optionalDependencies ?? {}), ...Object.keys(manifest.peerDependencies ?? {})]);
    const names = new Set([...Object.keys(manifest.dependencies ?? {}), ...optional]);
    for (const name of names) {
      const source = dependencyOf(pkg, name);
      if (!source) {
        // an optional dependency for another platform, or a peer nobody installed: the package copes without it
        if (optional.has(name)) continue;
        throw new Error(`${pkg.name}@${pkg.version} depends on ${name}, which is not installed`);
      }
      const dep = pkgAt(source);
      const visible = resolveFrom(place, name);
      if (visible?.pkg?.source === source) continue;
      // not visible anywhere: the top level; hidden behind another version: the package's own node_modules
      put(visible ? place : root, dep);
    }
  }
  verify(root);
  return root;
}

/** Every package resolves each of its installed dependencies to the very copy pnpm gave it. */
function verify(root: Place): void {
  const walk = (place: Place) => {
    for (const child of place.children.values()) {
      const manifest = readManifest(child.pkg!.source);
      const names = [...Object.keys(manifest.dependencies ?? {}), ...Object.keys(manifest.optionalDependencies ?? {}), ...Object.keys(manifest.peerDependencies ?? {})];
      for (const name of names) {
        const source = dependencyOf(child.pkg!, name);
        if (source && resolveFrom(child, name)?.pkg?.source !== source) throw new Error(`${child.pkg!.name} would not find its ${name} in the laid out node_modules`);
      }
      walk(child);
    }
  };
  walk(root);
}

/**
 * Hard-links every file of `from` (a package this build copied) into `to`, directories made anew; the
 * package's node_modules is the other bundle's nesting, not the package's, and is left out.
 */
function linkTree(from: string, to: string, top = true): void {
  mkdirSync(to, { recursive: true });
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    if (top && entry.name === 'node_modules') continue;
    if (entry.isDirectory()) linkTree(join(from, entry.name), join(to, entry.name), false);
    else linkSync(join(from, entry.name), join(to, entry.name));
  }
}

/**
 * Copies the tree under `dir`/node_modules: real files, a package's own pnpm links left out. `copies`
 * remembers where this build already copied a package: a second bundle hard-links those files (the
 * seven services share most packages; one copy on disk instead of seven).
 */
export function copyTree(root: Place, dir: string, copies: Map<string, string>): number {
  let count = 0;
  const copy = (place: Place, into: string) => {
    for (const child of place.children.values()) {
      const target = join(into, 'node_modules', child.pkg!.name);
      const source = child.pkg!.source;
      const earlier = copies.get(source);
      if (earlier) linkTree(earlier, target);
      else {
        cpSync(source, target, {
          recursive: true,
          dereference: true,
          filter: (path) => !(basename(path) === 'node_modules' && dirname(path) === source),
        });
        copies.set(source, target);
      }
      count++;
      copy(child, target);
    }
  };
  copy(root, dir);
  return count;
}
