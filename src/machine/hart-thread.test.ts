/**
 * A hart's thread joins a machine whose hart 0 is already running on the machine's thread
 * (hart-threads.ts starts the workers and runs hart 0 at once). Building its Hart objects must
 * not write hart 0's state: a flush of hart 0's TLB racing hart 0's own TLB fill once left an
 * entry with a valid tag and the flush's addend, and hart 0's translated code then read outside
 * the memory ("memory access out of bounds", seen under host load with test/guest/smp/smc.c).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { S } from '../cpu/hart.ts';
import { threadHarts } from './hart-thread.ts';
import { Machine } from './machine.ts';

test("a hart's thread builds its harts without writing the others' TLBs or slots", () => {
  const m = new Machine({ ramSize: 1 << 20, harts: 2, console: () => {} });
  const h0 = m.harts[0]!;
  const h1 = m.harts[1]!;
  // Hart 0 as it runs: TLB entries of its own, its TLB generation moved on.
  for (let i = 0; i < 64; i++) h0.tlb[i] = 0x1000 * i;
  h0.s[S.tlbGen] = 7;
  h1.tlb[0] = 0x2000; // hart 1's own TLB is its thread's to rebuild
  const before = h0.tlb.slice();
  const all = threadHarts({ memory: m.memory, ramSize: 1 << 20, harts: 2, id: 1, engine: 'jit' }, m.bus, { time: () => 0 });
  assert.equal(all.length, 2);
  assert.deepEqual(h0.tlb.slice(0, 64), before.subarray(0, 64), "hart 0's TLB is as hart 0 left it");
  assert.equal(h0.s[S.tlbGen], 7, "hart 0's TLB generation is its own");
  assert.notEqual(h1.tlb[0], 0x2000, "hart 1's thread rebuilt its own hart's TLB");
  assert.equal(all[1]!.id, 1);
});
