import type { AuditEvent, AuditRange } from '#domain/audit.ts';
import { type BlockLevel, levelShare, SummaryBuilder } from '#domain/audit-summary.ts';
import type { SubjectState } from '#domain/subject-state.ts';
import { auditItems, daysOf } from './audit-index.ts';
import type { Db } from './db.ts';
import { getStates } from './subjects.ts';

/**
 * Counts per day × type × channel over the range, and the distinct contacts seen. `level` (when given)
 * classifies each contact by block level from its state item, for the dashboard's share.
 */
export async function summarise(
  db: Db,
  tenant: string,
  range: AuditRange,
  level?: (state: SubjectState) => BlockLevel,
) {
  const builder = new SummaryBuilder(daysOf(range));
  const contacts = new Set<string>();
  for await (const item of auditItems(db, tenant, range, {
    projection: 'GSI1SK, at, recordedAt, type, channel, subjectKey',
    pageSize: 1000,
  })) {
    builder.add(item as unknown as AuditEvent);
    contacts.add(item.subjectKey as string);
  }
  const summary = builder.result(range);
  if (!level) return { ...summary, contacts: { total: contacts.size } };
  const levels: BlockLevel[] = [];
  const all = [...contacts];
  for (let i = 0; i < all.length; i += 1000) {
    const states = await getStates(db, tenant, all.slice(i, i + 1000));
    for (const state of states.values()) levels.push(level(state));
  }
  return { ...summary, contacts: { total: contacts.size, blockLevels: levelShare(levels) } };
}
