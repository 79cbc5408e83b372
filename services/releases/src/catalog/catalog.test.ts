import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { createMemoryStore } from '@keyway/store';
import { catalog } from './catalog.ts';

describe('whileVersionHeld: one change at a time on a version (a file staged, a publish)', () => {
  const recorder = () => {
    const events: string[] = [];
    const change = (name: string, ms: number) => async () => {
      events.push(`${name} in`);
      await sleep(ms);
      events.push(`${name} out`);
      return name;
    };
    return { events, change };
  };

  it('runs two changes of one version one after the other, whichever starts first', async () => {
    const releases = catalog(createMemoryStore({ prefix: 't:' }));
    const { events, change } = recorder();
    const results = await Promise.all([releases.whileVersionHeld('agent', '1.0.0', change('stage', 80)), releases.whileVersionHeld('agent', '1.0.0', change('publish', 10))]);
    expect(results).toEqual(['stage', 'publish']);
    expect(events).toEqual(['stage in', 'stage out', 'publish in', 'publish out']);
  });

  it('lets changes of other versions run meanwhile, and frees the version when a change fails', async () => {
    const releases = catalog(createMemoryStore({ prefix: 't:' }));
    const { events, change } = recorder();
    await Promise.all([releases.whileVersionHeld('agent', '1.0.0', change('a', 60)), releases.whileVersionHeld('agent', '2.0.0', change('b', 10))]);
    expect(events).toEqual(['a in', 'b in', 'b out', 'a out']);
    await expect(releases.whileVersionHeld('agent', '1.0.0', () => Promise.reject(new Error('scan queue down')))).rejects.toThrow('scan queue down');
    expect(await releases.whileVersionHeld('agent', '1.0.0', async () => 'free again')).toBe('free again');
  });
});
