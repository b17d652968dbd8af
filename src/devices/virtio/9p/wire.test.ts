/**
 * The 9P wire writer and reader: every field kind written across the writer's growth (from
 * a buffer of one header up to a megabyte) reads back as written, and the reader refuses a
 * field that runs past the message.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HEADER, WireError, WireReader, WireWriter } from './wire.ts';

describe('9p wire', () => {
  it('writes every field kind correctly as the message grows past its first buffer', () => {
    for (const initial of [0, 7, 16, 256]) {
      const w = new WireWriter(initial);
      const expect: Array<[string, unknown]> = [];
      for (let i = 0; w.length < 1 << 20; i++) {
        switch (i % 6) {
          case 0: w.u8(i & 0xff); expect.push(['u8', i & 0xff]); break;
          case 1: w.u16(i & 0xffff); expect.push(['u16', i & 0xffff]); break;
          case 2: w.u32(i * 2654435761); expect.push(['u32', (i * 2654435761) >>> 0]); break;
          case 3: w.u64(BigInt(i) << 40n); expect.push(['u64', BigInt(i) << 40n]); break;
          case 4: {
            const s = `name-${i}-${'é'.repeat(i % 50)}`;
            w.str(s);
            expect.push(['str', s]);
            break;
          }
          default: {
            const b = Uint8Array.from({ length: i % 700 }, (_, k) => (k * 7 + i) & 0xff);
            w.bytes(b);
            expect.push(['bytes', b]);
          }
        }
      }
      const msg = w.finish(117, 0x1234);
      const r = new WireReader(msg);
      assert.equal(r.u32(), msg.length);
      assert.equal(r.u8(), 117);
      assert.equal(r.u16(), 0x1234);
      for (const [kind, v] of expect) {
        if (kind === 'bytes') assert.deepEqual(r.bytes((v as Uint8Array).length), v);
        else assert.equal((r as unknown as Record<string, () => unknown>)[kind]!(), v, `${kind} (initial buffer ${initial})`);
      }
      assert.throws(() => r.u8(), WireError, 'nothing after the last field');
    }
  });

  it('refuses a field that runs past the message, and a string longer than what is left', () => {
    const msg = new WireWriter().u16(10).u8(1).finish(100, 1);
    const r = new WireReader(msg, HEADER);
    assert.throws(() => r.str(), WireError);
    assert.throws(() => new WireReader(msg, HEADER).u64(), WireError);
  });
});
