/**
 * Assertions for programmer errors. A failed assertion means the process state is
 * suspect: it surfaces as a 500 `internal_error`, never as a 4xx a client could provoke.
 */
export class AssertionFailed extends Error {
  override readonly name = 'AssertionFailed'
}

export function assert(condition: unknown, message = 'assertion failed'): asserts condition {
  if (!condition) throw new AssertionFailed(message)
}
