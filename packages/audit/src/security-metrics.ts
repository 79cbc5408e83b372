import { metrics, type Counter, type Meter } from '@opentelemetry/api';

/**
 * The security counters, one vocabulary for every service (design.md, "Telemetry"). Each counts what
 * the audit trail records, by tenant and outcome, so a dashboard and a trail query agree:
 * outcome is `success`, `denied` (refused by policy or authentication, a 4xx) or `failure` (the
 * service could not complete it, a 5xx). `tenant` is absent where it is not known (a failed login).
 */
export interface SecurityMetrics {
  /** keyway.tokens.issued {tenant, grant_type, outcome}: logins at PAS (password, client_credentials) */
  tokensIssued: Counter;
  /** keyway.tokens.refreshed {tenant, outcome}: refresh_token grants at PAS */
  tokensRefreshed: Counter;
  /** keyway.tokens.revoked {tenant, reason}: refresh families revoked (reuse, RFC 7009, entitlement change) */
  tokensRevoked: Counter;
  /** keyway.sas_keys.minted {tenant, rights, outcome}: SAS key requests at PAC */
  sasKeysMinted: Counter;
  /** keyway.sas_keys.revoked {tenant, reason}: issued SAS keys revoked on entitlement changes */
  sasKeysRevoked: Counter;
  /** keyway.denials {service, action, tenant, reason}: every refusal the trail records (outcome `denied`) */
  denials: Counter;
}

/** No-ops until the process registers a MeterProvider, so create them after it does (at app creation). */
export function securityMetrics(meter: Meter = metrics.getMeter('keyway.security')): SecurityMetrics {
  const counter = (name: string, description: string) => meter.createCounter(name, { description });
  return {
    tokensIssued: counter('keyway.tokens.issued', 'token requests of the password and client_credentials grants, by tenant, grant type and outcome'),
    tokensRefreshed: counter('keyway.tokens.refreshed', 'refresh_token grants, by tenant and outcome'),
    tokensRevoked: counter('keyway.tokens.revoked', 'refresh families revoked, by tenant and reason'),
    sasKeysMinted: counter('keyway.sas_keys.minted', 'SAS key requests, by tenant, rights and outcome'),
    sasKeysRevoked: counter('keyway.sas_keys.revoked', 'issued SAS keys revoked, by tenant and reason'),
    denials: counter('keyway.denials', 'refusals (4xx) recorded in the audit trail, by service, action, tenant and reason'),
  };
}

/** Metric attributes without the absent ones (an attribute set must not hold undefined). */
export function attributes(values: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(values).filter((entry): entry is [string, string] => entry[1] !== undefined));
}
