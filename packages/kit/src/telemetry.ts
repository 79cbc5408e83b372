import { metrics, trace } from '@opentelemetry/api';

/** Instrument names are shared so dashboards see one vocabulary across services. */
export function telemetry(service: string) {
  const meter = metrics.getMeter(`keyway.${service}`);
  return {
    tracer: trace.getTracer(`keyway.${service}`),
    counter: (name: string, description: string) => meter.createCounter(name, { description }),
    histogram: (name: string, description: string, unit = 'ms') => meter.createHistogram(name, { description, unit }),
  };
}
