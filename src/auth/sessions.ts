/**
 * Console sessions: an admin token is exchanged once for a random session id that lives in an
 * httpOnly cookie, so the browser never holds the token itself. The store keeps only the sha256
 * of the id, with the principal it stands for and a fixed expiry, so every gateway process on the
 * same store accepts it and a stolen database cannot be replayed as cookies.
 *
 * CSRF: the cookie is SameSite=Strict, and every cookie-authenticated write must also carry
 * `x-tollgate-csrf`, a value derived from the session id (HMAC-free: sha256 over a fixed label
 * and the id). A page on another site can neither read the cookie nor compute the value, and a
 * custom header cannot be sent cross-site without a CORS preflight the gateway never grants.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { Clock } from '../lib/clock.js'
import { assert } from '../lib/assert.js'
import { ENV_TOKEN_ID } from './admin-auth.js'
import { hashKey } from './keys.js'
import type { Principal } from './types.js'

/** How long a console sign-in lasts; the user signs in again after it. */
export const SESSION_TTL_MS = 12 * 3_600_000
export const SESSION_COOKIE = 'tollgate_session'
export const CSRF_HEADER = 'x-tollgate-csrf'
/** Session ids are 32 random bytes, base64url: 43 characters. Longer cookies are not looked up. */
const SESSION_ID_LENGTH_MAX = 64

export interface SessionRecord extends Principal {
  readonly idHash: string
  readonly createdAtMs: number
  readonly expiresAtMs: number
}

/** The port each store implements (SQLite, PostgreSQL). */
export interface SessionStore {
  createSession(record: SessionRecord): Promise<void>
  /** The session if it exists, is not revoked and has not expired at `nowMs`. */
  findSession(idHash: string, nowMs: number): Promise<SessionRecord | undefined>
  /** Revokes it; false when there was no live session with that hash. */
  revokeSession(idHash: string, atMs: number): Promise<boolean>
  /** Deletes sessions that expired before `beforeMs` (housekeeping on sign-in). */
  deleteExpiredSessions(beforeMs: number): Promise<number>
}

export interface OpenedSession {
  readonly sessionId: string
  readonly csrfToken: string
  readonly record: SessionRecord
}

export class Sessions {
  /**
   * @param envSessionTokenId what a session of the environment token is stored under (AdminAuth's
   *   `envSessionTokenId`): undefined when the gateway runs without one, so no such session is live.
   */
  constructor(
    private readonly store: SessionStore,
    private readonly clock: Clock,
    private readonly envSessionTokenId: string | undefined,
    private readonly ttlMs: number = SESSION_TTL_MS,
  ) {}

  async open(principal: Principal): Promise<OpenedSession> {
    const nowMs = this.clock.nowMs()
    await this.store.deleteExpiredSessions(nowMs)
    const sessionId = randomBytes(32).toString('base64url')
    const tokenId = principal.tokenId === ENV_TOKEN_ID ? this.envSessionTokenId : principal.tokenId
    assert(tokenId !== undefined, 'an environment-token session without the environment token')
    const record: SessionRecord = {
      idHash: hashKey(sessionId),
      tokenId,
      orgId: principal.orgId,
      role: principal.role,
      teamId: principal.teamId,
      createdAtMs: nowMs,
      expiresAtMs: nowMs + this.ttlMs,
    }
    await this.store.createSession(record)
    return { sessionId, csrfToken: csrfTokenOf(sessionId), record: { ...record, tokenId: principal.tokenId } }
  }

  async find(sessionId: string | undefined): Promise<SessionRecord | undefined> {
    if (sessionId === undefined || sessionId.length === 0 || sessionId.length > SESSION_ID_LENGTH_MAX) return undefined
    const record = await this.store.findSession(hashKey(sessionId), this.clock.nowMs())
    if (record === undefined || !record.tokenId.startsWith(ENV_TOKEN_ID)) return record
    // Opened with the environment token: live only while the gateway runs with that same token.
    return record.tokenId === this.envSessionTokenId ? { ...record, tokenId: ENV_TOKEN_ID } : undefined
  }

  async revoke(sessionId: string): Promise<boolean> {
    return this.store.revokeSession(hashKey(sessionId), this.clock.nowMs())
  }
}

/** The value a cookie-authenticated write must send in `x-tollgate-csrf`. */
export function csrfTokenOf(sessionId: string): string {
  return createHash('sha256').update(`tollgate-csrf:${sessionId}`).digest('base64url')
}

export function csrfMatches(sessionId: string, presented: string | undefined): boolean {
  if (presented === undefined) return false
  const expected = Buffer.from(csrfTokenOf(sessionId))
  const given = Buffer.from(presented)
  return expected.length === given.length && timingSafeEqual(expected, given)
}
