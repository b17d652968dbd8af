import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JsonSplitter, type JsonPiece } from './json-stream.ts';

/** Everything the splitter hands over for `chunks`. */
function split(chunks: string[]): JsonPiece[] {
  const s = new JsonSplitter();
  return chunks.flatMap((c) => s.push(c));
}

/** Texts of every kind a client may send, braces and quotes inside strings included. */
const TEXTS = [
  '{"execute":"qmp_capabilities"}',
  '{"execute":"human-monitor-command","arguments":{"command-line":"info \\"}{[status"},"id":[1,{"a":"]"}]}',
  '[{"execute":"query-status"}]',
  '"a \\\\ string with \\"quotes\\" and { braces"',
  '123',
  'null',
  '{"execute":"query-status","id":"\\u00e9"}',
];

describe('JsonSplitter', () => {
  it('hands over each text whole, however the stream is cut, with or without separators', () => {
    for (const sep of ['', '\n', ' \r\n\t']) {
      // Bare scalars need something after them to end; everything else ends by itself.
      const stream = TEXTS.map((t) => (/^[\d\w]/.test(t) ? `${t}\n` : t)).join(sep);
      const want = TEXTS.map((text) => ({ text }));
      assert.deepEqual(split([stream]), want);
      for (let at = 0; at <= stream.length; at++) assert.deepEqual(split([stream.slice(0, at), stream.slice(at)]), want, `cut at ${at}`);
      assert.deepEqual(split([...stream]), want, 'one character at a time');
      for (const { text } of want) JSON.parse(text);
    }
  });

  it('hands over a top-level string as soon as it closes', () => {
    assert.deepEqual(split(['"str"']), [{ text: '"str"' }]);
    assert.deepEqual(split(['"a\\u00e9"{"execute":"cont"}']), [{ text: '"a\\u00e9"' }, { text: '{"execute":"cont"}' }]);
  });

  it('ends a bare value where the next one begins, and a stray bracket on its own', () => {
    assert.deepEqual(split(['123{"a":1}']), [{ text: '123' }, { text: '{"a":1}' }]);
    assert.deepEqual(split(['}']), [{ text: '}' }]);
    assert.deepEqual(split(['{"a":1}}{"b":2}']), [{ text: '{"a":1}' }, { text: '}' }, { text: '{"b":2}' }]);
  });

  it('refuses a text nested deeper than QEMU allows, and reads on', () => {
    const n = JsonSplitter.MAX_NESTING;
    assert.deepEqual(split(['['.repeat(n) + ']'.repeat(n), '{"x":1}']), [{ text: '['.repeat(n) + ']'.repeat(n) }, { text: '{"x":1}' }]);
    assert.deepEqual(split(['{"a":' + '['.repeat(n) + ']'.repeat(n) + '}', '{"x":1}']), [{ refused: 'JSON nesting depth limit exceeded' }, { text: '{"x":1}' }]);
  });

  it('refuses an overlong text without keeping it, and reads on', () => {
    const s = new JsonSplitter();
    const out: JsonPiece[] = [];
    const block = 'x'.repeat(64 * 1024);
    out.push(...s.push('{"execute":"query-status","id":"'));
    for (let i = 0; i < 40; i++) {
      out.push(...s.push(block));
      assert.ok((s as unknown as { buf: string }).buf.length <= JsonSplitter.MAX + block.length, 'memory stays bounded');
    }
    out.push(...s.push('"}{"execute":"cont"}'));
    assert.deepEqual(out, [{ refused: `a JSON text longer than ${JsonSplitter.MAX} bytes` }, { text: '{"execute":"cont"}' }]);
    // The same for a bare value that never ends.
    const t = new JsonSplitter();
    const bare = [...t.push('1'.repeat(JsonSplitter.MAX + 1)), ...t.push(' {"execute":"stop"}')];
    assert.deepEqual(bare, [{ refused: `a JSON text longer than ${JsonSplitter.MAX} bytes` }, { text: '{"execute":"stop"}' }]);
  });
});
