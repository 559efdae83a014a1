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
 *   `web_search_options`;
 * - files given by reference, which the provider fetches and reads as input — a PDF can be
 *   hundreds of pages: chat `file` parts with a `file_id`, Responses `input_file` with a `file_id`
 *   or `file_url`, Anthropic `document` blocks whose source is a `url` or a `file`. A file sent
 *   inline (base64) is counted from its size (`media()` in estimate.ts) and is not held.
 *
 * Images by reference (an `image_url` with an http(s) URL, an Anthropic image `url` or `file`
 * source) are not held: the provider resizes every image before reading it, so its tokens depend
 * on the model's resizing, not on how the image was sent, and the image allowance covers both.
 *
 * The detection fails safe: a tool kind it does not know is taken to run on the provider, and a
 * file part that does not carry its data inline is taken to be a reference. It is a few property
 * checks per call plus one walk of the message objects (no text is read), and nothing for
 * embeddings.
 */
import type { Endpoint } from '../providers/types.js'

/** Why the body does not bound a call's input, and which field says so (for logs and refusals). */
export interface HeldInput {
  /** The field, as a path into the body: `previous_response_id`, `tools[1]`, `input[3]`, `messages[1].content[0]`. */
  readonly field: string
  readonly kind: 'provider_context' | 'server_tool' | 'file_reference'
  /** What it is, for messages: `previous_response_id`, `web_search_preview`, `item_reference`, `file_id`, `url`. */
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
      if (present(body['web_search_options'])) return { field: 'web_search_options', kind: 'server_tool', what: 'web_search_options' }
      return fileReferenceIn(body['messages'], 'messages')
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
  return fileReferenceIn(input, 'input') ?? fileReferenceIn(body['instructions'], 'instructions')
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
  return fileReferenceIn(body['messages'], 'messages')
}

/** Anthropic document sources whose content is in the body: a base64 PDF, plain text, content blocks. */
const INLINE_DOCUMENT_SOURCES: ReadonlySet<string> = new Set(['base64', 'text', 'content'])

/** Keys under which content parts nest: a message's or tool result's `content`, a Responses tool output's `output`. */
const PART_KEYS = ['content', 'output'] as const

/**
 * The first file part under `value` (messages or input items, and the tool results nested in them)
 * that the provider must fetch. The part types are those `media()` in estimate.ts gives the file
 * allowance, on every endpoint as there. Only `content` and `output` are descended into: a
 * tool call's arguments are the caller's own JSON, where a `type: "file"` is no file. The body is
 * unvalidated; its depth is capped on reading (body.ts), so the recursion is bounded.
 */
function fileReferenceIn(value: unknown, path: string): HeldInput | undefined {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i += 1) {
      const found = fileReferenceIn(value[i], `${path}[${i}]`)
      if (found !== undefined) return found
    }
    return undefined
  }
  if (typeof value !== 'object' || value === null) return undefined
  const part = value as Record<string, unknown>
  const what = referenceOf(part)
  if (what !== undefined) return { field: path, kind: 'file_reference', what }
  for (const key of PART_KEYS) {
    const found = fileReferenceIn(part[key], `${path}.${key}`)
    if (found !== undefined) return found
  }
  return undefined
}

/** How a file part names a file the body does not hold (`file_id`, `file_url`, `url`…); undefined when it is no file part or carries its data. */
function referenceOf(part: Record<string, unknown>): string | undefined {
  switch (part['type']) {
    case 'file': {
      // chat: { file: { file_id } } or { file: { file_data, filename } }
      const file = typeof part['file'] === 'object' && part['file'] !== null ? (part['file'] as Record<string, unknown>) : {}
      if (present(file['file_id'])) return 'file_id'
      return typeof file['file_data'] === 'string' && file['file_data'] !== '' ? undefined : 'file'
    }
    case 'input_file': {
      // responses: { file_id } or { file_url } or { file_data, filename }
      if (present(part['file_url'])) return 'file_url'
      if (present(part['file_id'])) return 'file_id'
      return typeof part['file_data'] === 'string' && part['file_data'] !== '' ? undefined : 'input_file'
    }
    case 'document': {
      // anthropic: source { type: base64 | text | content | url | file }
      const source = typeOf(part['source'])
      if (source !== undefined && INLINE_DOCUMENT_SOURCES.has(source)) return undefined
      return source ?? 'document'
    }
    default:
      return undefined
  }
}
