import { execFileSync } from 'node:child_process';
import { createSign, generateKeyPairSync, randomBytes, sign as signData } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getExpectedTwilioSignature } from 'twilio/lib/webhooks/webhooks.js';

/** A provider payload fixture (test/fixtures/providers/, sources in SOURCES.md), parsed: a fresh copy each time. */
export function fixture<T = any>(name: string): T {
  return JSON.parse(readFileSync(new URL(`../fixtures/providers/${name}`, import.meta.url), 'utf8'));
}

/** A Twilio SID of the given prefix, unique per call (32 hex digits, as Twilio's). */
export const twilioSid = (prefix: 'SM' | 'MG' | 'AC') => `${prefix}${randomBytes(16).toString('hex')}`;

/** A test Auth Token (Twilio's are 32 hex digits). */
export const twilioAuthToken = () => randomBytes(16).toString('hex');

/** Twilio's call: the form body and its `X-Twilio-Signature` over `url` + the params, by Twilio's own library. */
export function twilioCall(authToken: string, url: string, params: Record<string, string>) {
  return {
    raw: new URLSearchParams(params).toString(),
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'x-twilio-signature': getExpectedTwilioSignature(authToken, url, params),
    },
  };
}

/** A SendGrid-style signing key: EC P-256; the public half as SendGrid's console shows it (base64 DER). */
export function sendGridKey() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return {
    privateKey,
    publicKey: (publicKey.export({ format: 'der', type: 'spki' }) as Buffer).toString('base64'),
  };
}

/** SendGrid's signed delivery: ECDSA-SHA256 (DER, base64) over timestamp + raw body, in its two headers. */
export function sendGridCall(
  privateKey: ReturnType<typeof sendGridKey>['privateKey'],
  raw: string,
  timestamp?: number,
) {
  const ts = String(timestamp ?? Math.floor(Date.now() / 1000));
  const signature = signData('sha256', Buffer.from(ts + raw), privateKey).toString('base64');
  return {
    raw,
    headers: {
      'content-type': 'application/json',
      'x-twilio-email-event-webhook-signature': signature,
      'x-twilio-email-event-webhook-timestamp': ts,
    },
  };
}

/**
 * A local stand-in for SNS's certificate host: an https server with a self-signed certificate (made with
 * the openssl CLI) that serves that certificate at `/cert.pem`, counts its GETs (a subscription
 * confirmation is a GET of `/confirm?...`), and signs SNS messages with the certificate's key, as SNS does.
 * The test process trusts the certificate through the default https agent (`https.globalAgent.options.ca`),
 * the agent both sns-validator and the confirmation use: TLS verification stays on.
 */
export async function startSnsHost() {
  const dir = mkdtempSync(join(tmpdir(), 'sns-host-'));
  const keyFile = join(dir, 'key.pem');
  const certFile = join(dir, 'cert.pem');
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1'].concat([
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ]),
    { stdio: 'ignore' },
  );
  const key = readFileSync(keyFile, 'utf8');
  const cert = readFileSync(certFile, 'utf8');
  rmSync(dir, { recursive: true, force: true });
  const hits: string[] = [];
  const server = https.createServer({ key, cert }, (req, res) => {
    hits.push(req.url ?? '');
    if (req.url === '/cert.pem') {
      res.writeHead(200, { 'content-type': 'application/x-pem-file' }).end(cert);
    } else if (req.url?.startsWith('/confirm')) {
      res.writeHead(200, { 'content-type': 'text/xml' }).end('<ConfirmSubscriptionResponse/>');
    } else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  const previousCa = https.globalAgent.options.ca;
  https.globalAgent.options.ca = cert;
  const origin = `https://127.0.0.1:${port}`;
  return {
    origin,
    /** The same server under another host name: not allowed by a pattern pinned to 127.0.0.1. */
    otherOrigin: `https://localhost:${port}`,
    /** The pattern that pins this host (its port included, as sns-validator tests host:port). */
    pattern: `^127\\.0\\.0\\.1:${port}$`,
    hits,
    /** Signs an SNS envelope as SNS does (SignatureVersion 1: SHA1withRSA, 2: SHA256withRSA). */
    sign(envelope: Record<string, string>, version: '1' | '2' = '2', certUrl = `${origin}/cert.pem`) {
      const keysOf =
        envelope.Type === 'Notification'
          ? ['Message', 'MessageId', 'Subject', 'Timestamp', 'TopicArn', 'Type']
          : ['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn', 'Type'];
      const signer = createSign(version === '1' ? 'RSA-SHA1' : 'RSA-SHA256');
      for (const k of keysOf) if (k in envelope) signer.update(`${k}\n${envelope[k]}\n`);
      return { ...envelope, SignatureVersion: version, SigningCertURL: certUrl, Signature: signer.sign(key, 'base64') };
    },
    close: () =>
      new Promise<void>((resolve) => {
        https.globalAgent.options.ca = previousCa;
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
