import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SERVICES } from '@keyway/testkit';
import { exited, runService } from './processes.ts';

/** deploy/systemd: one unit per service and one for the agent, each as systemd itself reads it. */
const UNITS_DIR = 'deploy/systemd';
const units = readdirSync(UNITS_DIR).filter((name) => name.endsWith('.service'));
const text = (unit: string) => readFileSync(join(UNITS_DIR, unit), 'utf8');
/** every value a unit gives `key` (a key may repeat) */
const values = (unit: string, key: string) =>
  text(unit)
    .split('\n')
    .filter((line) => line.startsWith(`${key}=`))
    .map((line) => line.slice(key.length + 1));

describe('the systemd units', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'keyway-systemd-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('exist for every service and the agent', () => {
    expect(units.sort()).toEqual([...SERVICES.map((name) => `keyway-${name}.service`), 'keyway-importer.service'].sort());
  });

  it.each(units)('%s passes systemd-analyze verify without a warning', (unit) => {
    // verify insists the ExecStart binary exists: one not installed on this machine (the agent's) is
    // swapped for a stand-in in a copy; the rest of the text is the shipped unit's
    let body = text(unit);
    const binary = values(unit, 'ExecStart')[0]!.split(' ')[0]!;
    if (!existsSync(binary)) {
      const stand = join(scratch, 'bin', unit);
      mkdirSync(join(scratch, 'bin'), { recursive: true });
      writeFileSync(stand, '#!/bin/sh\n');
      chmodSync(stand, 0o755);
      body = body.replace(`ExecStart=${binary}`, `ExecStart=${stand}`);
    }
    writeFileSync(join(scratch, unit), body);
    const verified = spawnSync('systemd-analyze', ['verify', join(scratch, unit)], { encoding: 'utf8' });
    expect({ status: verified.status, output: verified.stdout + verified.stderr }).toEqual({ status: 0, output: '' });
  });

  it.each(units)('%s restarts on failure (not on a configuration error) and runs unprivileged and confined', (unit) => {
    expect(values(unit, 'Restart')).toEqual(['on-failure']);
    expect(values(unit, 'RestartPreventExitStatus')).toEqual(['78']);
    expect(values(unit, 'KillSignal')).toEqual(['SIGTERM']);
    for (const [key, value] of Object.entries({ DynamicUser: 'yes', NoNewPrivileges: 'yes', ProtectSystem: 'strict', PrivateTmp: 'yes', ProtectHome: 'yes', CapabilityBoundingSet: '' })) {
      expect(values(unit, key), key).toEqual([value]);
    }
    // secrets only as credentials, passed by file name (X_FILE), never as a value in the unit
    expect(values(unit, 'LoadCredential').length).toBeGreaterThan(0);
    for (const line of values(unit, 'Environment')) expect(line).not.toMatch(/(URL|PASSWORD|TOKEN|SECRET)=/);
  });

  it.each(SERVICES)('keyway-%s.service hands its service every store, broker and key it requires in production', async (service) => {
    // the service's own answer, started from its source without configuration: the keys only development may leave out
    const refused = await exited(runService(service, {}));
    expect(refused.code).toBe(78);
    const required = [...refused.stderr.matchAll(/^ {2}- (\w+): required unless KEYWAY_ENV=development/gm)].map((match) => match[1]!);
    expect(required).toContain('DATABASE_URL');
    const environment = values(`keyway-${service}.service`, 'Environment').join(' ').split(' ');
    // reachable from the load balancer and the other machines, not only on loopback (the kit's default)
    expect(environment).toContain('HOST=0.0.0.0');
    // a file key (KEYWAY_KEK_FILE) names its credential itself; any other key comes as X_FILE (one value per file)
    for (const key of required)
      expect(
        environment.some((entry) => entry.startsWith(key.endsWith('_FILE') ? `${key}=%d/` : `${key}_FILE=%d/`)),
        key,
      ).toBe(true);
  });

  it('gives the agent a state directory for its checkpoint and DPoP key, and its password as a credential file', () => {
    const unit = 'keyway-importer.service';
    expect(values(unit, 'StateDirectory')).toEqual(['keyway-importer']);
    expect(values(unit, 'Environment').join(' ')).toContain('STATE_FILE=%S/keyway-importer/checkpoint');
    expect(values(unit, 'LoadCredential')).toEqual(['keyway-password:/etc/keyway/credentials/importer/keyway-password']);
    expect(values(unit, 'Environment')).toContain('KEYWAY_PASSWORD_FILE=%d/keyway-password');
  });

  it('declares the TLS groups the service units join (systemd-sysusers into a scratch root)', () => {
    const root = join(scratch, 'root');
    mkdirSync(join(root, 'etc'), { recursive: true });
    const made = spawnSync('systemd-sysusers', [`--root=${root}`, join(process.cwd(), UNITS_DIR, 'keyway.sysusers.conf')], { encoding: 'utf8' });
    expect(made.status, made.stderr).toBe(0);
    const groups = readFileSync(join(root, 'etc/group'), 'utf8');
    for (const unit of units.filter((name) => name !== 'keyway-importer.service')) {
      const [group] = values(unit, 'SupplementaryGroups');
      expect(groups).toMatch(new RegExp(`^${group}:`, 'm'));
    }
  });
});
