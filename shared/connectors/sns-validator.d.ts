/** Types of `sns-validator` (AWS's SNS message validator), which ships none. */
declare module 'sns-validator' {
  export default class MessageValidator {
    constructor(hostPattern?: RegExp, encoding?: string);
    validate(
      message: Record<string, unknown> | string,
      callback: (error: Error | null, message?: unknown) => void,
    ): void;
  }
}
