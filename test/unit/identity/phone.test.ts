import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import fc from 'fast-check';
import { isValidPhoneNumber } from 'libphonenumber-js/max';
import { describe, expect, it } from 'vitest';
import { parsePhone, phoneMetadata } from '#shared/identity/phone.ts';
import { LIBPHONENUMBER_VERSION } from '#shared/identity/phone-metadata.generated.ts';

const require = createRequire(import.meta.url);

describe('the packed phone metadata', () => {
  it('is exactly the installed libphonenumber-js max metadata (run `npm run gen:phone-metadata` after an upgrade)', () => {
    expect(LIBPHONENUMBER_VERSION).toBe(require('libphonenumber-js/package.json').version);
    const installed = JSON.parse(readFileSync(require.resolve('libphonenumber-js/metadata.max.json'), 'utf8'));
    expect(phoneMetadata()).toEqual(installed);
  });

  it('judges numbers exactly as libphonenumber-js/max does', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('+33', '+1', '+44', '+49', '+34', '+91', '+55'),
        fc.stringMatching(/^[0-9]{6,11}$/),
        (cc, digits) => {
          const text = `${cc}${digits}`;
          let ours: boolean;
          try {
            ours = parsePhone(text).isValid();
          } catch {
            ours = false;
          }
          expect(ours).toBe(isValidPhoneNumber(text));
        },
      ),
      { numRuns: 500 },
    );
  });
});
