import { describe, expect, it } from 'vitest';
import { checkEndpointUrl, classifyAddress, UnsafeUrlError } from '#shared/net/safe-url.ts';

const strict = { allowInsecure: false };
const insecure = { allowInsecure: true };

describe('address classification', () => {
  it.each([
    ['8.8.8.8', 'public'],
    ['1.1.1.1', 'public'],
    ['2606:4700:4700::1111', 'public'],
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['::1', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['fc00::1', 'private'],
    ['fd12:3456::1', 'private'],
    ['100.64.0.1', 'cgnat'],
    ['100.127.255.254', 'cgnat'],
    ['169.254.1.1', 'link_local'],
    ['fe80::1', 'link_local'],
    ['169.254.169.254', 'metadata'],
    ['fd00:ec2::254', 'metadata'],
    ['224.0.0.1', 'multicast'],
    ['ff02::1', 'multicast'],
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['192.0.2.1', 'reserved'],
    ['2001:db8::1', 'reserved'],
    ['255.255.255.255', 'reserved'],
  ])('%s is %s', (address, expected) => {
    expect(classifyAddress(address)).toBe(expected);
  });

  it('looks through IPv4-mapped, IPv4-compatible and NAT64 IPv6 addresses', () => {
    expect(classifyAddress('::ffff:127.0.0.1')).toBe('loopback');
    expect(classifyAddress('::ffff:7f00:1')).toBe('loopback');
    expect(classifyAddress('::ffff:169.254.169.254')).toBe('metadata');
    expect(classifyAddress('::ffff:a9fe:a9fe')).toBe('metadata');
    expect(classifyAddress('::ffff:10.0.0.1')).toBe('private');
    expect(classifyAddress('64:ff9b::192.168.0.1')).toBe('private');
    expect(classifyAddress('::ffff:8.8.8.8')).toBe('public');
    expect(classifyAddress('[::1]')).toBe('loopback');
  });

  it('calls anything that is not an address reserved', () => {
    expect(classifyAddress('example.org')).toBe('reserved');
    expect(classifyAddress('')).toBe('reserved');
  });
});

describe('endpoint URLs at registration', () => {
  const refused = (url: string, policy = strict) => {
    try {
      checkEndpointUrl(url, policy);
    } catch (error) {
      expect(error).toBeInstanceOf(UnsafeUrlError);
      return (error as UnsafeUrlError).reason;
    }
    return undefined;
  };

  it('takes https to a public name or address', () => {
    expect(refused('https://crm.example.org/hooks/consent')).toBeUndefined();
    expect(refused('https://8.8.8.8:8443/x')).toBeUndefined();
  });

  it('refuses other schemes, credentials, non-public literals and local names', () => {
    expect(refused('http://crm.example.org/x')).toBe('insecure_scheme');
    expect(refused('ftp://crm.example.org/x')).toBe('insecure_scheme');
    expect(refused('not a url')).toBe('invalid_url');
    expect(refused('https://user:secret@crm.example.org/x')).toBe('credentials');
    expect(refused('https://127.0.0.1/x')).toBe('loopback');
    expect(refused('https://[::1]/x')).toBe('loopback');
    expect(refused('https://169.254.169.254/latest/meta-data')).toBe('metadata');
    expect(refused('https://[fd00:ec2::254]/latest')).toBe('metadata');
    expect(refused('https://[::ffff:169.254.169.254]/x')).toBe('metadata');
    expect(refused('https://10.0.0.1/x')).toBe('private');
    expect(refused('https://100.64.1.1/x')).toBe('cgnat');
    expect(refused('https://localhost/x')).toBe('local_name');
    expect(refused('https://metadata.google.internal/x')).toBe('local_name');
    expect(refused('https://intranet/x')).toBe('local_name');
  });

  it('allows plain http to loopback only in insecure mode', () => {
    expect(refused('http://127.0.0.1:8080/x', insecure)).toBeUndefined();
    expect(refused('http://localhost:8080/x', insecure)).toBeUndefined();
    expect(refused('http://10.0.0.1/x', insecure)).toBe('insecure_scheme');
    expect(refused('http://crm.example.org/x', insecure)).toBe('insecure_scheme');
    expect(refused('https://10.0.0.1/x', insecure)).toBe('private');
  });
});
