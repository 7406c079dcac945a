// The table's stream read by hand (the local runtime; in the cloud Lambda's event source mapping does this):
// DynamoDB Local implements DynamoDB Streams, so the same dispatcher code runs on the same records.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import {
  DescribeStreamCommand,
  type DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type Shard,
  type _Record as StreamRecord,
} from '@aws-sdk/client-dynamodb-streams';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { Db } from '#store/db.ts';

/** Where each shard was read up to: its last handled sequence number, or `closed` once it is read to its end. */
export type ShardPositions = Record<string, string>;

/** Keeps the positions across runs. */
export interface StreamCheckpoint {
  load(): Promise<ShardPositions>;
  save(positions: ShardPositions): Promise<void>;
}

/** Positions in memory (DATA_DIR=memory: the stream goes with the table). */
export function memoryCheckpoint(): StreamCheckpoint {
  let saved: ShardPositions = {};
  return {
    load: async () => ({ ...saved }),
    save: async (positions) => {
      saved = { ...positions };
    },
  };
}

/** Positions in a file, replaced atomically (write, then rename). */
export function fileCheckpoint(path: string): StreamCheckpoint {
  return {
    load: async () => {
      try {
        return JSON.parse(readFileSync(path, 'utf8')) as ShardPositions;
      } catch {
        return {};
      }
    },
    save: async (positions) => {
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(`${path}.tmp`, JSON.stringify(positions));
      renameSync(`${path}.tmp`, path);
    },
  };
}

type Attribute = Record<string, unknown>;

/**
 * The streams client hands a NULL attribute over as `{}` (its deserializer drops `NULL: true`), which
 * `unmarshall` refuses: put the NULL back, at any depth.
 */
function restoreNulls(value: Attribute): Attribute {
  if (Object.keys(value).length === 0) return { NULL: true };
  if (value.M)
    return {
      M: Object.fromEntries(Object.entries(value.M as Record<string, Attribute>).map(([k, v]) => [k, restoreNulls(v)])),
    };
  if (value.L) return { L: (value.L as Attribute[]).map(restoreNulls) };
  return value;
}

/** The stored item of each insert of a batch of stream records (updates and removals are no change event). */
export const insertedItems = (records: readonly StreamRecord[]): Record<string, unknown>[] =>
  records
    .filter((r) => r.eventName === 'INSERT' && r.dynamodb?.NewImage)
    .map((r) =>
      unmarshall(
        Object.fromEntries(
          Object.entries(r.dynamodb?.NewImage as unknown as Record<string, Attribute>).map(([k, v]) => [
            k,
            restoreNulls(v),
          ]),
        ) as unknown as Parameters<typeof unmarshall>[0],
      ),
    );

const GONE = new Set(['ExpiredIteratorException', 'TrimmedDataAccessException', 'ResourceNotFoundException']);

/**
 * Reads the table's stream shard by shard, parents before children, and hands each batch of inserted items to
 * `handle`; a shard's position is saved only after `handle` resolved for its batch. A `handle` that throws (or a
 * process that dies) leaves the position where it was: the batch is read again. Nothing is lost, a batch may be
 * handled twice (the dispatcher is idempotent).
 */
export class StreamPoller {
  private iterators = new Map<string, string>();
  private streamArn?: string;

  constructor(
    private readonly db: Db,
    private readonly streams: DynamoDBStreamsClient,
    private readonly checkpoint: StreamCheckpoint,
    private readonly handle: (items: Record<string, unknown>[]) => Promise<void>,
    private readonly batchSize = 1000,
  ) {}

  private async shards(): Promise<Shard[]> {
    if (!this.streamArn) {
      const table = await this.db.client.send(new DescribeTableCommand({ TableName: this.db.table }));
      this.streamArn = table.Table?.LatestStreamArn;
      if (!this.streamArn) throw new Error(`table ${this.db.table} has no stream`);
    }
    const shards: Shard[] = [];
    let start: string | undefined;
    do {
      const out = await this.streams.send(
        new DescribeStreamCommand({ StreamArn: this.streamArn, ExclusiveStartShardId: start }),
      );
      shards.push(...(out.StreamDescription?.Shards ?? []));
      start = out.StreamDescription?.LastEvaluatedShardId;
    } while (start);
    return shards;
  }

  private async iterator(shardId: string, position: string | undefined): Promise<string | undefined> {
    const known = this.iterators.get(shardId);
    if (known) return known;
    const out = await this.streams.send(
      new GetShardIteratorCommand({
        StreamArn: this.streamArn,
        ShardId: shardId,
        ...(position
          ? { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', SequenceNumber: position }
          : { ShardIteratorType: 'TRIM_HORIZON' }),
      }),
    );
    return out.ShardIterator;
  }

  /** One pass over every open shard, each read until it has nothing more; returns the records handled. */
  async pollOnce(): Promise<number> {
    const positions = await this.checkpoint.load();
    const shards = await this.shards();
    const ids = new Set(shards.map((s) => s.ShardId));
    let handled = 0;
    // Parents first: a child is read once its parent is closed (or no longer in the stream).
    for (let progress = true; progress; ) {
      progress = false;
      for (const shard of shards) {
        const id = shard.ShardId as string;
        if (positions[id] === 'closed') continue;
        const parent = shard.ParentShardId;
        if (parent && ids.has(parent) && positions[parent] !== 'closed') continue;
        handled += await this.readShard(id, positions);
        if (positions[id] === 'closed') progress = true;
      }
    }
    return handled;
  }

  private async readShard(shardId: string, positions: ShardPositions): Promise<number> {
    let handled = 0;
    try {
      for (let round = 0; round < 100; round++) {
        const iterator = await this.iterator(shardId, positions[shardId]);
        if (!iterator) {
          positions[shardId] = 'closed';
          await this.checkpoint.save(positions);
          return handled;
        }
        const out = await this.streams.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: this.batchSize }));
        const records = out.Records ?? [];
        if (records.length > 0) {
          // Forget the iterator first: if handling fails, the next pass starts again from the saved position.
          this.iterators.delete(shardId);
          await this.handle(insertedItems(records));
          positions[shardId] = records[records.length - 1].dynamodb?.SequenceNumber as string;
          await this.checkpoint.save(positions);
          handled += records.length;
        }
        if (!out.NextShardIterator) {
          this.iterators.delete(shardId);
          positions[shardId] = 'closed';
          await this.checkpoint.save(positions);
          return handled;
        }
        this.iterators.set(shardId, out.NextShardIterator);
        if (records.length === 0) return handled;
      }
    } catch (error) {
      this.iterators.delete(shardId);
      if (!GONE.has((error as Error).name)) throw error;
      if ((error as Error).name === 'ResourceNotFoundException') this.streamArn = undefined;
      // Records past the stream's retention: start again from the oldest kept.
      if ((error as Error).name === 'TrimmedDataAccessException') delete positions[shardId];
    }
    return handled;
  }
}

/**
 * Polls every `everyMs` (unref'd, like the local sealer and retention timers); what it returns stops it: the
 * timer is cleared and a pass in flight is waited for. A failing pass is logged once per error kind.
 */
export function schedulePoller(
  poller: StreamPoller,
  everyMs: number,
  onError: (error: Error) => void,
): { stop: () => Promise<void>; kick: () => void } {
  let running: Promise<void> | undefined;
  let again = false;
  const run = () => {
    if (running) {
      again = true;
      return;
    }
    running = poller
      .pollOnce()
      .then(() => undefined)
      .catch((error) => onError(error as Error))
      .finally(() => {
        running = undefined;
        if (again) {
          again = false;
          run();
        }
      });
  };
  run();
  const timer = setInterval(run, everyMs).unref();
  return {
    kick: run,
    stop: async () => {
      clearInterval(timer);
      again = false;
      await running;
    },
  };
}
