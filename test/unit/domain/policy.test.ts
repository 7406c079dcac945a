import { describe, expect, it } from 'vitest';
import { defaultPolicy, kindOf, PolicySchema, purposeKind } from '#domain/policy.ts';

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
