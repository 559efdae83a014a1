/** Domain errors of the ledger (no HTTP status here: api/http-errors.ts maps them). */

/** An allocation the ledger refuses: the wallet's total would pass the money bound, or a user wallet of another team. */
export class AllocationRefused extends Error {
  constructor(
    readonly reason: 'amount_limit' | 'team_mismatch',
    message: string,
  ) {
    super(message)
    this.name = 'AllocationRefused'
  }
}
