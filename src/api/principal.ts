/**
 * The admin auth preHandler and the role checks every admin route uses. A caller is either a
 * script with `Authorization: Bearer <admin token>` or the console with its session cookie
 * (src/auth/sessions.ts); a cookie-authenticated write must also carry the CSRF header.
 */
import type { FastifyRequest } from 'fastify'
import { CSRF_HEADER, SESSION_COOKIE, csrfMatches, type AdminAuth, type Principal, type Role, type Sessions } from '../auth/index.js'
import { ForbiddenError, UnauthorizedError } from './errors.js'
import type { RouteDoc } from './openapi.js'

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal
  }
  interface FastifyContextConfig {
    /** The route authenticates by itself (sign-in); the admin hook lets it through. */
    isPublic?: boolean
    /** The route's description for the OpenAPI document (api/openapi.ts). */
    doc?: RouteDoc
  }
}

/** Methods that change nothing; every other method is a write and needs the CSRF header with a cookie. */
const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS'])

export function adminAuthHook(auth: AdminAuth, sessions: Sessions) {
  return async (request: FastifyRequest) => {
    if (request.routeOptions.config.isPublic === true) return
    const token = bearerToken(request)
    if (token !== undefined) {
      const principal = await auth.authenticate(token)
      if (!principal) throw new UnauthorizedError()
      request.principal = principal
      return
    }
    request.principal = await sessionPrincipal(request, sessions)
  }
}

/** The principal of the session cookie; throws 401 without a live session, 403 for a write without the CSRF header. */
export async function sessionPrincipal(request: FastifyRequest, sessions: Sessions): Promise<Principal> {
  const sessionId = sessionIdOf(request)
  const session = await sessions.find(sessionId)
  if (!session || sessionId === undefined) throw new UnauthorizedError()
  if (!SAFE_METHODS.has(request.method)) {
    const presented = request.headers[CSRF_HEADER]
    if (!csrfMatches(sessionId, typeof presented === 'string' ? presented : undefined)) {
      throw new ForbiddenError(`a console write needs the ${CSRF_HEADER} header returned at sign-in`)
    }
  }
  return { tokenId: session.tokenId, orgId: session.orgId, role: session.role, teamId: session.teamId }
}

export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization
  return typeof header === 'string' && header.toLowerCase().startsWith('bearer ') ? header.slice(7).trim() : undefined
}

export function sessionIdOf(request: FastifyRequest): string | undefined {
  const value = request.cookies[SESSION_COOKIE]
  return typeof value === 'string' && value.length > 0 ? value : undefined
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
    throw new ForbiddenError(
      `a team_admin of ${principal.teamId ?? '(no team)'} cannot change ${teamId === undefined ? 'org-wide resources' : `team ${teamId}`}`,
    )
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
