/**
 * Post-copy's page channel as the target reads it (machine/postcopy-stream.ts): RAM and
 * zero-page records for the pages still missing, then the end record, into a small RAM. Seeds
 * are channels as the source writes them (runs of pages, zero runs, pages asked for out of
 * order, the end); every record's checksum is made right again after mutation, so mutated
 * inputs reach the page numbers, counts and lengths.
 */
import { PAGE_SIZE } from '../../src/cpu/layout.ts';
import { PageStream } from '../../src/machine/postcopy-stream.ts';
import { encodeRecord, jsCodec, Rec, useCodec } from '../../src/machine/snapshot-format.ts';
import type { FuzzTarget } from '../harness.ts';
import { fixChecksums } from './snapshot.ts';

const PAGES = 64;
/** The pages missing when a channel starts: every third page and 40-47. */
const MISSING = [...Array(PAGES).keys()].filter((p) => p % 3 === 0 || (p >= 40 && p < 48));

function missingBits(): Uint8Array {
  const b = new Uint8Array(PAGES / 8);
  for (const p of MISSING) b[p >>> 3]! |= 1 << (p & 7);
  return b;
}

function page(p: number): Uint8Array {
  return new Uint8Array(PAGE_SIZE).fill((p * 7 + 1) & 0xff);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, x) => n + x.length, 0));
  let at = 0;
  for (const x of parts) {
    out.set(x, at);
    at += x.length;
  }
  return out;
}

const ram = (p: number, n: number): Uint8Array => {
  const data = new Uint8Array(n * PAGE_SIZE);
  for (let i = 0; i < n; i++) data.set(page(p + i), i * PAGE_SIZE);
  return encodeRecord(Rec.Ram, p, data, false);
};
const zero = (p: number, n: number): Uint8Array => encodeRecord(Rec.Zero, p, new Uint8Array(new Uint32Array([n]).buffer), false);
const end = encodeRecord(Rec.End, 0, new Uint8Array(0));

export const target: FuzzTarget = {
  name: 'postcopy',
  seeds() {
    useCodec(jsCodec);
    const inOrder = MISSING.filter((p) => p < 40 || p >= 48).map((p) => ram(p, 1));
    return [
      concat([...inOrder, ram(40, 8), end]),
      concat([zero(45, 3), ram(9, 1), ...inOrder, zero(40, 5), end]),
      concat([ram(0, 1), ram(0, 1), zero(3, 1)]),
    ];
  },
  run(input) {
    const stream = new PageStream(new Uint8Array(PAGES * PAGE_SIZE), missingBits(), () => {});
    const bytes = fixChecksums(input, 0);
    for (let at = 0; at < bytes.length; at += 4096) if (stream.push(bytes.subarray(at, at + 4096))) return;
  },
};
