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

/** Writes need admin, or team_admin acting on its own team. */
export function requireWrite(principal: Principal, teamId?: string): void {
  if (!WRITERS.includes(principal.role)) throw new ForbiddenError(`role ${principal.role} is read-only`)
  if (principal.role === 'team_admin' && teamId !== principal.teamId) {
    throw new ForbiddenError(`a team_admin of ${principal.teamId ?? '(no team)'} cannot change ${teamId === undefined ? 'org-wide resources' : `team ${teamId}`}`)
  }
}

export function requireAdmin(principal: Principal): void {
  if (principal.role !== 'admin') throw new ForbiddenError('only an org admin can do this')
}

/** A team_admin reads only its own team; others read the whole org. */
export function teamFilter(principal: Principal): string | undefined {
  return principal.role === 'team_admin' ? principal.teamId : undefined
}
