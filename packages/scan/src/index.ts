export { CLAMAV_MAX_FILE_BYTES, clamdConfig } from './config.ts';
export { ScanError, ScanFailed, ScannerUnavailable } from './errors.ts';
export { createScanner } from './scanner.ts';
