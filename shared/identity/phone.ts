import { brotliDecompressSync } from 'node:zlib';
import {
  type CountryCode,
  type MetadataJson,
  type PhoneNumber,
  parsePhoneNumberWithError,
} from 'libphonenumber-js/core';
import { PHONE_METADATA_BROTLI_BASE64 } from './phone-metadata.generated.ts';

let metadata: MetadataJson | undefined;

/**
 * libphonenumber-js's full ("max") metadata, unpacked on first use (~2 ms). It ships brotli-compressed
 * because as a plain object literal it was 150 KB of the gate's 357 KB bundle; the data is the same, so
 * validity checks are exactly those of `libphonenumber-js/max`.
 */
export function phoneMetadata(): MetadataJson {
  metadata ??= JSON.parse(brotliDecompressSync(Buffer.from(PHONE_METADATA_BROTLI_BASE64, 'base64')).toString('utf8'));
  return metadata as MetadataJson;
}

/** Parses a number (E.164, or national with a default country); throws when it cannot be parsed. */
export const parsePhone = (text: string, country?: string): PhoneNumber =>
  parsePhoneNumberWithError(text, (country as CountryCode | undefined) ?? {}, phoneMetadata());
