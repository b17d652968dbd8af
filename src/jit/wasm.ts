/**
 * A small WebAssembly binary encoder (WebAssembly core spec 2.0, ch. 5 "Binary format"): just
 * what the translator emits. Function bodies are built with `Code`, which appends opcodes and
 * immediates; `encodeModule` assembles the sections.
 */

/** Value types. */
export const I32 = 0x7f;
export const I64 = 0x7e;
export const F32 = 0x7d;
export const F64 = 0x7c;
export type ValType = typeof I32 | typeof I64 | typeof F32 | typeof F64;
/** The empty block type. */
export const VOID = 0x40;

/** Opcodes used by the translator. */
export const enum Op {
  unreachable = 0x00, nop = 0x01, block = 0x02, loop = 0x03, if = 0x04, else = 0x05, end = 0x0b,
  br = 0x0c, br_if = 0x0d, br_table = 0x0e, return = 0x0f, call = 0x10, call_indirect = 0x11,
  return_call = 0x12,
  drop = 0x1a, select = 0x1b,
  local_get = 0x20, local_set = 0x21, local_tee = 0x22,
  i32_load = 0x28, i64_load = 0x29, f32_load = 0x2a, f64_load = 0x2b,
  i32_load8_s = 0x2c, i32_load8_u = 0x2d, i32_load16_s = 0x2e, i32_load16_u = 0x2f,
  i64_load8_s = 0x30, i64_load8_u = 0x31, i64_load16_s = 0x32, i64_load16_u = 0x33,
  i64_load32_s = 0x34, i64_load32_u = 0x35,
  i32_store = 0x36, i64_store = 0x37, f32_store = 0x38, f64_store = 0x39, i32_store8 = 0x3a, i32_store16 = 0x3b,
  i64_store8 = 0x3c, i64_store16 = 0x3d, i64_store32 = 0x3e,
  i32_const = 0x41, i64_const = 0x42, f32_const = 0x43, f64_const = 0x44,
  i32_eqz = 0x45, i32_eq = 0x46, i32_ne = 0x47, i32_lt_s = 0x48, i32_lt_u = 0x49, i32_gt_s = 0x4a,
  i32_gt_u = 0x4b, i32_le_s = 0x4c, i32_le_u = 0x4d, i32_ge_s = 0x4e, i32_ge_u = 0x4f,
  i64_eqz = 0x50, i64_eq = 0x51, i64_ne = 0x52, i64_lt_s = 0x53, i64_lt_u = 0x54, i64_gt_s = 0x55,
  i64_gt_u = 0x56, i64_le_s = 0x57, i64_le_u = 0x58, i64_ge_s = 0x59, i64_ge_u = 0x5a,
  f32_eq = 0x5b, f32_ne = 0x5c, f32_lt = 0x5d, f32_gt = 0x5e, f32_le = 0x5f, f32_ge = 0x60,
  f64_eq = 0x61, f64_ne = 0x62, f64_lt = 0x63, f64_gt = 0x64, f64_le = 0x65, f64_ge = 0x66,
  i32_add = 0x6a, i32_sub = 0x6b, i32_mul = 0x6c, i32_div_s = 0x6d, i32_div_u = 0x6e,
  i32_rem_s = 0x6f, i32_rem_u = 0x70, i32_and = 0x71, i32_or = 0x72, i32_xor = 0x73,
  i32_shl = 0x74, i32_shr_s = 0x75, i32_shr_u = 0x76,
  i64_add = 0x7c, i64_sub = 0x7d, i64_mul = 0x7e, i64_div_s = 0x7f, i64_div_u = 0x80,
  i64_rem_s = 0x81, i64_rem_u = 0x82, i64_and = 0x83, i64_or = 0x84, i64_xor = 0x85,
  i64_shl = 0x86, i64_shr_s = 0x87, i64_shr_u = 0x88,
  f32_abs = 0x8b, f32_neg = 0x8c, f32_sqrt = 0x91, f32_add = 0x92, f32_sub = 0x93, f32_mul = 0x94,
  f32_div = 0x95,
  f64_abs = 0x99, f64_neg = 0x9a, f64_trunc = 0x9d, f64_sqrt = 0x9f, f64_add = 0xa0, f64_sub = 0xa1,
  f64_mul = 0xa2, f64_div = 0xa3,
  i32_wrap_i64 = 0xa7, i32_trunc_f64_s = 0xaa, i64_extend_i32_s = 0xac, i64_extend_i32_u = 0xad,
  i64_trunc_f64_s = 0xb0,
  f32_convert_i32_s = 0xb2, f32_demote_f64 = 0xb6, f64_convert_i32_s = 0xb7, f64_convert_i32_u = 0xb8,
  f64_convert_i64_s = 0xb9, f64_convert_i64_u = 0xba, f64_promote_f32 = 0xbb,
  i32_reinterpret_f32 = 0xbc, i64_reinterpret_f64 = 0xbd, f32_reinterpret_i32 = 0xbe, f64_reinterpret_i64 = 0xbf,
}

/**
 * The threads proposal's atomic memory instructions (prefix 0xFE; WebAssembly threads
 * proposal, "Atomic Memory Accesses"). A read-modify-write's opcode is its operation's base
 * plus the width's offset (AtomicWidth); their alignment hint must be the natural one.
 */
export const ATOMIC_PREFIX = 0xfe;
export const enum AtomicOp {
  fence = 0x03,
  i32_load = 0x10, i64_load = 0x11, i32_store = 0x17, i64_store = 0x18,
  rmw_add = 0x1e, rmw_sub = 0x25, rmw_and = 0x2c, rmw_or = 0x33, rmw_xor = 0x3a, rmw_xchg = 0x41, rmw_cmpxchg = 0x48,
}
/** Width offsets of the read-modify-writes: i32, i64, i32 8-bit (zero-extended), ... i64 32-bit. */
export const enum AtomicWidth {
  i32 = 0, i64 = 1, i32_8u = 2, i32_16u = 3, i64_8u = 4, i64_16u = 5, i64_32u = 6,
}

/** A growable byte buffer with the LEB128 encodings of the binary format. */
export class Bytes {
  buf = new Uint8Array(256);
  length = 0;

  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.length + n) cap *= 2;
    const b = new Uint8Array(cap);
    b.set(this.buf.subarray(0, this.length));
    this.buf = b;
  }

  byte(b: number): void {
    this.room(1);
    this.buf[this.length++] = b;
  }

  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }

  /** Unsigned LEB128 of a non-negative safe integer. */
  uleb(v: number): void {
    this.room(8);
    do {
      let b = v % 128;
      v = Math.floor(v / 128);
      if (v !== 0) b |= 0x80;
      this.buf[this.length++] = b;
    } while (v !== 0);
  }

  /** Signed LEB128 of a 32-bit value. */
  sleb32(v: number): void {
    this.room(5);
    v |= 0;
    for (;;) {
      const b = v & 0x7f;
      v >>= 7;
      if ((v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0)) {
        this.buf[this.length++] = b;
        return;
      }
      this.buf[this.length++] = b | 0x80;
    }
  }

  /** Signed LEB128 of a 64-bit value given as a Number (exact below 2^53) or a BigInt. */
  sleb64(v: number | bigint): void {
    if (typeof v === 'number' && Number.isSafeInteger(v)) {
      this.room(10);
      for (;;) {
        const b: number = ((v % 128) + 128) % 128;
        v = (v - b) / 128;
        if ((v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0)) {
          this.buf[this.length++] = b;
          return;
        }
        this.buf[this.length++] = b | 0x80;
      }
    }
    let x = BigInt.asIntN(64, BigInt(v));
    this.room(10);
    for (;;) {
      const b = Number(x & 0x7fn);
      x >>= 7n;
      if ((x === 0n && (b & 0x40) === 0) || (x === -1n && (b & 0x40) !== 0)) {
        this.buf[this.length++] = b;
        return;
      }
      this.buf[this.length++] = b | 0x80;
    }
  }

  name(s: string): void {
    this.uleb(s.length);
    for (let i = 0; i < s.length; i++) this.byte(s.charCodeAt(i));
  }

  result(): Uint8Array<ArrayBuffer> {
    return this.buf.slice(0, this.length);
  }
}

/** A function body under construction. */
export class Code {
  readonly out = new Bytes();
  private readonly localTypes: ValType[] = [];

  constructor(private readonly params: number) {}

  /** Declares a local of type `t`; returns its index. */
  local(t: ValType): number {
    this.localTypes.push(t);
    return this.params + this.localTypes.length - 1;
  }

  op(o: Op): this {
    this.out.byte(o);
    return this;
  }
  i32(v: number): this {
    this.out.byte(Op.i32_const);
    this.out.sleb32(v);
    return this;
  }
  /** An i64 constant: a Number (exact below 2^53) or a BigInt. */
  i64(v: number | bigint): this {
    this.out.byte(Op.i64_const);
    this.out.sleb64(v);
    return this;
  }
  /** An f64 constant (its bits, little-endian). */
  f64(v: number): this {
    this.out.byte(Op.f64_const);
    const b = new Uint8Array(new Float64Array([v]).buffer);
    this.out.bytes(b);
    return this;
  }
  /** An f32 constant (v must be exactly representable as a single). */
  f32(v: number): this {
    this.out.byte(Op.f32_const);
    const b = new Uint8Array(new Float32Array([v]).buffer);
    this.out.bytes(b);
    return this;
  }
  get(l: number): this {
    this.out.byte(Op.local_get);
    this.out.uleb(l);
    return this;
  }
  set(l: number): this {
    this.out.byte(Op.local_set);
    this.out.uleb(l);
    return this;
  }
  tee(l: number): this {
    this.out.byte(Op.local_tee);
    this.out.uleb(l);
    return this;
  }
  /** A load or store with alignment hint log2 `align` and a constant offset. */
  mem(o: Op, align: number, offset: number): this {
    this.out.byte(o);
    this.out.uleb(align);
    this.out.uleb(offset);
    return this;
  }
  /** An atomic access (AtomicOp, plus an AtomicWidth for a read-modify-write) with its natural alignment, log2 `align`. */
  atomic(o: number, align: number, offset: number): this {
    this.out.byte(ATOMIC_PREFIX);
    this.out.uleb(o);
    this.out.uleb(align);
    this.out.uleb(offset);
    return this;
  }
  /** atomic.fence: a sequentially consistent fence. */
  atomicFence(): this {
    this.out.byte(ATOMIC_PREFIX);
    this.out.uleb(AtomicOp.fence);
    this.out.byte(0x00);
    return this;
  }
  block(type: number = VOID): this {
    this.out.byte(Op.block);
    this.out.byte(type);
    return this;
  }
  loop(type: number = VOID): this {
    this.out.byte(Op.loop);
    this.out.byte(type);
    return this;
  }
  if(type: number = VOID): this {
    this.out.byte(Op.if);
    this.out.byte(type);
    return this;
  }
  else(): this {
    this.out.byte(Op.else);
    return this;
  }
  end(): this {
    this.out.byte(Op.end);
    return this;
  }
  br(depth: number): this {
    this.out.byte(Op.br);
    this.out.uleb(depth);
    return this;
  }
  brIf(depth: number): this {
    this.out.byte(Op.br_if);
    this.out.uleb(depth);
    return this;
  }
  brTable(depths: number[], dflt: number): this {
    this.out.byte(Op.br_table);
    this.out.uleb(depths.length);
    for (const d of depths) this.out.uleb(d);
    this.out.uleb(dflt);
    return this;
  }
  call(f: number): this {
    this.out.byte(Op.call);
    this.out.uleb(f);
    return this;
  }
  /** A tail call (the tail-call extension: see tailCallsSupported). */
  returnCall(f: number): this {
    this.out.byte(Op.return_call);
    this.out.uleb(f);
    return this;
  }
  /** call_indirect through table 0 with signature `type`. */
  callIndirect(type: number): this {
    this.out.byte(Op.call_indirect);
    this.out.uleb(type);
    this.out.byte(0x00);
    return this;
  }

  /** Appends the encoded body (size, locals vector, code, final `end`) to `w`. */
  encodeInto(w: Bytes): void {
    const head = new Bytes();
    const groups: Array<[number, ValType]> = [];
    for (const t of this.localTypes) {
      const last = groups[groups.length - 1];
      if (last && last[1] === t) last[0]++;
      else groups.push([1, t]);
    }
    head.uleb(groups.length);
    for (const [n, t] of groups) {
      head.uleb(n);
      head.byte(t);
    }
    w.uleb(head.length + this.out.length + 1);
    w.bytes(head.buf.subarray(0, head.length));
    w.bytes(this.out.buf.subarray(0, this.out.length));
    w.byte(Op.end);
  }
}

export interface FuncType {
  params: ValType[];
  results: ValType[];
}

export interface ModuleSpec {
  types: FuncType[];
  /** Imported functions: module "env", `name`, type index. */
  imports: Array<{ name: string; type: number }>;
  /** The imported memory "env"."mem": shared or not, max in 64 KiB pages. */
  memory: { shared: boolean; maxPages: number };
  /** Import a funcref table "env"."table" as table 0. */
  table?: boolean;
  /** Defined functions: type index, body, export name (if exported). */
  funcs: Array<{ type: number; code: Code; export?: string }>;
}

function section(out: Bytes, id: number, content: Bytes): void {
  out.byte(id);
  out.uleb(content.length);
  out.bytes(content.buf.subarray(0, content.length));
}

/** Encodes a module. Imported functions take the first function indices. */
export function encodeModule(m: ModuleSpec): Uint8Array<ArrayBuffer> {
  const out = new Bytes();
  for (const b of [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]) out.byte(b);
  const types = new Bytes();
  types.uleb(m.types.length);
  for (const t of m.types) {
    types.byte(0x60);
    types.uleb(t.params.length);
    for (const p of t.params) types.byte(p);
    types.uleb(t.results.length);
    for (const r of t.results) types.byte(r);
  }
  section(out, 1, types);

  const imps = new Bytes();
  imps.uleb(m.imports.length + 1 + (m.table ? 1 : 0));
  imps.name('env');
  imps.name('mem');
  imps.byte(0x02);
  imps.byte(m.memory.shared ? 0x03 : 0x01);
  imps.byte(0x00);
  imps.uleb(m.memory.maxPages);
  if (m.table) {
    imps.name('env');
    imps.name('table');
    imps.byte(0x01); // table
    imps.byte(0x70); // funcref
    imps.byte(0x00); // limits: min only
    imps.uleb(0);
  }
  for (const i of m.imports) {
    imps.name('env');
    imps.name(i.name);
    imps.byte(0x00);
    imps.uleb(i.type);
  }
  section(out, 2, imps);

  const funcs = new Bytes();
  funcs.uleb(m.funcs.length);
  for (const f of m.funcs) funcs.uleb(f.type);
  section(out, 3, funcs);

  const exported = m.funcs.filter((f) => f.export !== undefined);
  const exps = new Bytes();
  exps.uleb(exported.length);
  m.funcs.forEach((f, i) => {
    if (f.export === undefined) return;
    exps.name(f.export);
    exps.byte(0x00);
    exps.uleb(m.imports.length + i);
  });
  section(out, 7, exps);

  const code = new Bytes();
  code.uleb(m.funcs.length);
  for (const f of m.funcs) f.code.encodeInto(code);
  section(out, 10, code);
  return out.result();
}

let tailCalls: boolean | null = null;

/**
 * Whether this engine accepts `return_call` (WebAssembly tail calls: Chrome 112, Firefox 121,
 * Node 20). Checked once by validating a one-function module that uses it.
 */
export function tailCallsSupported(): boolean {
  if (tailCalls === null) {
    const c = new Code(0);
    c.returnCall(0);
    const bytes = encodeModule({
      types: [{ params: [], results: [] }],
      imports: [],
      memory: { shared: false, maxPages: 1 },
      funcs: [{ type: 0, code: c }],
    });
    tailCalls = WebAssembly.validate(bytes);
  }
  return tailCalls;
}
