/**
 * Region translation: the hot code of one guest page (keyed by its virtual and physical page)
 * becomes one WebAssembly module. Blocks are found from the entry points seen so far by
 * following direct branches and fall-throughs within the page, and grouped into functions (a
 * guest function and its loops, see partition); a function dispatches among its blocks with a
 * loop around a br_table, and reaches the others of its page with tail calls where the engine
 * has them, so control that stays in the page never leaves WebAssembly. Anything the region
 * does not cover returns to the dispatcher (engine.ts).
 */
import { HART_BASE, HART_BLOCK } from '../cpu/layout.ts';
import { decode } from '../isa/decode.ts';
import { Flag, Kind } from '../isa/table.ts';
import { BlockEmitter, leaveFunction } from './emit.ts';
import { tlb2Function } from './emit-mem.ts';
import { fmaFunction } from './fma-rne.ts';
import { Exit, loadDataTlb, Locals, P_BUDGET, P_END, P_ENTRY, SlowPaths, storeInstret, type BlockRef, type Insn } from './region.ts';
import { AtomicOp, Code, encodeModule, F64, I32, I64, Op, tailCallsSupported } from './wasm.ts';

/** Most instructions in one block (bounds compile size and the time between budget checks). */
const MAX_BLOCK = 128;
/** Most blocks in one region. */
const MAX_BLOCKS = 512;

export interface RegionSource {
  /** Virtual address of the page (page-aligned), as a signed Number. */
  vpage: number;
  /** Reads the halfword at a byte offset of the page (physical contents). */
  half(off: number): number;
  /** Page offsets where execution has entered the page. */
  entries: Iterable<number>;
  /**
   * Nonzero at each halfword offset where an instruction has run. When given, only code that
   * has run is translated: a path never taken leaves the region (to be translated if it gets hot).
   */
  seen?: Uint8Array;
  /**
   * Page offsets where blocks of the page's earlier translations start (an extension's
   * translation): of those, only the ones on a path back to new code are translated again.
   */
  earlier?: Set<number>;
}

export interface TranslatedRegion {
  bytes: Uint8Array<ArrayBuffer>;
  /** Each block: its page offset, the function (export) it is in, its index there. */
  blocks: Array<{ off: number; group: number; local: number }>;
  /** Functions in the module, exported as "0", "1", ... */
  groups: number;
  /** Guest instructions translated. */
  insns: number;
  /** What the module's `slow(k, budget)` import needs (bind it per instance). */
  slow: SlowPaths;
}

export interface Block {
  off: number;
  insns: Insn[];
  /**
   * How the block ends when its last instruction does not transfer control: on to the next
   * instruction, back to the dispatcher to interpret it, or with an instruction whose second
   * half is on the next page (the interpreter runs it in place, through `slow`).
   */
  end: 'fall' | 'interp' | 'control' | 'straddle';
}

/** Whether the instruction at `off` is a 32-bit one that straddles the end of the page. */
function straddles(src: RegionSource, off: number): boolean {
  return off === 4094 && (src.half(off) & 3) === 3;
}

/** Decodes the instruction at `off`, or null when it does not fit in the page or is illegal. */
function fetch(src: RegionSource, off: number): Insn | null {
  if (off > 4094) return null;
  const lo = src.half(off);
  let raw = lo;
  if ((lo & 3) === 3) {
    if (off > 4092) return null;
    raw = (lo | (src.half(off + 2) << 16)) >>> 0;
  }
  const d = decode(raw);
  if (!d) return null;
  return { d, pc: src.vpage + off, off };
}

function scanBlock(src: RegionSource, off: number): Block {
  const insns: Insn[] = [];
  let at = off;
  while (insns.length < MAX_BLOCK) {
    if (insns.length > 0 && src.seen && !src.seen[at >>> 1]) return { off, insns, end: 'fall' };
    const x = fetch(src, at);
    if (!x && straddles(src, at)) return { off, insns, end: 'straddle' };
    // ECALL, xRET, WFI and the like end the block for the dispatcher (fences, CSR accesses and
    // SFENCE.VMA run in place: see emit.ts).
    if (!x || x.d.def.flags & Flag.EndsBlock) return { off, insns, end: 'interp' };
    insns.push(x);
    const k = x.d.def.kind;
    if (k === Kind.Branch || k === Kind.Jump) return { off, insns, end: 'control' };
    at += x.d.len;
  }
  return { off, insns, end: 'fall' };
}

/** The page offsets discovery goes on to from a block: its fall-through, direct targets and return points. */
function successors(b: Block): number[] {
  const out: number[] = [];
  const last = b.insns[b.insns.length - 1];
  const next = last ? last.off + last.d.len : b.off;
  if (b.end === 'fall' && next < 4096) out.push(next);
  if (last && b.end === 'control') {
    const def = last.d.def;
    if (def.kind === Kind.Branch) {
      out.push(next, last.off + last.d.imm);
    } else if (def.flags & Flag.Direct) {
      out.push(last.off + last.d.imm);
      // A call returns to the next instruction: make it a block too.
      if (last.d.rd !== 0) out.push(next);
    } else if (last.d.rd !== 0) {
      out.push(next); // jalr used as a call
    }
  }
  return out;
}

/** Finds the region's blocks: from the entries, through direct branches and fall-throughs. */
export function discover(src: RegionSource): Block[] {
  const blocks = new Map<number, Block>();
  const entries = new Set(src.entries);
  const work = [...entries];
  while (work.length > 0 && blocks.size < MAX_BLOCKS) {
    const off = work.pop()!;
    if (blocks.has(off) || off < 0 || off >= 4096) continue;
    if (src.seen && !src.seen[off >>> 1] && !entries.has(off)) continue;
    const b = scanBlock(src, off);
    blocks.set(off, b);
    work.push(...successors(b));
  }
  let list = [...blocks.values()];
  if (src.earlier) list = onPathsToNew(list, src.earlier);
  return list.filter((b) => b.insns.length > 0 || b.end === 'interp' || b.end === 'straddle');
}

/**
 * An extension's blocks: the new ones (starting where no earlier translation of the page has
 * a block), and the earlier ones from which a new one can be reached, so that a loop through
 * both runs inside one module. The other earlier blocks (what the new code merely leads to)
 * are left to their translation, reached through the dispatcher.
 */
function onPathsToNew(blocks: Block[], earlier: Set<number>): Block[] {
  const keep = new Set<number>();
  for (const b of blocks) if (!earlier.has(b.off)) keep.add(b.off);
  for (let changed = true; changed; ) {
    changed = false;
    for (const b of blocks) {
      if (!keep.has(b.off) && successors(b).some((s) => keep.has(s))) {
        keep.add(b.off);
        changed = true;
      }
    }
  }
  return blocks.filter((b) => keep.has(b.off));
}

/** The signatures in a region module. */
const T_REGION = 0;
const T_SLOW = 1;
const T_FMA = 2;
const T_LEAVE = 3;
const T_REFILL = 4;
const T_TLB2 = 5;

/**
 * Most guest instructions in one function of a region. V8 optimizes a function on its own once
 * it is hot, at a cost that grows faster than its size: a page of kernel code as one function
 * took TurboFan up to 230 ms, so the hottest code ran on the baseline compiler's output for
 * most of a boot. (A round number; other limits were not measured.)
 */
const MAX_GROUP_INSNS = 256;

/**
 * Splits a region's blocks into the functions of its module: blocks joined by fall-through, a
 * branch, a jump or a call's return are kept together (a guest function and its loops), calls
 * are not; a group larger than MAX_GROUP_INSNS is cut in address order. Returns each block's
 * group, numbered from 0 in address order.
 */
export function partition(blocks: Block[]): number[] {
  const n = blocks.length;
  const byOff = new Map<number, number>();
  blocks.forEach((b, i) => byOff.set(b.off, i));
  const parent = blocks.map((_, i) => i);
  const find = (i: number): number => {
    while (parent[i] !== i) i = parent[i] = parent[parent[i]!]!;
    return i;
  };
  const join = (i: number, off: number): void => {
    const j = byOff.get(off);
    if (j !== undefined) parent[find(i)] = find(j);
  };
  blocks.forEach((b, i) => {
    const last = b.insns[b.insns.length - 1];
    const next = last ? last.off + last.d.len : b.off;
    if (b.end !== 'control') {
      join(i, next);
      return;
    }
    const d = last!.d;
    if (d.def.kind === Kind.Branch) {
      join(i, next);
      join(i, last!.off + d.imm);
    } else if (d.def.flags & Flag.Direct && d.rd === 0) {
      join(i, last!.off + d.imm);
    } else if (d.rd !== 0) {
      join(i, next); // a call: the code it returns to belongs with the caller
    }
  });
  // Number the groups in address order, cutting the large ones.
  const order = blocks.map((_, i) => i).sort((a, b) => blocks[a]!.off - blocks[b]!.off);
  const group = new Array<number>(n).fill(-1);
  const current = new Map<number, { id: number; insns: number }>();
  let groups = 0;
  for (const i of order) {
    const root = find(i);
    const size = blocks[i]!.insns.length;
    let g = current.get(root);
    if (!g || (g.insns > 0 && g.insns + size > MAX_GROUP_INSNS)) {
      g = { id: groups++, insns: 0 };
      current.set(root, g);
    }
    g.insns += size;
    group[i] = g.id;
  }
  return group;
}

/**
 * Translates a region into a module exporting one function per group of blocks, named by group
 * number: `run(h, entry, budget, end)` with `entry` a block index within the group and `end`
 * minstret + budget at the trampoline's entry (see BlockEmitter). The module imports the
 * machine's memory, the slow-path helper `slow(k, budget)` (see SlowPaths) and the TLB refill
 * `refill(vaLo, vaHi, access)` (see slow-path.ts).
 */
export function translateRegion(
  src: RegionSource,
  memory: { shared: boolean; maxPages: number; attention?: number },
  /** The address of the hart block the code runs on (the `h` the trampoline passes). */
  hb: number,
  tailCalls = tailCallsSupported(),
): TranslatedRegion | null {
  const blocks = discover(src);
  if (blocks.length === 0) return null;
  const group = partition(blocks);
  const groups = Math.max(...group) + 1;
  // Each function's blocks in address order, so that most jumps between them go forward.
  const members: number[][] = Array.from({ length: groups }, () => []);
  blocks.forEach((_, i) => members[group[i]!]!.push(i));
  const local = new Array<number>(blocks.length);
  for (const m of members) {
    m.sort((a, b) => blocks[a]!.off - blocks[b]!.off);
    m.forEach((b, k) => (local[b] = k));
  }
  const index = new Map<number, number>();
  blocks.forEach((b, i) => index.set(b.off, i));
  const vpage = src.vpage;
  const blockAt = (pc: number): BlockRef | null => {
    const off = pc - vpage;
    const i = off >= 0 && off < 4096 ? index.get(off) : undefined;
    return i === undefined ? null : { group: group[i]!, local: local[i]! };
  };
  const slow = new SlowPaths();
  let insns = 0;
  const funcs = members.map((list, g) => {
    const c = new Code(4);
    const locals = new Locals(c);
    loadDataTlb(c, hb, locals.dtlb);
    const n = list.length;
    // Block n is the target of an unknown entry index: hand back to the dispatcher.
    c.loop();
    for (let i = n; i >= 0; i--) c.block();
    c.get(P_ENTRY).brTable(list.map((_, i) => i), n);
    for (let i = 0; i <= n; i++) {
      c.end();
      // Here: enclosing blocks i+1..n, then the loop.
      const loopDepth = n - i;
      if (i === n) {
        // Only the dispatcher enters by index (the pc is set): nothing has run here.
        storeInstret(c, hb, P_END, P_BUDGET);
        c.i32(Exit.Interp).op(Op.return);
        break;
      }
      const b = blocks[list[i]!]!;
      const len = b.insns.length;
      insns += len;
      // Enter the block only with budget for all of it (a straddling instruction included), so
      // slices end exactly where the interpreter's would.
      const cost = len + (b.end === 'straddle' ? 1 : 0);
      const em = new BlockEmitter(c, locals, i, loopDepth, blockAt, g, tailCalls, cost, vpage, hb, slow, memory.shared);
      c.get(P_BUDGET).i32(cost).op(Op.i32_lt_s).if();
      em.exitAt(vpage + b.off, len === 0 && b.end === 'interp' ? Exit.Interp : Exit.Budget);
      c.end();
      if (memory.attention !== undefined) {
        // A hart in its own thread leaves at the next block when another thread wants its
        // attention (an IPI, a fence, a stop): a spin loop inside one function would otherwise
        // run out its whole budget first.
        c.i32(memory.attention).atomic(AtomicOp.i32_load, 2, 0).if();
        em.exitAt(vpage + b.off, Exit.Stop);
        c.end();
      }
      c.get(P_BUDGET).i32(cost).op(Op.i32_sub).set(P_BUDGET);
      b.insns.forEach((x, j) => em.insn(j, x));
      if (b.end !== 'control') {
        const last = b.insns[len - 1];
        const next = last ? last.pc + last.d.len : vpage + b.off;
        if (b.end === 'straddle') em.straddle(next);
        else em.fallThrough(next, b.end === 'interp');
      }
    }
    c.end(); // loop
    c.op(Op.unreachable);
    return { type: T_REGION, code: c, export: String(g) };
  });

  const bytes = encodeModule({
    types: [
      { params: [I32, I32, I32, I64], results: [I32] },
      { params: [I32, I32], results: [I32] },
      { params: [F64, F64, F64], results: [F64] },
      { params: [I32, I32, I64, I32, I32], results: [I32] },
      { params: [I32, I32, I32], results: [I32] },
      { params: [I64, I32, I32, I32], results: [I32] },
    ],
    imports: [{ name: 'slow', type: T_SLOW }, { name: 'refill', type: T_REFILL }],
    memory,
    funcs: [
      { type: T_FMA, code: fmaFunction() },
      { type: T_LEAVE, code: leaveFunction(vpage) },
      { type: T_TLB2, code: tlb2Function(hb, (hb - HART_BASE) / HART_BLOCK, memory.shared) },
      ...funcs,
    ],
  });
  return { bytes, blocks: blocks.map((b, i) => ({ off: b.off, group: group[i]!, local: local[i]! })), groups, insns, slow };
}
