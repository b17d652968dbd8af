/**
 * Physical memory protection (Privileged spec 3.7): 16 entries, 4-byte grain. Checked when a
 * translation is made (the TLB then caches the outcome for a whole page) and for every
 * page-table access. The decoded entries are derived state, rebuilt whenever a pmpcfg or
 * pmpaddr CSR changes.
 */
import { S, PRIV_M, type Hart } from './hart.ts';
import { Access } from './trap.ts';

const R = 1;
const W = 2;
const X = 4;
const A_OFF = 0;
const A_TOR = 1;
const A_NA4 = 2;
const L = 0x80;

/** Decoded PMP entries: [start, end) byte ranges, permissions and lock bits. */
export interface PmpTable {
  count: number;
  start: Float64Array;
  end: Float64Array;
  perm: Uint8Array;
  locked: Uint8Array;
}

export function emptyPmp(): PmpTable {
  return { count: 0, start: new Float64Array(16), end: new Float64Array(16), perm: new Uint8Array(16), locked: new Uint8Array(16) };
}

function cfgByte(h: Hart, i: number): number {
  const slot = i < 8 ? S.pmpcfg0 : S.pmpcfg2;
  const j = i & 7;
  return (h.s[slot + (j >> 2)]! >>> ((j & 3) * 8)) & 0xff;
}

function addrNum(h: Hart, i: number): number {
  const k = S.pmpaddr0 + 2 * i;
  return (h.s[k + 1]! >>> 0) * 0x1_0000_0000 + (h.s[k]! >>> 0);
}

/** Rebuilds the hart's decoded PMP table from its CSRs (3.7.1.2 address matching). */
export function rebuildPmp(h: Hart): void {
  const t = h.pmp;
  t.count = 0;
  for (let i = 0; i < 16; i++) {
    const cfg = cfgByte(h, i);
    const a = (cfg >>> 3) & 3;
    if (a === A_OFF) continue;
    const addr = addrNum(h, i);
    let start: number;
    let end: number;
    if (a === A_TOR) {
      start = i === 0 ? 0 : addrNum(h, i - 1) * 4;
      end = addr * 4;
    } else if (a === A_NA4) {
      start = addr * 4;
      end = start + 4;
    } else {
      // NAPOT: the trailing ones of pmpaddr give the size (8 << ones bytes). Count them on the
      // 32-bit halves: pmpaddr has 54 bits, more than a double holds exactly.
      const k = S.pmpaddr0 + 2 * i;
      let lo = h.s[k]!;
      let hi = h.s[k + 1]!;
      let ones = 0;
      while (ones < 32 && (lo >>> ones) & 1) ones++;
      if (ones === 32) while (ones < 54 && (hi >>> (ones - 32)) & 1) ones++;
      if (ones >= 32) {
        lo = 0;
        hi = ones >= 54 ? 0 : hi & ~((1 << (ones - 32)) - 1);
      } else {
        lo &= ~((1 << ones) - 1);
      }
      start = (hi >>> 0) * 2 ** 34 + (lo >>> 0) * 4;
      end = start + 2 ** (ones + 3);
    }
    const n = t.count++;
    t.start[n] = start;
    t.end[n] = end;
    t.perm[n] = cfg & (R | W | X);
    t.locked[n] = cfg & L ? 1 : 0;
  }
}

const NEED = [R, W, X]; // indexed by Access (Load, Store, Fetch)

/**
 * Whether an access of [pa, pa + size) at privilege `priv` is allowed. The lowest-numbered
 * entry matching any byte decides; an entry that matches only part of the access fails it.
 */
export function pmpAllows(h: Hart, pa: number, size: number, access: Access, priv: number): boolean {
  const t = h.pmp;
  const end = pa + size;
  for (let n = 0; n < t.count; n++) {
    const s = t.start[n]!;
    const e = t.end[n]!;
    if (end <= s || pa >= e) continue;
    if (pa < s || end > e) return false;
    if (priv === PRIV_M && !t.locked[n]) return true;
    return (t.perm[n]! & NEED[access]!) !== 0;
  }
  // No match: M-mode succeeds, S and U fail because entries are implemented (3.7.1).
  return priv === PRIV_M;
}

/**
 * Whether every byte of the 4 KiB page at `page` gets the same PMP outcome as its first byte, so
 * a TLB entry may cache it. False when an entry boundary falls inside the page.
 */
export function pmpUniformPage(h: Hart, page: number): boolean {
  const t = h.pmp;
  const end = page + 4096;
  for (let n = 0; n < t.count; n++) {
    const s = t.start[n]!;
    const e = t.end[n]!;
    if (end <= s || page >= e) continue;
    return s <= page && e >= end;
  }
  return true;
}
