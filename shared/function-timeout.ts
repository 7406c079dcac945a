/**
 * A function's timeout, as the stack gives it: `infra/constructs/consent-function.ts` sets every function's
 * Lambda timeout and this variable from the same value. What depends on "the request is surely dead by now"
 * (the idempotency lease) reads it here.
 */
export const FUNCTION_TIMEOUT_ENV = 'FUNCTION_TIMEOUT_SECONDS';

/** The functions' timeout when their grant names none (`FUNCTION_GRANTS` in infra/stack.ts). */
export const DEFAULT_FUNCTION_TIMEOUT_SECONDS = 10;

/** This function's timeout in seconds (`FUNCTION_TIMEOUT_SECONDS`, else the default). */
export function functionTimeoutSeconds(): number {
  const value = Number(process.env[FUNCTION_TIMEOUT_ENV]);
  return Number.isInteger(value) && value > 0 ? value : DEFAULT_FUNCTION_TIMEOUT_SECONDS;
}
