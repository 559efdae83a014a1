/**
 * Console sign-in (docs/console.md): `POST /v1/session {token}` exchanges an admin token for an
 * httpOnly, SameSite=Strict session cookie and a CSRF value; `GET /v1/session` says who is
 * signed in; `DELETE /v1/session` revokes the session server-side and clears the cookie. The
 * token itself is never stored by the browser nor echoed back.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { z } from 'zod'
import { SESSION_COOKIE, csrfTokenOf, type Principal } from '../auth/index.js'
import type { AdminDeps } from './index.js'
import { parseBody } from './contract/parse.js'
import { principalOf, sessionIdOf } from './principal.js'
import { UnauthorizedError } from './errors.js'
import type { SessionView } from './contract/wire.js'
import { doc } from './openapi.js'

/** Admin tokens are `tg_admin_` + 43 characters; anything far longer is not one. */
const TOKEN_LENGTH_MAX = 200

const SignInBody = z.strictObject({ token: z.string().min(1, 'expected the admin token').max(TOKEN_LENGTH_MAX) })

export async function sessionRoutes(app: FastifyInstance, deps: AdminDeps): Promise<void> {
  app.post(
    '/v1/session',
    {
      config: {
        isPublic: true,
        ...doc({
          summary: 'Sign in to the console: exchange an admin token for a session cookie',
          description:
            'Sets an httpOnly, SameSite=Strict session cookie and returns the `csrf_token` every cookie-authenticated write must send as `x-tollgate-csrf`.',
          tag: 'session',
          auth: 'none',
          body: SignInBody,
          responses: { 201: '`role`, `team_id`, `org_id`, `expires_at`, `csrf_token`; the cookie in `Set-Cookie`.' },
        }).config,
      },
    },
    async (request, reply) => {
      const body = parseBody(SignInBody, request.body)
      const principal = await deps.adminAuth.authenticate(body.token)
      if (!principal) throw new UnauthorizedError()
      const opened = await deps.sessions.open(principal)
      reply.setCookie(SESSION_COOKIE, opened.sessionId, {
        httpOnly: true,
        sameSite: 'strict',
        path: '/',
        secure: isHttps(request),
        maxAge: Math.floor((opened.record.expiresAtMs - deps.clock.nowMs()) / 1000),
      })
      return reply.code(201).send(sessionView(principal, opened.record.expiresAtMs, opened.csrfToken))
    },
  )

  app.get(
    '/v1/session',
    doc({
      summary: 'Who is signed in',
      tag: 'session',
      auth: 'session',
      responses: { 200: '`role`, `team_id`, `org_id`, `expires_at`, `csrf_token` (null for a Bearer caller).' },
    }),
    async (request) => {
      const principal = principalOf(request)
      const sessionId = sessionIdOf(request)
      const session = sessionId === undefined ? undefined : await deps.sessions.find(sessionId)
      // A Bearer caller has no session: it sees its role, and no expiry or CSRF value.
      if (!session || sessionId === undefined) return sessionView(principal, undefined, undefined)
      return sessionView(principal, session.expiresAtMs, csrfTokenOf(sessionId))
    },
  )

  app.delete(
    '/v1/session',
    doc({ summary: 'Sign out: revoke the session and clear its cookie', tag: 'session', auth: 'session', responses: { 204: 'Signed out.' } }),
    async (request, reply) => {
      principalOf(request)
      const sessionId = sessionIdOf(request)
      if (sessionId !== undefined) await deps.sessions.revoke(sessionId)
      clearSessionCookie(request, reply)
      return reply.code(204).send()
    },
  )
}

function sessionView(principal: Principal, expiresAtMs: number | undefined, csrfToken: string | undefined): SessionView {
  return {
    role: principal.role,
    team_id: principal.teamId ?? null,
    org_id: principal.orgId,
    expires_at: expiresAtMs === undefined ? null : new Date(expiresAtMs).toISOString(),
    csrf_token: csrfToken ?? null,
  }
}

function clearSessionCookie(request: FastifyRequest, reply: FastifyReply): void {
  reply.clearCookie(SESSION_COOKIE, { httpOnly: true, sameSite: 'strict', path: '/', secure: isHttps(request) })
}

/** Secure cookies when the console is reached over https, directly or through a TLS-terminating proxy. */
function isHttps(request: FastifyRequest): boolean {
  return request.protocol === 'https' || request.headers['x-forwarded-proto'] === 'https'
}
