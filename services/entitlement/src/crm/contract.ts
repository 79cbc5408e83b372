import type { z } from 'zod';
import { SYSTEM_TENANT, type CrmDelivery, type Tenant } from '@keyway/contracts';
import { Conflict, InvalidRequest } from '@keyway/kit';
import type { AdminOperations } from '../admin/operations.ts';
import type { PolicyRepository } from '../policy/repository.ts';

/** The tenant id a CRM customer id maps to: lowercase letters, digits and dashes, at most 63; undefined when nothing is left. */
export function crmTenantId(customerId: string): string | undefined {
  const slug = customerId
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .slice(0, 63)
    .replace(/^-+|-+$/g, '');
  return slug === '' ? undefined : slug;
}

const sameSet = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x) => b.includes(x));

/**
 * Maps one customer contract onto Keyway, idempotently (applying it twice changes nothing more):
 * - customer → tenant (id derived from the customer id; created on first sight, renamed after). A
 *   tenant the CRM did not create, the vendor's and Keyway's own are never touched (409);
 * - tier → the tenant's feeds (through the tier: feeds it lacks are removed, feed.removed);
 * - contacts → users with those roles (created without a password: they set one, or register a key;
 *   roles are made equal, removals announced). Users not listed are left alone: the CRM adds and
 *   updates people, operators remove them;
 * - cancelled / suspended → the tenant is suspended (tenant.suspended revokes its access); active
 *   resumes a tenant only if the CRM suspended it, never one an operator suspended.
 */
export async function applyContract(admin: AdminOperations, policy: PolicyRepository, delivery: z.output<typeof CrmDelivery>, operatorTenant: string): Promise<Tenant> {
  const { customer, contract } = delivery;
  const id = crmTenantId(customer.id);
  if (!id) throw new InvalidRequest('body.customer.id: does not map to a tenant id (no letters or digits)');
  if (id === SYSTEM_TENANT || id === operatorTenant) throw new Conflict(`customer ${customer.id} maps to tenant ${id}, which the CRM may not manage`);

  let tenant = await policy.findTenant(id);
  if (!tenant) {
    tenant = await admin.createTenant({ id, name: customer.name, tier: contract.tier }, { crmCustomerId: customer.id });
  } else if (tenant.crmCustomerId !== customer.id) {
    throw new Conflict(`tenant ${id} exists and is not synced from customer ${customer.id}`);
  } else if (tenant.name !== customer.name) {
    await admin.renameTenant(id, customer.name);
  }

  const active = contract.status === 'active';
  // Access goes first: nothing below should widen what a cancelled customer can reach meanwhile.
  if (!active) await admin.suspendTenant(id, 'crm');
  await admin.setTenantTier(id, contract.tier);
  for (const contact of contract.contacts) {
    const user = await policy.findUserByEmail(contact.email);
    if (!user) await admin.createUser(id, { email: contact.email, roles: contact.roles });
    else if (user.tenant !== id) throw new Conflict(`contact ${contact.email} is a user of another tenant`);
    else if (!sameSet(user.roles, contact.roles)) await admin.updateUser(id, user.id, { roles: contact.roles });
  }
  if (active && tenant.status === 'suspended' && tenant.suspendedBy === 'crm') await admin.resumeTenant(id);
  return policy.getTenant(id);
}
