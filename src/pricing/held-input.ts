/**
 * Input the request body does not hold. The prompt estimate counts the body; some calls make the
 * provider add input it keeps or fetches itself, which no count of the body can bound:
 *
 * - provider-held context: Responses `previous_response_id`, `conversation`, a stored `prompt`,
 *   and `item_reference` input items;
 * - server-side tools, whose results come back as input tokens: Responses tools other than the
 *   client-executed kinds (web search, file search, MCP, code interpreter, image generation, and
 *   any kind not known to run on the client), Anthropic typed tools other than the client-executed
 *   ones (web search, web fetch, code execution…) and `mcp_servers`, and chat's
 *   `web_search_options`.
 *
 * The detection fails safe: a tool kind it does not know is taken to run on the provider. It is a
 * few property checks per call, and nothing for embeddings.
 */
import type { Endpoint } from '../providers/types.js'

/** Why the body does not bound a call's input, and which field says so (for logs and refusals). */
export interface HeldInput {
  /** The field, as a path into the body: `previous_response_id`, `tools[1]`, `input[3]`. */
  readonly field: string
  readonly kind: 'provider_context' | 'server_tool'
  /** What it is, for messages: `previous_response_id`, `web_search_preview`, `item_reference`. */
  readonly what: string
}

/** Responses tools the client runs (their results arrive in the next request's body). */
const RESPONSES_CLIENT_TOOLS: ReadonlySet<string> = new Set([
  'function',
  'custom',
  'computer_use_preview',
  'computer_use',
  'local_shell',
  'shell',
  'apply_patch',
])

/** Anthropic-defined tools the client runs: bash_*, text_editor_*, computer_*, memory_*; untyped and `custom` tools are the caller's own. */
const ANTHROPIC_CLIENT_TOOL = /^(bash|text_editor|computer|memory)_/

function present(value: unknown): boolean {
  return value !== undefined && value !== null && value !== ''
}

function typeOf(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined
  const type = (value as Record<string, unknown>)['type']
  return typeof type === 'string' ? type : undefined
}

/** The first part of `body` that makes the provider add input the body does not hold; undefined for an ordinary call. */
export function heldInputOf(endpoint: Endpoint, body: Record<string, unknown>): HeldInput | undefined {
  switch (endpoint) {
    case 'responses':
      return heldResponsesInput(body)
    case 'messages':
      return heldMessagesInput(body)
    case 'chat_completions':
      return present(body['web_search_options']) ? { field: 'web_search_options', kind: 'server_tool', what: 'web_search_options' } : undefined
    case 'embeddings':
      return undefined
  }
}

function heldResponsesInput(body: Record<string, unknown>): HeldInput | undefined {
  for (const field of ['previous_response_id', 'conversation', 'prompt'] as const) {
    if (present(body[field])) return { field, kind: 'provider_context', what: field }
  }
  const tools = body['tools']
  if (Array.isArray(tools)) {
    for (let i = 0; i < tools.length; i += 1) {
      const type = typeOf(tools[i])
      if (type !== undefined && !RESPONSES_CLIENT_TOOLS.has(type)) return { field: `tools[${i}]`, kind: 'server_tool', what: type }
    }
  }
  const input = body['input']
  if (Array.isArray(input)) {
    for (let i = 0; i < input.length; i += 1) {
      if (typeOf(input[i]) === 'item_reference') return { field: `input[${i}]`, kind: 'provider_context', what: 'item_reference' }
    }
  }
  return undefined
}

function heldMessagesInput(body: Record<string, unknown>): HeldInput | undefined {
  const tools = body['tools']
  if (Array.isArray(tools)) {
    for (let i = 0; i < tools.length; i += 1) {
      const type = typeOf(tools[i])
      if (type !== undefined && type !== 'custom' && !ANTHROPIC_CLIENT_TOOL.test(type)) return { field: `tools[${i}]`, kind: 'server_tool', what: type }
    }
  }
  const servers = body['mcp_servers']
  if (Array.isArray(servers) && servers.length > 0) return { field: 'mcp_servers', kind: 'server_tool', what: 'mcp_servers' }
  return undefined
}
