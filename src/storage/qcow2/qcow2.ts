/**
 * The qcow2 block backend (QEMU docs/interop/qcow2.txt): reads versions 2 and 3 with any
 * cluster size from 512 B to 2 MiB, zero clusters, compressed clusters (zlib and zstd),
 * extended L2 entries (subclusters, read-only) and backing files; writes with cluster
 * allocation and refcounting.
 *
 * Crash consistency. Guest data is written straight to the host file (in place when the
 * cluster is already owned by this image, else into a newly allocated cluster); metadata
 * changes stay in caches and reach the disk in flush() in this order:
 *
 *   1. refcount blocks (increments only) and L2 tables that nothing on disk points at yet;
 *      if refcount table entries changed: barrier, then the refcount table entries;
 *   2. barrier -- now guest data, refcount increments and new tables are durable;
 *   3. L2 tables that existed before, then the L1 table;
 *   4. barrier -- the flush is complete;
 *   5. only now drop the refcounts of clusters that lost their last reference in step 3
 *      (written with the next flush; until then they are leaks, never dangling pointers).
 *
 * So at any crash point: every L1/L2 entry on disk points at a cluster whose refcount on
 * disk already counts it (no corruption), a copied-on-write cluster's data is durable
 * before the L2 entry that exposes it, and freed clusters are never reused before nothing
 * on disk names them. A crash can only leak clusters, which `qemu-img check` reports as
 * leaks, not errors. When the L2 cache fills up with dirty tables, it runs the same flush.
 */
import { VirtusError } from '../../util/errors.ts';
import { checkRange, readOnlyError, type BlockBackend, type BlockStatus, type ImageInfo } from '../backend.ts';
import { readExact, readZeroFilled, type HostFile } from '../host-file.ts';
import { TableCache, type CachedTable } from './cache.ts';
import { compressCluster, decompressCluster } from './compress.ts';
import { COPIED, decodeL2, entryOffset, makeEntry, Table, type ClusterKind, type L2Entry } from './entries.ts';
import { COMPAT, HDR, hasBit, INCOMPAT, type Qcow2Header } from './header.ts';
import { Refcounts } from './refcount.ts';
import { TrackedFile } from './tracked-file.ts';
import { repairRefcounts } from './repair.ts';

/** A run of the virtual disk stored the same way. */
interface Extent {
  kind: ClusterKind;
  /** Host offset of the first byte (data), or of the compressed cluster. */
  host: number;
  length: number;
  compressedLength: number;
}

export interface Qcow2OpenOptions {
  readOnly: boolean;
  /** The opened backing image (read-only), or null. */
  backing: BlockBackend | null;
}

export class Qcow2Backend implements BlockBackend {
  readonly format = 'qcow2';
  readonly size: number;
  readonly readOnly: boolean;
  readonly backing: BlockBackend | null;
  readonly header: Qcow2Header;
  private readonly cs: number;
  private readonly l2Entries: number;
  private readonly extL2: boolean;
  /** Bit 0 of a standard L2 entry means "zeros" (v3 without extended L2 entries). */
  private readonly zeroBit: boolean;
  private readonly l1: Table;
  private l1DirtyLo = Infinity;
  private l1DirtyHi = -1;
  private readonly l2Cache: TableCache;
  private refcounts: Refcounts | null = null;
  /** Host byte ranges whose references were dropped in memory, decremented after a flush. */
  private pendingFree: [host: number, length: number][] = [];
  private unsynced = false;
  private modifying = false;
  private trimOnClose = false;
  private closed = false;
  private readonly inflated = new Map<number, Uint8Array>();

  private readonly file: TrackedFile;

  /** Opens the image in `file` with its validated header (header.ts `readHeader`). */
  constructor(file: HostFile, header: Qcow2Header, options: Qcow2OpenOptions) {
    this.file = new TrackedFile(file);
    this.header = header;
    this.size = header.size;
    this.readOnly = options.readOnly;
    this.backing = options.backing;
    this.cs = 2 ** header.clusterBits;
    this.extL2 = hasBit(header.incompatible, INCOMPAT.extendedL2);
    this.zeroBit = header.version === 3 && !this.extL2;
    this.l2Entries = this.cs / (this.extL2 ? 16 : 8);
    // readHeader checked the L1 table's size against the virtual size, QEMU's limit and the file.
    const l1 = new Uint8Array(header.l1Size * 8);
    readExact(this.file, header.l1TableOffset, l1, 'L1 table');
    this.l1 = new Table(l1);
    this.l2Cache = new TableCache(this.file, this.cs, Math.max(8, Math.floor((8 << 20) / this.cs)), 'L2 table', () => this.flush());
    if (!this.readOnly) this.openForWriting();
  }

  get name(): string {
    return this.file.name;
  }

  private openForWriting(): void {
    const h = this.header;
    const refuse = (why: string): never => {
      throw new VirtusError('QCOW2_READ_ONLY', `${this.name}: ${why}; it can only be opened read-only`);
    };
    if (this.file.readOnly) refuse('the file is not writable');
    if (hasBit(h.incompatible, INCOMPAT.corrupt)) refuse('the image is marked corrupt (try qemu-img check -r all)');
    if (this.extL2) refuse('virtus does not write images with extended L2 entries');
    if (h.nbSnapshots > 0) refuse(`the image has ${h.nbSnapshots} internal snapshot(s), which virtus does not write`);
    // A dirty image's refcounts may be stale: rebuild them first, as QEMU does (repair.ts).
    if (hasBit(h.incompatible, INCOMPAT.dirty)) repairRefcounts(this.file, h, this.l1);
    this.refcounts = new Refcounts(this.file, h);
  }

  // ---- reading ----

  read(offset: number, buf: Uint8Array): void {
    checkRange(this.name, this.size, offset, buf.length);
    let done = 0;
    while (done < buf.length) {
      const pos = offset + done;
      const x = this.extent(pos, buf.length - done);
      this.readExtent(pos, x, buf.subarray(done, done + x.length));
      done += x.length;
    }
  }

  private readExtent(pos: number, x: Extent, out: Uint8Array): void {
    switch (x.kind) {
      case 'data': readZeroFilled(this.file, x.host, out); break;
      case 'zero': out.fill(0); break;
      case 'unallocated': this.readBacking(pos, out); break;
      case 'compressed': {
        const c = this.inflate(x.host, x.compressedLength);
        const at = pos % this.cs;
        out.set(c.subarray(at, at + out.length));
      }
    }
  }

  private readBacking(pos: number, out: Uint8Array): void {
    const b = this.backing;
    const n = b ? Math.max(0, Math.min(out.length, b.size - pos)) : 0;
    if (n > 0) b!.read(pos, out.subarray(0, n));
    out.fill(0, n);
  }

  private inflate(host: number, length: number): Uint8Array {
    const hit = this.inflated.get(host);
    if (hit) return hit;
    const data = new Uint8Array(length);
    readZeroFilled(this.file, host, data);
    const out = new Uint8Array(this.cs);
    decompressCluster(this.header.compressionType, data, out, `${this.name}: cluster at 0x${host.toString(16)}`);
    if (this.inflated.size >= 8) this.inflated.delete(this.inflated.keys().next().value!);
    this.inflated.set(host, out);
    return out;
  }

  /** How the bytes from `pos` are stored, for as long (up to `max`) as they are stored alike. */
  private extent(pos: number, max: number): Extent {
    const cs = this.cs;
    let x = this.unit(pos);
    let len = Math.min(x.length, max);
    // Merge following units of the same kind (host-contiguous for data), within one L2 table.
    while (len < max && x.kind !== 'compressed') {
      const next = pos + len;
      if (Math.floor(next / cs / this.l2Entries) !== Math.floor(pos / cs / this.l2Entries)) break;
      const y = this.unit(next);
      if (y.kind !== x.kind || (x.kind === 'data' && y.host !== x.host + len)) break;
      len += Math.min(y.length, max - len);
    }
    x = { ...x, length: len };
    return x;
  }

  /** The mapping of the cluster (or subcluster) holding `pos`, from `pos` to its end. */
  private unit(pos: number): Extent {
    const cs = this.cs;
    const gc = Math.floor(pos / cs);
    const inC = pos % cs;
    const slot = this.l2Slot(gc, false);
    if (!slot) return { kind: 'unallocated', host: 0, length: cs - inC, compressedLength: 0 };
    const t = slot.e.table;
    const i = this.extL2 ? slot.i * 2 : slot.i;
    const m = this.decode(t.hi(i), t.lo(i));
    if (m.kind === 'compressed') return { kind: 'compressed', host: m.host, length: cs - inC, compressedLength: m.compressedLength };
    if (!this.extL2) return { kind: m.kind, host: m.host + inC, length: cs - inC, compressedLength: 0 };
    // qcow2.txt "Extended L2 Entries": 32 subclusters; bitmap bits 0-31 allocated, 32-63 zero.
    const sub = cs / 32;
    const s = Math.floor(inC / sub);
    const length = sub - (inC % sub);
    const alloc = t.lo(i + 1);
    const zero = t.hi(i + 1);
    if ((alloc >>> s) & 1) {
      const host = entryOffset(t.hi(i), t.lo(i));
      if (host === 0) throw new VirtusError('QCOW2_CORRUPT', `${this.name}: allocated subcluster without a host cluster`);
      if (host >= this.file.size()) throw this.beyondEnd('data cluster', host);
      return { kind: 'data', host: host + inC, length, compressedLength: 0 };
    }
    return { kind: (zero >>> s) & 1 ? 'zero' : 'unallocated', host: 0, length, compressedLength: 0 };
  }

  private decode(hi: number, lo: number): L2Entry {
    let e: L2Entry;
    try {
      e = decodeL2(hi, lo, this.header.clusterBits, this.zeroBit);
    } catch (err) {
      throw new VirtusError('QCOW2_CORRUPT', `${this.name}: ${(err as Error).message}`);
    }
    // qemu-img check counts a cluster that starts at or past the end of the file as an error
    // (the last cluster may be partly written); reading it would give zeros and writing it
    // would grow the file to wherever the entry points.
    if (e.host !== 0 && e.host >= this.file.size()) throw this.beyondEnd(`${e.kind === 'compressed' ? 'compressed' : e.kind === 'zero' ? 'preallocated zero' : 'data'} cluster`, e.host);
    return e;
  }

  private beyondEnd(what: string, host: number): VirtusError {
    return new VirtusError('QCOW2_CORRUPT', `${this.name}: an L2 entry points to a ${what} at host offset 0x${host.toString(16)}, beyond the end of the file (${this.file.size()} bytes); run qemu-img check`);
  }

  /** The L2 table and index for guest cluster `gc`; with `allocate`, creates the table. */
  private l2Slot(gc: number, allocate: boolean): { e: CachedTable; i: number } | null {
    const l1i = Math.floor(gc / this.l2Entries);
    const i = gc % this.l2Entries;
    if (l1i >= this.header.l1Size) throw new VirtusError('QCOW2_CORRUPT', `${this.name}: guest cluster ${gc} lies beyond the L1 table`);
    const hi = this.l1.hi(l1i);
    const off = entryOffset(hi, this.l1.lo(l1i));
    if (off === 0) {
      if (!allocate) return null;
      const at = this.refs().allocate(1);
      const e = this.l2Cache.create(at);
      this.l1.set(l1i, ...makeEntry(at, COPIED));
      this.l1Dirty(l1i);
      return { e, i };
    }
    if (off % this.cs !== 0) throw new VirtusError('QCOW2_CORRUPT', `${this.name}: L1 entry ${l1i} is not cluster-aligned`);
    if (off >= this.file.size() && !this.l2Cache.has(off)) {
      throw new VirtusError('QCOW2_CORRUPT', `${this.name}: L1 entry ${l1i} points to an L2 table at 0x${off.toString(16)}, beyond the end of the file (${this.file.size()} bytes); run qemu-img check`);
    }
    if (allocate && !(hi & COPIED)) {
      // Bit 63 clear: the table may be shared with a snapshot; it is ours only if its refcount is 1.
      if (this.refs().get(off / this.cs) !== 1) {
        throw new VirtusError('QCOW2_SHARED', `${this.name}: L2 table at 0x${off.toString(16)} is shared; virtus cannot write it`);
      }
      this.l1.set(l1i, ...makeEntry(off, COPIED));
      this.l1Dirty(l1i);
    }
    return { e: this.l2Cache.get(off), i };
  }

  // ---- writing ----

  write(offset: number, buf: Uint8Array): void {
    this.beginModify();
    checkRange(this.name, this.size, offset, buf.length);
    let done = 0;
    while (done < buf.length) {
      const pos = offset + done;
      const inC = pos % this.cs;
      const n = Math.min(this.cs - inC, buf.length - done);
      this.writeCluster(pos - inC, inC, buf.subarray(done, done + n));
      done += n;
    }
    this.unsynced = true;
  }

  private writeCluster(start: number, inC: number, data: Uint8Array): void {
    const slot = this.l2Slot(start / this.cs, true)!;
    const t = slot.e.table;
    const cur = this.decode(t.hi(slot.i), t.lo(slot.i));
    if (cur.kind === 'data' && this.owned(cur, slot)) {
      this.file.write(cur.host + inC, data);
      return;
    }
    // A preallocated zero cluster that is ours is reused in place.
    const reuse = cur.kind === 'zero' && cur.host !== 0 && this.owned(cur, slot);
    const host = reuse ? cur.host : this.refs().allocate(1);
    let full = data;
    if (data.length !== this.cs) {
      full = new Uint8Array(this.cs);
      if (cur.kind !== 'zero') this.readExtent(start, { ...cur, length: this.cs, host: cur.host }, full);
      full.set(data, inC);
    }
    this.file.write(host, full);
    t.set(slot.i, ...makeEntry(host, COPIED));
    this.l2Cache.markDirty(slot.e);
    if (!reuse) this.release(cur);
  }

  /**
   * Writes the guest cluster at `offset` (cluster-aligned) compressed, as `qemu-img convert
   * -c` does; `data` is the cluster (shorter only for the disk's last, partial cluster). When
   * compression saves less than a sector, the cluster is written normally.
   */
  writeCompressed(offset: number, data: Uint8Array): void {
    this.beginModify();
    checkRange(this.name, this.size, offset, data.length);
    if (offset % this.cs !== 0 || (data.length !== this.cs && offset + data.length !== this.size)) {
      throw new VirtusError('BLOCK_RANGE', `${this.name}: a compressed write must cover one whole cluster`);
    }
    let full = data;
    if (data.length !== this.cs) {
      full = new Uint8Array(this.cs);
      full.set(data);
    }
    const packed = compressCluster(this.header.compressionType, full, this.name);
    if (packed.length > this.cs - 512) {
      this.write(offset, data);
      return;
    }
    const slot = this.l2Slot(offset / this.cs, true)!;
    const t = slot.e.table;
    const cur = this.decode(t.hi(slot.i), t.lo(slot.i));
    const host = this.refs().allocateBytes(packed.length);
    this.file.write(host, packed);
    // qcow2.txt "Compressed Clusters Descriptor": offset in bits 0..x-1, additional 512-byte
    // sectors in bits x..61, x = 62 - (cluster_bits - 8); bit 62 marks it compressed.
    const x = BigInt(62 - (this.header.clusterBits - 8));
    const extra = BigInt(Math.ceil(((host % 512) + packed.length) / 512) - 1);
    const v = (1n << 62n) | (extra << x) | BigInt(host);
    t.set(slot.i, Number(v >> 32n), Number(v & 0xffffffffn));
    this.l2Cache.markDirty(slot.e);
    this.release(cur);
    this.unsynced = true;
  }

  /** True when the cluster's refcount is one (bit 63, or checked and then recorded). */
  private owned(cur: L2Entry, slot: { e: CachedTable; i: number }): boolean {
    if (cur.copied) return true;
    if (this.refs().get(cur.host / this.cs) !== 1) return false;
    const t = slot.e.table;
    t.set(slot.i, (t.hi(slot.i) | COPIED) >>> 0, t.lo(slot.i));
    this.l2Cache.markDirty(slot.e);
    return true;
  }

  /** Schedules the host storage of a replaced L2 entry to be freed after the next flush. */
  private release(old: L2Entry): void {
    if (old.kind === 'compressed') {
      this.pendingFree.push([old.host, old.compressedLength]);
      this.inflated.delete(old.host);
    } else if (old.host !== 0 && (old.kind === 'data' || old.kind === 'zero')) {
      this.pendingFree.push([old.host, this.cs]);
    }
  }

  discard(offset: number, length: number): void {
    this.zeroRange(offset, length, false);
  }

  writeZeroes(offset: number, length: number): void {
    this.zeroRange(offset, length, true);
  }

  private zeroRange(offset: number, length: number, zeroes: boolean): void {
    this.beginModify();
    checkRange(this.name, this.size, offset, length);
    let done = 0;
    while (done < length) {
      const pos = offset + done;
      const inC = pos % this.cs;
      const n = Math.min(this.cs - inC, length - done);
      const whole = inC === 0 && (n === this.cs || pos + n === this.size);
      if (whole) this.zeroCluster(pos / this.cs, zeroes);
      else if (zeroes) this.writeCluster(pos - inC, inC, new Uint8Array(n));
      done += n;
    }
    this.unsynced = true;
  }

  /**
   * Makes a whole cluster read as zeros (`zeroes`) or drops its data (discard): v3 marks it
   * a zero cluster when a backing file would otherwise show through; without a backing file
   * it becomes unallocated. v2 with a backing file has no way to say "zeros" but writing them.
   */
  private zeroCluster(gc: number, zeroes: boolean): void {
    const hasBacking = this.backing !== null;
    if (!this.zeroBit && hasBacking) {
      if (zeroes) this.writeCluster(gc * this.cs, 0, new Uint8Array(this.cs));
      return;
    }
    const slot = this.l2Slot(gc, hasBacking);
    if (!slot) return; // unallocated without a backing file already reads zeros
    const t = slot.e.table;
    const cur = this.decode(t.hi(slot.i), t.lo(slot.i));
    if (hasBacking) {
      if (cur.kind === 'zero' && cur.host === 0) return;
      t.set(slot.i, 0, 1); // qcow2.txt: standard cluster descriptor bit 0, no host cluster
    } else {
      if (cur.kind === 'unallocated') return;
      t.set(slot.i, 0, 0);
    }
    this.l2Cache.markDirty(slot.e);
    this.release(cur);
  }

  /**
   * Makes the whole image unallocated, so every read falls through to the backing file
   * (used after a commit). L1 entries are cleared; the L2 tables and the clusters they
   * name are freed after the next flush.
   */
  makeEmpty(): void {
    this.beginModify();
    for (let l1i = 0; l1i < this.header.l1Size; l1i++) {
      const off = entryOffset(this.l1.hi(l1i), this.l1.lo(l1i));
      if (off === 0) continue;
      const t = this.l2Cache.get(off).table;
      for (let i = 0; i < this.l2Entries; i++) this.release(this.decode(t.hi(i), t.lo(i)));
      this.l2Cache.drop(off);
      this.l1.set(l1i, 0, 0);
      this.l1Dirty(l1i);
      this.pendingFree.push([off, this.cs]);
    }
    this.unsynced = true;
    this.trimOnClose = true;
  }

  /**
   * Before the first change, clear autoclear feature bits (qcow2.txt: a writer must clear
   * the bits it does not maintain; virtus maintains none, e.g. it does not update bitmaps).
   */
  private beginModify(): void {
    if (this.readOnly || this.closed) throw readOnlyError(this.name);
    if (this.modifying) return;
    if (this.header.autoclear !== 0n) {
      this.file.write(HDR.autoclearFeatures, new Uint8Array(8));
      this.file.flush(true);
      this.header.autoclear = 0n;
    }
    this.modifying = true;
  }

  private refs(): Refcounts {
    if (!this.refcounts) throw readOnlyError(this.name);
    return this.refcounts;
  }

  private l1Dirty(i: number): void {
    this.l1DirtyLo = Math.min(this.l1DirtyLo, i);
    this.l1DirtyHi = Math.max(this.l1DirtyHi, i);
  }

  // ---- durability ----

  flush(): void {
    if (this.readOnly || this.closed) return;
    const refs = this.refs();
    const meta = this.l2Cache.hasDirty || this.l1DirtyHi >= 0 || refs.blocksDirty || refs.tableDirty;
    if (!meta && !this.unsynced && this.pendingFree.length === 0) return;
    if (meta) {
      // Step 1: increments and tables nothing on disk names yet.
      refs.writeBlocks();
      for (const e of this.l2Cache.dirtyEntries(true)) this.l2Cache.writeBack(e);
      if (refs.tableDirty) {
        this.file.flush(true);
        refs.writeTable();
      }
      this.file.flush(true); // step 2
      // Step 3: the references.
      for (const e of this.l2Cache.dirtyEntries()) this.l2Cache.writeBack(e);
      if (this.l1DirtyHi >= 0) {
        const from = this.l1DirtyLo * 8;
        const to = this.l1DirtyHi * 8 + 8;
        this.file.write(this.header.l1TableOffset + from, this.l1.bytes.subarray(from, to));
        this.l1DirtyLo = Infinity;
        this.l1DirtyHi = -1;
      }
    }
    this.file.flush(true); // step 4
    this.unsynced = false;
    // Step 5: nothing on disk names these clusters any more.
    const free = this.pendingFree;
    this.pendingFree = [];
    for (const [host, length] of free) refs.decrement(host, length);
  }

  blockStatus(offset: number, length: number): BlockStatus {
    checkRange(this.name, this.size, offset, length);
    const x = this.extent(offset, length);
    const state = x.kind === 'data' || x.kind === 'compressed' ? 'data' : x.kind === 'zero' ? 'zero' : 'backing';
    return { state, length: x.length };
  }

  info(): ImageInfo {
    const h = this.header;
    const info: ImageInfo = {
      format: 'qcow2',
      virtualSize: h.size,
      clusterSize: this.cs,
      qcow2: {
        compat: h.version === 2 ? '0.10' : '1.1',
        compressionType: h.compressionType,
        lazyRefcounts: hasBit(h.compatible, COMPAT.lazyRefcounts),
        refcountBits: 2 ** h.refcountOrder,
        corrupt: hasBit(h.incompatible, INCOMPAT.corrupt),
        extendedL2: this.extL2,
        dirty: hasBit(h.incompatible, INCOMPAT.dirty),
        snapshots: h.nbSnapshots,
      },
    };
    const actual = this.file.allocatedSize?.();
    if (actual !== undefined) info.actualSize = actual;
    if (h.backingFile !== null) info.backingFile = h.backingFile;
    if (h.backingFormat !== null) info.backingFormat = h.backingFormat;
    return info;
  }

  close(): void {
    if (this.closed) return;
    try {
      if (!this.readOnly) {
        this.flush();
        // The decrements of step 5, so that a cleanly closed image has no leaks.
        if (this.refs().blocksDirty) {
          this.refs().writeBlocks();
          this.file.flush(true);
        }
        // After makeEmpty, give the freed tail back, as qemu-img commit does. Everything
        // past the last cluster in use has refcount zero on disk by now.
        if (this.trimOnClose) {
          const end = this.refs().usedEnd() * this.cs;
          if (end < this.file.size()) {
            this.file.truncate(end);
            this.file.flush(false);
          }
        }
      }
    } finally {
      this.closed = true;
      this.file.close();
      this.backing?.close();
    }
  }
}
