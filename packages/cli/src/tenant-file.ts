import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { z } from 'zod';
import { CreateTenant } from '@keyway/contracts';
import { usageError } from './exit-codes.ts';

export type TenantRow = z.output<typeof CreateTenant>;

/** RFC 4180: comma-separated fields, optionally in double quotes ("" inside quotes is one "), CRLF or LF lines. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const char = text[i];
    if (quoted) {
      if (char === '"' && text[i + 1] === '"') {
        field += '"';
        i += 1;
      } else if (char === '"') quoted = false;
      else field += char;
    } else if (char === '"' && field === '') quoted = true;
    else if (char === ',') {
      row.push(field);
      field = '';
    } else if (char === '\n' || char === '\r') {
      if (char === '\r' && text[i + 1] === '\n') i += 1;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += char;
  }
  if (quoted) throw usageError('CSV: a quoted field is not closed');
  if (field !== '' || row.length > 0) rows.push([...row, field]);
  // Blank lines carry no tenant.
  return rows.filter((r) => r.some((f) => f.trim() !== ''));
}

const CSV_COLUMNS = ['id', 'name', 'feeds', 'tier'] as const;

/** A CSV row as the API's CreateTenant: feeds separated by ";" or spaces, empty cells left out. */
function csvRecords(text: string): unknown[] {
  const [header, ...rows] = parseCsv(text);
  const columns = (header ?? []).map((h) => h.trim().toLowerCase());
  const unknown = columns.filter((c) => !(CSV_COLUMNS as readonly string[]).includes(c));
  if (!columns.includes('id') || unknown.length > 0) throw usageError(`CSV: the header must name id and any of name, feeds, tier${unknown.length ? ` (not ${unknown.join(', ')})` : ''}`);
  return rows.map((cells) => {
    const cell = (name: string) => {
      const value = cells[columns.indexOf(name)]?.trim();
      return value === '' ? undefined : value;
    };
    const feeds = cell('feeds');
    const id = cell('id');
    return { id, name: cell('name') ?? id, feeds: feeds?.split(/[;\s]+/).filter(Boolean), tier: cell('tier') };
  });
}

/** A JSON array of tenants, or `{ "tenants": [...] }` as `keyway --json tenant list` prints it. */
const JsonTenants = z.union([z.array(z.unknown()), z.object({ tenants: z.array(z.unknown()) }).transform((o) => o.tenants)]);

/**
 * The tenants of an import file (`.csv`, or JSON), each checked against the API's CreateTenant before
 * anything is created: one bad row refuses the whole file, naming every bad row.
 */
export function readTenantFile(file: string): TenantRow[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw usageError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  let records: unknown[];
  if (extname(file).toLowerCase() === '.csv') records = csvRecords(text);
  else {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw usageError(`${file} is neither a .csv file nor JSON`);
    }
    const parsed = JsonTenants.safeParse(json);
    if (!parsed.success) throw usageError(`${file}: expected a JSON array of tenants or { "tenants": [...] }`);
    // A tenant listed by `tenant list` carries both its tier and the feeds the tier gave it: the tier decides.
    records = parsed.data.map((record) => (typeof record === 'object' && record !== null && 'tier' in record && record.tier !== undefined ? { ...record, feeds: undefined } : record));
  }
  const problems: string[] = [];
  const tenants = records.flatMap((record, i) => {
    const parsed = CreateTenant.safeParse(record);
    if (parsed.success) return [parsed.data];
    problems.push(`row ${i + 1}: ${parsed.error.issues.map((issue) => `${issue.path.join('.') || 'tenant'} ${issue.message}`).join(', ')}`);
    return [];
  });
  if (problems.length > 0) throw usageError(`${file}: nothing imported\n  ${problems.join('\n  ')}`);
  return tenants;
}
