/**
 * Budget domain errors: raised on purpose, with a stable `code` the API maps to HTTP in one
 * place. They know nothing of HTTP. When `lib/errors.ts` lands with the shared
 * `TollgateError` base, these should extend it; the codes stay the same.
 */
export type BudgetErrorCode = 'not_found' | 'invalid_request' | 'conflict'

export class BudgetError extends Error {
  override readonly name = 'BudgetError'
  constructor(
    readonly code: BudgetErrorCode,
    message: string,
    /** The body field at fault (`threshold_actions.2.channels`), so a form can show it in place. */
    readonly field?: string,
  ) {
    super(message)
  }
}

export class BudgetNotFoundError extends BudgetError {
  constructor(readonly budgetId: string) {
    super('not_found', `budget ${budgetId} does not exist`)
  }
}
