/**
 * Admin tokens: `TOLLGATE_ADMIN_TOKEN` (an org admin of the default org, never stored) or tokens
 * created through the API, stored hashed with a role (admin | team_admin | viewer). A team_admin
 * is always confined to one team; an admin never is.
 */
import { newId } from '../lib/ids.js'
import { generateKey, hashKey, keyPrefix, sameHash } from './keys.js'
import type { AuthStore, Principal, Role } from './types.js'

export const DEFAULT_ORG = 'default'

/** The id the environment token is known by: it is never stored, so it cannot be listed or revoked. */
export const ENV_TOKEN_ID = 'env'

export class AdminAuth {
  private readonly envTokenHash: string | undefined

  constructor(
    private readonly store: AuthStore,
    envToken: string | undefined,
  ) {
    this.envTokenHash = envToken ? hashKey(envToken) : undefined
  }

  get hasEnvToken(): boolean {
    return this.envTokenHash !== undefined
  }

  /**
   * What a console session opened with the environment token records as its token: `env:` and a
   * fingerprint of this token. A session is live only while the gateway runs with the same token,
   * so unsetting or rotating TOLLGATE_ADMIN_TOKEN ends the sessions opened with the old one.
   */
  get envSessionTokenId(): string | undefined {
    return this.envTokenHash === undefined ? undefined : `${ENV_TOKEN_ID}:${hashKey(this.envTokenHash).slice(0, 16)}`
  }

  async authenticate(token: string | undefined): Promise<Principal | undefined> {
    if (!token) return undefined
    const hash = hashKey(token)
    if (this.envTokenHash !== undefined && sameHash(hash, this.envTokenHash)) {
      return { tokenId: ENV_TOKEN_ID, orgId: DEFAULT_ORG, role: 'admin', teamId: undefined }
    }
    const record = await this.store.findAdminToken(hash)
    if (!record) return undefined
    return { tokenId: record.tokenId, orgId: record.orgId, role: record.role, teamId: record.teamId }
  }

  /** Creates a token and returns it: the only time it is ever visible. */
  async create(input: {
    orgId: string
    role: Role
    teamId: string | undefined
    name: string
    atMs: number
  }): Promise<{ token: string; tokenId: string; prefix: string }> {
    const token = generateKey('admin')
    const tokenId = newId('tok', input.atMs)
    await this.store.createAdminToken({
      tokenId,
      tokenHash: hashKey(token),
      prefix: keyPrefix(token),
      orgId: input.orgId,
      role: input.role,
      teamId: input.teamId,
      name: input.name,
      createdAtMs: input.atMs,
      revokedAtMs: undefined,
    })
    return { token, tokenId, prefix: keyPrefix(token) }
  }

  /** First start without TOLLGATE_ADMIN_TOKEN: creates one admin token, returned to be printed once. */
  async bootstrap(atMs: number): Promise<string | undefined> {
    if (this.envTokenHash !== undefined || (await this.store.countAdminTokens()) > 0) return undefined
    const { token } = await this.create({ orgId: DEFAULT_ORG, role: 'admin', teamId: undefined, name: 'first admin', atMs })
    return token
  }
}
