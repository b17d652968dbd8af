/**
 * RAM in snapshot records: only the pages ever written (the rest is zeros by construction),
 * runs of up to 1 MiB of pages per record, runs of zero pages as counts. The same records carry
 * the rounds of a live migration.
 */
import { PAGE_SIZE } from '../cpu/layout.ts';
import type { GuestRam } from './ram.ts';
import { bad, encodeRecord, Rec, unpack, type Frame } from './snapshot-format.ts';

/** Pages per RAM record (1 MiB). */
const CHUNK_PAGES = 256;

/** The number of pages set in a page bitmap. */
export function countPages(bits: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < bits.length; i++) for (let b = bits[i]!; b; b &= b - 1) n++;
  return n;
}

/** True when RAM page `page` of `w` (RAM as 32-bit words) holds only zeros. */
export function zeroPage(w: Int32Array, page: number): boolean {
  const start = page * (PAGE_SIZE / 4);
  for (let i = start; i < start + PAGE_SIZE / 4; i++) if (w[i] !== 0) return false;
  return true;
}

/**
 * RAM records for the pages set in `bits`: runs of up to 1 MiB of pages, runs of zero pages as
 * counts. Each record is made when the generator reaches it, so pages are read at that moment.
 */
export function* ramRecords(ram: GuestRam, bits: Uint8Array): Generator<Uint8Array> {
  const words = new Int32Array(ram.bytes.buffer, ram.bytes.byteOffset, ram.size / 4);
  const pages = ram.size / PAGE_SIZE;
  let start = -1;
  let zero = false;
  let n = 0;
  const flush = (): Uint8Array | null => {
    if (n === 0) return null;
    const rec = zero
      ? encodeRecord(Rec.Zero, start, new Uint8Array(new Uint32Array([n]).buffer), false)
      : encodeRecord(Rec.Ram, start, ram.bytes.subarray(start * PAGE_SIZE, (start + n) * PAGE_SIZE));
    n = 0;
    return rec;
  };
  for (let p = 0; p < pages; p++) {
    if (!(bits[p >>> 3]! & (1 << (p & 7)))) {
      const r = flush();
      if (r) yield r;
      continue;
    }
    const z = zeroPage(words, p);
    if (n > 0 && (z !== zero || n === CHUNK_PAGES)) {
      const r = flush();
      if (r) yield r;
    }
    if (n === 0) {
      start = p;
      zero = z;
    }
    n++;
  }
  const r = flush();
  if (r) yield r;
}

/** Writes one Ram or Zero record into RAM (and the dirty log). */
export function applyRam(ram: GuestRam, f: Frame, what: string): void {
  const pages = ram.size / PAGE_SIZE;
  let count: number;
  if (f.type === Rec.Zero) {
    const raw = unpack(f, what);
    if (raw.length !== 4) bad(`${what} is corrupt: a zero-page record holds 4 bytes`);
    count = new DataView(raw.buffer, raw.byteOffset, 4).getUint32(0, true);
  } else {
    if (f.raw === 0 || f.raw % PAGE_SIZE) bad(`${what} is corrupt: RAM records hold whole pages`);
    count = f.raw / PAGE_SIZE;
  }
  if (count === 0 || f.arg + count > pages) bad(`${what} is corrupt: pages ${f.arg}+${count} lie outside the machine's ${pages} pages of RAM`);
  const at = f.arg * PAGE_SIZE;
  const len = count * PAGE_SIZE;
  if (f.type === Rec.Zero) {
    // A page never written holds zeros already; not touching it keeps the host from allocating it.
    for (let p = f.arg; p < f.arg + count; p++) {
      if (ram.pageWritten(p)) ram.zero(ram.base + p * PAGE_SIZE, PAGE_SIZE);
    }
    return;
  }
  unpack(f, what, ram.bytes.subarray(at, at + len));
  ram.commit(ram.base + at, len);
}
