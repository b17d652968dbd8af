/**
 * The translating engine: runs guest code from WebAssembly regions where they exist and from the
 * reference interpreter elsewhere, counting how hot each page is and compiling hot pages on the
 * spot. (Compiling in the background, with WebAssembly.compile, was slower: a page waited tens
 * of milliseconds for its module, interpreted meanwhile, while V8's baseline compiler takes
 * about a millisecond for a page's module. The browser runs machines in a worker, where
 * synchronous compilation is allowed at any size.)
 *
 * Exactness: the engine leaves run() at exactly the instructions where the interpreter would
 * (traps, device accesses, system instructions that end a slice, the budget), so both engines
 * take interrupts at the same instruction counts and a deterministic run is the same under
 * either. A machine that is not deterministic lets a run end early at the block its budget
 * cuts (JitOptions.exact).
 *
 * Self-modifying code: a page with translated code is flagged PAGE_CODE, which keeps every
 * store to it on the slow path; such a store (or device DMA) drops the page's regions.
 */
import type { Engine } from '../cpu/handler.ts';
import { interpreterHelper } from '../cpu/interp.ts';
import { clearDecoded, JC_PAGES, PAGE_CODE, S, type Hart } from '../cpu/hart.ts';
import { fetchFill } from '../cpu/memory.ts';
import {
  MMU_COUNT, RAM_BASE, RAM_HOST, TLB_ENTRIES, TLB_INVALID, TLB_WORDS, TLBW_ADDEND, TLBW_EXEC, TLBW_WRITE,
} from '../cpu/layout.ts';
import { Exit } from './region.ts';
import { refillHelper, slowPathHelper, type SlowPathHost } from './slow-path.ts';
import { translateRegion } from './translate.ts';
import { tailCallsSupported } from './wasm.ts';
import { Trampoline } from './trampoline.ts';

/** Instructions interpreted in a page before it is compiled (chosen by measurement: bench/). */
export const HOT_THRESHOLD = 48000;
/** Instructions interpreted before the dispatcher looks for a translation again. */
const COLD_STEP = 1024;
/** The same, in a page that has a translation but not for this entry point. */
const COLD_STEP_COMPILED = 64;
/**
 * A page with a translation compiles the code at its new entry points on its own, as an
 * extension, once they have run this fraction of the threshold (a whole page again cost more
 * than its first translation); after MAX_EXTENSIONS of them the page is translated whole
 * again, so that jumps between the pieces stay inside WebAssembly.
 */
const EXTENSION_DIVISOR = 8;
const MAX_EXTENSIONS = 4;
/** A page rewritten this often is data next to code: stop translating it. */
const MAX_INVALIDATIONS = 16;
/** Sweeps in a row a region must go unused before a sweep drops it (sweep()). */
export const SWEEP_AGE = 3;

/** In Region.entryIndex: an entry point without translated code, already in `entries`. */
const ENTRY_SEEN = -2;
/**
 * The entry index of every region without a translation: all -1, never written (most pages a
 * boot visits stay cold, and 8 KiB of index each made 15 MiB a machine).
 */
const NO_ENTRIES = new Int32Array(2048).fill(-1);

const S_MINSTRET = S.minstret;
const S_TLBGEN = S.tlbGen;
const S_PRIV = S.priv;
const S_JCHITS = S.jcHits;

interface Region {
  /** Indices in the trampoline's table of the translation's functions, then its extensions' (empty without one). */
  slots: number[];
  vLo: number;
  vHi: number;
  ppage: number;
  entries: Set<number>;
  /**
   * For each halfword offset of the page: group << 12 | block where a block of the translation
   * starts, ENTRY_SEEN where the dispatcher has already noted an entry in `entries`, else -1.
   * NO_ENTRIES while the region has no translation.
   */
  entryIndex: Int32Array;
  /** Nonzero at each halfword offset where the interpreter has run an instruction. */
  seen: Uint8Array;
  /** Instructions interpreted here since the last compile. */
  heat: number;
  /** Entries (page offsets) seen since the installed translation was made. */
  pending: Set<number>;
  /** Extensions installed since the page was last translated whole. */
  extensions: number;
  /** Run here (translated or interpreted) since the last sweep. */
  used: boolean;
  /** Sweeps in a row that found the region unused. */
  idle: number;
}

export interface JitStats {
  /** Modules compiled: whole pages, and extensions (code at a translated page's new entries). */
  regionsCompiled: number;
  extensions: number;
  blocksTranslated: number;
  insnsTranslated: number;
  wasmBytes: number;
  /** Milliseconds spent translating guest code to WebAssembly, and compiling that. */
  translateMs: number;
  compileMs: number;
  /** Region entries from the engine (each one a lookup that found compiled code). */
  regionRuns: number;
  /** Region entries chained in WebAssembly through the jump cache (its hits). */
  jumpCacheHits: number;
  /** Instructions run by the interpreter inside this engine (cold code, slow paths excluded). */
  interpretedInsns: number;
  /**
   * Instructions translated code ran through the slow-path helper (a TLB miss no refill could
   * serve, a device, a floating-point case without a fast path, ...).
   */
  slowPaths: number;
  invalidations: number;
  /** Translations dropped because their code had not run for a while (sweep()). */
  swept: number;
}

export interface JitOptions {
  hart: Hart;
  memory: WebAssembly.Memory;
  /** Every hart of the machine (their TLBs lose write entries for pages that get code). */
  harts: Hart[];
  /**
   * Every hart's engine, this one included (default: this one alone). A store into a page of
   * translated code drops the page's translations in all of them: the PAGE_CODE flag is one
   * per page for the machine.
   */
  peers?: JitEngine[];
  threshold?: number;
  /** Whether regions use WebAssembly tail calls (default: when the engine has them; tests turn them off). */
  tailCalls?: boolean;
  /**
   * Whether run() uses its whole budget (default true: deterministic runs and the lockstep
   * tests need it). The last block that the budget cuts is then finished by the interpreter,
   * and the next run starts in the middle of a translated block: an entry point the page's
   * translation lacks, which costs interpreted instructions and an extension of the page. When
   * false, a run that has retired something returns at the boundary of the block it cannot
   * finish instead. (A hart in its own thread, in 100,000-instruction slices, interpreted twice
   * the instructions and translated 1.6 times the code of a one-hart boot; a run that has
   * retired nothing still interprets, so every run makes progress.)
   */
  exact?: boolean;
}

export class JitEngine implements Engine {
  private readonly h: Hart;
  private readonly harts: Hart[];
  private readonly peers: JitEngine[];
  private readonly shared: boolean;
  private readonly byPage: Array<Region[] | undefined>;
  /** The region last looked up through each fetch TLB entry (checked before use). */
  private readonly byTlb: Array<Region | null>;
  private readonly banned: Uint8Array;
  private readonly invalidationsPerPage: Uint8Array;
  private readonly threshold: number;
  private readonly tailCalls: boolean;
  private readonly exact: boolean;
  private readonly memory: WebAssembly.Memory;
  private readonly tramp: Trampoline;
  /** Every region's TLB refill (see slow-path.ts). */
  private readonly refill: ReturnType<typeof refillHelper>;
  /** The TLB generation last seen (the jump cache is voided when it moves). */
  private seenTlbGen = -1;
  /** minstret + budget when the trampoline was last entered (the slow-path helper's `end`). */
  private sliceEnd = 0;
  /**
   * With harts in host threads: the hart's attention word (machine/smp-shared.ts), which other
   * threads set when they want it to leave run() (requests, an IPI, a stop); looked at between
   * regions, and by translated code at each block (its byte address).
   */
  private inbox: Int32Array | null = null;
  private inboxAt = 0;
  readonly stats: JitStats = {
    regionsCompiled: 0, extensions: 0, blocksTranslated: 0, insnsTranslated: 0, wasmBytes: 0, translateMs: 0, compileMs: 0,
    regionRuns: 0, jumpCacheHits: 0, interpretedInsns: 0, slowPaths: 0, invalidations: 0, swept: 0,
  };

  constructor(o: JitOptions) {
    this.h = o.hart;
    this.harts = o.harts;
    this.peers = o.peers ?? [this];
    this.shared = typeof SharedArrayBuffer !== 'undefined' && o.memory.buffer instanceof SharedArrayBuffer;
    const pages = o.hart.ramSize / 4096;
    this.byPage = new Array<Region[] | undefined>(pages);
    this.byTlb = new Array<Region | null>(MMU_COUNT * TLB_ENTRIES).fill(null);
    this.banned = new Uint8Array(pages);
    this.invalidationsPerPage = new Uint8Array(pages);
    this.threshold = o.threshold ?? HOT_THRESHOLD;
    this.tailCalls = o.tailCalls ?? tailCallsSupported();
    this.exact = o.exact ?? true;
    this.memory = o.memory;
    this.tramp = new Trampoline(o.hart, o.memory, this.shared);
    this.refill = refillHelper(o.hart);
  }

  /**
   * Returns the engine to its power-on state (a machine reset, a guest reboot): every region,
   * table slot, jump-cache entry, ban and PAGE_CODE flag is dropped, and the hart's decode
   * cache with them. The statistics keep counting. Call it with the harts stopped; the order
   * relative to reloading RAM and resetting the harts does not matter.
   */
  reset(): void {
    this.tramp.reset();
    this.byPage.fill(undefined);
    this.byTlb.fill(null);
    this.banned.fill(0);
    this.invalidationsPerPage.fill(0);
    const flags = this.h.pageFlags;
    for (let p = 0; p < flags.length; p++) if (flags[p]! & PAGE_CODE) Atomics.and(flags, p, ~PAGE_CODE);
    this.h.jcPages.fill(0);
    this.seenTlbGen = -1;
    clearDecoded(this.h.decoded);
  }

  /**
   * Forgets the regions whose code has not run in the last SWEEP_AGE sweeps: their translations
   * (V8 frees a module's code and bytes once nothing references it), the jump-cache entries into
   * them, and what was noted about their pages. A boot runs most of its code once, and an idle
   * guest runs a few pages of it: the rest held some 80 MiB of a machine's host memory. Code
   * that runs again is translated again once it is hot; an idle Linux runs some of its code
   * every few seconds (writeback, the journal's commit), which a single sweep's memory would
   * translate again and again. (Its heat stays: setting it back to zero at each sweep spared an
   * idle guest some compiles, but left code that runs between a user's commands interpreted, and
   * made interactive runs slower.) The jump cache is cleared, so code that runs only by chaining
   * through it comes back through run() and counts as used. Returns the translations dropped.
   * Call it between runs, like reset().
   */
  sweep(): number {
    let dropped = 0;
    for (let p = 0; p < this.byPage.length; p++) {
      const list = this.byPage[p];
      if (!list) continue;
      let kept = 0;
      for (const r of list) {
        if (r.used) {
          r.used = false;
          r.idle = 0;
          list[kept++] = r;
        } else if (++r.idle < SWEEP_AGE) {
          list[kept++] = r;
        } else if (r.slots.length) {
          this.tramp.retire(r.slots);
          r.slots = [];
          dropped++;
        }
      }
      list.length = kept;
      if (kept === 0) this.byPage[p] = undefined;
    }
    this.byTlb.fill(null);
    this.tramp.clear();
    this.stats.swept += dropped;
    return dropped;
  }

  /** The slow-path helper's engine side (see slow-path.ts). */
  private readonly slowHost: SlowPathHost = {
    stats: this.stats,
    sliceEnd: () => this.sliceEnd,
    remapped: () => {
      this.seenTlbGen = this.h.s[S_TLBGEN]!;
      this.tramp.clear();
    },
  };

  /** The low 32 bits of minstret (differences of these count instructions within a run). */
  private instretLo(): number {
    return this.h.s[S_MINSTRET]!;
  }

  run(budget: number): number {
    const h = this.h;
    const PC = h.pc;
    const T = h.tlb;
    const start = this.instretLo();
    interpreterHelper.prepare(h);
    let done = 0;
    this.tramp.check();
    const inbox = this.inbox;
    while (done < budget) {
      const left = budget - done;
      if (inbox !== null && Atomics.load(inbox, this.inboxAt) !== 0) return done;
      if (h.s[S_TLBGEN] !== this.seenTlbGen) {
        this.seenTlbGen = h.s[S_TLBGEN]!;
        this.tramp.clear();
      }
      const pcLo = PC[0]!;
      const pcHi = PC[1]!;
      const fMmu = h.fetchMmu();
      const entry = fMmu * TLB_ENTRIES + ((pcLo >>> 12) & (TLB_ENTRIES - 1));
      const e = entry * TLB_WORDS;
      if (T[e + TLBW_EXEC] !== (pcLo & ~0xfff) || T[e + TLBW_EXEC + 1] !== pcHi) {
        // Fill the fetch TLB here, so that the page's translation is found (a fetch fault is
        // taken as the interpreter would take it, and ends the run there).
        if (!fetchFill(h, fMmu, pcLo, pcHi)) return done;
        continue;
      }
      const ppage = (((pcLo + T[e + TLBW_ADDEND]!) >>> 0) - RAM_HOST) >>> 12;
      // The region last found through this TLB entry, if it is still the page's.
      let region = this.byTlb[entry];
      if (!region || region.vLo !== (pcLo & ~0xfff) || region.vHi !== pcHi || region.ppage !== ppage) {
        region = this.region(ppage, pcLo & ~0xfff, pcHi);
        this.byTlb[entry] = region;
      }
      const off = pcLo & 0xfff;
      if (region) {
        region.used = true;
        const idx = region.entryIndex[off >>> 1]!;
        if (idx >= 0) {
          this.stats.regionRuns++;
          const slot = region.slots[idx >>> 12]!;
          const block = idx & 0xfff;
          this.tramp.remember(pcLo, pcHi, h.s[S_PRIV]!, slot, block);
          h.jcPages[(pcLo >>> 12) & (JC_PAGES - 1)] = 1;
          this.sliceEnd = h.s[S_MINSTRET + 1]! * 0x1_0000_0000 + (h.s[S_MINSTRET]! >>> 0) + left;
          const st = this.tramp.enter(slot, block, left);
          this.stats.jumpCacheHits = h.s[S_JCHITS]! >>> 0;
          done = (this.instretLo() - start) >>> 0;
          if (st === Exit.Continue) continue;
          if (st === Exit.Stop) return done;
          if (st === Exit.Budget) return !this.exact && done > 0 ? done : done + this.interpret(budget - done, false);
          // Exit.Interp: one instruction the region does not translate (system, illegal, ...).
          if (done >= budget) return done;
          done += this.interpret(1, false);
          if (interpreterHelper.stoppedAtExit()) return done;
          continue;
        }
        if (idx === -1) {
          if (region.entryIndex !== NO_ENTRIES) region.entryIndex[off >>> 1] = ENTRY_SEEN;
          if (!region.entries.has(off)) {
            region.entries.add(off);
            region.pending.add(off);
          }
        }
      }
      // Cold code: interpret until the pc leaves this page, or for a short while, then look
      // again (a loop that never leaves its page must find its translation once it is made).
      const n = this.interpret(Math.min(left, region?.slots.length ? COLD_STEP_COMPILED : COLD_STEP), true, region?.seen ?? null);
      done += n;
      if (region) this.heat(region, n);
      if (interpreterHelper.stoppedAtExit()) return done;
    }
    return done;
  }

  private interpret(budget: number, stopAtPageChange: boolean, seen: Uint8Array | null = null): number {
    const n = interpreterHelper.run(budget, stopAtPageChange, seen);
    this.stats.interpretedInsns += n;
    return n;
  }

  /** The region for (physical page, virtual page), made on first sight. Null for banned pages. */
  private region(ppage: number, vLo: number, vHi: number): Region | null {
    if (this.banned[ppage]) return null;
    let list = this.byPage[ppage];
    if (list) {
      for (const r of list) if (r.vLo === vLo && r.vHi === vHi) return r;
    } else {
      list = this.byPage[ppage] = [];
    }
    const r: Region = {
      slots: [], vLo, vHi, ppage, entries: new Set(), entryIndex: NO_ENTRIES, seen: new Uint8Array(2048),
      heat: 0, pending: new Set(), extensions: 0, used: true, idle: 0,
    };
    list.push(r);
    return r;
  }

  private heat(r: Region, n: number): void {
    r.heat += n;
    if (r.slots.length === 0) {
      if (r.heat >= this.threshold) this.compile(r);
    } else if (r.pending.size !== 0) {
      if (r.heat >= (r.extensions < MAX_EXTENSIONS ? this.threshold / EXTENSION_DIVISOR : this.threshold)) this.compile(r);
    }
  }

  private compile(r: Region): void {
    const t0 = performance.now();
    const m16 = this.h.m16;
    const base = RAM_HOST + r.ppage * 4096;
    // The page's virtual address as a signed Number: exact for every canonical Sv39/Sv48 address
    // and for RAM without translation.
    const vpage = r.vHi * 0x1_0000_0000 + (r.vLo >>> 0);
    if (!Number.isSafeInteger(vpage)) {
      this.ban(r.ppage);
      return;
    }
    // An extension translates the code reachable from the new entry points only. It takes in
    // the blocks the page's earlier translations have that lead back to the new code, rather
    // than leaving for them: a loop whose blocks were found at different times (an entry in
    // its middle where a slice ended, a path first taken later) would otherwise bounce between
    // modules through the jump cache on every iteration.
    const extend = r.slots.length !== 0 && r.extensions < MAX_EXTENSIONS;
    let earlier: Set<number> | undefined;
    if (extend) {
      earlier = new Set();
      for (let i = 0; i < 2048; i++) if (r.entryIndex[i]! >= 0) earlier.add(i * 2);
    }
    const out = translateRegion(
      { vpage, half: (off) => m16[(base + off) >>> 1]!, entries: extend ? r.pending : r.entries, seen: r.seen, earlier },
      { shared: this.shared, maxPages: 65536, ...(this.inbox ? { attention: this.inbox.byteOffset + 4 * this.inboxAt } : {}) },
      this.h.base,
      this.tailCalls,
    );
    r.heat = 0;
    r.pending.clear();
    if (!out) return;
    // From now on every store to the page must be seen (its contents were just read).
    this.markCode(r.ppage);
    const t1 = performance.now();
    this.stats.translateMs += t1 - t0;
    let inst: WebAssembly.Instance;
    try {
      inst = new WebAssembly.Instance(new WebAssembly.Module(out.bytes), {
        env: { mem: this.memory, slow: slowPathHelper(this.h, out.slow, this.slowHost), refill: this.refill },
      });
    } catch (err) {
      // A translator bug must not stop the guest: it keeps running on the interpreter.
      this.ban(r.ppage);
      console.error(`virtus: jit: could not compile the page at 0x${(r.vLo >>> 0).toString(16)}: ${(err as Error).message}`);
      return;
    }
    this.stats.compileMs += performance.now() - t1;
    if (extend) {
      // The extension's functions follow the page's others in its slots.
      const first = r.slots.length;
      this.install(r, inst, out.groups);
      for (const b of out.blocks) {
        if (r.entryIndex[b.off >>> 1]! < 0) r.entryIndex[b.off >>> 1] = ((first + b.group) << 12) | b.local;
      }
      r.extensions++;
      this.stats.extensions++;
    } else {
      // Fresh slots each time: jump cache entries into the previous translation stay valid (it
      // is the same code, with fewer blocks), so the cache need not be cleared.
      this.tramp.retire(r.slots);
      r.slots = [];
      this.install(r, inst, out.groups);
      if (r.entryIndex === NO_ENTRIES) r.entryIndex = new Int32Array(2048);
      r.entryIndex.fill(-1);
      for (const b of out.blocks) r.entryIndex[b.off >>> 1] = (b.group << 12) | b.local;
      r.extensions = 0;
    }
    this.stats.regionsCompiled++;
    this.stats.blocksTranslated += out.blocks.length;
    this.stats.insnsTranslated += out.insns;
    this.stats.wasmBytes += out.bytes.length;
  }

  /** Puts a module's functions (exports "0" .. groups - 1) in fresh table slots, appended to the region's. */
  private install(r: Region, inst: WebAssembly.Instance, groups: number): void {
    r.slots.push(...this.tramp.install(Array.from({ length: groups }, (_, g) => inst.exports[String(g)]!)));
  }

  /** Never translates the page again (its regions are no longer looked up). */
  private ban(ppage: number): void {
    this.banned[ppage] = 1;
    this.byTlb.fill(null);
  }

  /** Flags a page as holding code and removes fast write entries for it from every TLB. */
  private markCode(ppage: number): void {
    const flags = this.h.pageFlags;
    // Atomic: another thread's hart may set or clear the page's other flags meanwhile.
    if (Atomics.or(flags, ppage, PAGE_CODE) & PAGE_CODE) return;
    const hostPage = RAM_HOST + ppage * 4096;
    for (const h of this.harts) {
      h.voidTlb2(); // its store entries for the page, wherever they are
      const t = h.tlb;
      for (let e = 0; e < MMU_COUNT * TLB_ENTRIES * TLB_WORDS; e += TLB_WORDS) {
        if (t[e + TLBW_WRITE] === TLB_INVALID) continue;
        if ((((t[e + TLBW_WRITE]! + t[e + TLBW_ADDEND]!) >>> 0) & ~0xfff) === hostPage) {
          t[e + TLBW_WRITE] = TLB_INVALID;
          t[e + TLBW_WRITE + 1] = TLB_INVALID;
        }
      }
    }
  }

  /**
   * Guest physical [pa, pa + size) was written (a store by any hart, or device DMA): drop the
   * translations of every page it touched, in every hart's engine, before the writer goes on.
   */
  codeWritten(pa: number, size: number): void {
    const first = Math.max(0, Math.floor((pa - RAM_BASE) / 4096));
    const last = Math.min(this.byPage.length - 1, Math.floor((pa - RAM_BASE + size - 1) / 4096));
    for (let p = first; p <= last; p++) {
      if (!(this.h.pageFlags[p]! & PAGE_CODE)) continue;
      // Test and clear in one step: of writers in several threads, one drops the page.
      if (!(Atomics.and(this.h.pageFlags, p, ~PAGE_CODE) & PAGE_CODE)) continue;
      for (const e of this.peers) e.dropPage(p);
    }
  }

  /**
   * Leaves run() whenever `words[at]` is nonzero (another thread wants the hart's attention:
   * machine/hart-thread.ts), between regions and, in code translated from now on, at the next
   * block. Call it before the engine first runs.
   */
  setInbox(words: Int32Array, at: number): void {
    this.inbox = words;
    this.inboxAt = at;
  }

  /** Drops this engine's translations of every page (its own requests overflowed: hart-thread.ts). */
  dropAll(): void {
    for (let p = 0; p < this.byPage.length; p++) if (this.byPage[p]) this.dropPage(p);
  }

  /** Drops this engine's translations of RAM page `p` (its PAGE_CODE flag is already clear). */
  dropPage(p: number): void {
    const list = this.byPage[p];
    if (!list) return;
    this.stats.invalidations++;
    for (const r of list) {
      r.heat = 0;
      r.seen.fill(0);
      r.entryIndex = NO_ENTRIES;
      this.tramp.retire(r.slots);
      r.slots = [];
    }
    this.tramp.clear();
    if (++this.invalidationsPerPage[p]! >= MAX_INVALIDATIONS) {
      this.ban(p);
      this.byPage[p] = undefined;
    }
  }
}
