import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';

// EMF lines belong in Lambda's log stream, where CloudWatch turns them into metrics. The local server and
// the tests would only print them, so outside Lambda they are off unless asked for.
process.env.POWERTOOLS_METRICS_DISABLED ??= process.env.AWS_LAMBDA_FUNCTION_NAME ? 'false' : 'true';

/** The service's Powertools Metrics (namespace `POWERTOOLS_METRICS_NAMESPACE`, default `ConsentGate`). */
export const metrics = new Metrics({
  namespace: process.env.POWERTOOLS_METRICS_NAMESPACE || 'ConsentGate',
  serviceName: 'consent-gate',
});

/** A gate outcome as the metrics see it: the decision and its reason codes (no subject, no identifier). */
export interface GateOutcome {
  decision: string;
  reasons: readonly { code: string }[];
}

/**
 * Counts gate decisions as `GateDecision` by `decision` and `reason` (`none` for an allow). A batch is
 * grouped first, so a 1000-item pre-flight emits one line per (decision, reason), not 1000.
 */
export function countGateDecisions(outcomes: readonly GateOutcome[], target: Metrics = metrics): void {
  const counts = new Map<string, number>();
  for (const { decision, reasons } of outcomes) {
    const codes = reasons.length > 0 ? reasons.map((r) => r.code) : ['none'];
    for (const reason of codes) {
      const key = `${decision}\u0000${reason}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  for (const [key, count] of counts) {
    const [decision, reason] = key.split('\u0000');
    // Dimensions differ per decision and reason, so each is its own EMF line (a buffered set shares dimensions).
    const single = target.singleMetric();
    single.addDimensions({ decision, reason });
    single.addMetric('GateDecision', MetricUnit.Count, count);
  }
}

/** Counts one gate decision (see `countGateDecisions`). */
export function countGateDecision(outcome: GateOutcome, target: Metrics = metrics): void {
  countGateDecisions([outcome], target);
}

/**
 * Counts a WhatsApp webhook event as `WebhookEvent` by `event` (e.g. `signal.message_delivered`,
 * `signal.recipient_unreachable.131026`, `withdraw.keyword`, `skipped.unknown_field`) and `outcome` (e.g.
 * `recorded`, `unchanged`, `replayed`, `skipped`).
 */
export function countWebhookEvent(event: string, outcome = 'recorded', count = 1, target: Metrics = metrics): void {
  const single = target.singleMetric();
  single.addDimensions({ event, outcome });
  single.addMetric('WebhookEvent', MetricUnit.Count, count);
}
