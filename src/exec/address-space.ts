/**
 * A guest process's address space: the mappings it has asked for (VMAs) and an Sv39 page table
 * (Privileged spec 12.4) that the monitor keeps in guest RAM for the hart to walk. Physical
 * pages are handed out on first touch: a page fault inside a mapping that allows the access
 * populates the page and the instruction runs again; any other fault is the guest's (SIGSEGV).
 *
 * Every write the monitor makes to a page that may hold code goes through GuestRam (loads,
 * zero-fill), which tells the translator, so translations of a freed and reused page are dropped.
 */
import { RAM_BASE } from '../cpu/layout.ts';
import type { GuestRam } from '../machine/ram.ts';
import { E, PROT_EXEC, PROT_READ, PROT_WRITE, TASK_SIZE } from './abi.ts';

const PAGE = 4096;
const PTE_V = 1;
const PTE_R = 2;
const PTE_W = 4;
const PTE_X = 8;
const PTE_U = 16;
const PTE_A = 64;
const PTE_D = 128;

/** A mapping: [start, end) page-aligned, with its PROT_* bits. */
export interface Vma {
  start: number;
  end: number;
  prot: number;
  /** A MAP_SHARED file mapping: the file (guest path) and the file offset of `start`. */
  shared?: SharedFile;
}

/** The file behind a MAP_SHARED mapping. */
export interface SharedFile {
  path: string;
  offset: number;
}

/** A populated page of a shared file mapping, to write back. */
export interface SharedPage {
  path: string;
  offset: number;
  bytes: Uint8Array;
}

/** The part of `v` from `start`, with its file offset moved along. */
function piece(v: Vma, start: number, end: number): Vma {
  const out: Vma = { start, end, prot: v.prot };
  if (v.shared) out.shared = { path: v.shared.path, offset: v.shared.offset + (start - v.start) };
  return out;
}

/** Where the stack ends (its first byte above) and how large it may be (RLIMIT_STACK's default). */
export const STACK_TOP = TASK_SIZE - PAGE;
export const STACK_SIZE = 8 << 20;
/** Mappings without an address are placed top-down below this (under the stack and a gap). */
export const MMAP_BASE = STACK_TOP - STACK_SIZE - (128 << 20);
/** Nothing is mapped below this (the kernel's default vm.mmap_min_addr). */
const MIN_ADDR = 0x10000;

/** The access a fault or a system call makes. */
export const enum Use {
  Read = 0,
  Write = 1,
  Exec = 2,
}

/** Rounds up to a whole page. */
export function pageUp(n: number): number {
  return Math.ceil(n / PAGE) * PAGE;
}

export class AddressSpace {
  /** Mappings, sorted by start, never overlapping. */
  readonly vmas: Vma[] = [];
  /** Populated pages: virtual page number to RAM page index. */
  private readonly pages = new Map<number, number>();
  /** Pages of shared file mappings as the file last had them (only changed pages are written back). */
  private readonly clean = new Map<number, Uint8Array>();
  /**
   * RAM pages given back (munmap, discard), reused first; pages from highWater up have never
   * been handed out. (A list of every free page cost 16 ms of each start to fill.)
   */
  private readonly free: Int32Array;
  private freeTop = 0;
  private readonly view: DataView;
  /** RAM page index of the root page table. */
  readonly root: number;
  /** The program break: its first address and the current break. */
  brkStart = 0;
  brkEnd = 0;
  /** Largest number of RAM pages in use at once (--stats). */
  peakPages = 0;
  /** One past the highest RAM page index ever handed out (fork copies up to here). */
  private highWater = 0;

  /**
   * `flush` empties the hart's TLB: it is called after mappings shrink or lose permissions
   * (munmap, mprotect), as Linux flushes after changing PTEs.
   */
  constructor(private readonly ram: GuestRam, private readonly flush: () => void) {
    const n = ram.size / PAGE;
    this.free = new Int32Array(n);
    this.view = new DataView(ram.bytes.buffer, ram.bytes.byteOffset, ram.size);
    const r = this.alloc();
    if (r < 0) throw new RangeError('no RAM for the page table');
    this.root = r;
  }

  /**
   * Makes this (fresh) address space a copy of `src` for a forked child: the RAM pages in use,
   * page tables included, go to the same RAM addresses, so the tables need no rewriting.
   */
  copyFrom(src: AddressSpace): void {
    if (src.free.length !== this.free.length || src.root !== this.root) throw new RangeError('fork: address spaces of different shapes');
    this.ram.load(RAM_BASE, src.ram.bytes.subarray(0, src.highWater * PAGE));
    this.free.set(src.free.subarray(0, src.freeTop));
    this.freeTop = src.freeTop;
    this.highWater = src.highWater;
    this.peakPages = src.pagesInUse;
    for (const [k, v] of src.pages) this.pages.set(k, v);
    for (const [k, v] of src.clean) this.clean.set(k, v);
    this.vmas.splice(0, this.vmas.length, ...src.vmas.map((v) => ({ ...v })));
    this.brkStart = src.brkStart;
    this.brkEnd = src.brkEnd;
    this.flush();
  }

  /** satp for this address space: Sv39 (mode 8) with the root table's physical page number. */
  satp(): [lo: number, hi: number] {
    return [(RAM_BASE / PAGE + this.root) | 0, (8 << 28) | 0];
  }

  /** RAM pages in use (page tables included). */
  get pagesInUse(): number {
    return this.highWater - this.freeTop;
  }

  private alloc(): number {
    let p: number;
    if (this.freeTop > 0) {
      p = this.free[--this.freeTop]!;
      this.ram.zero(RAM_BASE + p * PAGE, PAGE);
    } else if (this.highWater < this.free.length) {
      // Never handed out: still zero, as the machine's RAM starts (a fork's child gets only the
      // pages below its parent's high-water mark).
      p = this.highWater++;
    } else {
      return -1;
    }
    if (this.pagesInUse > this.peakPages) this.peakPages = this.pagesInUse;
    return p;
  }

  /** The RAM offset of the leaf-level PTE for `va`, making the tables on the way (-1: no RAM). */
  private pteOffset(va: number, create: boolean): number {
    let table = this.root;
    const vpn = Math.floor(va / PAGE);
    for (let level = 2; level > 0; level--) {
      const off = table * PAGE + ((vpn >>> (9 * level)) & 511) * 8; // VPN[level]: bits of vpn below 32
      const pte = this.view.getUint32(off, true);
      if (pte & PTE_V) {
        table = (pte >>> 10) - RAM_BASE / PAGE;
        continue;
      }
      if (!create) return -1;
      const t = this.alloc();
      if (t < 0) return -1;
      this.view.setUint32(off, (((RAM_BASE / PAGE + t) << 10) | PTE_V) >>> 0, true);
      this.view.setUint32(off + 4, 0, true);
      table = t;
    }
    return table * PAGE + (vpn % 512) * 8;
  }

  private setPte(va: number, page: number, prot: number): void {
    const off = this.pteOffset(va, true);
    if (off < 0) return;
    let f = 0;
    if (page >= 0 && prot & (PROT_READ | PROT_WRITE | PROT_EXEC)) {
      f = PTE_V | PTE_U | PTE_A | PTE_D;
      if (prot & (PROT_READ | PROT_WRITE)) f |= PTE_R; // W without R is reserved (12.3.1): Linux maps it readable
      if (prot & PROT_WRITE) f |= PTE_W;
      if (prot & PROT_EXEC) f |= PTE_X;
    }
    this.view.setUint32(off, f ? (((RAM_BASE / PAGE + page) << 10) | f) >>> 0 : 0, true);
  }

  /** The mapping holding `va`, or undefined. */
  find(va: number): Vma | undefined {
    let lo = 0;
    let hi = this.vmas.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const v = this.vmas[mid]!;
      if (va < v.start) hi = mid - 1;
      else if (va >= v.end) lo = mid + 1;
      else return v;
    }
    return undefined;
  }

  /** True when no mapping overlaps [start, end). */
  isFree(start: number, end: number): boolean {
    return !this.vmas.some((v) => v.start < end && v.end > start);
  }

  /** A free range of `len` bytes, top-down below MMAP_BASE; -ENOMEM when there is none. */
  findFree(len: number): number {
    let end = MMAP_BASE;
    for (let i = this.vmas.length - 1; i >= 0; i--) {
      const v = this.vmas[i]!;
      if (v.start >= end) continue;
      if (v.end <= end - len) break;
      end = v.start;
    }
    return end - len >= MIN_ADDR ? end - len : -E.ENOMEM;
  }

  /** Adds a mapping over a free range (the caller has checked or cleared it). */
  insert(start: number, end: number, prot: number, shared?: SharedFile): void {
    let i = 0;
    while (i < this.vmas.length && this.vmas[i]!.start < start) i++;
    if (shared) {
      this.vmas.splice(i, 0, { start, end, prot, shared });
      return;
    }
    const before = this.vmas[i - 1]?.shared ? undefined : this.vmas[i - 1];
    const after = this.vmas[i]?.shared ? undefined : this.vmas[i];
    // Neighbours with the same protection become one mapping, as Linux merges anonymous VMAs.
    if (before && before.end === start && before.prot === prot) {
      before.end = end;
      if (after && after.start === end && after.prot === prot) {
        before.end = after.end;
        this.vmas.splice(i, 1);
      }
    } else if (after && after.start === end && after.prot === prot) {
      after.start = start;
    } else {
      this.vmas.splice(i, 0, { start, end, prot });
    }
  }

  /** Removes [start, end) from the mappings, splitting those that straddle it; returns what was removed. */
  private carve(start: number, end: number): Vma[] {
    const removed: Vma[] = [];
    const kept: Vma[] = [];
    for (const v of this.vmas) {
      if (v.end <= start || v.start >= end) {
        kept.push(v);
        continue;
      }
      if (v.start < start) kept.push(piece(v, v.start, start));
      removed.push(piece(v, Math.max(v.start, start), Math.min(v.end, end)));
      if (v.end > end) kept.push(piece(v, end, v.end));
    }
    this.vmas.splice(0, this.vmas.length, ...kept);
    return removed;
  }

  /** Unmaps [start, end) (page-aligned): its pages return to the free pool. */
  unmap(start: number, end: number): void {
    const removed = this.carve(start, end);
    if (removed.length === 0) return;
    for (const v of removed) this.discard(v.start, v.end);
  }

  /**
   * The pages of shared file mappings in [start, end) changed since they were read from their
   * file or last written back, with their file offsets; they count as written back from now on.
   */
  sharedPages(start: number, end: number): SharedPage[] {
    const out: SharedPage[] = [];
    for (const v of this.vmas) {
      if (!v.shared || v.end <= start || v.start >= end) continue;
      for (const vpn of this.populated(Math.max(v.start, start), Math.min(v.end, end))) {
        const p = this.pages.get(vpn)!;
        const bytes = this.ram.bytes.subarray(p * PAGE, p * PAGE + PAGE);
        const was = this.clean.get(vpn);
        if (was && bytes.every((b, i) => b === was[i])) continue;
        this.clean.set(vpn, bytes.slice());
        out.push({ path: v.shared.path, offset: v.shared.offset + (vpn * PAGE - v.start), bytes });
      }
    }
    return out;
  }

  /** Notes the populated pages of [start, end) as their file has them (a shared mapping just read). */
  markClean(start: number, end: number): void {
    for (const vpn of this.populated(start, end)) {
      const p = this.pages.get(vpn)!;
      this.clean.set(vpn, this.ram.bytes.slice(p * PAGE, p * PAGE + PAGE));
    }
  }

  /** Drops the populated pages of [start, end) but keeps the mappings: they read as zeros again. */
  discard(start: number, end: number): void {
    for (const vpn of this.populated(start, end)) {
      const p = this.pages.get(vpn)!;
      this.setPte(vpn * PAGE, -1, 0);
      this.pages.delete(vpn);
      this.clean.delete(vpn);
      this.free[this.freeTop++] = p;
    }
    this.flush();
  }

  /** The populated virtual page numbers in [start, end), walking whichever is smaller: the range or the pages. */
  private populated(start: number, end: number): number[] {
    if ((end - start) / PAGE > this.pages.size) return [...this.pages.keys()].filter((vpn) => vpn * PAGE >= start && vpn * PAGE < end);
    const out: number[] = [];
    for (let vpn = start / PAGE; vpn < end / PAGE; vpn++) if (this.pages.has(vpn)) out.push(vpn);
    return out;
  }

  /** Changes the protection of [start, end); -ENOMEM when part of it is not mapped (mprotect(2)). */
  protect(start: number, end: number, prot: number): number {
    let covered = 0;
    for (const v of this.vmas) if (v.start < end && v.end > start) covered += Math.min(v.end, end) - Math.max(v.start, start);
    if (covered !== end - start) return -E.ENOMEM;
    for (const v of this.carve(start, end)) this.insert(v.start, v.end, prot, v.shared);
    for (const vpn of this.populated(start, end)) this.setPte(vpn * PAGE, this.pages.get(vpn)!, prot);
    this.flush();
    return 0;
  }

  /** The RAM page backing `va`, populating it when its mapping allows `use`; -1 otherwise. */
  page(va: number, use: Use, force = false): number {
    const vpn = Math.floor(va / PAGE);
    const v = this.find(va);
    if (!v) return -1;
    const need = use === Use.Write ? PROT_WRITE : use === Use.Exec ? PROT_EXEC : PROT_READ | PROT_WRITE;
    if (!force && !(v.prot & need)) return -1;
    const have = this.pages.get(vpn);
    if (have !== undefined) return have;
    const p = this.alloc();
    if (p < 0) return -1;
    this.pages.set(vpn, p);
    this.setPte(vpn * PAGE, p, v.prot);
    return p;
  }

  /**
   * A page fault at `va`: true when it was a page not yet populated in a mapping that allows
   * the access (the instruction runs again), false when the access is the guest's fault.
   */
  fault(va: number, use: Use): boolean {
    if (this.pages.has(Math.floor(va / PAGE))) return false;
    return this.page(va, use) >= 0;
  }

  /** True when RAM ran out (the last failed population was for want of a page). */
  get exhausted(): boolean {
    return this.freeTop === 0 && this.highWater === this.free.length;
  }

  /** Copies `len` bytes of guest memory at `va`; null when a page is not readable (EFAULT). */
  read(va: number, len: number): Uint8Array | null {
    const out = new Uint8Array(len);
    let done = 0;
    while (done < len) {
      const a = va + done;
      const p = this.page(a, Use.Read);
      if (p < 0) return null;
      const off = a % PAGE;
      const n = Math.min(PAGE - off, len - done);
      out.set(this.ram.bytes.subarray(p * PAGE + off, p * PAGE + off + n), done);
      done += n;
    }
    return out;
  }

  /**
   * Writes `data` to guest memory at `va`; false when a page is not writable (EFAULT). `force`
   * writes whatever the protection (the loader filling read-only segments).
   */
  write(va: number, data: Uint8Array, force = false): boolean {
    let done = 0;
    while (done < data.length) {
      const a = va + done;
      const p = this.page(a, Use.Write, force);
      if (p < 0) return false;
      const off = a % PAGE;
      const n = Math.min(PAGE - off, data.length - done);
      this.ram.load(RAM_BASE + p * PAGE + off, data.subarray(done, done + n));
      done += n;
    }
    return true;
  }

  /** A NUL-terminated string at `va` (at most `max` bytes), or null on a fault or no NUL. */
  readString(va: number, max = 4096): string | null {
    const bytes: number[] = [];
    while (bytes.length < max) {
      const chunk = this.read(va + bytes.length, Math.min(256, PAGE - ((va + bytes.length) % PAGE)));
      if (!chunk) return null;
      const z = chunk.indexOf(0);
      if (z >= 0) {
        for (let i = 0; i < z; i++) bytes.push(chunk[i]!);
        return new TextDecoder().decode(new Uint8Array(bytes));
      }
      for (const b of chunk) bytes.push(b);
    }
    return null;
  }

  /** Moves the program break (brk(2)): returns the new break, or the old one when refused. */
  brk(want: number): number {
    if (want < this.brkStart) return this.brkEnd;
    const oldTop = pageUp(this.brkEnd);
    const newTop = pageUp(want);
    if (newTop > oldTop) {
      if (!this.isFree(oldTop, newTop) || newTop >= MMAP_BASE) return this.brkEnd;
      this.insert(oldTop, newTop, PROT_READ | PROT_WRITE);
    } else if (newTop < oldTop) {
      this.unmap(newTop, oldTop);
    }
    this.brkEnd = want;
    return want;
  }
}
