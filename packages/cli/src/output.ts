/** A column of a readable table: the header and how to show a row's value. */
export type Column<T> = [header: string, value: (row: T) => string | number | boolean | undefined];

/** Left-aligned columns two spaces apart, headers in capitals; "(none)" for no rows. */
export function table<T>(rows: readonly T[], columns: Column<T>[]): string {
  if (rows.length === 0) return '(none)';
  const cells = [columns.map(([header]) => header.toUpperCase()), ...rows.map((row) => columns.map(([, value]) => String(value(row) ?? '')))];
  const widths = columns.map((_, i) => Math.max(...cells.map((line) => line[i]?.length ?? 0)));
  return cells.map((line) => line.map((cell, i) => (i === line.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ')).join('\n');
}

/** "key: value" lines, keys aligned, for one resource. */
export function fields(entries: Array<[label: string, value: string | number | boolean | undefined]>): string {
  const width = Math.max(...entries.map(([label]) => label.length));
  return entries
    .filter(([, value]) => value !== undefined && value !== '')
    .map(([label, value]) => `${`${label}:`.padEnd(width + 1)} ${String(value)}`)
    .join('\n');
}

export const list = (values: readonly string[]) => (values.length ? values.join(', ') : '-');
