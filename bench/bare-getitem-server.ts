// The floor of an HTTP gate check, with the same HTTP stack shape as `npm start`: a Node HTTP server in its
// own process that reads a JSON body, makes one strongly consistent GetItem of a subject's state item with
// the service's own DynamoDB client, and answers JSON. No authorizer, no HMAC, no policy, no decision.
import { createServer } from 'node:http';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { createDocumentClient } from '../shared/store/client.ts';
import { keys } from '../shared/store/table.ts';

const table = process.env.TABLE_NAME ?? 'consent-gate';
const tenant = process.env.DEV_TENANT ?? 'bench';
const client = createDocumentClient({ tableName: table, endpoint: process.env.DYNAMODB_ENDPOINT });

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', async () => {
    if (req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
      return;
    }
    try {
      const { subjectKey } = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { subjectKey: string };
      const out = await client.send(
        new GetCommand({
          TableName: table,
          Key: { PK: keys.subject(tenant, subjectKey), SK: keys.state },
          ConsistentRead: true,
        }),
      );
      const body = JSON.stringify({ found: Boolean(out.Item), version: out.Item?.n ?? out.Item?.version ?? null });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    } catch (error) {
      res.writeHead(500);
      res.end(String((error as Error).name));
    }
  });
});
server.listen(Number(process.env.PORT), process.env.HOST ?? '127.0.0.1');
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => server.close(() => process.exit(0)));
