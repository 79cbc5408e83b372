import { describe, expect, it } from 'vitest';
import { FileName } from './releases.ts';

describe('file names, which end up in links and on disk', () => {
  it.each(['agent-2.4.1.tar.gz', 'Setup_x64.msi', 'a+b.bin'])('file name %j is taken', (name) => expect(FileName.safeParse(name).success).toBe(true));
  it.each(['../etc', '.hidden', 'a/b', 'a b', 'é.bin', ''])('file name %j is refused', (name) => expect(FileName.safeParse(name).success).toBe(false));
});
