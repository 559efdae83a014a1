/**
 * A wallet named in a body: exactly one of `team_id`, `user_id`, `org_id`, or `scope:
 * "team:marketing"`; with `user_id`, a `team_id` may name the team the user (and its wallet)
 * belongs to.
 */
import { z } from 'zod'
import type { WalletRef } from '../ledger/index.js'
import { printable } from '../lib/text.js'

const id = printable(z.string().trim().min(1).max(200))

export const walletScopeFields = {
  team_id: id.optional(),
  user_id: id.optional(),
  org_id: id.optional(),
  scope: printable(z.string().regex(/^(team|user|org):.+$/, 'expected "team:ID", "user:ID" or "org:ID"')).optional(),
}

type ScopeBody = { team_id?: string | undefined; user_id?: string | undefined; org_id?: string | undefined; scope?: string | undefined }

export function walletRefOf(body: ScopeBody, ctx: z.RefinementCtx): WalletRef | undefined {
  const userOfTeam = body.user_id !== undefined && body.team_id !== undefined
  const given = (['team_id', 'user_id', 'org_id', 'scope'] as const).filter((k) => body[k] !== undefined && !(userOfTeam && k === 'team_id'))
  if (given.length !== 1) {
    ctx.addIssue({
      code: 'custom',
      path: ['team_id'],
      message: `give exactly one of team_id, user_id (optionally with team_id), org_id, scope (got ${given.length ? given.join(', ') : 'none'})`,
    })
    return undefined
  }
  if (body.user_id !== undefined) return { scopeKind: 'user', scopeId: body.user_id }
  if (body.team_id !== undefined) return { scopeKind: 'team', scopeId: body.team_id }
  if (body.org_id !== undefined) return { scopeKind: 'org', scopeId: body.org_id }
  const [kind, ...rest] = body.scope!.split(':')
  return { scopeKind: kind as WalletRef['scopeKind'], scopeId: rest.join(':') }
}

/** The team a user wallet is named with (`user_id` + `team_id`); undefined otherwise. */
export function userTeamOf(body: ScopeBody): string | undefined {
  return body.user_id !== undefined ? body.team_id : undefined
}
