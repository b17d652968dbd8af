/**
 * Sanity of the instruction table's bit patterns: every row decodes its own pattern whatever
 * its operand bits, no two 32-bit rows share a word, and compressed rows overlap only where the
 * table lists a special case before the general row it carves out of.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decode16, decode32, lookup32 } from '../../src/isa/decode.ts';
import { CINSNS } from '../../src/isa/rvc.ts';
import { INSNS } from '../../src/isa/table.ts';
import { rng } from './gen.ts';

test('every 32-bit row decodes its own pattern, whatever its operand bits', () => {
  const r = rng(1);
  for (const d of INSNS) {
    assert.equal(d.match & ~d.mask, 0, `${d.name}: match has bits outside its mask`);
    for (let i = 0; i < 256; i++) {
      const operands = i === 0 ? 0 : i === 1 ? ~0 : r();
      const w = ((operands & ~d.mask) | d.match) >>> 0;
      assert.equal(lookup32(w), d, `${d.name}: ${w.toString(16)} decodes as ${lookup32(w)?.name}`);
      assert.equal(decode32(w)?.def, d);
    }
  }
});

test('no two 32-bit rows match one word', () => {
  for (let i = 0; i < INSNS.length; i++) {
    for (let j = i + 1; j < INSNS.length; j++) {
      const a = INSNS[i]!;
      const b = INSNS[j]!;
      const overlap = ((a.match ^ b.match) & a.mask & b.mask) === 0;
      assert.ok(!overlap, `${a.name} and ${b.name} both match ${(a.match | b.match).toString(16)}`);
    }
  }
});

// Special cases listed before the general row whose encodings they take (Unprivileged 26.5):
// C.ADDI16SP is C.LUI with rd = sp, C.JR is C.MV with rs2 = 0, C.EBREAK and C.JALR are C.ADD
// with rs2 = 0 (and rs1 = 0).
const CARVED: [string, string][] = [
  ['c.addi16sp', 'c.lui'], ['c.jr', 'c.mv'], ['c.ebreak', 'c.jalr'], ['c.ebreak', 'c.add'], ['c.jalr', 'c.add'],
];

test('compressed rows overlap only where a special case precedes its general row', () => {
  const seen = new Set<string>();
  for (let h = 0; h < 0x10000; h++) {
    if ((h & 3) === 3) continue;
    const rows = CINSNS.filter((c) => (h & c.mask) === c.match);
    for (let i = 0; i < rows.length; i++) {
      for (let j = i + 1; j < rows.length; j++) {
        const pair = `${rows[i]!.name} ${rows[j]!.name}`;
        assert.ok(CARVED.some(([a, b]) => `${a} ${b}` === pair), `${h.toString(16)} matches ${pair}`);
        seen.add(pair);
      }
    }
    const d = decode16(h);
    if (d) assert.equal(d.cdef, rows[0], `${h.toString(16)} decodes as ${d.cdef?.name}, first match ${rows[0]?.name}`);
  }
  assert.deepEqual([...seen].sort(), CARVED.map(([a, b]) => `${a} ${b}`).sort(), 'every listed overlap exists');
});

test('every compressed row decodes its own pattern, except its reserved encodings', () => {
  const r = rng(2);
  for (const c of CINSNS) {
    assert.equal(c.match & ~c.mask, 0, `${c.name}: match has bits outside its mask`);
    let decoded = 0;
    for (let i = 0; i < 256; i++) {
      const h = ((r() & ~c.mask) | c.match) & 0xffff;
      const d = decode16(h);
      // A row carved out of this one may take the word; otherwise it is this row or reserved.
      if (d && !CARVED.some(([a, b]) => b === c.name && d.cdef!.name === a)) {
        assert.equal(d.cdef, c, `${c.name}: ${h.toString(16)} decodes as ${d.cdef?.name}`);
        decoded++;
      }
    }
    assert.ok(decoded > 0, `${c.name}: no word decodes to it`);
  }
});
