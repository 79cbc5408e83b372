import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The documentation stays true to the repository: every relative link in README.md and docs/*.md
 * names a file or folder that exists inside the repository, and every #anchor names a heading of
 * the page it points at. Links in code (fenced blocks, `code spans`) and absolute URLs are not checked.
 */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

const pages = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => join('docs', f)),
];

/** The page's prose: fenced code blocks and code spans removed (line count kept for messages). */
function prose(markdown: string): string[] {
  let fenced = false;
  return markdown.split('\n').map((line) => {
    if (/^\s*(```|~~~)/.test(line)) {
      fenced = !fenced;
      return '';
    }
    return fenced ? '' : line.replace(/`[^`]*`/g, '');
  });
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes. */
function anchors(markdown: string): Set<string> {
  let fenced = false;
  const found = new Set<string>();
  for (const line of markdown.split('\n')) {
    if (/^\s*(```|~~~)/.test(line)) fenced = !fenced;
    const heading = fenced ? null : /^#{1,6}\s+(.*)$/.exec(line);
    if (!heading) continue;
    const slug = heading[1]!
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    found.add(slug);
  }
  return found;
}

interface Link {
  page: string;
  line: number;
  target: string;
}

function links(page: string): Link[] {
  const found: Link[] = [];
  prose(readFileSync(join(ROOT, page), 'utf8')).forEach((text, i) => {
    for (const m of text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) found.push({ page, line: i + 1, target: m[1]! });
  });
  return found;
}

function problem(link: Link): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:/i.test(link.target)) return undefined; // https:, mailto:
  const [path, anchor] = link.target.split('#', 2) as [string, string | undefined];
  const file = path === '' ? join(ROOT, link.page) : resolve(dirname(join(ROOT, link.page)), decodeURIComponent(path));
  const inside = relative(ROOT, file);
  if (inside.startsWith('..') || inside.startsWith(sep)) return 'leaves the repository';
  if (!existsSync(file)) return 'names a missing file';
  if (anchor !== undefined && file.endsWith('.md') && statSync(file).isFile() && !anchors(readFileSync(file, 'utf8')).has(anchor)) return 'names a missing heading';
  return undefined;
}

describe('documentation links', () => {
  it('finds the pages and their links', () => {
    expect(pages).toContain(join('docs', 'architecture.md'));
    expect(links(join('docs', 'architecture.md')).length).toBeGreaterThan(50);
  });

  it.each(pages)('every relative link in %s resolves inside the repository', (page) => {
    const broken = links(page)
      .map((link) => ({ link, why: problem(link) }))
      .filter((b) => b.why !== undefined)
      .map(({ link, why }) => `${link.page}:${link.line} ${link.target} ${why}`);
    expect(broken).toEqual([]);
  });

  it('refuses what it should refuse', () => {
    expect(problem({ page: 'README.md', line: 1, target: '../shared/design.md' })).toBe('leaves the repository');
    expect(problem({ page: 'README.md', line: 1, target: 'docs/missing.md' })).toBe('names a missing file');
    expect(problem({ page: 'README.md', line: 1, target: '#no-such-heading' })).toBe('names a missing heading');
    expect(problem({ page: 'README.md', line: 1, target: 'docs/architecture.md#tokens-and-keys' })).toBeUndefined();
    expect(problem({ page: join('docs', 'architecture.md'), line: 1, target: '../packages/kit/src/service-auth.ts' })).toBeUndefined();
  });
});
