import type { ConsumerGroup } from '../config/types.js'

export type Role = 'admin' | 'team_admin' | 'viewer'

/**
 * Who is calling the admin API: an org, a role, and the team it is confined to. A team_admin
 * always has a team; a viewer may have one (then it reads only that team); an admin never does.
 */
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
  readonly revokedAtMs: number | undefined
}

/** A consumer is a configured consumer group or a key created through the API. */
export type Consumer = ConsumerGroup

/**
 * Whether the key's bound user pays and is budgeted as that user anywhere in the org (a user the
 * config or an admin bound), rather than only within the key's team (a user a team_admin bound).
 */
export function userFromKeyOf(consumer: Pick<Consumer, 'userId' | 'userWithinTeam'>): boolean {
  return consumer.userId !== undefined && consumer.userWithinTeam !== true
}

/** A consumer key created through the API, as listed: never the key itself. */
export interface ConsumerKeyRecord {
  readonly id: string
  readonly prefix: string
  readonly consumer: Consumer
  readonly createdAtMs: number
  readonly revokedAtMs: number | undefined
}

export interface AuthStore {
  /** Active tokens only: a revoked token authenticates nobody. */
  findAdminToken(tokenHash: string): Promise<(AdminTokenRecord & { tokenHash: string }) | undefined>
  createAdminToken(record: AdminTokenRecord & { tokenHash: string }): Promise<void>
  countAdminTokens(): Promise<number>
  listAdminTokens(orgId: string): Promise<AdminTokenRecord[]>
  /** The revoked token, or undefined when the org has no such token. Revoking twice keeps the first time. */
  revokeAdminToken(orgId: string, tokenId: string, atMs: number): Promise<AdminTokenRecord | undefined>
  /** Active consumer keys created through the API, every org (config groups are not stored). */
  listConsumerKeys(): Promise<Consumer[]>
  listConsumerKeyRecords(orgId: string): Promise<ConsumerKeyRecord[]>
  createConsumerKey(id: string, consumer: Consumer, prefix: string, atMs: number): Promise<void>
  /** The revoked key, or undefined when the org has no such key. Revoking twice keeps the first time. */
  revokeConsumerKey(orgId: string, keyId: string, atMs: number): Promise<ConsumerKeyRecord | undefined>
}
