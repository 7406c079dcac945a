import { Logger } from '@aws-lambda-powertools/logger';

/**
 * The one logger. Structured JSON; carries subjectKeys, codes and ids, never phone numbers, e-mail
 * addresses, evidence text or IP addresses.
 */
export const logger = new Logger({ serviceName: 'consent-gate' });
