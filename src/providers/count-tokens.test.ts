/** Delivered text of a cut stream: counted in time linear in its length, never below the tokenizer. */
import { countTokens } from 'gpt-tokenizer'
import { describe, expect, it } from 'vitest'
import { DeliveredText } from './count-tokens.js'

describe('DeliveredText', () => {
  it('counts 150 KB of one letter, delivered in small deltas, by its bytes', () => {
    // gpt-tokenizer on the whole run: about 10 s (the cut-stream settle used to block that long).
    const delivered = new DeliveredText()
    for (let i = 0; i < 15_000; i++) delivered.add('aaaaaaaaaa')
    expect(delivered.countTokens()).toBe(150_000)
  })

  it('counts ordinary text once, as the tokenizer does on the whole of it', () => {
    const deltas = ['The reservation', ' is settled', ' to what', ' was delivered', ': "<|endoftext|>" is text.']
    const delivered = new DeliveredText()
    for (const delta of deltas) delivered.add(delta)
    expect(delivered.countTokens()).toBe(countTokens(deltas.join(''), { disallowedSpecial: new Set() }))
    const scaled = new DeliveredText(200)
    for (const delta of deltas) scaled.add(delta)
    expect(scaled.countTokens()).toBe(2 * delivered.countTokens())
  })

  it('answers with the count made in slices, and counts again once more text arrives', async () => {
    const delivered = new DeliveredText()
    const sentence = 'Usage is settled after the call returns. '
    for (let i = 0; i < 2_000; i++) delivered.add(sentence)
    await delivered.countInSlices()
    expect(delivered.countTokens()).toBe(countTokens(sentence.repeat(2_000)))
    delivered.add('And one more.')
    expect(delivered.countTokens()).toBe(countTokens(`${sentence.repeat(2_000)}And one more.`))
  })
})
