import { table, type Column } from './output.ts';

/** One page of a cursor-paged list as the API answers it, whatever it names its rows and cursor. */
export interface Page<T> {
  rows: T[];
  /** the cursor of the page after this one; absent (or null) after the last page */
  next: string | null | undefined;
}

/** One page as a table, and the flag that fetches the next one when there is more. */
export const pageTable = <T>(page: Page<T>, columns: Column<T>[]): string => table(page.rows, columns) + (page.next ? `\n(more: --cursor ${page.next})` : '');

/** Every row, following the cursors from `first` on; `progress` hears the count so far while more pages follow. */
export async function everyPage<T>(first: string | undefined, fetch: (cursor: string | undefined) => Promise<Page<T>>, progress: (fetched: number) => void): Promise<T[]> {
  const rows: T[] = [];
  let cursor = first;
  do {
    const page = await fetch(cursor);
    rows.push(...page.rows);
    cursor = page.next ?? undefined;
    if (cursor) progress(rows.length);
  } while (cursor);
  return rows;
}
