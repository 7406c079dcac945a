import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

type MetricsModule = typeof import('#shared/metrics.ts');
let mod: MetricsModule;
const previous = process.env.POWERTOOLS_METRICS_DISABLED;

/** The EMF documents a call printed on stdout. */
function emitted(action: () => void): any[] {
  const lines: string[] = [];
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: any) => {
    lines.push(String(chunk));
    return true;
  });
  try {
    action();
  } finally {
    spy.mockRestore();
  }
  return lines
    .flatMap((l) => l.split('\n'))
    .filter((l) => l.includes('_aws'))
    .map((l) => JSON.parse(l));
}

beforeAll(async () => {
  // As in Lambda: metrics on (the module turns them off outside Lambda unless told otherwise).
  process.env.POWERTOOLS_METRICS_DISABLED = 'false';
  mod = await import('#shared/metrics.ts');
});
afterAll(() => {
  if (previous === undefined) delete process.env.POWERTOOLS_METRICS_DISABLED;
  else process.env.POWERTOOLS_METRICS_DISABLED = previous;
});

describe('metrics', () => {
  it('counts a gate decision by decision and reason, in the service namespace', () => {
    const [doc, ...rest] = emitted(() =>
      mod.countGateDecision({ decision: 'block', reasons: [{ code: 'consent_withdrawn' }] }),
    );
    expect(rest).toHaveLength(0);
    expect(doc).toMatchObject({ decision: 'block', reason: 'consent_withdrawn', GateDecision: 1 });
    const directive = doc._aws.CloudWatchMetrics[0];
    expect(directive.Namespace).toBe('ConsentGate');
    expect(directive.Dimensions[0]).toEqual(expect.arrayContaining(['decision', 'reason']));
    expect(directive.Metrics).toEqual([{ Name: 'GateDecision', Unit: 'Count' }]);
  });

  it('groups a batch: one line per decision and reason, with the counts', () => {
    const docs = emitted(() =>
      mod.countGateDecisions([
        { decision: 'allow', reasons: [] },
        { decision: 'allow', reasons: [] },
        { decision: 'block', reasons: [{ code: 'no_consent' }] },
        { decision: 'block', reasons: [{ code: 'no_consent' }] },
        { decision: 'block', reasons: [{ code: 'no_consent' }] },
        { decision: 'defer', reasons: [{ code: 'quiet_hours' }] },
      ]),
    );
    const counts = Object.fromEntries(docs.map((d) => [`${d.decision}/${d.reason}`, d.GateDecision]));
    expect(counts).toEqual({ 'allow/none': 2, 'block/no_consent': 3, 'defer/quiet_hours': 1 });
  });

  it('counts webhook events by event and outcome', () => {
    const [doc] = emitted(() => mod.countWebhookEvent('status.failed.131026', 'recorded'));
    expect(doc).toMatchObject({ event: 'status.failed.131026', outcome: 'recorded', WebhookEvent: 1 });
  });

  it('carries no subject data: only the dimensions, the metric and the service', () => {
    const [doc] = emitted(() => mod.countGateDecision({ decision: 'allow', reasons: [] }));
    const { _aws, ...fields } = doc;
    expect(Object.keys(fields).sort()).toEqual(['GateDecision', 'decision', 'reason', 'service']);
  });
});
