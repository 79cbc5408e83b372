import type { Batch } from '@keyway/contracts';

/** What the syslog sink writes as each message's MSG (SYSLOG_FORMAT). */
export const SYSLOG_FORMATS = ['rfc5424-json', 'cef', 'leef'] as const;
export type SyslogFormat = (typeof SYSLOG_FORMATS)[number];

/** RFC 5424 §6.2.1 Table 2, with the spellings log records commonly use. */
const SEVERITIES: Record<string, number> = {
  emerg: 0,
  emergency: 0,
  panic: 0,
  alert: 1,
  crit: 2,
  critical: 2,
  fatal: 2,
  err: 3,
  error: 3,
  warn: 4,
  warning: 4,
  notice: 5,
  info: 6,
  informational: 6,
  information: 6,
  debug: 7,
  trace: 7,
};
const INFORMATIONAL = 6;

/** A record's syslog severity: its `severity` field (a name or 0–7) when it has one; informational otherwise. */
export function severityOf(record: unknown): number {
  const value = field(record, 'severity');
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 7) return value;
  if (typeof value === 'string') return SEVERITIES[value.toLowerCase()] ?? INFORMATIONAL;
  return INFORMATIONAL;
}

/** Syslog severity 0 (emergency) … 7 (debug) → CEF/LEEF 0–10 (10 the most important). */
const SIEM_SEVERITY = [10, 9, 8, 7, 5, 3, 1, 0] as const;
const siemSeverity = (record: unknown): number => SIEM_SEVERITY[severityOf(record)] ?? 1;

const field = (record: unknown, name: string): unknown => (record !== null && typeof record === 'object' && !Array.isArray(record) ? (record as Record<string, unknown>)[name] : undefined);

/** The record's event name: the first string among `event_type`, `event`, `type`, `name`; else the topic. */
function eventIdOf(batch: Batch, record: unknown): string {
  for (const name of ['event_type', 'event', 'type', 'name']) {
    const value = field(record, name);
    if (typeof value === 'string' && value !== '') return value;
  }
  return batch.topic;
}

/** JSON with every character past ASCII as a \u escape, as the RFC 5424 MSG has always been. */
export const asciiJson = (value: unknown) => (JSON.stringify(value) ?? 'null').replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

const DEVICE_VENDOR = 'Keyway';
const DEVICE_PRODUCT = 'Keyway Feed';
const DEVICE_VERSION = '1';

/** CEF header field: `\` and `|` escaped with a backslash; a line break (not allowed in the header) becomes a space. */
export const cefHeaderField = (value: string) => value.replace(/[\\|]/g, (c) => `\\${c}`).replace(/\r\n|[\r\n]/g, ' ');
/** CEF extension value: `\` and `=` escaped with a backslash, CR and LF written as `\r` and `\n`. */
export const cefExtensionValue = (value: string) => value.replace(/[\\=\r\n]/g, (c) => (c === '\r' ? '\\r' : c === '\n' ? '\\n' : `\\${c}`));

/**
 * ArcSight CEF:0 for one record: `CEF:0|Keyway|Keyway Feed|1|<event>|<name>|<severity>|<extension>`.
 * Signature ID is the record's event name (see eventIdOf), Name its `name` or `message` or else the
 * event name, Severity 0–10 from its `severity`. Extension: `rt` the batch's creation time in epoch
 * ms, the keyway fields in labelled custom strings (cs1 tenant, cs2 topic, cs3 batch, cn1 seq), and
 * `msg` the whole record as JSON, so nothing of it is lost.
 */
export function cefMessage(batch: Batch, record: unknown): string {
  const eventId = eventIdOf(batch, record);
  const named = [field(record, 'name'), field(record, 'message')].find((v): v is string => typeof v === 'string' && v !== '');
  const header = ['CEF:0', DEVICE_VENDOR, DEVICE_PRODUCT, DEVICE_VERSION, eventId, named ?? eventId].map(cefHeaderField);
  const extension: [string, string | number][] = [
    ['rt', Date.parse(batch.createdAt)],
    ['cs1Label', 'keywayTenant'],
    ['cs1', batch.tenant],
    ['cs2Label', 'keywayTopic'],
    ['cs2', batch.topic],
    ['cs3Label', 'keywayBatch'],
    ['cs3', batch.id],
    ['cn1Label', 'keywaySeq'],
    ['cn1', batch.seq],
    ['msg', asciiJson(record)],
  ];
  return `${header.join('|')}|${siemSeverity(record)}|${extension.map(([key, value]) => `${key}=${cefExtensionValue(String(value))}`).join(' ')}`;
}

/** LEEF 2.0 attributes are separated by a tab, declared in the header in its hex form. */
const LEEF_DELIMITER = '\t';
/** QRadar parses devTime with this Java date pattern (literal T, RFC 822 offset). */
const LEEF_TIME_FORMAT = "yyyy-MM-dd'T'HH:mm:ss.SSSZ";

/**
 * LEEF attribute value. LEEF 2.0 defines no escape in values and QRadar unescapes nothing (a `\` stays
 * as it is: Windows paths arrive intact); a value only must not hold the delimiter (tab), and no line
 * break may end the message early: those are written as the two characters `\t`, `\r`, `\n` (for a
 * reader; not reversible).
 */
export const leefValue = (value: string) => value.replace(/[\t\r\n]/g, (c) => ({ '\t': '\\t', '\r': '\\r', '\n': '\\n' })[c]!);
/** LEEF header field: `|` ends a field and the LEEF guide gives it no escape, so it is written `\|` as in CEF; a line break becomes a space; a `\` stays as it is. */
const leefHeaderField = (value: string) => value.replace(/\|/g, '\\|').replace(/\r\n|[\r\n]/g, ' ');
/** A record's key as a LEEF key: one word of letters, digits, `_`, `.`, `-` (others become `_`). */
const leefKey = (key: string) => key.replace(/[^A-Za-z0-9_.-]/g, '_') || '_';

/**
 * IBM QRadar LEEF:2.0 for one record: `LEEF:2.0|Keyway|Keyway Feed|1|<event>|x09|` and tab-separated
 * attributes: `devTime` (the batch's creation time, in `devTimeFormat`), `sev` 0–10, `cat` the topic,
 * `keywayTenant`, `keywayTopic`, `keywayBatch`, `keywaySeq`, then each top-level field of the record
 * as its own attribute (strings as they are, other values as JSON; a key that clashes with one of the
 * above is prefixed `record.`). A record that is not an object goes whole into `record` as JSON.
 */
export function leefMessage(batch: Batch, record: unknown): string {
  const header = ['LEEF:2.0', DEVICE_VENDOR, DEVICE_PRODUCT, DEVICE_VERSION, eventIdOf(batch, record)].map(leefHeaderField);
  const attributes: [string, string][] = [
    ['devTime', leefTime(batch.createdAt)],
    ['devTimeFormat', LEEF_TIME_FORMAT],
    // LEEF's sev is 1–10
    ['sev', String(Math.max(1, siemSeverity(record)))],
    ['cat', batch.topic],
    ['keywayTenant', batch.tenant],
    ['keywayTopic', batch.topic],
    ['keywayBatch', batch.id],
    ['keywaySeq', String(batch.seq)],
  ];
  const ours = new Set(attributes.map(([key]) => key));
  if (record !== null && typeof record === 'object' && !Array.isArray(record)) {
    for (const [key, value] of Object.entries(record)) {
      const name = leefKey(key);
      attributes.push([ours.has(name) ? `record.${name}` : name, typeof value === 'string' ? value : (JSON.stringify(value) ?? 'null')]);
    }
  } else {
    attributes.push(['record', JSON.stringify(record) ?? 'null']);
  }
  return `${header.join('|')}|x09|${attributes.map(([key, value]) => `${key}=${leefValue(value)}`).join(LEEF_DELIMITER)}`;
}

/** `2024-05-06T05:08:09.123+0000`: ISO 8601 in UTC with the offset as LEEF_TIME_FORMAT's `Z` reads it. */
const leefTime = (createdAt: string) => new Date(createdAt).toISOString().replace(/Z$/, '+0000');
