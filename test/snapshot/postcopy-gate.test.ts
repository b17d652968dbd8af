/**
 * Post-copy's missing pages on the target, deterministically and in-process, on both engines:
 * test/guest/migrate/touch.c touches pages by loads (hot enough to be translated), a store, an
 * AMO, an LR/SC and an instruction fetch. The test marks those pages missing with stale bytes
 * in them (0xAA data, zeroed code), the way a target holds pages the source re-dirtied, and
 * its page source delivers each page's true bytes only when asked. The program's output is
 * compared with what those true bytes give (computed here): it matches only if every page
 * arrived before anything read it, and each page is asked for exactly once. The page-table
 * walker (Sv39, page tables missing) and device DMA through GuestRam wait the same way.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parseElf } from '../../src/machine/elf.ts';
import { csrWrite } from '../../src/cpu/csr.ts';
import { MMU_S } from '../../src/cpu/layout.ts';
import { mmuOut, translate } from '../../src/cpu/mmu.ts';
import { Access } from '../../src/cpu/trap.ts';
import { Machine } from '../../src/machine/machine.ts';
import { gateOf, type PageSource } from '../../src/machine/migrate-postcopy.ts';
import { PageStream } from '../../src/machine/postcopy-stream.ts';
import { encodeRecord, Rec } from '../../src/machine/snapshot-format.ts';
import { buildGuest } from '../support/toolchain.ts';

const RAM = 16 << 20;
const BASE = 0x8000_0000;
const PAGES = 32;

/** A page source that holds the pages' true bytes and delivers one when the machine waits for it. */
function source(m: Machine, truth: Map<number, Uint8Array>): PageSource & { asked: number[] } {
  const missing = new Uint8Array(RAM / 4096 / 8);
  for (const p of truth.keys()) missing[p >>> 3]! |= 1 << (p & 7);
  const asked: number[] = [];
  return {
    missing,
    asked,
    done: new Promise(() => {}),
    wait(page) {
      asked.push(page);
      m.ram.bytes.set(truth.get(page)!, page * 4096);
      missing[page >>> 3]! &= ~(1 << (page & 7));
    },
    requests: () => asked.length,
    remaining: () => [...truth.keys()].filter((p) => missing[p >>> 3]! & (1 << (p & 7))).length,
    close() {},
  };
}

function run(elfPath: string, engine: 'jit' | 'interp'): { out: string; asked: number[]; marked: number[]; expected: string; m: Machine } {
  const elf = parseElf(new Uint8Array(readFileSync(elfPath)), elfPath);
  const chunks: string[] = [];
  const m = new Machine({ ramSize: RAM, deterministic: true, engine, jit: { threshold: 50 }, console: (s) => chunks.push(new TextDecoder().decode(s)) });
  for (const s of elf.segments) m.ram.load(s.paddr, s.data);
  m.attachHtif(elf.symbols.get('tohost')!, elf.symbols.get('fromhost') ?? null);
  m.harts[0]!.setPcNum(elf.entry);
  const page = (sym: string): number => (elf.symbols.get(sym)! - BASE) / 4096;
  // The true bytes of each page to be marked missing: buf holds a pattern, the others their words' indices.
  const truth = new Map<number, Uint8Array>();
  const words = (f: (i: number) => bigint): Uint8Array => {
    const b = new BigUint64Array(512);
    for (let i = 0; i < 512; i++) b[i] = f(i);
    return new Uint8Array(b.buffer);
  };
  for (let k = 0; k < PAGES; k++) truth.set(page('buf') + k, words((i) => BigInt(k * 512 + i) * 0x9e3779b97f4a7c15n & 0xffff_ffff_ffff_ffffn));
  for (const sym of ['amo_page', 'lrsc_page', 'store_page']) truth.set(page(sym), words((i) => BigInt(i) * 1000n));
  const codePage = Math.floor((elf.symbols.get('far_code')! - BASE) / 4096);
  truth.set(codePage, m.ram.read(BASE + codePage * 4096, 4096));
  // Stale bytes where the missing pages are: what a target holds of pages it has not received.
  for (const p of truth.keys()) m.ram.bytes.fill(p === codePage ? 0 : 0xaa, p * 4096, (p + 1) * 4096);
  const src = source(m, truth);
  m.setGate(gateOf(src, RAM));
  // The reference: what the program prints over the true bytes.
  const u64 = (p: number, i: number): bigint => new BigUint64Array(truth.get(p)!.buffer)[i]!;
  const M = (1n << 64n) - 1n;
  let sum = 0n;
  for (let r = 0; r < 3; r++) for (let i = 0; i < PAGES * 512; i++) sum = (sum + (u64(page('buf') + (i >> 9), i & 511) ^ BigInt(i))) & M;
  const hex = (v: bigint): string => `0x${v.toString(16).padStart(16, '0')}`;
  const expected = [
    `sum=${hex(sum)}`,
    `store=${hex(0x1234n + 8000n)}`,
    `amo=${hex(3000n + 3005n)}`,
    `lrsc=${hex(9000n + 77n + 10000n)}`,
    `far=${hex((sum * 3n + 1n) & M)}`,
  ].join('\n') + '\n';
  for (let i = 0; i < 1000 && !m.exit; i++) m.slice(1_000_000);
  return { out: chunks.join(''), asked: src.asked, marked: [...truth.keys()].sort((a, b) => a - b), expected, m };
}

describe('post-copy: missing pages wait for their bytes', () => {
  const elf = buildGuest('migrate-touch', ['common/crt.S', 'migrate/touch.c']);
  for (const engine of ['jit', 'interp'] as const) {
    it(`every way the ${engine === 'jit' ? 'translator' : 'interpreter'} touches RAM asks for a missing page once, before it reads it`, () => {
      const r = run(elf, engine);
      assert.equal(r.m.exit?.code, 0, r.out);
      assert.equal(r.out, r.expected);
      assert.deepEqual([...r.asked].sort((a, b) => a - b), r.marked, 'each missing page asked for exactly once');
    });
  }

  it('the page-table walker waits for missing page-table pages before it reads a PTE', () => {
    const m = new Machine({ ramSize: RAM, deterministic: true, engine: 'interp', console: () => {} });
    const h = m.harts[0]!;
    const ppn = (page: number): bigint => BigInt((BASE + page * 4096) / 4096);
    const pte = (page: number, flags: bigint): bigint => (ppn(page) << 10n) | flags;
    const table = (entries: Array<[number, bigint]>): Uint8Array => {
      const t = new BigUint64Array(512);
      for (const [i, v] of entries) t[i] = v;
      return new Uint8Array(t.buffer);
    };
    // Sv39: VA 0x4000_1234 → vpn2 1, vpn1 0, vpn0 1; root on page 10, then pages 11 and 12, data on page 20.
    const V = 1n, R = 2n, W = 4n, A = 64n, D = 128n;
    m.ram.bytes.set(table([[1, pte(11, V)]]), 10 * 4096);
    const truth = new Map([[11, table([[0, pte(12, V)]])], [12, table([[1, pte(20, V | R | W | A | D)]])]]);
    for (const p of truth.keys()) m.ram.bytes.fill(0xaa, p * 4096, (p + 1) * 4096);
    const satp = (8n << 60n) | ppn(10);
    // PMP open to S-mode (pmpaddr0 all ones, NAPOT, RWX), then satp, both as the firmware writes them.
    csrWrite(h, 0x3b0, -1, -1);
    csrWrite(h, 0x3a0, 0x1f, 0);
    csrWrite(h, 0x180, Number(satp & 0xffff_ffffn) | 0, Number(satp >> 32n) | 0);
    const src = source(m, truth);
    m.setGate(gateOf(src, RAM));
    assert.equal(translate(h, 0x4000_1234, 0, Access.Load, MMU_S, 8), -1, 'the walk found the mapping, not the stale bytes');
    assert.equal(mmuOut.pa, BASE + 20 * 4096 + 0x234);
    assert.deepEqual(src.asked, [11, 12], 'each table page waited for as the walk reached it');
  });

  it('device DMA through GuestRam waits for a missing page too', () => {
    const m = new Machine({ ramSize: RAM, deterministic: true, engine: 'interp', console: () => {} });
    const truth = new Map([[5, new Uint8Array(4096).fill(7)], [6, new Uint8Array(4096).fill(9)]]);
    const src = source(m, truth);
    m.setGate(gateOf(src, RAM));
    assert.deepEqual([...m.ram.read(BASE + 5 * 4096 + 4090, 8)], [7, 7, 7, 7, 7, 7, 9, 9]);
    assert.deepEqual(src.asked, [5, 6]);
    m.ram.need(BASE + 100 * 4096, 4096);
    assert.deepEqual(src.asked, [5, 6], 'a page that is here is not asked for');
  });

  it('the page channel writes only pages still missing, and ends only with every page in', () => {
    const ram = new Uint8Array(8 * 4096).fill(1);
    const missing = new Uint8Array([0b0000_0110]);
    let told = 0;
    const stream = new PageStream(ram, missing, () => told++);
    // Pages 0-3 as the source sends them: page 0 is here already (the guest may have written it since).
    assert.equal(stream.push(encodeRecord(Rec.Ram, 0, new Uint8Array(4 * 4096).fill(9), false)), false);
    assert.deepEqual([ram[0], ram[4096], ram[2 * 4096], ram[3 * 4096]], [1, 9, 9, 1]);
    assert.equal(missing[0], 0);
    assert.equal(told, 1);
    assert.equal(stream.push(encodeRecord(Rec.End, 0, new Uint8Array(0))), true);
    const short = new PageStream(ram, new Uint8Array([0b1000_0000]), () => {});
    assert.throws(() => short.push(encodeRecord(Rec.End, 0, new Uint8Array(0))), { message: 'the source ended the post-copy page channel with 1 pages still missing' });
    assert.throws(() => short.push(encodeRecord(Rec.Zero, 7, new Uint8Array(new Uint32Array([2]).buffer), false)), /pages 7\+2 lie outside the machine's 8 pages of RAM/);
  });
});
