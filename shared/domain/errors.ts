/**
 * Domain answers that refuse a change. Plain errors with a stable `code`: the domain knows nothing of
 * HTTP; `toProblem` (HTTP layer) decides how each is shown to a caller.
 */
export class DomainError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** A grant that only the person's own, fresh act may make (after a withdrawal, objection or erasure). */
export class FreshConsentRequired extends DomainError {
  constructor(detail: string) {
    super('fresh_consent_required', detail);
  }
}

/** The subject's data was erased: only the tombstone is kept, nothing new is recorded about them. */
export class SubjectErased extends DomainError {
  constructor(erasedAt: string | undefined) {
    super('subject_erased', `this subject's data was erased on ${erasedAt}: no new signal is kept about them`);
  }
}

/** A person's grant dated at or before the withdrawal, objection or erasure that closed the scope. */
export class StaleConsent extends DomainError {
  constructor(detail: string) {
    super('stale_consent', detail);
  }
}

/** An erasure request for the subject is being carried out: nothing new is granted meanwhile. */
export class ErasurePending extends DomainError {
  constructor(requestId: string) {
    super(
      'erasure_pending',
      `an erasure request (${requestId}) for this subject is pending: no consent can be recorded`,
    );
  }
}

/** A grant that would give the subject more channel × purpose scopes than its state item may hold. */
export class TooManyScopes extends DomainError {
  constructor(limit: number, scope: string) {
    super(
      'too_many_scopes',
      `${scope} would be this subject's scope number ${limit + 1}: a subject holds consents for at most ${limit} channel × purpose scopes (withdrawals are always recorded)`,
    );
  }
}

/** A subject already linked to another person: linking it elsewhere needs `merge: true`. */
export class AlreadyLinked extends DomainError {
  constructor(detail: string) {
    super('already_linked', detail);
  }
}

/** A link that would give one person more identifiers than a person may have. */
export class TooManyLinks extends DomainError {
  constructor(limit: number, count: number) {
    super(
      'too_many_links',
      `the link would give one person ${count} identifiers: a person has at most ${limit} (unlink some first)`,
    );
  }
}
