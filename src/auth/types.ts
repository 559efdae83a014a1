import type { ConsumerGroup } from '../config/types.js'

export type Role = 'admin' | 'team_admin' | 'viewer'

/** Who is calling the admin API: an org, a role, and for team_admin the team it administers. */
export interface Principal {
  readonly tokenId: string
  readonly orgId: string
  readonly role: Role
  readonly teamId: string | undefined
}

export interface AdminTokenRecord extends Principal {
  readonly name: string
  readonly prefix: string
  readonly createdAtMs: number
}

/** A consumer is a configured consumer group or a key created through the API. */
export type Consumer = ConsumerGroup

export interface AuthStore {
  findAdminToken(tokenHash: string): Promise<(AdminTokenRecord & { tokenHash: string }) | undefined>
  createAdminToken(record: AdminTokenRecord & { tokenHash: string }): Promise<void>
  countAdminTokens(): Promise<number>
  listAdminTokens(orgId: string): Promise<AdminTokenRecord[]>
  /** Consumer keys created through the API (config groups are not stored). */
  listConsumerKeys(): Promise<Consumer[]>
  createConsumerKey(consumer: Consumer, prefix: string, atMs: number): Promise<void>
}
