/**
 * Host cluster reference counts and cluster allocation (qcow2.txt "Host cluster
 * management"): a refcount table, kept whole in memory, points at refcount blocks, cached.
 *
 * Crash-consistency duties of this module (the backend's flush() orders the rest):
 * - Increments may reach the disk at any time: a refcount above the real number of
 *   references is a leak, which is allowed. So dirty refcount blocks can be written back
 *   whenever the cache likes.
 * - A new refcount block is only referenced from the refcount table after its own contents
 *   are durable: the table is written by `writeTable()`, which the owner calls after a barrier.
 * - Decrements are the owner's business: it calls `decrement()` only once no reference to
 *   the cluster remains on disk.
 * - Growing the refcount table is done at once with its own barriers (it is rare).
 */
import { VirtusError } from '../../util/errors.ts';
import { readExact, type HostFile } from '../host-file.ts';
import { TableCache } from './cache.ts';
import { entryOffset, Table } from './entries.ts';
import { HDR, type Qcow2Header } from './header.ts';

const TWO32 = 2 ** 32;

export class Refcounts {
  readonly clusterSize: number;
  /** Refcount entries per refcount block. */
  readonly perBlock: number;
  readonly bits: number;
  private readonly maxValue: number;
  /** Host offsets of the refcount blocks (0: none); the in-memory refcount table. */
  private table: number[];
  private tableOffset: number;
  private dirtyLo = Infinity;
  private dirtyHi = -1;
  private readonly cache: TableCache;
  /** Where the next compressed cluster may go (allocateBytes); 0: nowhere yet. */
  private byteCursor = 0;
  /** Lowest cluster index that may be free. */
  private freeHint = 0;
  /** One past the highest cluster known in use (allocated here, or within the file). */
  private endCluster: number;

  constructor(private readonly file: HostFile, h: Qcow2Header) {
    this.clusterSize = 2 ** h.clusterBits;
    this.bits = 2 ** h.refcountOrder;
    this.perBlock = (this.clusterSize * 8) / this.bits;
    this.maxValue = this.bits >= 53 ? Number.MAX_SAFE_INTEGER : 2 ** this.bits - 1;
    this.tableOffset = h.refcountTableOffset;
    const bytes = new Uint8Array(h.refcountTableClusters * this.clusterSize);
    readExact(file, h.refcountTableOffset, bytes, 'refcount table');
    const t = new Table(bytes);
    this.table = [];
    for (let i = 0; i < bytes.length / 8; i++) {
      const off = entryOffset(t.hi(i), t.lo(i));
      if (off % this.clusterSize !== 0 || t.hi(i) >>> 24 !== 0) {
        throw new VirtusError('QCOW2_CORRUPT', `${file.name}: refcount table entry ${i} is invalid`);
      }
      if (off >= file.size()) {
        throw new VirtusError('QCOW2_CORRUPT', `${file.name}: refcount table entry ${i} points to a refcount block at 0x${off.toString(16)}, beyond the end of the file (${file.size()} bytes); run qemu-img check`);
      }
      this.table.push(off);
    }
    this.endCluster = Math.ceil(file.size() / this.clusterSize);
    const capacity = Math.max(8, Math.floor((4 << 20) / this.clusterSize));
    this.cache = new TableCache(file, this.clusterSize, capacity, 'refcount block', () => this.writeBlocks());
  }

  /** The refcount of the host cluster with index `cluster`. */
  get(cluster: number): number {
    const j = Math.floor(cluster / this.perBlock);
    const blk = j < this.table.length ? this.table[j]! : 0;
    if (blk === 0) return 0;
    return this.read(this.cache.get(blk).table, cluster % this.perBlock);
  }

  /**
   * Allocates `n` contiguous free clusters, sets their refcounts to one and returns the host
   * offset of the first. The lowest free run is used, so images stay compact.
   */
  allocate(n: number): number {
    for (;;) {
      const start = this.findFreeRun(n);
      let created = false;
      const lastRange = Math.floor((start + n - 1) / this.perBlock);
      for (let j = Math.floor(start / this.perBlock); j <= lastRange; j++) {
        if (j >= this.table.length || this.table[j] === 0) {
          this.createBlock(j);
          created = true;
        }
      }
      if (created) continue; // a new block may sit inside the run: look again
      for (let c = start; c < start + n; c++) this.add(c, 1);
      if (this.freeHint === start) this.freeHint = start + n;
      this.endCluster = Math.max(this.endCluster, start + n);
      return start * this.clusterSize;
    }
  }

  /**
   * Allocates `n` bytes for a compressed cluster (qcow2.txt: compressed data need not be
   * cluster-aligned, and several may share a host cluster). Bytes are packed after the
   * previous compressed cluster while they fit in its host cluster, each sharer adding one
   * reference; otherwise they start a fresh run of clusters.
   */
  allocateBytes(n: number): number {
    const cs = this.clusterSize;
    const cur = this.byteCursor;
    if (cur > 0 && cur % cs !== 0 && (cur % cs) + n <= cs && this.get(Math.floor(cur / cs)) > 0) {
      this.add(Math.floor(cur / cs), 1);
      this.byteCursor = cur + n;
      return cur;
    }
    const start = this.allocate(Math.ceil(n / cs));
    this.byteCursor = start + n;
    return start;
  }

  /** Drops one reference from every cluster that [host, host+length) touches. */
  decrement(host: number, length: number): void {
    const first = Math.floor(host / this.clusterSize);
    const last = Math.floor((host + length - 1) / this.clusterSize);
    for (let c = first; c <= last; c++) {
      // Never pack more compressed data into a cluster that is being given up.
      if (c === Math.floor(this.byteCursor / this.clusterSize)) this.byteCursor = 0;
      this.add(c, -1);
      if (this.get(c) === 0 && c < this.freeHint) this.freeHint = c;
    }
  }

  /** One past the highest cluster index whose refcount is not zero. */
  usedEnd(): number {
    for (let j = this.table.length - 1; j >= 0; j--) {
      if (this.table[j] === 0) continue;
      const t = this.cache.get(this.table[j]!).table;
      for (let i = this.perBlock - 1; i >= 0; i--) if (this.read(t, i) !== 0) return j * this.perBlock + i + 1;
    }
    return 0;
  }

  /** Writes every dirty refcount block (no barrier: any state of them is safe on disk). */
  writeBlocks(): void {
    for (const e of this.cache.dirtyEntries()) this.cache.writeBack(e);
  }

  /** True when refcount table entries changed since the last writeTable(). */
  get tableDirty(): boolean {
    return this.dirtyHi >= 0;
  }

  get blocksDirty(): boolean {
    return this.cache.hasDirty;
  }

  /**
   * Writes the changed refcount table entries. Call only after a barrier that made the
   * blocks they name durable.
   */
  writeTable(): void {
    if (this.dirtyHi < 0) return;
    this.file.write(this.tableOffset + this.dirtyLo * 8, this.encodeTable(this.dirtyLo, this.dirtyHi + 1));
    this.dirtyLo = Infinity;
    this.dirtyHi = -1;
  }

  private encodeTable(from: number, to: number): Uint8Array {
    const bytes = new Uint8Array((to - from) * 8);
    const dv = new DataView(bytes.buffer);
    for (let i = from; i < to; i++) {
      const v = this.table[i] ?? 0;
      dv.setUint32((i - from) * 8, Math.floor(v / TWO32));
      dv.setUint32((i - from) * 8 + 4, v >>> 0);
    }
    return bytes;
  }

  private read(t: Table, i: number): number {
    return readRefcount(t, this.bits, i);
  }

  private write(t: Table, i: number, v: number): void {
    writeRefcount(t, this.bits, i, v);
  }

  /** Adds `delta` to a cluster's refcount; its refcount block must exist. */
  private add(cluster: number, delta: number): void {
    const j = Math.floor(cluster / this.perBlock);
    const blk = this.table[j] ?? 0;
    if (blk === 0) throw new VirtusError('QCOW2_CORRUPT', `${this.file.name}: no refcount block for cluster ${cluster}`);
    const e = this.cache.get(blk);
    const i = cluster % this.perBlock;
    const v = this.read(e.table, i) + delta;
    if (v < 0) throw new VirtusError('QCOW2_CORRUPT', `${this.file.name}: refcount of cluster ${cluster} would drop below zero`);
    if (v > this.maxValue) throw new VirtusError('QCOW2_CORRUPT', `${this.file.name}: refcount of cluster ${cluster} overflows`);
    this.write(e.table, i, v);
    this.cache.markDirty(e);
  }

  /** The lowest run of `n` free clusters at or after the free hint. */
  private findFreeRun(n: number): number {
    let c = this.freeHint;
    let runStart = c;
    let firstFree = -1;
    for (;;) {
      const j = Math.floor(c / this.perBlock);
      const blk = j < this.table.length ? this.table[j]! : 0;
      if (blk === 0) {
        // No block: every cluster of this range is free.
        if (firstFree < 0) firstFree = c;
        const end = (j + 1) * this.perBlock;
        if (end - runStart >= n) break;
        c = end;
        continue;
      }
      const t = this.cache.get(blk).table;
      const end = (j + 1) * this.perBlock;
      for (; c < end; c++) {
        if (this.read(t, c % this.perBlock) !== 0) {
          runStart = c + 1;
        } else {
          if (firstFree < 0) firstFree = c;
          if (c + 1 - runStart >= n) break;
        }
      }
      if (c < end) break;
    }
    this.freeHint = firstFree;
    return runStart;
  }

  /**
   * Creates the refcount block for range `j` (all of whose clusters are free, having no
   * block). It is placed at the range's first cluster, so it counts itself.
   */
  private createBlock(j: number): void {
    if (j >= this.table.length) {
      this.grow(j + 1);
      if (this.table[j] !== 0) return;
    }
    if (j === 0) throw new VirtusError('QCOW2_CORRUPT', `${this.file.name}: the first refcount block is missing`);
    const at = j * this.perBlock;
    const e = this.cache.create(at * this.clusterSize);
    this.write(e.table, 0, 1);
    this.setTable(j, at * this.clusterSize);
    this.endCluster = Math.max(this.endCluster, at + 1);
  }

  private setTable(j: number, off: number): void {
    this.table[j] = off;
    this.dirtyLo = Math.min(this.dirtyLo, j);
    this.dirtyHi = Math.max(this.dirtyHi, j);
  }

  /**
   * Moves the refcount table to a larger area past the end of the image. Every new refcount
   * block this needs sits inside the range it covers (so counts itself). Order: blocks and
   * the new table, barrier, header, barrier; only then is the old table's space freed.
   */
  private grow(minEntries: number): void {
    const perCluster = this.clusterSize / 8;
    this.writeBlocks();
    this.file.flush(true);
    let entries = Math.max(minEntries, Math.ceil(this.table.length * 1.5));
    for (;;) {
      const t = Math.ceil(entries / perCluster);
      let start = Math.max(this.endCluster, Math.ceil(this.file.size() / this.clusterSize));
      while (this.get(start) !== 0) start++;
      const used = new Set<number>();
      for (let c = start; c < start + t; c++) used.add(c);
      const blocks = new Map<number, number>(); // range -> cluster
      const pending = [...used];
      while (pending.length > 0) {
        const c = pending.pop()!;
        const j = Math.floor(c / this.perBlock);
        if ((this.table[j] ?? 0) !== 0 || blocks.has(j)) continue;
        let at = j * this.perBlock;
        while (used.has(at) || (at === 0 && j === 0)) at++;
        blocks.set(j, at);
        used.add(at);
        pending.push(at);
      }
      let maxUsed = 0;
      for (const c of used) maxUsed = Math.max(maxUsed, c);
      const maxRange = Math.floor(maxUsed / this.perBlock);
      if (maxRange >= entries) {
        entries = maxRange + 1 + perCluster;
        continue;
      }
      entries = t * perCluster;
      const old = { offset: this.tableOffset, clusters: Math.ceil((this.table.length * 8) / this.clusterSize) };
      while (this.table.length < entries) this.table.push(0);
      for (const [j, at] of blocks) {
        this.cache.create(at * this.clusterSize);
        this.table[j] = at * this.clusterSize;
      }
      for (const c of used) this.add(c, 1);
      this.tableOffset = start * this.clusterSize;
      this.endCluster = Math.max(this.endCluster, maxUsed + 1);
      this.writeBlocks();
      this.file.write(this.tableOffset, this.encodeTable(0, entries));
      this.dirtyLo = Infinity;
      this.dirtyHi = -1;
      this.file.flush(true);
      const hdr = new Uint8Array(12);
      const dv = new DataView(hdr.buffer);
      dv.setBigUint64(0, BigInt(this.tableOffset));
      dv.setUint32(8, t);
      this.file.write(HDR.refcountTableOffset, hdr);
      this.file.flush(true);
      this.decrement(old.offset, old.clusters * this.clusterSize);
      return;
    }
  }
}

/** Entry `i` of a refcount block with `bits`-bit entries (big-endian; sub-byte: LSB first). */
export function readRefcount(t: Table, bits: number, i: number): number {
  const dv = t.dv;
  switch (bits) {
    case 8: return t.bytes[i]!;
    case 16: return dv.getUint16(i * 2);
    case 32: return dv.getUint32(i * 4);
    case 64: return dv.getUint32(i * 8) * TWO32 + dv.getUint32(i * 8 + 4);
    default: {
      // Sub-byte widths: bit 0 is the least significant bit (qcow2.txt "Refcount block entry").
      const bit = i * bits;
      return (t.bytes[bit >> 3]! >> (bit & 7)) & (2 ** bits - 1);
    }
  }
}

/** Sets entry `i` of a refcount block with `bits`-bit entries. */
export function writeRefcount(t: Table, bits: number, i: number, v: number): void {
  const dv = t.dv;
  switch (bits) {
    case 8: t.bytes[i] = v; break;
    case 16: dv.setUint16(i * 2, v); break;
    case 32: dv.setUint32(i * 4, v); break;
    case 64: dv.setUint32(i * 8, Math.floor(v / TWO32)); dv.setUint32(i * 8 + 4, v >>> 0); break;
    default: {
      const bit = i * bits;
      const mask = (2 ** bits - 1) << (bit & 7);
      t.bytes[bit >> 3] = (t.bytes[bit >> 3]! & ~mask) | (v << (bit & 7));
    }
  }
}
