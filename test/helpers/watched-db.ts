import { TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { type Db, getDb } from '#store/db.ts';

/**
 * The test store as the code under test sees it: every command goes to DynamoDB Local, `before` runs first
 * and may throw (a fault the real store cannot produce on demand) or write (a concurrent writer). Counts
 * the TransactWriteItems sent (`seen.transactions`, 1 for the first when `before` runs).
 */
export function watchedDb(before?: (command: unknown, transactions: number) => Promise<void> | void) {
  const real = getDb();
  const seen = { transactions: 0 };
  const client = Object.create(real.client, {
    send: {
      value: async (command: unknown) => {
        if (command instanceof TransactWriteCommand) seen.transactions++;
        await before?.(command, seen.transactions);
        return real.client.send(command as never);
      },
    },
  });
  return { db: { client, table: real.table } as Db, seen };
}
