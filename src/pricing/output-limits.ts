/**
 * The most output one answer of a model can have, as its provider publishes it (the model pages
 * of platform.openai.com and docs.anthropic.com, "max output tokens"). The price catalogue has
 * the context window but not this, so the table lives here.
 *
 * A request that sets no output cap is bounded by this number — never by a smaller fixed one —
 * so no answer is cut short by Tollgate unless the funds require it (then the cap is lowered
 * and the response says so). A model missing here is bounded by its context window.
 *
 * Matching is strict on purpose: an id matches an entry exactly or as a dated snapshot / alias of
 * it (`gpt-4o-2024-08-06`, `claude-sonnet-4-5-20250929`, `claude-3-7-sonnet-latest`), never as a
 * family prefix. A newer model (`claude-opus-4-6`) must not inherit an older sibling's smaller
 * limit and have its answers cut; until it is listed it gets its context window, which only
 * reserves more.
 */

/** [model id, max output tokens]. */
const PUBLISHED: ReadonlyArray<readonly [string, number]> = [
  // OpenAI: GPT-5
  ['gpt-5', 128_000],
  ['gpt-5-mini', 128_000],
  ['gpt-5-nano', 128_000],
  ['gpt-5-pro', 272_000],
  ['gpt-5-codex', 128_000],
  ['gpt-5-chat', 16_384],
  // OpenAI: GPT-4.x, GPT-4o
  ['gpt-4.5-preview', 16_384],
  ['gpt-4.1', 32_768],
  ['gpt-4.1-mini', 32_768],
  ['gpt-4.1-nano', 32_768],
  ['gpt-4o', 16_384],
  ['gpt-4o-2024-05-13', 4_096],
  ['gpt-4o-mini', 16_384],
  ['chatgpt-4o', 16_384],
  ['gpt-4o-audio-preview', 16_384],
  ['gpt-4o-mini-audio-preview', 16_384],
  ['gpt-4o-search-preview', 16_384],
  ['gpt-4o-mini-search-preview', 16_384],
  ['gpt-4o-realtime-preview', 4_096],
  ['gpt-4o-mini-realtime-preview', 4_096],
  ['gpt-audio', 16_384],
  ['gpt-audio-mini', 16_384],
  ['gpt-realtime', 32_000],
  ['gpt-realtime-mini', 4_096],
  ['computer-use-preview', 1_024],
  // OpenAI: older GPT-4 and GPT-3.5
  ['gpt-4-turbo', 4_096],
  ['gpt-4-vision-preview', 4_096],
  ['gpt-4', 8_192],
  ['gpt-4-32k', 8_192],
  ['gpt-3.5-turbo', 4_096],
  ['gpt-3.5-turbo-16k', 4_096],
  ['gpt-3.5-turbo-instruct', 4_096],
  // OpenAI: reasoning models
  ['o1', 100_000],
  ['o1-pro', 100_000],
  ['o1-mini', 65_536],
  ['o1-preview', 32_768],
  ['o3', 100_000],
  ['o3-pro', 100_000],
  ['o3-mini', 100_000],
  ['o3-deep-research', 100_000],
  ['o4-mini', 100_000],
  ['o4-mini-deep-research', 100_000],
  ['codex-mini', 100_000],
  // OpenAI: open-weight
  ['gpt-oss-120b', 131_072],
  ['gpt-oss-20b', 131_072],
  // Anthropic
  ['claude-opus-4-5', 64_000],
  ['claude-opus-4-1', 32_000],
  ['claude-opus-4-0', 32_000],
  ['claude-opus-4', 32_000],
  ['claude-sonnet-4-5', 64_000],
  ['claude-sonnet-4-0', 64_000],
  ['claude-sonnet-4', 64_000],
  ['claude-haiku-4-5', 64_000],
  ['claude-3-7-sonnet', 64_000],
  ['claude-3-5-sonnet', 8_192],
  ['claude-3-5-haiku', 8_192],
  ['claude-3-opus', 4_096],
  ['claude-3-sonnet', 4_096],
  ['claude-3-haiku', 4_096],
  ['claude-2', 4_096],
  ['claude-2.0', 4_096],
  ['claude-2.1', 4_096],
]

const BY_ID: ReadonlyMap<string, number> = new Map(PUBLISHED)

/** What may follow a listed id and still name the same model: a date, a version date, `latest`, `preview`. */
const SNAPSHOT_SUFFIX = /-(?:\d{4}-\d{2}-\d{2}|\d{8}|\d{4}(?:-preview)?|latest|preview)$/

/** The published maximum output of `model` (a provider id, optionally `vendor/` prefixed), or undefined. */
export function publishedOutputTokensMax(model: string): number | undefined {
  const id = model.slice(model.lastIndexOf('/') + 1).toLowerCase()
  const exact = BY_ID.get(id)
  if (exact !== undefined) return exact
  const base = id.replace(SNAPSHOT_SUFFIX, '')
  return base === id ? undefined : BY_ID.get(base)
}

/** Every listed id (for tests that check the table against the catalogue). */
export const publishedOutputLimitIds: readonly string[] = PUBLISHED.map(([id]) => id)
