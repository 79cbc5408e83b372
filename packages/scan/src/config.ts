import { z } from 'zod';

const MiB = 1024 * 1024;
const UNITS: Record<string, number> = { '': 1, k: 1024, m: MiB, g: 1024 * MiB };

/** Where clamd listens: its TCPSocket/TCPAddr or its LocalSocket. */
export type ClamdAddress = { host: string; port: number } | { path: string };

/** `tcp://host:port`, or `unix:/path` (or just `/path`) for clamd's LocalSocket. */
const clamdAddress = z.string().transform((value, ctx): ClamdAddress => {
  const socketPath = value.startsWith('unix:') ? value.slice('unix:'.length).replace(/^\/\/(?=\/)/, '') : value;
  if (socketPath.startsWith('/')) return { path: socketPath };
  const tcp = /^tcp:\/\/(\[[0-9a-fA-F:]+\]|[^:/[\]]+):(\d{1,5})$/.exec(value);
  const port = Number(tcp?.[2]);
  if (tcp && port > 0 && port < 65536) return { host: tcp[1]!.replace(/^\[|\]$/g, ''), port };
  ctx.addIssue({ code: 'custom', message: 'expected tcp://host:port (clamd.conf TCPAddr, TCPSocket) or unix:/path/to/clamd.ctl (LocalSocket)' });
  return z.NEVER;
});

/** clamd.conf's size syntax (`StreamMaxLength 100M`: bytes, or K/M/G in binary units), so a value is copied from clamd.conf as it is. */
const clamdSize = z
  .string()
  .regex(/^\d+[kKmMgG]?$/, 'expected bytes, or a number with K, M or G as in clamd.conf (100M)')
  .transform((value) => Number.parseInt(value, 10) * UNITS[value.replace(/^\d+/, '').toLowerCase()]!)
  .refine((bytes) => bytes > 0, 'must be more than 0');

/**
 * The largest file ClamAV judges, whatever clamd.conf's limits say: it scans no file of 2 GiB or more
 * (its limits are 32-bit; such a file ends as Heuristics.Limits.Exceeded or unscanned). Measured with
 * clamd 1.4 (bench/releases.ts: a 2 GiB upload ended too_large with every limit at 4000M).
 */
export const CLAMAV_MAX_FILE_BYTES = 2 * 1024 * MiB - 1;

/** What createScanner takes. */
export const ScannerOptions = z.object({
  address: clamdAddress,
  timeoutMs: z.number().int().positive().default(150_000),
  commandTimeoutMs: z.number().int().positive().default(5_000),
  maxStreamBytes: z
    .number()
    .int()
    .positive()
    .default(100 * MiB),
});
export type ScannerOptionsInput = z.input<typeof ScannerOptions>;

/** The environment keys of a service that scans (spread into its config schema); the service passes them to createScanner. */
export const clamdConfig = {
  CLAMD_ADDRESS: z
    .string()
    .refine((value) => clamdAddress.safeParse(value).success, 'expected tcp://host:port (clamd.conf TCPAddr, TCPSocket) or unix:/path/to/clamd.ctl (LocalSocket)')
    .describe("clamd's address: tcp://host:port (TCPAddr, TCPSocket) or unix:/run/clamav/clamd.ctl (LocalSocket, Debian's default)"),
  CLAMD_TIMEOUT_SEC: z.coerce
    .number()
    .int()
    .positive()
    .max(3600)
    .default(150)
    .describe("longest silence from clamd before a scan gives up (retried later): a stream it stops reading, or a verdict it does not give; keep it above clamd's MaxScanTime (120 s by default)"),
  CLAMD_COMMAND_TIMEOUT_SEC: z.coerce.number().int().positive().max(60).default(5).describe('how long PING (readiness) and VERSION wait for their answer'),
  CLAMD_STREAM_MAX_LENGTH: clamdSize.describe(
    "clamd.conf's StreamMaxLength, copied as it is (Debian's clamd.conf: 25M): a longer file fails before more of it is sent; set higher than clamd's, clamd cuts the stream and its answer may lose the race with its reset (see README, Scanning)",
  ),
};
