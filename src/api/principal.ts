/** The admin-token preHandler and the role checks every admin route uses. */
import type { FastifyRequest } from 'fastify'
import type { AdminAuth, Principal, Role } from '../auth/index.js'
import { ForbiddenError, UnauthorizedError } from './errors.js'

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal
  }
}

export function adminAuthHook(auth: AdminAuth) {
  return async (request: FastifyRequest) => {
    const header = request.headers.authorization
    const token = typeof header === 'string' && header.toLowerCase().startsWith('bearer ') ? header.slice(7).trim() : undefined
    const principal = await auth.authenticate(token)
    if (!principal) throw new UnauthorizedError()
    request.principal = principal
  }
}

export function principalOf(request: FastifyRequest): Principal {
  const principal = request.principal
  if (!principal) throw new UnauthorizedError()
  return principal
}

const WRITERS: readonly Role[] = ['admin', 'team_admin']

/**
 * Writes need admin, or team_admin acting on its own team. `teamId` is the team the written
 * resource belongs to (undefined: org-wide). A write that moves a resource (PATCH) is checked
 * against the old and the new state: call this for each.
 */
export function requireWrite(principal: Principal, teamId?: string): void {
  if (!WRITERS.includes(principal.role)) throw new ForbiddenError(`role ${principal.role} is read-only`)
  if (principal.role === 'team_admin' && teamId !== principal.teamId) {
    throw new ForbiddenError(`a team_admin of ${principal.teamId ?? '(no team)'} cannot change ${teamId === undefined ? 'org-wide resources' : `team ${teamId}`}`)
  }
}

export function requireAdmin(principal: Principal): void {
  if (principal.role !== 'admin') throw new ForbiddenError('only an org admin can do this')
}

/** The team a principal is confined to when reading: a team_admin's (or a team viewer's) own; undefined for the whole org. */
export function teamFilter(principal: Principal): string | undefined {
  return principal.role === 'admin' ? undefined : principal.teamId
}

/** True when a resource of `teamId` (undefined: org-wide) is visible to the principal. */
export function canRead(principal: Principal, teamId: string | undefined): boolean {
  const team = teamFilter(principal)
  return team === undefined || teamId === team
}
