import { UNSAFE_TEXT } from '@keyway/contracts';

const UNSAFE_GLOBAL = new RegExp(UNSAFE_TEXT.source, 'gu');
const escapeChar = (ch: string) => {
  const code = ch.codePointAt(0) ?? 0;
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
};

/**
 * A value as a terminal may show it: every control character (ESC of a terminal escape sequence, OSC 52
 * writing the clipboard, CR, newline), DEL, C1 control and bidi formatting character (contracts
 * UNSAFE_TEXT) is written as its escape (`\x1b`, `\u202e`). The API refuses them in new names; records
 * stored before it did, and values from elsewhere (audit details), may still hold them.
 */
const terminalSafe = (value: string): string => value.replace(UNSAFE_GLOBAL, escapeChar);

/** A whole readable output: its own line breaks stay, anything else unsafe is escaped. */
export const terminalSafeLines = (text: string): string => text.split('\n').map(terminalSafe).join('\n');

const cell = (value: string | number | boolean | undefined) => terminalSafe(String(value ?? ''));

/** A column of a readable table: the header and how to show a row's value. */
export type Column<T> = [header: string, value: (row: T) => string | number | boolean | undefined];

/** Left-aligned columns two spaces apart, headers in capitals; "(none)" for no rows. */
export function table<T>(rows: readonly T[], columns: Column<T>[]): string {
  if (rows.length === 0) return '(none)';
  const cells = [columns.map(([header]) => header.toUpperCase()), ...rows.map((row) => columns.map(([, value]) => cell(value(row))))];
  const widths = columns.map((_, i) => Math.max(...cells.map((line) => line[i]?.length ?? 0)));
  return cells.map((line) => line.map((cell, i) => (i === line.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ')).join('\n');
}

/** "key: value" lines, keys aligned, for one resource. */
export function fields(entries: Array<[label: string, value: string | number | boolean | undefined]>): string {
  const width = Math.max(...entries.map(([label]) => label.length));
  return entries
    .filter(([, value]) => value !== undefined && value !== '')
    .map(([label, value]) => `${`${label}:`.padEnd(width + 1)} ${cell(value)}`)
    .join('\n');
}

export const list = (values: readonly string[]) => (values.length ? values.map(terminalSafe).join(', ') : '-');
