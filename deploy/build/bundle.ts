import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import * as esbuild from 'esbuild';

/**
 * What a workspace package reads next to its own source at run time (through `import.meta.url`), relative
 * to the package's directory. A bundle carries these under `files/<repo path>`; a package that starts
 * reading files and is not listed here stops the build instead of failing at run time.
 */
export const RUNTIME_FILES: Record<string, string[]> = {
  'packages/db': ['migrations'],
  'services/entitlement': ['src/console'],
  'services/pas': ['src/assets'],
  'services/releases': ['src/assets'],
};

/** `new URL('<relative path>', import.meta.url)`: a file next to the source */
const READS_NEXT_TO_SOURCE = /new URL\([^;]*import\.meta\.url/;

/** where a bundle keeps its run-time files: `files/<repo path>` next to the bundle's .mjs files */
export const FILES_DIR = 'files';

/** The workspace package (its repo-relative directory) that holds `file`: the nearest package.json above it. */
function packageDirOf(root: string, file: string): string {
  for (let dir = dirname(file); dir.startsWith(root) && dir !== root; dir = dirname(dir)) {
    try {
      readFileSync(join(dir, 'package.json'));
      return relative(root, dir);
    } catch {}
  }
  throw new Error(`${file} belongs to no workspace package`);
}

/**
 * Workspace sources are bundled, every other bare import is left to node_modules (or, with `inline`,
 * bundled too). `import.meta.url` in a package of RUNTIME_FILES is rewritten to the file's place under files/, so
 * `new URL('../migrations/', import.meta.url)` keeps working from a bundle: every output file sits in
 * the out dir's top level (no chunk sub-directories), so import.meta.url names that directory.
 */
function workspacePlugin(root: string, options: { inline: boolean; used: Set<string> }): esbuild.Plugin {
  return {
    name: 'keyway-workspace',
    setup(build) {
      if (!options.inline) {
        build.onResolve({ filter: /^[^./]/ }, (args) => (args.path.startsWith('@keyway/') || args.path.startsWith('node:') ? undefined : { path: args.path, external: true }));
      }
      build.onLoad({ filter: /\.ts$/ }, (args) => {
        if (args.path.includes('/node_modules/')) return undefined;
        // a shebang means something only on the first line of the bundle, which the build writes itself
        let contents = readFileSync(args.path, 'utf8').replace(/^#!.*\n/, '');
        const pkg = contents.includes('import.meta.url') ? packageDirOf(root, args.path) : undefined;
        // another use (createRequire(import.meta.url), module.register(…, import.meta.url)) resolves from the bundle's directory as it is
        if (pkg && !RUNTIME_FILES[pkg] && READS_NEXT_TO_SOURCE.test(contents)) {
          throw new Error(`${relative(root, args.path)} reads files through import.meta.url: list them under '${pkg}' in RUNTIME_FILES (deploy/build/bundle.ts)`);
        }
        if (pkg && RUNTIME_FILES[pkg]) {
          options.used.add(pkg);
          const stand = `./${FILES_DIR}/${relative(root, args.path)}`;
          contents = contents.replaceAll('import.meta.url', `new URL(${JSON.stringify(stand)}, import.meta.url).href`);
        }
        return { contents, loader: 'ts', resolveDir: dirname(args.path) };
      });
    },
  };
}

/** esbuild's __require throws for node builtins in ESM; a real require lets inlined CommonJS packages load them */
const REQUIRE_SHIM = "import { createRequire as __keywayCreateRequire } from 'node:module';\nconst require = __keywayCreateRequire(import.meta.url);";

export interface BundleSpec {
  /** repo-relative entry file */
  entry: string;
  /** output directory (absolute) */
  outdir: string;
  /** the entry's output name, without .mjs */
  name: string;
  /** true: one self-contained file (third-party code inlined); false: third-party packages external */
  inline: boolean;
  /** a command: the first line of the output */
  shebang?: boolean;
}

/** Bundles one entry; answers the metafile and the workspace packages whose run-time files it needs. */
export async function bundle(root: string, spec: BundleSpec): Promise<{ metafile: esbuild.Metafile; runtimePackages: string[] }> {
  const used = new Set<string>();
  const result = await esbuild.build({
    absWorkingDir: root,
    entryPoints: { [spec.name]: spec.entry },
    outdir: spec.outdir,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    // a dynamic import() stays its own chunk, evaluated only when imported (telemetry starts before the rest loads)
    splitting: !spec.inline,
    chunkNames: '[name]-[hash]',
    format: 'esm',
    platform: 'node',
    target: 'node20',
    // error classes and logs name things by constructor name; bundling would rename clashing ones
    keepNames: true,
    metafile: true,
    logLevel: 'warning',
    banner: { js: [spec.shebang ? '#!/usr/bin/env node' : '', spec.inline ? REQUIRE_SHIM : ''].filter(Boolean).join('\n') },
    plugins: [workspacePlugin(root, { inline: spec.inline, used })],
  });
  for (const out of Object.keys(result.metafile.outputs)) {
    if (dirname(resolve(root, out)) !== spec.outdir) throw new Error(`${out} is not in ${spec.outdir}'s top level: import.meta.url would name another directory`);
  }
  return { metafile: result.metafile, runtimePackages: [...used] };
}
