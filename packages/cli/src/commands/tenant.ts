import type { Command } from 'commander';
import { ApiError } from '@keyway/clients';
import { CreateTenant, TenantPageQuery, TierId, UpdateTenant, type Tenant } from '@keyway/contracts';
import type { CliContext } from '../context.ts';
import { CliError, describeFailure } from '../exit-codes.ts';
import { collect, parseArg, tenantArg } from '../input.ts';
import { fields, list, table, type Column } from '../output.ts';
import { everyPage, pageTable } from '../paging.ts';
import { readTenantFile } from '../tenant-file.ts';

const columns: Column<Tenant>[] = [
  ['id', (t) => t.id],
  ['name', (t) => t.name],
  ['status', (t) => t.status],
  ['tier', (t) => t.tier ?? '-'],
  ['feeds', (t) => list(t.feeds)],
];

const showTenant = (t: Tenant) =>
  fields([
    ['id', t.id],
    ['name', t.name],
    ['status', t.suspendedBy ? `${t.status} (by ${t.suspendedBy})` : t.status],
    ['tier', t.tier],
    ['feeds', list(t.feeds)],
    ['crm customer', t.crmCustomerId],
    ['created', t.createdAt],
  ]);

export function register(program: Command, context: CliContext): void {
  const tenant = program.command('tenant').description('tenants: create, list, show, update, suspend, resume, delete, tier, import');

  tenant
    .command('create')
    .description('create a tenant with feeds, or with a product tier’s feeds')
    .argument('<tenant>', 'tenant id (lowercase letters, digits, dashes)')
    .option('--name <name>', 'display name (default: the id)')
    .option('--feed <feed>', 'a feed to grant (repeatable)', collect)
    .option('--tier <tier>', 'product tier whose feeds the tenant gets (instead of --feed)')
    .action(async (id: string, options: { name?: string; feed?: string[]; tier?: string }) => {
      const input = parseArg(CreateTenant, { id, name: options.name ?? id, feeds: options.feed, tier: options.tier }, 'tenant');
      const created = await (await context.entitlement()).createTenant(input);
      context.print(created, () => `Created tenant ${created.id}.\n${showTenant(created)}`);
    });

  tenant
    .command('list')
    .description('list tenants in id order (every page unless --limit is given)')
    .option('--limit <n>', 'one page of at most n tenants (1-500)')
    .option('--cursor <tenant>', 'the page after this tenant id (next_cursor of the previous page)')
    .action(async (options: { limit?: string; cursor?: string }) => {
      const client = await context.entitlement();
      if (options.limit !== undefined || options.cursor !== undefined) {
        const page = await client.listTenants(parseArg(TenantPageQuery, options, 'page'));
        context.print(page, () => pageTable({ rows: page.tenants, next: page.next_cursor }, columns));
        return;
      }
      const tenants = await everyPage(
        undefined,
        async (cursor) => {
          const page = await client.listTenants({ limit: 500, cursor });
          return { rows: page.tenants, next: page.next_cursor };
        },
        (fetched) => context.progress(`listed ${fetched} tenants…`),
      );
      context.print({ tenants }, () => table(tenants, columns));
    });

  tenant
    .command('show')
    .description('show a tenant')
    .argument('<tenant>')
    .action(async (id: string) => {
      const found = await (await context.entitlement()).getTenant(tenantArg(id));
      context.print(found, () => showTenant(found));
    });

  tenant
    .command('update')
    .description('rename a tenant')
    .argument('<tenant>')
    .requiredOption('--name <name>', 'the new display name')
    .action(async (id: string, options: { name: string }) => {
      const updated = await (await context.entitlement()).updateTenant(tenantArg(id), parseArg(UpdateTenant, options, 'update'));
      context.print(updated, () => showTenant(updated));
    });

  tenant
    .command('suspend')
    .description('suspend a tenant: every session and SAS key of it is revoked within seconds')
    .argument('<tenant>')
    .action(async (id: string) => {
      const suspended = await (await context.entitlement()).suspendTenant(tenantArg(id));
      context.print(suspended, () => `Suspended tenant ${suspended.id}.`);
    });

  tenant
    .command('resume')
    .description('resume a suspended tenant: its users can log in again')
    .argument('<tenant>')
    .action(async (id: string) => {
      const resumed = await (await context.entitlement()).resumeTenant(tenantArg(id));
      context.print(resumed, () => `Resumed tenant ${resumed.id}.`);
    });

  tenant
    .command('delete')
    .description('delete a suspended tenant, its users and their credentials (exit 4 unless suspended)')
    .argument('<tenant>')
    .action(async (id: string) => {
      const tenantId = tenantArg(id);
      await (await context.entitlement()).deleteTenant(tenantId);
      context.print({ tenant: tenantId, deleted: true }, () => `Deleted tenant ${tenantId}.`);
    });

  tenant
    .command('tier')
    .description('put a tenant on a product tier: its feeds become the tier’s (feeds left out are revoked)')
    .argument('<tenant>')
    .argument('<tier>')
    .action(async (id: string, tier: string) => {
      const updated = await (await context.entitlement()).setTenantTier(tenantArg(id), parseArg(TierId, tier, 'tier'));
      context.print(updated, () => showTenant(updated));
    });

  tenant
    .command('import')
    .description('create the tenants of a CSV (header: id,name,feeds,tier; feeds separated by ";") or JSON file')
    .argument('<file>', '.csv, or a JSON array of tenants (or the output of `keyway --json tenant list`)')
    .addHelpText(
      'after',
      '\nEvery row is checked first; nothing is created if one is bad. Tenants that exist already are skipped.\nExit 0 when every tenant was created or existed, else the exit code of the first failure.',
    )
    .action(async (file: string) => {
      const rows = readTenantFile(file);
      const client = await context.entitlement();
      const result = { created: [] as string[], existing: [] as string[], failed: [] as Array<{ id: string; error: string; error_description: string }> };
      let firstFailure: unknown;
      for (const [i, row] of rows.entries()) {
        const step = `[${i + 1}/${rows.length}] ${row.id}`;
        try {
          await client.createTenant(row);
          result.created.push(row.id);
          context.progress(`${step}: created`);
        } catch (err) {
          // Only the API's refusal of one tenant is that row's failure; an outage or an auth failure ends the import.
          if (!(err instanceof ApiError) || err.status === 401 || err.status === 403 || err.status >= 500) throw err;
          if (err.status === 409) {
            result.existing.push(row.id);
            context.progress(`${step}: exists already`);
          } else {
            firstFailure ??= err;
            result.failed.push({ id: row.id, error: err.code, error_description: err.description });
            context.progress(`${step}: failed: ${err.description || err.code}`);
          }
        }
      }
      context.print(result, () =>
        [
          `Created ${result.created.length}, existing ${result.existing.length}, failed ${result.failed.length} of ${rows.length} tenants.`,
          ...result.failed.map((f) => `  ${f.id}: ${f.error_description || f.error}`),
        ].join('\n'),
      );
      if (firstFailure) throw new CliError(`${result.failed.length} of ${rows.length} tenants were not created`, describeFailure(firstFailure).exitCode);
    });
}
