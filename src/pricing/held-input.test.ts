import { describe, expect, it } from 'vitest'
import { heldInputOf } from './held-input.js'

describe('heldInputOf: input the request body does not hold', () => {
  it('finds provider-held context on Responses calls', () => {
    expect(heldInputOf('responses', { model: 'gpt-4.1', input: 'and now?', previous_response_id: 'resp_1' })).toEqual({
      field: 'previous_response_id',
      kind: 'provider_context',
      what: 'previous_response_id',
    })
    expect(heldInputOf('responses', { model: 'gpt-4.1', input: 'hi', conversation: 'conv_1' })?.field).toBe('conversation')
    expect(heldInputOf('responses', { model: 'gpt-4.1', input: 'hi', conversation: { id: 'conv_1' } })?.field).toBe('conversation')
    expect(heldInputOf('responses', { model: 'gpt-4.1', prompt: { id: 'pmpt_1', version: '2' } })?.field).toBe('prompt')
    expect(
      heldInputOf('responses', {
        model: 'gpt-4.1',
        input: [
          { role: 'user', content: 'hi' },
          { type: 'item_reference', id: 'msg_1' },
        ],
      }),
    ).toEqual({
      field: 'input[1]',
      kind: 'provider_context',
      what: 'item_reference',
    })
  })

  it('finds server-side tools on Responses calls, and takes an unknown tool kind to be one', () => {
    for (const type of [
      'web_search',
      'web_search_preview',
      'web_search_2025_08_26',
      'file_search',
      'mcp',
      'code_interpreter',
      'image_generation',
      'a_tool_from_next_year',
    ]) {
      expect(heldInputOf('responses', { input: 'hi', tools: [{ type: 'function', name: 'f' }, { type }] })).toEqual({
        field: 'tools[1]',
        kind: 'server_tool',
        what: type,
      })
    }
  })

  it('finds Anthropic server tools and MCP servers, not client tools', () => {
    for (const type of ['web_search_20250305', 'web_fetch_20250910', 'code_execution_20250825']) {
      expect(
        heldInputOf('messages', {
          messages: [],
          tools: [
            { name: 'mine', input_schema: {} },
            { type, name: 'x' },
          ],
        }),
      ).toEqual({
        field: 'tools[1]',
        kind: 'server_tool',
        what: type,
      })
    }
    expect(heldInputOf('messages', { messages: [], mcp_servers: [{ type: 'url', url: 'https://mcp.example', name: 'x' }] })?.field).toBe('mcp_servers')
    expect(heldInputOf('messages', { messages: [], mcp_servers: [] })).toBeUndefined()
  })

  it("finds chat's web_search_options", () => {
    expect(heldInputOf('chat_completions', { messages: [], web_search_options: {} })?.field).toBe('web_search_options')
  })

  it('finds files given by reference on every API, naming the part', () => {
    const chat = (part: unknown) => ({
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: [{ type: 'text', text: 'Summarise' }, part] },
      ],
    })
    expect(heldInputOf('chat_completions', chat({ type: 'file', file: { file_id: 'file-abc' } }))).toEqual({
      field: 'messages[1].content[1]',
      kind: 'file_reference',
      what: 'file_id',
    })
    const responses = (part: unknown) => ({ input: [{ role: 'user', content: [{ type: 'input_text', text: 'Summarise' }, part] }] })
    expect(heldInputOf('responses', responses({ type: 'input_file', file_url: 'https://example.com/report.pdf' }))).toEqual({
      field: 'input[0].content[1]',
      kind: 'file_reference',
      what: 'file_url',
    })
    expect(heldInputOf('responses', responses({ type: 'input_file', file_id: 'file-abc' }))?.what).toBe('file_id')
    // A function call's output can carry files too.
    expect(
      heldInputOf('responses', { input: [{ type: 'function_call_output', call_id: 'c', output: [{ type: 'input_file', file_id: 'file-abc' }] }] })?.field,
    ).toBe('input[0].output[0]')
    const messages = (part: unknown) => ({ messages: [{ role: 'user', content: [part, { type: 'text', text: 'Summarise' }] }] })
    expect(heldInputOf('messages', messages({ type: 'document', source: { type: 'url', url: 'https://example.com/report.pdf' } }))).toEqual({
      field: 'messages[0].content[0]',
      kind: 'file_reference',
      what: 'url',
    })
    expect(heldInputOf('messages', messages({ type: 'document', source: { type: 'file', file_id: 'file_011' } }))?.what).toBe('file')
    // A document returned in a tool result is read the same.
    expect(
      heldInputOf('messages', messages({ type: 'tool_result', tool_use_id: 't', content: [{ type: 'document', source: { type: 'url', url: 'https://x' } }] }))
        ?.field,
    ).toBe('messages[0].content[0].content[0]')
  })

  it('takes a file part without its data to be a reference (fails safe)', () => {
    expect(heldInputOf('chat_completions', { messages: [{ role: 'user', content: [{ type: 'file', file: {} }] }] })?.kind).toBe('file_reference')
    expect(heldInputOf('responses', { input: [{ role: 'user', content: [{ type: 'input_file' }] }] })?.kind).toBe('file_reference')
    expect(heldInputOf('messages', { messages: [{ role: 'user', content: [{ type: 'document', source: { type: 'a_source_from_next_year' } }] }] })?.what).toBe(
      'a_source_from_next_year',
    )
  })

  it('leaves files sent inline, images by URL, and tool arguments that merely say "file" alone', () => {
    const pdf = 'JVBERi0xLjQK'
    expect(
      heldInputOf('chat_completions', {
        messages: [
          {
            role: 'user',
            content: [
              { type: 'file', file: { file_data: `data:application/pdf;base64,${pdf}`, filename: 'a.pdf' } },
              { type: 'image_url', image_url: { url: 'https://example.com/cat.png' } },
            ],
          },
        ],
      }),
    ).toBeUndefined()
    expect(
      heldInputOf('responses', {
        input: [
          {
            role: 'user',
            content: [
              { type: 'input_file', file_data: `data:application/pdf;base64,${pdf}`, filename: 'a.pdf' },
              { type: 'input_image', image_url: 'https://example.com/cat.png' },
            ],
          },
        ],
      }),
    ).toBeUndefined()
    expect(
      heldInputOf('messages', {
        messages: [
          {
            role: 'user',
            content: [
              { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: pdf } },
              { type: 'document', source: { type: 'text', media_type: 'text/plain', data: 'notes' } },
              { type: 'image', source: { type: 'url', url: 'https://example.com/cat.png' } },
            ],
          },
          { role: 'assistant', content: [{ type: 'tool_use', id: 't', name: 'save', input: { type: 'file', file_id: 'mine' } }] },
        ],
      }),
    ).toBeUndefined()
  })

  it('leaves ordinary calls alone: input in the body, client-executed tools, nulls', () => {
    expect(heldInputOf('responses', { model: 'gpt-4.1', input: 'hi', max_output_tokens: 100 })).toBeUndefined()
    expect(heldInputOf('responses', { input: 'hi', previous_response_id: null, conversation: null, prompt: null })).toBeUndefined()
    expect(
      heldInputOf('responses', {
        input: [{ type: 'function_call_output', call_id: 'c', output: '42' }],
        tools: [{ type: 'function', name: 'f' }, { type: 'custom', name: 'g' }, { type: 'computer_use_preview' }, { type: 'local_shell' }],
      }),
    ).toBeUndefined()
    expect(
      heldInputOf('messages', {
        messages: [{ role: 'user', content: 'hi' }],
        tools: [
          { name: 'mine', input_schema: {} },
          { type: 'custom', name: 'c' },
          { type: 'bash_20250124', name: 'bash' },
          { type: 'text_editor_20250728' },
          { type: 'computer_20250124' },
          { type: 'memory_20250818' },
        ],
      }),
    ).toBeUndefined()
    expect(
      heldInputOf('chat_completions', { messages: [{ role: 'user', content: 'hi' }], tools: [{ type: 'function', function: { name: 'f' } }] }),
    ).toBeUndefined()
    expect(heldInputOf('embeddings', { input: 'hi', previous_response_id: 'resp_1' })).toBeUndefined()
  })
})
