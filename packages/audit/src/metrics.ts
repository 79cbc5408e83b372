import { metrics, type Counter, type Meter } from '@opentelemetry/api';

export interface AuditMetrics {
  /** keyway.audit.events {service, action, outcome}: events appended */
  events: Counter;
  /** keyway.audit.append_failures {service}: appends that failed, and with them their actions */
  appendFailures: Counter;
}

/** Audit counters through @opentelemetry/api; a no-op until the process registers a MeterProvider. */
export function auditMetrics(meter: Meter = metrics.getMeter('keyway.audit')): AuditMetrics {
  return {
    events: meter.createCounter('keyway.audit.events', { description: 'audit events appended, by service, action and outcome' }),
    appendFailures: meter.createCounter('keyway.audit.append_failures', {
      description: 'audit appends that failed; the action failed with them (fail closed)',
    }),
  };
}
