/**
 * A write-back cache of cluster-sized metadata tables (L2 tables or refcount blocks), least
 * recently used first out. Dirty entries are never dropped: when only dirty entries are
 * left, `onFull` is asked to write some back (in the order crash consistency requires, which
 * only the owner knows), then the cache tries again.
 */
import { VirtusError } from '../../util/errors.ts';
import { readExact, type HostFile } from '../host-file.ts';
import { Table } from './entries.ts';

/** One cached table. */
export interface CachedTable {
  readonly offset: number;
  readonly table: Table;
  /** Changed in memory since it was last written. */
  dirty: boolean;
  /** Newly allocated and never written: nothing on disk points at it yet. */
  fresh: boolean;
}

export class TableCache {
  private readonly map = new Map<number, CachedTable>();
  private dirtyCount = 0;

  constructor(
    private readonly file: HostFile,
    private readonly clusterSize: number,
    private readonly capacity: number,
    private readonly what: string,
    private readonly onFull: () => void,
  ) {}

  /** The table at host `offset`, read from the file on a miss. */
  get(offset: number): CachedTable {
    const hit = this.map.get(offset);
    if (hit) {
      this.map.delete(offset);
      this.map.set(offset, hit);
      return hit;
    }
    this.makeRoom();
    const bytes = new Uint8Array(this.clusterSize);
    readExact(this.file, offset, bytes, this.what);
    const e: CachedTable = { offset, table: new Table(bytes), dirty: false, fresh: false };
    this.map.set(offset, e);
    return e;
  }

  /** True when the table at `offset` is cached (possibly new, not yet on disk). */
  has(offset: number): boolean {
    return this.map.has(offset);
  }

  /** A new all-zero table at `offset` (a freshly allocated cluster), dirty. */
  create(offset: number): CachedTable {
    if (this.map.has(offset)) throw new VirtusError('QCOW2_CORRUPT', `${this.file.name}: ${this.what} at 0x${offset.toString(16)} allocated twice`);
    this.makeRoom();
    const e: CachedTable = { offset, table: new Table(new Uint8Array(this.clusterSize)), dirty: true, fresh: true };
    this.map.set(offset, e);
    this.dirtyCount++;
    return e;
  }

  markDirty(e: CachedTable): void {
    const cur = this.map.get(e.offset);
    if (cur !== e) {
      // The entry was dropped while its holder still used it: only sound if nothing reloaded it.
      if (cur) throw new Error(`${this.what} cache: stale entry for 0x${e.offset.toString(16)}`);
      this.map.set(e.offset, e);
    }
    if (!e.dirty) {
      e.dirty = true;
      this.dirtyCount++;
    }
  }

  /** Writes one entry back (no barrier) and marks it clean. */
  writeBack(e: CachedTable): void {
    if (!e.dirty) return;
    this.file.write(e.offset, e.table.bytes);
    e.dirty = false;
    e.fresh = false;
    this.dirtyCount--;
  }

  /** The dirty entries, optionally only the fresh (or only the non-fresh) ones. */
  dirtyEntries(fresh?: boolean): CachedTable[] {
    const out: CachedTable[] = [];
    if (this.dirtyCount === 0) return out;
    for (const e of this.map.values()) if (e.dirty && (fresh === undefined || e.fresh === fresh)) out.push(e);
    return out;
  }

  get hasDirty(): boolean {
    return this.dirtyCount > 0;
  }

  /** Forgets a (clean) table, e.g. after its cluster was freed. */
  drop(offset: number): void {
    const e = this.map.get(offset);
    if (!e) return;
    if (e.dirty) this.dirtyCount--;
    this.map.delete(offset);
  }

  private makeRoom(): void {
    if (this.map.size < this.capacity) return;
    if (this.dropOneClean()) return;
    this.onFull();
    this.dropOneClean();
  }

  private dropOneClean(): boolean {
    for (const [k, e] of this.map) {
      if (!e.dirty) {
        this.map.delete(k);
        return true;
      }
    }
    return false;
  }
}
