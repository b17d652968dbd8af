/**
 * A small WebAssembly binary encoder (WebAssembly core spec 2.0, ch. 5 "Binary format"): just
 * what the translator emits. Function bodies are built with `Code`, which appends opcodes and
 * immediates; `encodeModule` assembles the sections.
 */

/** Value types. */
export const I32 = 0x7f;
export const I64 = 0x7e;
export const F64 = 0x7c;
export type ValType = typeof I32 | typeof I64 | typeof F64;
/** The empty block type. */
export const VOID = 0x40;

/** Opcodes used by the translator. */
export const enum Op {
  unreachable = 0x00, nop = 0x01, block = 0x02, loop = 0x03, if = 0x04, else = 0x05, end = 0x0b,
  br = 0x0c, br_if = 0x0d, br_table = 0x0e, return = 0x0f, call = 0x10,
  drop = 0x1a, select = 0x1b,
  local_get = 0x20, local_set = 0x21, local_tee = 0x22,
  i32_load = 0x28, i64_load = 0x29,
  i32_load8_s = 0x2c, i32_load8_u = 0x2d, i32_load16_s = 0x2e, i32_load16_u = 0x2f,
  i64_load8_s = 0x30, i64_load8_u = 0x31, i64_load16_s = 0x32, i64_load16_u = 0x33,
  i64_load32_s = 0x34, i64_load32_u = 0x35,
  i32_store = 0x36, i64_store = 0x37, i32_store8 = 0x3a, i32_store16 = 0x3b,
  i64_store8 = 0x3c, i64_store16 = 0x3d, i64_store32 = 0x3e,
  i32_const = 0x41, i64_const = 0x42,
  i32_eqz = 0x45, i32_eq = 0x46, i32_ne = 0x47, i32_lt_s = 0x48, i32_lt_u = 0x49, i32_gt_s = 0x4a,
  i32_gt_u = 0x4b, i32_le_s = 0x4c, i32_le_u = 0x4d, i32_ge_s = 0x4e, i32_ge_u = 0x4f,
  i64_eqz = 0x50, i64_eq = 0x51, i64_ne = 0x52, i64_lt_s = 0x53, i64_lt_u = 0x54, i64_gt_s = 0x55,
  i64_gt_u = 0x56, i64_le_s = 0x57, i64_le_u = 0x58, i64_ge_s = 0x59, i64_ge_u = 0x5a,
  i32_add = 0x6a, i32_sub = 0x6b, i32_mul = 0x6c, i32_div_s = 0x6d, i32_div_u = 0x6e,
  i32_rem_s = 0x6f, i32_rem_u = 0x70, i32_and = 0x71, i32_or = 0x72, i32_xor = 0x73,
  i32_shl = 0x74, i32_shr_s = 0x75, i32_shr_u = 0x76,
  i64_add = 0x7c, i64_sub = 0x7d, i64_mul = 0x7e, i64_div_s = 0x7f, i64_div_u = 0x80,
  i64_rem_s = 0x81, i64_rem_u = 0x82, i64_and = 0x83, i64_or = 0x84, i64_xor = 0x85,
  i64_shl = 0x86, i64_shr_s = 0x87, i64_shr_u = 0x88,
  i32_wrap_i64 = 0xa7, i64_extend_i32_s = 0xac, i64_extend_i32_u = 0xad,
}

/** Appends unsigned LEB128. */
function uleb(out: number[], v: number): void {
  do {
    let b = v & 0x7f;
    v = Math.floor(v / 128);
    if (v !== 0) b |= 0x80;
    out.push(b);
  } while (v !== 0);
}

/** Appends signed LEB128 of a 32-bit value. */
function sleb32(out: number[], v: number): void {
  v |= 0;
  for (;;) {
    const b = v & 0x7f;
    v >>= 7;
    if ((v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return;
    }
    out.push(b | 0x80);
  }
}

/** Appends signed LEB128 of a 64-bit value. */
function sleb64(out: number[], v: bigint): void {
  v = BigInt.asIntN(64, v);
  for (;;) {
    const b = Number(v & 0x7fn);
    v >>= 7n;
    if ((v === 0n && (b & 0x40) === 0) || (v === -1n && (b & 0x40) !== 0)) {
      out.push(b);
      return;
    }
    out.push(b | 0x80);
  }
}

/** A function body under construction. */
export class Code {
  readonly bytes: number[] = [];
  private readonly localTypes: ValType[] = [];

  constructor(private readonly params: number) {}

  /** Declares a local of type `t`; returns its index. */
  local(t: ValType): number {
    this.localTypes.push(t);
    return this.params + this.localTypes.length - 1;
  }

  op(o: Op): this {
    this.bytes.push(o);
    return this;
  }
  i32(v: number): this {
    this.bytes.push(Op.i32_const);
    sleb32(this.bytes, v);
    return this;
  }
  i64(v: bigint): this {
    this.bytes.push(Op.i64_const);
    sleb64(this.bytes, v);
    return this;
  }
  get(l: number): this {
    this.bytes.push(Op.local_get);
    uleb(this.bytes, l);
    return this;
  }
  set(l: number): this {
    this.bytes.push(Op.local_set);
    uleb(this.bytes, l);
    return this;
  }
  tee(l: number): this {
    this.bytes.push(Op.local_tee);
    uleb(this.bytes, l);
    return this;
  }
  /** A load or store with natural-alignment hint log2 `align` and a constant offset. */
  mem(o: Op, align: number, offset: number): this {
    this.bytes.push(o);
    uleb(this.bytes, align);
    uleb(this.bytes, offset);
    return this;
  }
  block(type: number = VOID): this {
    this.bytes.push(Op.block, type);
    return this;
  }
  loop(type: number = VOID): this {
    this.bytes.push(Op.loop, type);
    return this;
  }
  if(type: number = VOID): this {
    this.bytes.push(Op.if, type);
    return this;
  }
  else(): this {
    this.bytes.push(Op.else);
    return this;
  }
  end(): this {
    this.bytes.push(Op.end);
    return this;
  }
  br(depth: number): this {
    this.bytes.push(Op.br);
    uleb(this.bytes, depth);
    return this;
  }
  brIf(depth: number): this {
    this.bytes.push(Op.br_if);
    uleb(this.bytes, depth);
    return this;
  }
  brTable(depths: number[], dflt: number): this {
    this.bytes.push(Op.br_table);
    uleb(this.bytes, depths.length);
    for (const d of depths) uleb(this.bytes, d);
    uleb(this.bytes, dflt);
    return this;
  }
  call(f: number): this {
    this.bytes.push(Op.call);
    uleb(this.bytes, f);
    return this;
  }

  /** The encoded body: locals vector, then the code and a final `end`. */
  encode(): number[] {
    const out: number[] = [];
    const groups: Array<[number, ValType]> = [];
    for (const t of this.localTypes) {
      const last = groups[groups.length - 1];
      if (last && last[1] === t) last[0]++;
      else groups.push([1, t]);
    }
    uleb(out, groups.length);
    for (const [n, t] of groups) {
      uleb(out, n);
      out.push(t);
    }
    for (const b of this.bytes) out.push(b);
    out.push(Op.end);
    const body: number[] = [];
    uleb(body, out.length);
    return body.concat(out);
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
  /** Defined functions: type index, body, export name. */
  funcs: Array<{ type: number; code: Code; export: string }>;
}

function section(out: number[], id: number, content: number[]): void {
  out.push(id);
  uleb(out, content.length);
  for (const b of content) out.push(b);
}

function name(out: number[], s: string): void {
  uleb(out, s.length);
  for (let i = 0; i < s.length; i++) out.push(s.charCodeAt(i));
}

/** Encodes a module. Imported functions take the first function indices. */
export function encodeModule(m: ModuleSpec): Uint8Array<ArrayBuffer> {
  const out = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  const types: number[] = [];
  uleb(types, m.types.length);
  for (const t of m.types) {
    types.push(0x60);
    uleb(types, t.params.length);
    types.push(...t.params);
    uleb(types, t.results.length);
    types.push(...t.results);
  }
  section(out, 1, types);

  const imps: number[] = [];
  uleb(imps, m.imports.length + 1);
  name(imps, 'env');
  name(imps, 'mem');
  imps.push(0x02, m.memory.shared ? 0x03 : 0x01, 0x00);
  uleb(imps, m.memory.maxPages);
  for (const i of m.imports) {
    name(imps, 'env');
    name(imps, i.name);
    imps.push(0x00);
    uleb(imps, i.type);
  }
  section(out, 2, imps);

  const funcs: number[] = [];
  uleb(funcs, m.funcs.length);
  for (const f of m.funcs) uleb(funcs, f.type);
  section(out, 3, funcs);

  const exps: number[] = [];
  uleb(exps, m.funcs.length);
  m.funcs.forEach((f, i) => {
    name(exps, f.export);
    exps.push(0x00);
    uleb(exps, m.imports.length + i);
  });
  section(out, 7, exps);

  const code: number[] = [];
  uleb(code, m.funcs.length);
  for (const f of m.funcs) for (const b of f.code.encode()) code.push(b);
  section(out, 10, code);
  return new Uint8Array(out);
}
