import { lookup as dnsLookup } from 'node:dns';
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';

/**
 * Outgoing calls to URLs a tenant chose (change-event endpoints), safe against server-side request forgery
 * (docs/events.md, "Security of endpoints"): `https` only, to public addresses; the name is resolved when
 * the call is made (not only when the URL was registered) and every address it resolves to must be public;
 * the connection goes to the address that was checked (no gap for DNS rebinding); a timeout, a cap on the
 * response read, and redirects never followed. Plain `http`, to loopback only, when insecure endpoints are
 * allowed (`ALLOW_INSECURE_ENDPOINTS=true`, local development and tests).
 */

/** Why an address is not public. */
export type AddressClass =
  | 'public'
  | 'loopback'
  | 'private'
  | 'link_local'
  | 'cgnat'
  | 'multicast'
  | 'metadata'
  | 'unspecified'
  | 'reserved';

const ranges: [AddressClass, 'ipv4' | 'ipv6', string, number][] = [
  ['metadata', 'ipv4', '169.254.169.254', 32],
  ['metadata', 'ipv6', 'fd00:ec2::254', 128],
  ['unspecified', 'ipv4', '0.0.0.0', 8],
  ['private', 'ipv4', '10.0.0.0', 8],
  ['cgnat', 'ipv4', '100.64.0.0', 10],
  ['loopback', 'ipv4', '127.0.0.0', 8],
  ['link_local', 'ipv4', '169.254.0.0', 16],
  ['private', 'ipv4', '172.16.0.0', 12],
  ['reserved', 'ipv4', '192.0.0.0', 24],
  ['reserved', 'ipv4', '192.0.2.0', 24],
  ['reserved', 'ipv4', '192.88.99.0', 24],
  ['private', 'ipv4', '192.168.0.0', 16],
  ['reserved', 'ipv4', '198.18.0.0', 15],
  ['reserved', 'ipv4', '198.51.100.0', 24],
  ['reserved', 'ipv4', '203.0.113.0', 24],
  ['multicast', 'ipv4', '224.0.0.0', 4],
  ['reserved', 'ipv4', '240.0.0.0', 4],
  ['unspecified', 'ipv6', '::', 128],
  ['loopback', 'ipv6', '::1', 128],
  ['reserved', 'ipv6', '100::', 64],
  ['reserved', 'ipv6', '2001::', 23],
  ['reserved', 'ipv6', '2001:db8::', 32],
  // 6to4 embeds an IPv4 address a relay would reach: refused as a whole.
  ['reserved', 'ipv6', '2002::', 16],
  ['private', 'ipv6', 'fc00::', 7],
  ['link_local', 'ipv6', 'fe80::', 10],
  ['reserved', 'ipv6', 'fec0::', 10],
  ['multicast', 'ipv6', 'ff00::', 8],
];

const lists = new Map<AddressClass, BlockList>();
for (const [cls, family, net, prefix] of ranges) {
  let list = lists.get(cls);
  if (!list) {
    list = new BlockList();
    lists.set(cls, list);
  }
  list.addSubnet(net, prefix, family);
}
// Most specific first: the metadata address is also link-local / private.
const ORDER: AddressClass[] = [
  'metadata',
  'unspecified',
  'loopback',
  'link_local',
  'cgnat',
  'private',
  'multicast',
  'reserved',
];

/** The IPv4 address an IPv6 address carries (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible, NAT64 `64:ff9b::/96`). */
function embeddedIpv4(address: string): string | undefined {
  const lower = address.toLowerCase();
  const dotted = /^(?:::ffff:(?:0:)?|::|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (dotted) return dotted[1];
  const hex = /^(?:::ffff:(?:0:)?|::|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(lower);
  if (!hex) return undefined;
  const hi = Number.parseInt(hex[1], 16);
  const lo = Number.parseInt(hex[2], 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** What kind of address this is; `public` only for an address anyone on the internet may be sent to. */
export function classifyAddress(address: string): AddressClass {
  const bare = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  const family = isIP(bare);
  if (family === 0) return 'reserved';
  if (family === 6) {
    const v4 = embeddedIpv4(bare);
    if (v4) return classifyAddress(v4);
  }
  const type = family === 4 ? 'ipv4' : 'ipv6';
  for (const cls of ORDER) if (lists.get(cls)?.check(bare, type)) return cls;
  return 'public';
}

/** A URL or address the service refuses to call. */
export class UnsafeUrlError extends Error {
  constructor(
    message: string,
    readonly reason: string,
  ) {
    super(message);
    this.name = 'UnsafeUrlError';
  }
}

export interface UrlPolicy {
  /** Plain http, to loopback only (`ALLOW_INSECURE_ENDPOINTS=true`). */
  allowInsecure: boolean;
}

/** The endpoint policy of this process (`ALLOW_INSECURE_ENDPOINTS`). */
export const urlPolicyFromEnv = (env: NodeJS.ProcessEnv = process.env): UrlPolicy => ({
  allowInsecure: env.ALLOW_INSECURE_ENDPOINTS === 'true',
});

const LOCAL_NAMES = /(^|\.)(localhost|local|internal|localdomain|home\.arpa)$/i;

/**
 * Refuses, without resolving anything, the URLs that can never be a public https endpoint: another scheme,
 * credentials in the URL, an address literal that is not public, a local-only name (at registration; at send
 * time, `names: false`, the addresses the name resolves to decide). Returns the parsed URL.
 */
export function checkEndpointUrl(raw: string, policy: UrlPolicy, options: { names?: boolean } = {}): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UnsafeUrlError('url is not an absolute URL', 'invalid_url');
  }
  if (url.username || url.password) throw new UnsafeUrlError('url must not carry credentials', 'credentials');
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const literal = isIP(host) !== 0 ? classifyAddress(host) : undefined;
  const loopbackHost = literal === 'loopback' || host.toLowerCase() === 'localhost';
  if (url.protocol === 'http:') {
    if (!(policy.allowInsecure && loopbackHost))
      throw new UnsafeUrlError(
        policy.allowInsecure ? 'plain http is allowed to loopback only' : 'url must use https',
        'insecure_scheme',
      );
    return url;
  }
  if (url.protocol !== 'https:') throw new UnsafeUrlError('url must use https', 'insecure_scheme');
  if (policy.allowInsecure && loopbackHost) return url;
  if (literal && literal !== 'public')
    throw new UnsafeUrlError(`url points at a ${literal.replace('_', '-')} address`, literal);
  if (options.names !== false && !literal && (LOCAL_NAMES.test(host) || !host.includes('.')))
    throw new UnsafeUrlError('url must name a public host', 'local_name');
  return url;
}

/** Checks a resolved address for a call: public, or loopback when insecure endpoints are allowed. */
function allowedAddress(address: string, policy: UrlPolicy): AddressClass | undefined {
  const cls = classifyAddress(address);
  if (cls === 'public' || (cls === 'loopback' && policy.allowInsecure)) return undefined;
  return cls;
}

/**
 * A `lookup` for the connection itself: resolves the name, refuses it when ANY address it resolves to is not
 * allowed, and hands the socket exactly the checked addresses — the one resolution the connection uses.
 */
function checkedLookup(policy: UrlPolicy): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { all: true, family: options.family, hints: options.hints }, (error, addresses) => {
      if (error) return callback(error, '', 0);
      const list = addresses as { address: string; family: number }[];
      const bad = list.find((a) => allowedAddress(a.address, policy));
      if (!bad || list.length === 0) {
        if (list.length === 0) return callback(new UnsafeUrlError('the name resolves to no address', 'dns'), '', 0);
        if (options.all) return (callback as unknown as (e: null, a: typeof list) => void)(null, list);
        return callback(null, list[0].address, list[0].family);
      }
      const cls = allowedAddress(bad.address, policy) as AddressClass;
      callback(new UnsafeUrlError(`the name resolves to a ${cls.replace('_', '-')} address`, cls), '', 0);
    });
  };
}

export interface SafePostOptions {
  headers: Record<string, string>;
  body: string;
  policy: UrlPolicy;
  /** Whole call: connect, send, response headers (default 10 s). */
  timeoutMs?: number;
  /** Response bytes read at most; the rest is dropped (default 64 KiB). */
  maxResponseBytes?: number;
}

/** How a call went: an HTTP status, or an error (refused, timed out, unreachable). */
export interface SafePostResult {
  httpStatus: number | null;
  error: string | null;
}

/** POSTs a JSON body to a tenant's URL under the rules above; never throws, never follows a redirect. */
export function safePost(raw: string, options: SafePostOptions): Promise<SafePostResult> {
  let url: URL;
  try {
    url = checkEndpointUrl(raw, options.policy, { names: false });
  } catch (error) {
    return Promise.resolve({ httpStatus: null, error: `refused: ${(error as Error).message}` });
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (isIP(host) !== 0) {
    // An address literal is connected to without a lookup: check it here.
    const cls = allowedAddress(host, options.policy);
    if (cls) return Promise.resolve({ httpStatus: null, error: `refused: url points at a ${cls} address` });
  }
  const timeoutMs = options.timeoutMs ?? 10_000;
  const cap = options.maxResponseBytes ?? 64 * 1024;
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  const requestOptions: RequestOptions = {
    method: 'POST',
    headers: { ...options.headers, 'content-length': String(Buffer.byteLength(options.body)) },
    lookup: checkedLookup(options.policy),
    // One connection per call: a pooled socket would skip the lookup (and its check) of this call.
    agent: false,
    timeout: timeoutMs,
  };
  return new Promise((resolve) => {
    let settled = false;
    const done = (result: SafePostResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      resolve(result);
    };
    const req = request(url, requestOptions, (res: IncomingMessage) => {
      const status = res.statusCode ?? 0;
      let read = 0;
      res.on('data', (chunk: Buffer) => {
        read += chunk.length;
        if (read > cap) res.destroy();
      });
      const finish = () =>
        done({
          httpStatus: status,
          error: status >= 300 && status < 400 ? 'redirect not followed' : null,
        });
      res.on('end', finish);
      res.on('close', finish);
      res.on('error', finish);
    });
    const deadline = setTimeout(() => {
      req.destroy();
      done({ httpStatus: null, error: `timed out after ${timeoutMs} ms` });
    }, timeoutMs);
    req.on('timeout', () => {
      req.destroy();
      done({ httpStatus: null, error: `timed out after ${timeoutMs} ms` });
    });
    req.on('error', (error) => {
      const unsafe = error instanceof UnsafeUrlError || (error as { reason?: string }).reason;
      done({
        httpStatus: null,
        error: unsafe
          ? `refused: ${error.message}`
          : `${(error as NodeJS.ErrnoException).code ?? error.name}: ${error.message}`.slice(0, 200),
      });
    });
    req.end(options.body);
  });
}
