import fc from 'fast-check';
import { ulid, uuidToULID } from 'ulid';
import { describe, expect, it } from 'vitest';
import { recordSignal } from '#domain/likelihood.ts';
import { PolicySchema, SIGNAL_TYPES } from '#domain/policy.ts';
import { recordSend } from '#domain/sends.ts';
import { emptyState, grantConsent, type SubjectState, withdrawConsent } from '#domain/subject-state.ts';
import { CHANNELS, GRANT_SOURCES, WITHDRAW_SOURCES } from '#domain/vocabulary.ts';
import { itemSize, readUnits } from '#store/item-size.ts';
import { decodeState, encodeState, STATE_LAYOUT } from '#store/state-codec.ts';
import { worstState } from '../../helpers/worst-state.ts';

const SUBJECT = 'k'.repeat(43);
const keysOf = (tenant: string) => ({ PK: `T#${tenant}#S#${SUBJECT}`, SK: 'STATE' });
const roundTrip = (state: SubjectState) => decodeState({ ...keysOf('t'), ...encodeState(state) }, SUBJECT);
/** What DynamoDB keeps of a value: no undefined fields. */
const stored = <T>(value: T): T => JSON.parse(JSON.stringify(value));

// --- Arbitrary values, each in its usual form and in forms the compact layout cannot take. ---

const ulidArb = fc
  .tuple(fc.integer({ min: 0, max: 2 ** 48 - 1 }), fc.uint8Array({ minLength: 10, maxLength: 10 }))
  .map(([ms, random]) => {
    const hex = ms.toString(16).padStart(12, '0') + Buffer.from(random).toString('hex');
    return uuidToULID(
      `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`,
    );
  });
/** A JSON value as it comes back from JSON (no -0). */
const json = fc.jsonValue().map((v) => JSON.parse(JSON.stringify(v)));
const text = fc.oneof(
  { weight: 4, arbitrary: fc.string() },
  { weight: 1, arbitrary: fc.string({ unit: 'binary' }) },
  { weight: 1, arbitrary: fc.constant('') },
);
const isoArb = fc
  .date({ min: new Date(-8.64e15), max: new Date(8.64e15), noInvalidDate: true })
  .chain((d) =>
    fc.constantFrom(
      d.toISOString(),
      new Date(Math.floor(d.getTime() / 1000) * 1000).toISOString(),
      d.toISOString().replace('.000Z', 'Z'),
    ),
  );
const timeArb = fc.oneof({ weight: 8, arbitrary: isoArb }, { weight: 1, arbitrary: text });
const idArb = fc.oneof({ weight: 8, arbitrary: ulidArb }, { weight: 1, arbitrary: text });
const sourceArb = fc.oneof(fc.constantFrom(...GRANT_SOURCES, ...WITHDRAW_SOURCES, 'erasure'), text);
const hashArb = fc.oneof(fc.stringMatching(/^[0-9a-f]{64}$/), text);
const channelArb = fc.oneof(fc.constantFrom('*', ...CHANNELS), text);
const purposeArb = fc.oneof(
  fc.stringMatching(/^[a-z0-9][a-z0-9_-]{0,63}$/),
  fc.constantFrom('*', '@marketing', '@unlisted'),
  text,
);
const scopeKeyArb = fc.oneof(
  { weight: 9, arbitrary: fc.tuple(channelArb, purposeArb).map(([c, p]) => `${c}|${p}`) },
  { weight: 1, arbitrary: text },
);
const entryFields = {
  grantedAt: timeArb,
  grantEventId: idArb,
  grantSource: sourceArb,
  noticeVersion: text,
  noticeHash: hashArb,
  expiresAt: timeArb,
  ownGrantAt: timeArb,
  withdrawnAt: timeArb,
  withdrawnEventId: idArb,
  withdrawnSource: sourceArb,
  objection: fc.boolean(),
};
/** An entry as the domain shapes one: the grant's fields together, the closing's together, the rest optional. */
const shapedEntryArb = fc
  .tuple(
    fc.option(
      fc.record(
        {
          grantedAt: timeArb,
          grantEventId: idArb,
          grantSource: sourceArb,
          noticeVersion: text,
          noticeHash: hashArb,
        },
        { requiredKeys: ['grantedAt', 'grantEventId', 'grantSource'] },
      ),
      { nil: undefined },
    ),
    fc.option(fc.record({ withdrawnAt: timeArb, withdrawnEventId: idArb, withdrawnSource: sourceArb }), {
      nil: undefined,
    }),
    fc.record({ expiresAt: timeArb, ownGrantAt: timeArb, objection: fc.constant(true) }, { requiredKeys: [] }),
  )
  .chain(([grant, closing, rest]) =>
    // ownGrantAt is often the grant's own time.
    fc.constantFrom(
      { ...grant, ...closing, ...rest },
      { ...grant, ...closing, ...rest, ...(grant ? { ownGrantAt: grant.grantedAt } : {}) },
    ),
  );
const entryArb = fc.oneof(
  { weight: 8, arbitrary: shapedEntryArb },
  // Any subset of the fields (a partial grant, `objection: false`…), and a field of a future release.
  { weight: 1, arbitrary: fc.record(entryFields, { requiredKeys: [] }) },
  { weight: 1, arbitrary: fc.record({ grantedAt: timeArb, later: json }) },
);
const secondsArb = fc.oneof(
  fc.integer({ min: 1_700_000_000, max: 1_900_000_000 }),
  fc.integer({ min: -(2 ** 40), max: 2 ** 40 }),
);
const refArb = fc.oneof(
  fc.uint8Array({ minLength: 6, maxLength: 6 }).map((b) => Buffer.from(b).toString('base64url')),
  fc.constant(''),
  text,
);
const clueArb = fc.oneof(
  secondsArb.map((at) => [at]),
  fc.tuple(secondsArb, refArb),
  fc.tuple(secondsArb, refArb, fc.constant(1)),
);
const channelSignalsArb = fc.record(
  {
    clearedAt: secondsArb,
    clues: fc.dictionary(
      fc.oneof(fc.constantFrom('message_undelivered', 'call_failed', 'profile_photo_hidden'), text),
      fc.array(clueArb, { maxLength: 6 }),
    ),
    pending: fc.array(fc.tuple(secondsArb, refArb), { maxLength: 4 }),
    resolved: fc.array(refArb, { maxLength: 6 }),
    count: fc.nat(),
  },
  { requiredKeys: ['clues', 'pending', 'count'] },
);
const signalsArb = fc.oneof(
  { weight: 9, arbitrary: fc.dictionary(channelArb, channelSignalsArb, { maxKeys: 5 }) },
  { weight: 1, arbitrary: fc.dictionary(text, json, { maxKeys: 3 }) },
);
const sendsArb = fc.dictionary(
  fc.oneof(
    scopeKeyArb,
    fc.tuple(channelArb, purposeArb).map(([c, p]) => `${c}|${p}`),
  ),
  fc.array(secondsArb, { maxLength: 31 }),
  { maxKeys: 10 },
);
const erasureArb = fc.oneof(
  {
    weight: 9,
    arbitrary: fc.record(
      {
        requestId: fc.oneof(
          ulidArb.map((id) => `er_${id}`),
          ulidArb.map((id) => `retention_${id}`),
          text,
        ),
        status: fc.constantFrom('received', 'completed'),
        receivedAt: timeArb,
        erasedAt: timeArb,
        reason: fc.constantFrom('request', 'retention'),
        proofUntil: timeArb,
        proofPurgedAt: timeArb,
      },
      { requiredKeys: ['requestId', 'status', 'receivedAt'] },
    ),
  },
  { weight: 1, arbitrary: fc.record({ requestId: text, status: text, receivedAt: timeArb }) },
);

const stateArb = fc.record(
  {
    subjectKey: fc.constant(SUBJECT),
    kind: fc.oneof(fc.constantFrom('phone', 'email', 'externalId', 'waUserId'), fc.string()),
    version: fc.nat(),
    seq: fc.nat(),
    head: fc.oneof(fc.stringMatching(/^[0-9a-f]{64}$/), fc.constant(''), fc.string()),
    scopes: fc.oneof(
      fc.dictionary(scopeKeyArb, shapedEntryArb, { maxKeys: 40 }),
      fc.dictionary(scopeKeyArb, entryArb, { maxKeys: 8 }),
    ),
    lastOwnActionAt: timeArb,
    erasure: erasureArb,
    signals: signalsArb,
    sends: sendsArb,
    // A field of the state this codec does not know (the `person` link being added): passed through untouched.
    person: fc.record({ personKey: fc.string({ minLength: 43, maxLength: 43 }), cooldown: json }),
  },
  { requiredKeys: ['subjectKey', 'version', 'seq', 'head', 'scopes'] },
) as fc.Arbitrary<SubjectState>;

// --- States made the way the service makes them: the domain's own changes, in any order. ---

const policy = PolicySchema.parse({
  undeliveredAfterHours: 1,
  frequencyCaps: [{ channel: '*', max: 31, perDays: 30 }],
});
const T0 = Date.parse('2026-03-01T00:00:00Z');
const opArb = fc.oneof(
  fc.record({
    op: fc.constant('grant' as const),
    channel: fc.constantFrom(...CHANNELS),
    purpose: fc.constantFrom('marketing', 'news', 'offers'),
    source: fc.constantFrom(...GRANT_SOURCES),
    minutes: fc.nat({ max: 100_000 }),
    ms: fc.nat({ max: 999 }),
    expires: fc.boolean(),
    hash: fc.boolean(),
  }),
  fc.record({
    op: fc.constant('withdraw' as const),
    channel: fc.option(fc.constantFrom(...CHANNELS), { nil: undefined }),
    purpose: fc.option(fc.constantFrom('marketing', 'news', 'survey'), { nil: undefined }),
    onlyKind: fc.option(fc.constant('marketing' as const), { nil: undefined }),
    source: fc.constantFrom(...WITHDRAW_SOURCES),
    minutes: fc.nat({ max: 100_000 }),
  }),
  fc.record({
    op: fc.constant('signal' as const),
    channel: fc.constantFrom(...CHANNELS),
    type: fc.constantFrom(...SIGNAL_TYPES),
    message: fc.option(fc.nat({ max: 20 }), { nil: undefined }),
    minutes: fc.nat({ max: 100_000 }),
  }),
  fc.record({
    op: fc.constant('send' as const),
    channel: fc.constantFrom(...CHANNELS),
    purpose: fc.constantFrom('marketing', 'news'),
    minutes: fc.nat({ max: 100_000 }),
  }),
);

type Op = typeof opArb extends fc.Arbitrary<infer T> ? T : never;

/** The state after `ops`, each applied as the service applies it (a change the domain refuses changes nothing). */
function fold(ops: readonly Op[]): SubjectState {
  let state = emptyState(SUBJECT, 'phone');
  let seq = 0;
  for (const o of ops) {
    const at = new Date(T0 + o.minutes * 60_000 + ('ms' in o ? o.ms : 0)).toISOString();
    const next = { seq: ++seq, eventId: ulid(Date.parse(at) + 1500) };
    try {
      if (o.op === 'grant') {
        const input = {
          channel: o.channel,
          purpose: o.purpose,
          source: o.source,
          noticeVersion: `v${o.minutes % 3}`,
          ...(o.hash ? { noticeHash: 'ab'.repeat(32) } : {}),
          grantedAt: at,
          ...(o.expires ? { expiresAt: new Date(T0 + 400 * 86_400_000).toISOString() } : {}),
          data: {},
        };
        state = grantConsent(state, input, next, at).state;
      } else if (o.op === 'withdraw') {
        const { op: _op, minutes: _m, ...input } = o;
        state = withdrawConsent(state, { ...input, at }, next, at).state;
      } else if (o.op === 'signal') {
        const messageId = o.message === undefined ? undefined : `wamid.${o.message}`;
        state = recordSignal(
          state,
          { channel: o.channel, type: o.type, observedAt: at, messageId, source: 'api' },
          policy,
          at,
        ).state;
      } else {
        state = recordSend(state, { channel: o.channel, purpose: o.purpose, at, decisionId: 'dec' }, policy, at).state;
      }
      state = { ...state, version: seq, seq, head: Buffer.alloc(32, seq).toString('hex') };
    } catch {
      // Refused (a stale grant, too many scopes…): nothing changes.
    }
  }
  return state;
}
describe('the state item codec', () => {
  it('gives back the state it was given, for states made by the domain', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 60 }), (ops) => {
        const state = fold(ops);
        expect(roundTrip(state)).toEqual(stored(state));
        // Every part of a state the domain makes has its compact form (none falls back to JSON).
        expect(() => encodeState(state, { strict: true })).not.toThrow();
      }),
      { numRuns: 300 },
    );
  });

  it('gives back any state, whatever the shape of its parts (what it cannot pack it keeps as JSON)', () => {
    fc.assert(
      fc.property(stateArb, (state) => {
        expect(roundTrip(state)).toEqual(stored(state));
      }),
      { numRuns: 500 },
    );
  });

  it('reads an item in the layout of earlier releases (every field an attribute), as those releases did', () => {
    const state = fold([
      {
        op: 'grant',
        channel: 'sms',
        purpose: 'news',
        source: 'web_form',
        minutes: 1,
        ms: 5,
        expires: true,
        hash: true,
      },
      { op: 'signal', channel: 'sms', type: 'message_sent', message: 3, minutes: 2 },
      { op: 'send', channel: 'sms', purpose: 'news', minutes: 3 },
      { op: 'withdraw', channel: 'sms', purpose: 'news', source: 'keyword', minutes: 4, onlyKind: undefined },
    ]);
    const legacy = { ...keysOf('acme'), tenant: 'acme', ...stored(state) };
    expect(decodeState(legacy, SUBJECT)).toEqual(stored(state));
    // Written again, it takes the compact layout: the keys, `n`, `b` and nothing else.
    expect(Object.keys(encodeState(decodeState(legacy, SUBJECT))).sort()).toEqual(['b', 'n']);
  });

  it('passes a field it does not know through as its own attribute, untouched', () => {
    const person = {
      key: `per_${'0'.repeat(26)}`,
      cooldowns: { sms: { from: '2026-06-01T00:00:00.000Z', until: null } },
    };
    const state: SubjectState = { ...emptyState(SUBJECT, 'phone'), person };
    const attributes = encodeState(state);
    expect(attributes.person).toBe(person);
    expect(roundTrip(state)).toEqual(state);
    // A field named like one of the layout's own attributes would be lost: refused at once.
    expect(() => encodeState({ ...state, b: 1 } as SubjectState)).toThrow(/collides/);
  });

  it('refuses a body of a layout it does not know, and a damaged one', () => {
    const { b, n } = encodeState(emptyState(SUBJECT)) as { b: Uint8Array; n: number };
    expect(b[0]).toBe(STATE_LAYOUT);
    expect(() => decodeState({ n, b: Uint8Array.of(STATE_LAYOUT + 1, ...b.subarray(1)) }, SUBJECT)).toThrow(/layout 3/);
    expect(() => decodeState({ n, b: b.subarray(0, b.length - 1) }, SUBJECT)).toThrow(/truncated/);
    expect(() => decodeState({ n, b: Uint8Array.of(...b, 0) }, SUBJECT)).toThrow(/trailing/);
  });
});

describe('the item size as DynamoDB counts it', () => {
  it('follows the documented rules: names plus values, numbers by significant digits, 3 bytes per list or map and 1 per element', () => {
    expect(itemSize({ a: 'héllo' })).toBe(1 + 6);
    expect(itemSize({ num: 1234567 })).toBe(3 + 5);
    expect(itemSize({ num: 1200 })).toBe(3 + 2); // trailing zeros trimmed: "12"
    expect(itemSize({ num: -0.0015 })).toBe(3 + 2); // "15"
    expect(itemSize({ bin: new Uint8Array(32) })).toBe(3 + 32);
    expect(itemSize({ ok: true, no: null })).toBe(2 + 1 + 2 + 1);
    expect(itemSize({ list: ['ab', 1] })).toBe(4 + 3 + (1 + 2) + (1 + 2));
    expect(itemSize({ map: { k: 'v', kk: [] } })).toBe(3 + 3 + (1 + 1 + 1) + (1 + 2 + 3));
    expect(itemSize({ gone: undefined })).toBe(0);
    expect([readUnits(1), readUnits(4096), readUnits(4097), readUnits(8192)]).toEqual([1, 1, 2, 2]);
  });

  it('shrinks the largest state any accepted input can make from 16 KB to under 7 KB', () => {
    const state = worstState(SUBJECT, { purposeLength: 64, noticeLength: 128, spread: 86_400 });
    const tenant = 't'.repeat(63);
    const legacy = itemSize({ ...keysOf(tenant), tenant, ...stored(state) });
    const compact = itemSize({ ...keysOf(tenant), ...encodeState(state, { strict: true }) });
    expect(legacy).toBeGreaterThan(15_000);
    expect(compact).toBeLessThan(7_000);
  });
});
