import { GetCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { DomainError } from '#domain/errors.ts';
import { canonicalNotice, type Notice, type NoticeContent, type NoticeSummary, noticeHash } from '#domain/notices.ts';
import { type Db, queryAll } from './db.ts';
import { isWriteConflict, storeFailure, WriteContention } from './errors.ts';
import { forgetPolicy, getGatePolicy, noticeSummaryOf } from './policy.ts';
import { keys } from './table.ts';

/*
 * Notices in the tenant partition: a summary item `NOTICE#<version>` (read with the policy, see
 * shared/store/policy.ts) and the full notice with its texts `TEXT#NOTICE#<version>`, written together once.
 */

/** The version is registered with other content: notices never change (publish a new version). */
export class NoticeImmutable extends DomainError {
  constructor(version: string, hash: string) {
    super(
      'notice_immutable',
      `notice ${version} is already registered with other content (hash ${hash}): a notice never changes, register a new version`,
    );
  }
}

const noticeOf = (item: Record<string, unknown>): Notice => ({
  ...noticeSummaryOf(item),
  texts: item.texts as Record<string, string>,
});

/** One item of the tenant partition, strongly consistent. */
async function tenantItem(db: Db, tenant: string, sk: string, operation: string) {
  try {
    const out = await db.client.send(
      new GetCommand({ TableName: db.table, Key: { PK: keys.tenant(tenant), SK: sk }, ConsistentRead: true }),
    );
    return out.Item;
  } catch (error) {
    throw storeFailure(error, operation);
  }
}

/** One registered notice with its texts, or undefined. */
export async function getNotice(db: Db, tenant: string, version: string): Promise<Notice | undefined> {
  const item = await tenantItem(db, tenant, keys.noticeText(version), 'getNotice');
  return item ? noticeOf(item) : undefined;
}

/** The registered notices among `versions`, with their texts (for exports: a handful of versions). */
export async function getNotices(db: Db, tenant: string, versions: Iterable<string>): Promise<Map<string, Notice>> {
  const found = await Promise.all([...new Set(versions)].map((version) => getNotice(db, tenant, version)));
  return new Map(found.filter((n) => n !== undefined).map((n) => [n.version, n]));
}

/** Every registered notice, without texts, by `effectiveAt` then version. */
export async function listNotices(db: Db, tenant: string): Promise<NoticeSummary[]> {
  try {
    const items = await queryAll(db, {
      KeyConditionExpression: 'PK = :pk AND begins_with(SK, :prefix)',
      ExpressionAttributeValues: { ':pk': keys.tenant(tenant), ':prefix': keys.notice('') },
    });
    return items
      .map(noticeSummaryOf)
      .sort((a, b) => a.effectiveAt.localeCompare(b.effectiveAt) || a.version.localeCompare(b.version));
  } catch (error) {
    throw storeFailure(error, 'listNotices');
  }
}

/**
 * Registers a notice: its summary and its full text in one transaction, on condition the version is new.
 * The same content again is answered with the notice as first registered (`created: false`); other
 * content for a registered version is refused ({@link NoticeImmutable}).
 */
export async function registerNotice(
  db: Db,
  tenant: string,
  content: NoticeContent,
  now: string,
): Promise<{ notice: Notice; created: boolean }> {
  const canonical = canonicalNotice(content);
  const notice: Notice = { ...canonical, hash: noticeHash(canonical), registeredAt: now };
  const { texts: _texts, ...summary } = notice;
  const pk = keys.tenant(tenant);
  try {
    await db.client.send(
      new TransactWriteCommand({
        TransactItems: [
          {
            Put: {
              TableName: db.table,
              Item: { PK: pk, SK: keys.notice(notice.version), ...summary },
              ConditionExpression: 'attribute_not_exists(PK)',
            },
          },
          { Put: { TableName: db.table, Item: { PK: pk, SK: keys.noticeText(notice.version), ...notice } } },
        ],
      }),
    );
    forgetPolicy(tenant);
    return { notice, created: true };
  } catch (error) {
    if (!isWriteConflict(error)) throw storeFailure(error, 'registerNotice');
  }
  const existing = await getNotice(db, tenant, notice.version);
  if (!existing) throw new WriteContention(`notice ${notice.version} is being registered by another request`);
  if (existing.hash !== notice.hash) throw new NoticeImmutable(notice.version, existing.hash);
  return { notice: existing, created: false };
}

/**
 * The registered notice of `version` without its texts, or undefined: from the policy's cached summaries
 * (notices never change), else read (a notice registered since the cache was filled).
 */
export async function findNotice(db: Db, tenant: string, version: string): Promise<NoticeSummary | undefined> {
  const cached = (await getGatePolicy(db, tenant)).notices?.find((n) => n.version === version);
  if (cached) return cached;
  const item = await tenantItem(db, tenant, keys.notice(version), 'findNotice');
  return item ? noticeSummaryOf(item) : undefined;
}

/** What a grant under `version` records of its notice: `noticeHash` when that version is registered. */
export async function noticeOfGrant(db: Db, tenant: string, version: string): Promise<{ noticeHash?: string }> {
  const notice = await findNotice(db, tenant, version);
  return notice ? { noticeHash: notice.hash } : {};
}
