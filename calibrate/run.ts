// `npm run calibrate`: the block model measured on simulated populations (docs/signals-and-policy.md,
// "Calibration"). Figures are printed, never asserted. Deterministic: CALIBRATE_SEED, CALIBRATE_CONTACTS.
import { applySignal, blockLikelihood, type ChannelSignals } from '#domain/likelihood.ts';
import { type Policy, PolicySchema } from '#domain/policy.ts';
import { type Contact, HABITS, rng, SEED_WORLD, simulateContact, toSignalInput, type World } from './population.ts';

const SEED = Number(process.env.CALIBRATE_SEED ?? 20_261_128);
const CONTACTS = Number(process.env.CALIBRATE_CONTACTS ?? 4_000);
/** The population the signal-pattern frequencies are learnt on (never the one scored). */
const FIT_CONTACTS = CONTACTS * 3;
const START = Date.parse('2026-01-05T00:00:00Z');
const END = START + HABITS.windowDays * 86_400_000;

interface Scenario {
  label: string;
  world: World;
  policy: Partial<Policy>;
}

const LONG_OFFLINE: World = { ...SEED_WORLD, name: 'long offline spells', longOfflineShare: 0.15 };
const DEAD: World = { ...SEED_WORLD, name: '3 % dead numbers', deadShare: 0.03 };
const SCENARIOS: Scenario[] = [
  { label: 'seed rates, default policy', world: SEED_WORLD, policy: {} },
  { label: 'long offline (15 %), longOfflineShare 0.15', world: LONG_OFFLINE, policy: { longOfflineShare: 0.15 } },
  { label: 'long offline (15 %), default policy', world: LONG_OFFLINE, policy: {} },
  { label: '3 % dead numbers, default policy', world: DEAD, policy: {} },
  {
    label: 'seed rates, 5 % blockers, blockBaseRate 0.05',
    world: { ...SEED_WORLD, blockerShare: 0.05 },
    policy: { blockBaseRate: 0.05 },
  },
  { label: 'seed rates, longOfflineShare 0.01', world: SEED_WORLD, policy: { longOfflineShare: 0.01 } },
];

/**
 * Folds a contact's signals into the channel summary with `applySignal`, as `recordSignal` (behind
 * `POST /v1/signals` and the webhooks) does, each when it arrives, then scores it at the end.
 */
function modelPosterior(contact: Contact, policy: Policy) {
  let summary: ChannelSignals | undefined;
  for (const signal of contact.signals.map(toSignalInput)) {
    summary = applySignal(summary, signal, policy, signal.observedAt);
  }
  return blockLikelihood(summary, policy, new Date(END).toISOString());
}

const bucket = (x: number, edges: number[]) => edges.filter((e) => x >= e).length;

/**
 * The signal pattern, read from the raw signals without the model: time since the last evidence against a
 * block, the longest wait of a message still undelivered after it, and which other clues came after it.
 */
function pattern(contact: Contact): string {
  const { signals } = contact;
  let last = Number.NEGATIVE_INFINITY;
  const settled = new Set<string | undefined>();
  for (const s of signals) {
    if (s.type === 'message_delivered' || s.type === 'message_read' || s.type === 'inbound_message') last = s.ms;
    if (s.type === 'message_delivered' || s.type === 'message_read' || s.type === 'recipient_unreachable') {
      settled.add(s.messageId);
    }
  }
  let wait = -1;
  const seen = new Set<string>();
  for (const s of signals) {
    if (s.ms <= last) continue;
    seen.add(s.type);
    if (s.type === 'message_sent' && !settled.has(s.messageId)) wait = Math.max(wait, (END - s.ms) / 86_400_000);
  }
  const has = (type: string) => (seen.has(type) ? 1 : 0);
  return [
    last === Number.NEGATIVE_INFINITY ? 'never' : bucket((END - last) / 86_400_000, [7, 28]),
    wait < 0 ? 'none' : bucket(wait, [3, 5, 7, 14, 28]),
    has('profile_photo_hidden') + has('last_seen_hidden'),
    has('call_failed'),
    has('group_add_refused'),
    has('read_receipts_missing'),
    has('recipient_unreachable'),
  ].join('|');
}

interface Row {
  p: number;
  blocked: boolean;
  level: string;
}

function measure(scenario: Scenario, index: number) {
  const policy = PolicySchema.parse(scenario.policy);
  const b = scenario.world.blockerShare;
  // The best achievable from the same signals: each pattern's frequency of blockers, learnt on another population.
  const fitRng = rng(SEED + 1000 * index + 1);
  const freq = new Map<string, { n: number; k: number }>();
  for (let i = 0; i < FIT_CONTACTS; i++) {
    const c = simulateContact(scenario.world, fitRng, START, i);
    const key = pattern(c);
    const cell = freq.get(key) ?? { n: 0, k: 0 };
    cell.n++;
    if (c.blocked) cell.k++;
    freq.set(key, cell);
  }
  const r = rng(SEED + 1000 * index);
  const rows: Row[] = [];
  let brierModel = 0;
  let brierBest = 0;
  let brierPrior = 0;
  for (let i = 0; i < CONTACTS; i++) {
    const c = simulateContact(scenario.world, r, START, i);
    const l = modelPosterior(c, policy);
    const y = c.blocked ? 1 : 0;
    const cell = freq.get(pattern(c)) ?? { n: 0, k: 0 };
    // Two pseudo-contacts at the base rate keep rare patterns from scoring 0 or 1.
    const best = (cell.k + 2 * b) / (cell.n + 2);
    brierModel += (l.blockLikelihood - y) ** 2;
    brierBest += (best - y) ** 2;
    brierPrior += (b - y) ** 2;
    rows.push({ p: l.blockLikelihood, blocked: c.blocked, level: l.level });
  }
  const at = (levels: string[]) => {
    const flagged = rows.filter((row) => levels.includes(row.level));
    const tp = flagged.filter((row) => row.blocked).length;
    const blockers = rows.filter((row) => row.blocked).length;
    const others = rows.length - blockers;
    return {
      precision: flagged.length ? tp / flagged.length : Number.NaN,
      recall: blockers ? tp / blockers : Number.NaN,
      othersFlagged: (flagged.length - tp) / others,
    };
  };
  const bins = Array.from({ length: 10 }, (_, k) => {
    const inBin = rows.filter((row) => Math.min(9, Math.floor(row.p * 10)) === k);
    return {
      bin: `${(k / 10).toFixed(1)}–${((k + 1) / 10).toFixed(1)}`,
      n: inBin.length,
      predicted: inBin.length ? inBin.reduce((s, row) => s + row.p, 0) / inBin.length : Number.NaN,
      observed: inBin.length ? inBin.filter((row) => row.blocked).length / inBin.length : Number.NaN,
    };
  });
  return {
    brier: brierModel / CONTACTS,
    best: brierBest / CONTACTS,
    prior: brierPrior / CONTACTS,
    suspected: at(['suspected', 'likely']),
    likely: at(['likely']),
    bins,
  };
}

const f = (x: number, d = 3) => (Number.isNaN(x) ? '—' : x.toFixed(d));
const pct = (x: number) => (Number.isNaN(x) ? '—' : `${(100 * x).toFixed(2)} %`);

const started = performance.now();
console.log(
  `# npm run calibrate — seed ${SEED}, ${CONTACTS} contacts scored per scenario (${FIT_CONTACTS} to learn the best achievable), window ${HABITS.windowDays} days\n`,
);
const summary: string[] = [
  '| scenario | Brier | best achievable | prior only | precision @suspected | recall @suspected | precision @likely | recall @likely | non-blockers flagged likely |',
  '|---|---|---|---|---|---|---|---|---|',
];
const tables: string[] = [];
SCENARIOS.forEach((scenario, i) => {
  const m = measure(scenario, i);
  summary.push(
    `| ${scenario.label} | ${f(m.brier, 4)} | ${f(m.best, 4)} | ${f(m.prior, 4)} | ${f(m.suspected.precision)} | ${f(m.suspected.recall)} | ${f(m.likely.precision)} | ${f(m.likely.recall)} | ${pct(m.likely.othersFlagged)} |`,
  );
  tables.push(
    `Calibration — ${scenario.label}\n\n| predicted | contacts | mean predicted | observed blockers |\n|---|---|---|---|\n${m.bins
      .map((bin) => `| ${bin.bin} | ${bin.n} | ${f(bin.predicted)} | ${f(bin.observed)} |`)
      .join('\n')}\n`,
  );
});
console.log(summary.join('\n'));
console.log(`\n${tables.join('\n')}`);
console.log(`(${((performance.now() - started) / 1000).toFixed(1)} s)`);
