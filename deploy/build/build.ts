/**
 * `pnpm build`: the production artifacts under dist/ (see docs/deploy/build.md).
 * - dist/services/<svc>/main.mjs (+ chunks): workspace code bundled; third-party packages in its own
 *   node_modules (real files), run-time files under files/. `node dist/services/<svc>/main.mjs`.
 * - dist/agent/: the importer as one self-contained keyway-importer.mjs, and an npm package around it.
 * - dist/cli/: the `keyway` CLI as an npm package (one self-contained keyway.mjs + the migrations).
 */
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { bundle, FILES_DIR, RUNTIME_FILES } from './bundle.ts';
import { copyTree, importedPackages, layOut } from './closure.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url)).replace(/\/$/, '');
/** `--out <dir>`: another output directory than dist/ (the build test builds into a temporary one, outside the repo) */
const { values: args } = parseArgs({ options: { out: { type: 'string', default: 'dist' } } });
// emptied first: never the repository or a directory holding it
const out = z
  .string()
  .min(1)
  .transform((dir) => resolve(dir))
  .refine((dir) => !`${ROOT}/`.startsWith(`${dir.replace(/\/$/, '')}/`), 'must not be the repository or a directory above it')
  .safeParse(args.out);
if (!out.success) {
  process.stderr.write(`--out ${args.out}: ${out.error.issues.map((issue) => issue.message).join('; ')}\n`);
  process.exit(2);
}
const DIST = out.data;
/** written into every output directory: only a directory holding it (or an empty one) is emptied by a later build */
const MARKER = '.keyway-build';
// `--out ~` must not wipe a home: anything else than an earlier build's output, the repo's own dist/ or an empty directory is refused
if (existsSync(DIST) && DIST !== join(ROOT, 'dist') && !existsSync(join(DIST, MARKER)) && (!statSync(DIST).isDirectory() || readdirSync(DIST).length > 0)) {
  process.stderr.write(`--out ${args.out}: ${DIST} is not empty and holds no ${MARKER} of an earlier build: refusing to empty it\n`);
  process.exit(2);
}

interface PackageJson {
  name: string;
  version?: string;
  description?: string;
}
const readJson = (file: string) => JSON.parse(readFileSync(join(ROOT, file), 'utf8')) as PackageJson;

/** the suite's version (image tags and npm packages carry it) */
const VERSION = readJson('package.json').version;

/** every service with a main.ts; the importer is the agent, built on its own */
const services = () => readdirSync(join(ROOT, 'services')).filter((name) => name !== 'importer' && existsSync(join(ROOT, 'services', name, 'src/main.ts')));

/** Copies the run-time files of `packages` (RUNTIME_FILES) under `outdir`/files/<repo path>, sources left out. */
function copyRuntimeFiles(packages: string[], outdir: string): void {
  for (const pkg of packages) {
    for (const path of RUNTIME_FILES[pkg]!) {
      const from = join(ROOT, pkg, path);
      cpSync(from, join(outdir, FILES_DIR, pkg, path), { recursive: true, filter: (file) => !file.endsWith('.ts') });
    }
  }
}

/** the packages this build copied, by store path: later services hard-link them */
const copies = new Map<string, string>();

async function buildService(name: string): Promise<string> {
  const outdir = join(DIST, 'services', name);
  const { metafile, runtimePackages } = await bundle(ROOT, { entry: `services/${name}/src/main.ts`, outdir, name: 'main', inline: false });
  copyRuntimeFiles(runtimePackages, outdir);
  const count = copyTree(layOut(importedPackages(ROOT, metafile)), outdir, copies);
  return `${name}: ${Object.keys(metafile.outputs).length} files, ${count} packages`;
}

/**
 * A self-contained command as an npm package: `npm pack` in `outdir` gives a tarball that installs
 * offline (it depends on nothing), named and described as its workspace package.
 */
async function buildCommand(options: { workspace: string; entry: string; outdir: string; bin: string; withFiles: boolean }): Promise<string> {
  const outdir = join(DIST, options.outdir);
  const file = `${options.bin}.mjs`;
  const { runtimePackages } = await bundle(ROOT, { entry: options.entry, outdir, name: options.bin, inline: true, shebang: true });
  if (options.withFiles) copyRuntimeFiles(runtimePackages, outdir);
  const source = readJson(`${options.workspace}/package.json`);
  const manifest = {
    name: source.name,
    version: VERSION,
    description: source.description,
    type: 'module',
    bin: { [options.bin]: file },
    files: [file, ...(options.withFiles ? [FILES_DIR] : [])],
    engines: { node: '>=20' },
  };
  writeFileSync(join(outdir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return `${options.outdir}: ${file}${options.withFiles ? ` + ${FILES_DIR}/` : ''}`;
}

rmSync(DIST, { recursive: true, force: true });
mkdirSync(DIST, { recursive: true });
writeFileSync(join(DIST, MARKER), 'output of pnpm build (deploy/build/build.ts): a later build empties this directory\n');
const started = Date.now();
const lines = await Promise.all([
  ...services().map(buildService),
  // the agent reads no file of its own at run time: one file is all a SIEM host needs
  buildCommand({ workspace: 'services/importer', entry: 'services/importer/src/main.ts', outdir: 'agent', bin: 'keyway-importer', withFiles: false }),
  // `keyway db migrate` reads the migrations
  buildCommand({ workspace: 'packages/cli', entry: 'packages/cli/src/main.ts', outdir: 'cli', bin: 'keyway', withFiles: true }),
]);
for (const line of lines) process.stdout.write(`${line}\n`);
process.stdout.write(`built ${DIST} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
