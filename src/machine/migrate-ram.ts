/**
 * RAM in a migration stream: the snapshot's Ram and Zero records (snapshot-ram.ts), deflated
 * only with the `compress` capability, plus Delta records for pages sent before (QEMU's
 * XBZRLE): the source keeps a cache of what it last sent of each page (direct-mapped,
 * `xbzrle-cache-size` bytes); a page found there goes as the runs that changed, when that is
 * smaller than three quarters of the page. A Delta record's payload is a list of
 *   u32 page, u16 length, `length` bytes of runs
 * where the runs are pairs of ULEB128 counts (bytes unchanged, then bytes changed) followed
 * by the changed bytes; the target applies them to the page it holds, which is the page the
 * source's cache holds.
 */
import { PAGE_SIZE } from '../cpu/layout.ts';
import type { GuestRam } from './ram.ts';
import { bad, encodeRecord, Rec, unpack, type Frame } from './snapshot-format.ts';
import { zeroPage } from './snapshot-ram.ts';

/** Pages per Ram record (1 MiB). */
const CHUNK_PAGES = 256;
/** A delta is sent only when it is at most this long; otherwise the page goes whole. */
const DELTA_LIMIT = (PAGE_SIZE * 3) >>> 2;
/** Bytes of deltas gathered into one record. */
const DELTA_RECORD = 256 << 10;
const WORDS = PAGE_SIZE / 4;

/** What RAM records carried (query-migrate's ram and xbzrle-cache counters). */
export interface RamCounters {
  /** Pages sent whole. */
  normal: number;
  /** Pages sent as zero counts. */
  duplicate: number;
  /** Pages sent as deltas, and their encoded bytes. */
  xbzrlePages: number;
  xbzrleBytes: number;
  /** Re-sent pages not found in the cache. */
  cacheMiss: number;
  /** Deltas too long to be worth it (the page went whole). */
  overflow: number;
}

export function ramCounters(): RamCounters {
  return { normal: 0, duplicate: 0, xbzrlePages: 0, xbzrleBytes: 0, cacheMiss: 0, overflow: 0 };
}

/** The source's copy of what it last sent of each page (direct-mapped by page number). */
export class XbzrleCache {
  private readonly tags: Int32Array;
  private data: Uint8Array | null = null;

  constructor(readonly bytes: number) {
    this.tags = new Int32Array(Math.max(1, Math.floor(bytes / PAGE_SIZE))).fill(-1);
  }

  private slot(page: number): number {
    return page % this.tags.length;
  }

  /** The cached copy of `page`, or null. */
  get(page: number): Uint8Array | null {
    const s = this.slot(page);
    return this.tags[s] === page && this.data ? this.data.subarray(s * PAGE_SIZE, (s + 1) * PAGE_SIZE) : null;
  }

  /** Remembers `bytes` as what the target now holds of `page`. */
  put(page: number, bytes: Uint8Array): void {
    this.data ??= new Uint8Array(this.tags.length * PAGE_SIZE);
    const s = this.slot(page);
    this.tags[s] = page;
    this.data.set(bytes, s * PAGE_SIZE);
  }

  /** Forgets `page` (it went as zeros). */
  drop(page: number): void {
    const s = this.slot(page);
    if (this.tags[s] === page) this.tags[s] = -1;
  }
}

function uleb(out: Uint8Array, at: number, v: number): number {
  while (v >= 0x80) {
    out[at++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  out[at++] = v;
  return at;
}

/**
 * Encodes `cur` against `old` (both one page) into `out` at `at`; returns the end, or -1 when
 * the runs would pass `at + limit`. Runs are whole 32-bit words.
 */
export function encodeDelta(old: Uint8Array, cur: Uint8Array, out: Uint8Array, at: number, limit: number): number {
  const o = new Int32Array(old.buffer, old.byteOffset, WORDS);
  const c = new Int32Array(cur.buffer, cur.byteOffset, WORDS);
  const end = at + limit;
  let pos = at;
  let i = 0;
  while (i < WORDS) {
    const z = i;
    while (i < WORDS && o[i] === c[i]) i++;
    if (i === WORDS) break;
    const n = i;
    while (i < WORDS && o[i] !== c[i]) i++;
    const len = (i - n) * 4;
    if (pos + 6 + len > end) return -1;
    pos = uleb(out, pos, (n - z) * 4);
    pos = uleb(out, pos, len);
    out.set(cur.subarray(n * 4, i * 4), pos);
    pos += len;
  }
  return pos;
}

/** Applies runs to `page` (untrusted: every count is checked against the page and the input). */
export function applyDelta(page: Uint8Array, runs: Uint8Array, what: string): void {
  let pos = 0;
  let off = 0;
  const num = (): number => {
    let v = 0;
    for (let shift = 0; shift < 21; shift += 7) {
      if (pos >= runs.length) bad(`${what} is corrupt: a delta ends inside a count`);
      const b = runs[pos++]!;
      v |= (b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    bad(`${what} is corrupt: a delta count is too long`);
  };
  while (pos < runs.length) {
    off += num();
    const n = num();
    if (n === 0 || off + n > PAGE_SIZE || pos + n > runs.length) bad(`${what} is corrupt: a delta run passes the end of its page or of its data`);
    page.set(runs.subarray(pos, pos + n), off);
    pos += n;
    off += n;
  }
}

/** How RAM goes over the stream. */
export interface RamSendOptions {
  /** Deflate the records (the `compress` capability). */
  compress: boolean;
  /** Send pages the cache knows as deltas (the `xbzrle` capability). */
  cache: XbzrleCache | null;
  counters: RamCounters;
  /** Pages of data per Ram record (default and most CHUNK_PAGES): smaller under a bandwidth limit, so the pace is even. */
  chunkPages?: number;
}

/** A record and the pages it carries (a run from `first`, or the `list` of a Delta record). */
export interface RamRecord {
  record: Uint8Array;
  first: number;
  count: number;
  list: number[] | null;
}

/**
 * Records for the pages set in `bits`, each made when the generator reaches it (pages are
 * read, and copied, at that moment: harts in other threads may be writing them). Every page goes exactly once: zero runs as counts, cached pages as
 * deltas when that pays, the rest whole.
 */
export function* migrationRam(ram: GuestRam, bits: Uint8Array, o: RamSendOptions): Generator<RamRecord> {
  const words = new Int32Array(ram.bytes.buffer, ram.bytes.byteOffset, ram.size / 4);
  const pages = ram.size / PAGE_SIZE;
  const c = o.counters;
  const chunk = Math.max(1, Math.min(CHUNK_PAGES, o.chunkPages ?? CHUNK_PAGES));
  let start = -1;
  let zero = false;
  let n = 0;
  let delta: Uint8Array | null = null;
  let dLen = 0;
  let dPages: number[] = [];
  const run = (): RamRecord | null => {
    if (n === 0) return null;
    const record = zero
      ? encodeRecord(Rec.Zero, start, new Uint8Array(new Uint32Array([n]).buffer), false)
      : encodeRecord(Rec.Ram, start, ram.bytes.slice(start * PAGE_SIZE, (start + n) * PAGE_SIZE), o.compress);
    const r = { record, first: start, count: n, list: null };
    n = 0;
    return r;
  };
  const deltas = (): RamRecord | null => {
    if (!delta || dLen === 0) return null;
    const r = { record: encodeRecord(Rec.Delta, 0, delta.subarray(0, dLen), o.compress), first: 0, count: 0, list: dPages };
    dLen = 0;
    dPages = [];
    return r;
  };
  for (let p = 0; p < pages; p++) {
    if (!(bits[p >>> 3]! & (1 << (p & 7)))) {
      const r = run();
      if (r) yield r;
      continue;
    }
    const z = zeroPage(words, p);
    // A copy: harts in other threads may write the page meanwhile (it is then dirty again and
    // goes in a later round), and a record's checksum and a delta's base must be one version.
    const cur = ram.bytes.slice(p * PAGE_SIZE, (p + 1) * PAGE_SIZE);
    if (z) {
      o.cache?.drop(p);
      c.duplicate++;
    } else if (o.cache) {
      const old = o.cache.get(p);
      if (old) {
        delta ??= new Uint8Array(DELTA_RECORD + PAGE_SIZE);
        const end = encodeDelta(old, cur, delta, dLen + 6, DELTA_LIMIT);
        if (end >= 0) {
          new DataView(delta.buffer).setUint32(dLen, p, true);
          new DataView(delta.buffer).setUint16(dLen + 4, end - dLen - 6, true);
          c.xbzrlePages++;
          c.xbzrleBytes += end - dLen;
          dLen = end;
          dPages.push(p);
          old.set(cur);
          if (dLen >= DELTA_RECORD) yield deltas()!;
          continue;
        }
        c.overflow++;
      } else {
        c.cacheMiss++;
      }
      o.cache.put(p, cur);
    }
    if (!z) c.normal++;
    if (n > 0 && (z !== zero || n === (zero ? CHUNK_PAGES : chunk) || start + n !== p)) {
      const r = run();
      if (r) yield r;
    }
    if (n === 0) {
      start = p;
      zero = z;
    }
    n++;
  }
  const r = run();
  if (r) yield r;
  const d = deltas();
  if (d) yield d;
}

/** Applies a Delta record to RAM (and its dirty log). */
export function applyDeltas(ram: GuestRam, f: Frame, what: string): void {
  const raw = unpack(f, what);
  const pages = ram.size / PAGE_SIZE;
  const v = new DataView(raw.buffer, raw.byteOffset, raw.length);
  for (let at = 0; at < raw.length; ) {
    if (at + 6 > raw.length) bad(`${what} is corrupt: a delta's header is cut short`);
    const page = v.getUint32(at, true);
    const len = v.getUint16(at + 4, true);
    at += 6;
    if (page >= pages) bad(`${what} is corrupt: page ${page} lies outside the machine's ${pages} pages of RAM`);
    if (at + len > raw.length) bad(`${what} is corrupt: a delta runs past its record`);
    const pa = ram.base + page * PAGE_SIZE;
    applyDelta(ram.window(pa, PAGE_SIZE), raw.subarray(at, at + len), what);
    ram.commit(pa, PAGE_SIZE);
    at += len;
  }
}
