import { describe, expect, it } from 'vitest';
import { returnPath } from './return-path.ts';

describe('returnPath: where the browser goes back after its login', () => {
  it('keeps a path on this site with its query', () => {
    expect(returnPath('/products/edr-agent/7.2.1/agent.msi')).toBe('/products/edr-agent/7.2.1/agent.msi');
    expect(returnPath('/products/edr-agent?tab=versions')).toBe('/products/edr-agent?tab=versions');
    expect(returnPath('/a/../products')).toBe('/products');
  });

  it('falls back to / for anything a browser could read as another origin', () => {
    for (const target of [
      '//evil.example',
      '//evil.example/x',
      'https://evil',
      'https://evil.example/products',
      '/\\evil.example',
      '\\\\evil.example',
      'evil.example',
      'javascript:alert(1)',
      '/\tevil',
      '/x y',
      '',
      undefined,
      `/${'a'.repeat(2000)}`,
    ]) {
      expect({ target, path: returnPath(target) }).toEqual({ target, path: '/' });
    }
  });
});
