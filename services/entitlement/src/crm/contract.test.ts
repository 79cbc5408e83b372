import { describe, expect, it } from 'vitest';
import { TenantId } from '@keyway/contracts';
import { crmTenantId } from './contract.ts';

describe('crmTenantId (customer id → tenant id)', () => {
  it('lowercases, turns every other run of characters into one dash, trims dashes, and keeps 63 characters', () => {
    expect(crmTenantId('ACME_Corp')).toBe('acme-corp');
    expect(crmTenantId('  Globex / EMEA  ')).toBe('globex-emea');
    expect(crmTenantId('0013000000AbCdE')).toBe('0013000000abcde');
    expect(crmTenantId(`${'a'.repeat(62)}_b`)).toBe('a'.repeat(62));
    expect(crmTenantId('!!!')).toBeUndefined();
    for (const id of ['ACME_Corp', '  Globex / EMEA  ', `x${'-'.repeat(100)}y`, 'Ünïcode Kunde']) expect(TenantId.safeParse(crmTenantId(id)).success).toBe(true);
  });
});
