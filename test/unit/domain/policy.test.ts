import { describe, expect, it } from 'vitest';
import {
  DEFAULT_SIGNAL_WEIGHTS,
  defaultPolicy,
  kindOf,
  LEGACY_SIGNAL_WEIGHTS,
  PolicySchema,
  purposeKind,
} from '#domain/policy.ts';

describe('policy: purposes registry and requireRegisteredNotice', () => {
  it('defaults to no registered purposes and no registered-notice requirement', () => {
    expect(defaultPolicy()).toMatchObject({ purposes: {}, requireRegisteredNotice: false });
  });

  it('accepts kinds and labels per language', () => {
    const policy = PolicySchema.parse({
      purposes: {
        marketing: { kind: 'marketing', labels: { fr: 'Offres', en: 'Offers' } },
        'order-updates': { kind: 'service', labels: { 'pt-BR': 'Atualizações do pedido' } },
      },
      requireRegisteredNotice: true,
    });
    expect(policy.purposes['order-updates']).toEqual({
      kind: 'service',
      labels: { 'pt-BR': 'Atualizações do pedido' },
    });
    expect(policy.requireRegisteredNotice).toBe(true);
  });

  it('refuses a bad slug, kind, language or label with its path', () => {
    const paths = (purposes: unknown) =>
      PolicySchema.safeParse({ purposes }).error?.issues.map((i) => i.path.join('.')) ?? [];
    expect(paths({ 'Not A Slug': { kind: 'marketing' } })).toEqual(['purposes.Not A Slug']);
    expect(paths({ receipts: { kind: 'transactional' } })).toEqual(['purposes.receipts.kind']);
    expect(paths({ receipts: { kind: 'service', labels: { French: 'Reçus' } } })).toEqual([
      'purposes.receipts.labels.French',
    ]);
    expect(paths({ receipts: { kind: 'service', labels: { fr: '' } } })).toEqual(['purposes.receipts.labels.fr']);
    expect(paths({ receipts: { kind: 'service', extra: 1 } })).toEqual(['purposes.receipts']);
    expect(PolicySchema.safeParse({ requireRegisteredNotice: 'yes' }).error?.issues[0].path).toEqual([
      'requireRegisteredNotice',
    ]);
  });

  it('purposeKind: the registry kind, marketing for a purpose it does not list', () => {
    const policy = PolicySchema.parse({ purposes: { 'order-updates': { kind: 'service' } } });
    expect(purposeKind(policy, 'order-updates')).toBe('service');
    expect(purposeKind(policy, 'marketing')).toBe('marketing');
    expect(purposeKind(policy, 'constructor')).toBe('marketing');
    expect(['order-updates', 'newsletter'].map(kindOf(policy))).toEqual(['service', 'marketing']);
  });
});

describe('policy: block model settings', () => {
  it('defaults blockBaseRate to 0.1, longOfflineShare to 0.05 and the cooldown tail to 7 days', () => {
    expect(defaultPolicy()).toMatchObject({ blockBaseRate: 0.1, longOfflineShare: 0.05, crossChannelCooldownDays: 7 });
    expect(defaultPolicy().signalWeights).toEqual(DEFAULT_SIGNAL_WEIGHTS);
  });

  it('refuses shares outside (0, 0.5] with their path', () => {
    const paths = (input: unknown) => PolicySchema.safeParse(input).error?.issues.map((i) => i.path.join('.')) ?? [];
    expect(paths({ blockBaseRate: 0 })).toEqual(['blockBaseRate']);
    expect(paths({ blockBaseRate: 0.9 })).toEqual(['blockBaseRate']);
    expect(paths({ longOfflineShare: -0.1 })).toEqual(['longOfflineShare']);
    expect(paths({ longOfflineShare: '5 %' })).toEqual(['longOfflineShare']);
    expect(paths({ signalWeights: { channel_blocked: 1.5 } })).toEqual(['signalWeights.channel_blocked']);
  });

  it('reads a policy stored with the former noisy-OR default weights as the calibrated defaults', () => {
    expect(PolicySchema.parse({ signalWeights: { ...LEGACY_SIGNAL_WEIGHTS } }).signalWeights).toEqual(
      DEFAULT_SIGNAL_WEIGHTS,
    );
    // A tenant's own weights are kept.
    expect(
      PolicySchema.parse({ signalWeights: { ...LEGACY_SIGNAL_WEIGHTS, call_failed: 0.6 } }).signalWeights,
    ).toMatchObject({ call_failed: 0.6, profile_photo_hidden: 0.25 });
  });
});
