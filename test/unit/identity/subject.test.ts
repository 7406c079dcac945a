import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProblemError } from '#http/errors.ts';
import { assertReachable, normaliseSubject, SubjectSchema, subjectKeyOf } from '#shared/identity/subject.ts';

const secret = Buffer.alloc(32, 7);

describe('subject normalisation', () => {
  it('turns a national number with its country into E.164', () => {
    expect(normaliseSubject({ phone: '06 12 34 56 78', country: 'FR' })).toEqual({
      kind: 'phone',
      value: '+33612345678',
    });
    expect(normaliseSubject({ phone: '+33 6 12 34 56 78' })).toEqual({ kind: 'phone', value: '+33612345678' });
  });

  it('rejects an invalid number with invalid_identifier on subject.phone', () => {
    for (const phone of ['12', '+33 1', 'not a number', '0612345678']) {
      try {
        normaliseSubject({ phone });
        expect.unreachable(`accepted ${phone}`);
      } catch (error) {
        expect(error).toBeInstanceOf(ProblemError);
        expect((error as ProblemError).code).toBe('invalid_identifier');
        expect((error as ProblemError).errors?.[0].path).toBe('subject.phone');
      }
    }
  });

  it('compares e-mail case-insensitively after trimming', () => {
    expect(normaliseSubject({ email: '  Ana@Example.ORG ' }).value).toBe('ana@example.org');
    expect(() => normaliseSubject({ email: 'no-at-sign' })).toThrow(ProblemError);
  });

  it('accepts exactly one identifier', () => {
    expect(SubjectSchema.safeParse({}).success).toBe(false);
    expect(SubjectSchema.safeParse({ phone: '+33612345678', email: 'a@b.co' }).success).toBe(false);
    expect(SubjectSchema.safeParse({ email: 'a@b.co', country: 'FR' }).success).toBe(false);
    expect(SubjectSchema.safeParse({ waUserId: 'US.13491208655302741918' }).success).toBe(true);
    expect(SubjectSchema.safeParse({ externalId: 'crm-42', extra: 1 }).success).toBe(false);
  });

  it('accepts business-scoped user ids as Meta documents them and refuses anything else', () => {
    const ok = (waUserId: string) => SubjectSchema.safeParse({ waUserId }).success;
    // Meta's examples: a BSUID, a parent BSUID, and alphanumeric ids up to 128 characters after the country.
    for (const id of [
      'US.13491208655302741918',
      'US.ENT.11815799212886844830',
      'BR.AbC123',
      'IN.1648738043044942',
      `FR.${'a1'.repeat(64)}`,
    ]) {
      expect(ok(id), id).toBe(true);
    }
    for (const id of [
      '13491208655302741918', // a phone number is not a BSUID
      'us.13491208655302741918', // Meta's ids are used exactly as given: no lower-case country
      'USA.1349120865',
      'US.',
      'US..1349',
      'US.ENT.',
      'US.XYZ.1349',
      'US.1349-1208',
      'US.1349 1208',
      'uUS.13491208655302741918', // a typo in one of Meta's own examples
      `FR.${'a'.repeat(129)}`,
      'US.1349\n',
    ]) {
      expect(ok(id), id).toBe(false);
    }
  });

  it('knows which channels reach which identifier', () => {
    expect(() => assertReachable({ kind: 'email', value: 'a@b.co' }, 'whatsapp')).toThrow(/cannot be reached/);
    expect(() => assertReachable({ kind: 'waUserId', value: 'US.1234567' }, 'sms')).toThrow(/cannot be reached/);
    expect(() => assertReachable({ kind: 'externalId', value: 'x' }, 'push')).not.toThrow();
    expect(() => assertReachable({ kind: 'phone', value: '+33612345678' }, 'push')).toThrow();
  });
});

describe('subjectKey', () => {
  it('is the same for every spelling of one number and differs across tenants and kinds', () => {
    const a = subjectKeyOf(secret, 't1', normaliseSubject({ phone: '06 12 34 56 78', country: 'FR' }));
    const b = subjectKeyOf(secret, 't1', normaliseSubject({ phone: '+33612345678' }));
    expect(a).toBe(b);
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(subjectKeyOf(secret, 't2', { kind: 'phone', value: '+33612345678' })).not.toBe(a);
    expect(subjectKeyOf(secret, 't1', { kind: 'externalId', value: '+33612345678' })).not.toBe(a);
  });

  it('gives distinct identifiers distinct keys', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.stringMatching(/^[a-z0-9.]{1,30}$/), { minLength: 2, maxLength: 50 }), (ids) => {
        const keys = new Set(ids.map((value) => subjectKeyOf(secret, 't', { kind: 'externalId', value })));
        expect(keys.size).toBe(ids.length);
      }),
      { numRuns: 100 },
    );
  });
});
