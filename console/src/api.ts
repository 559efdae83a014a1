/**
 * The console's one way to the API: same-origin fetch with the session cookie, the CSRF value on
 * every write, and the API's error envelope turned into an `ApiError` whose `issues` the forms
 * show on their fields. The CSRF value lives in memory only (never localStorage); a reload asks
 * `GET /v1/session` for it again.
 */
import type { ApiIssue } from '../../src/api/contract/wire'

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly issues: readonly ApiIssue[] = [],
  ) {
    super(message)
  }

  /** The message of the issue at `path` (or under it: `scope` matches `scope.id`). */
  issueAt(path: string): string | undefined {
    return this.issues.find((issue) => issue.path === path || issue.path.startsWith(`${path}.`))?.message
  }
}

let csrfToken: string | null = null

export function setCsrfToken(token: string | null): void {
  csrfToken = token
}

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'

export async function api<T>(method: Method, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' }
  if (body !== undefined) headers['content-type'] = 'application/json'
  if (method !== 'GET' && csrfToken !== null) headers['x-tollgate-csrf'] = csrfToken
  const response = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  if (response.status === 204) return undefined as T
  const text = await response.text()
  const json: unknown = text.length > 0 ? safeJson(text) : undefined
  if (!response.ok) {
    const error = (json as { error?: { code?: string; message?: string; issues?: ApiIssue[] } } | undefined)?.error
    throw new ApiError(response.status, error?.code ?? 'http_error', error?.message ?? `HTTP ${response.status}`, error?.issues ?? [])
  }
  return json as T
}

export const get = <T>(path: string) => api<T>('GET', path)

/** A query string from the defined, non-empty values. */
export function query(params: Record<string, string | number | undefined | null>): string {
  const search = new URLSearchParams()
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(key, String(value))
  }
  const text = search.toString()
  return text.length > 0 ? `?${text}` : ''
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}
