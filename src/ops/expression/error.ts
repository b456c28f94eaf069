/**
 * The one error type of the expression language. Every message ends with `at <position>`,
 * a 0-based UTF-16 offset into the string as passed in.
 */

export class ExpressionError extends Error {
  constructor(
    message: string,
    readonly position: number,
  ) {
    super(message);
    this.name = 'ExpressionError';
  }
}

export function fail(message: string, pos: number): never {
  throw new ExpressionError(`${message} at ${pos}`, pos);
}

/** Quotes user text for an error message, shortened so hostile input can't bloat it. */
export function quote(text: string): string {
  return `'${text.length > 32 ? `${text.slice(0, 32)}…` : text}'`;
}
