import { ScanFailed } from './errors.ts';

export type Verdict = { clean: true } | { clean: false; signature: string };

/**
 * clamd's answer to INSTREAM. `complete`: whether the zero-length chunk that ends the stream was sent;
 * before it clamd has not seen the whole file, so only an error is believed then.
 */
export function verdictOf(reply: string, complete: boolean): Verdict {
  if (reply === 'INSTREAM size limit exceeded. ERROR') throw new ScanFailed('ERR_SCAN_SIZE_LIMIT', "the stream is longer than clamd's StreamMaxLength");
  if (reply.endsWith(' ERROR')) throw new ScanFailed('ERR_SCANNER_ERROR', `clamd: ${reply}`);
  const found = /^stream: (\S+) FOUND$/.exec(reply);
  if (complete && found) {
    const signature = found[1]!;
    // With AlertExceedsMax, what lies past MaxFileSize, MaxScanSize, MaxScanTime… is reported so, not passed as OK: unscanned, not malware
    if (signature.startsWith('Heuristics.Limits.Exceeded.')) throw new ScanFailed('ERR_SCAN_LIMITS_EXCEEDED', `clamd could not scan all of it (${signature})`);
    return { clean: false, signature };
  }
  if (complete && reply === 'stream: OK') return { clean: true };
  throw new ScanFailed('ERR_SCAN_REPLY', `not an answer clamd gives to INSTREAM${complete ? '' : ' before the end of the stream'}: ${JSON.stringify(reply.slice(0, 200))}`);
}

export interface ClamdVersion {
  /** the ClamAV engine, e.g. 1.4.6 */
  engine: string;
  /** the signature database (daily.cvd's version and build time, as clamd prints it); undefined when only unofficial databases are loaded */
  database: { version: number; builtAt: string } | undefined;
}

/** `ClamAV 1.4.6/27100/Tue Nov 14 08:35:28 2023`, or `ClamAV 1.4.6` without official databases */
export function versionOf(reply: string): ClamdVersion {
  const match = /^ClamAV ([^/\s]+)(?:\/(\d+)\/(.+))?$/.exec(reply);
  if (!match) throw new ScanFailed('ERR_SCAN_REPLY', `not an answer clamd gives to VERSION: ${JSON.stringify(reply.slice(0, 200))}`);
  return { engine: match[1]!, database: match[2] === undefined ? undefined : { version: Number(match[2]), builtAt: match[3]! } };
}
