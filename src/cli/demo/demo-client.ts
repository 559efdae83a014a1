/**
 * How the demo talks to the gateway it started: over HTTP like any client — admin calls with the
 * admin token, proxied calls with a consumer key and attribution headers.
 */
import type { DemoCall } from './scenario.js'

export interface CallResult {
  readonly status: number
  readonly headers: Headers
}

export class DemoClient {
  /** Aborted when the demo stops, so a held request does not keep the gateway from closing. */
  private readonly inFlight = new AbortController()

  constructor(
    readonly baseUrl: string,
    private readonly adminToken: string,
    private readonly consumerKeys: ReadonlyMap<string, string>,
  ) {}

  /** An admin API call; throws with the API's message on a non-2xx answer. */
  async admin<T>(method: 'GET' | 'POST' | 'PATCH' | 'PUT', path: string, body?: unknown): Promise<T> {
    const response = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    const text = await response.text()
    if (!response.ok) throw new Error(`demo: ${method} ${path} answered ${response.status}: ${text.slice(0, 300)}`)
    return (text.length > 0 ? JSON.parse(text) : undefined) as T
  }

  /** Ends every proxied call still waiting (a held request): its promise rejects. */
  abort(): void {
    this.inFlight.abort()
  }

  /** One chat completion as the call's consumer, attributed to its user, endpoint and prompt version. */
  async chat(call: DemoCall): Promise<CallResult> {
    const key = this.consumerKeys.get(call.consumer)
    if (key === undefined) throw new Error(`demo: no key for consumer ${call.consumer}`)
    const response = await fetch(`${this.baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${key}`,
        'content-type': 'application/json',
        'x-tollgate-user': call.user,
        'x-tollgate-endpoint': call.endpoint,
        'x-tollgate-prompt-version': call.promptVersion,
        ...(call.agent === undefined ? {} : { 'x-tollgate-agent': call.agent }),
      },
      body: JSON.stringify({ model: call.model, max_tokens: 120, messages: [{ role: 'user', content: promptOf(call) }] }),
      signal: this.inFlight.signal,
    })
    await response.arrayBuffer()
    return { status: response.status, headers: response.headers }
  }
}

/**
 * A ticket dump, as a notebook or a support agent sends. Text like this the tokenizer counts at
 * about 2.8 characters a token, more than the mock bills (one token per 4 characters), so a call
 * reserved from the tokenizer's count settles below its reservation, as it would with a real
 * provider, which counts with the same tokenizer. Plain prose (5.5 characters a token) made the
 * demo's wallet-dry calls settle above what they reserved, something a real install never shows.
 */
const SENTENCE = 'ticket #4821: owner=j.doe, eta=2026-12-04; status=open; tags=[billing,eu-west]. '

function promptOf(call: DemoCall): string {
  const repeats = Math.max(1, Math.ceil(call.promptChars / SENTENCE.length))
  return `[${call.endpoint} ${call.promptVersion}] ${SENTENCE.repeat(repeats)}`.slice(0, Math.max(call.promptChars, 40))
}

/** Runs `tasks` with at most `parallel` in flight; resolves with their results in order. */
export async function inParallel<T>(tasks: ReadonlyArray<() => Promise<T>>, parallel: number): Promise<T[]> {
  const results: T[] = new Array(tasks.length)
  let next = 0
  const worker = async () => {
    while (next < tasks.length) {
      const index = next++
      results[index] = await tasks[index]!()
    }
  }
  await Promise.all(Array.from({ length: Math.min(parallel, tasks.length) }, worker))
  return results
}
