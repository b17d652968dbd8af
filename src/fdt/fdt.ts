/**
 * Flattened device tree (DTB) builder and encoder: a small tree of nodes and properties,
 * serialized as format version 17 (last compatible version 16) of the Devicetree
 * Specification v0.4, chapter 5. Boards build the tree from what is on the bus; decode.ts
 * reads a blob back (for tests and for inspecting DTBs written by others).
 */
import { VirtusError } from '../util/errors.ts';

/** DT spec 5.2: the magic number at offset 0 of every blob. */
export const FDT_MAGIC = 0xd00dfeed;
export const FDT_VERSION = 17;
export const FDT_LAST_COMP_VERSION = 16;
/** DT spec 5.4.1: structure block tokens. */
export const FDT_BEGIN_NODE = 1;
export const FDT_END_NODE = 2;
export const FDT_PROP = 3;
export const FDT_NOP = 4;
export const FDT_END = 9;
/** DT spec 5.2: the v17 header is ten 32-bit words. */
export const FDT_HEADER_SIZE = 40;

// DT spec 2.2.1 (node names) and 2.2.4 (property names): allowed characters and length.
const NODE_NAME = /^[0-9A-Za-z,._+-]{1,31}(@[0-9A-Za-z,._+-]+)?$/;
const PROP_NAME = /^[0-9A-Za-z,._+?#-]{1,31}$/;

/** A property: a name and its raw value (big-endian cells, NUL-terminated strings, bytes). */
export interface FdtProp {
  readonly name: string;
  readonly value: Uint8Array;
}

/** A memory reservation block entry (DT spec 5.3): physical address and size. */
export interface FdtReservation {
  address: bigint;
  size: bigint;
}

/** The two 32-bit cells of a 64-bit value, high cell first (DT spec 2.2.4.1, `<u64>`). */
export function u64Cells(v: number | bigint): [number, number] {
  const b = BigInt(v);
  if (b < 0n || b > 0xffff_ffff_ffff_ffffn) throw new VirtusError('FDT_BAD_VALUE', `${v} does not fit in 64 bits`);
  return [Number(b >> 32n), Number(b & 0xffff_ffffn)];
}

/** `reg` cells for one region with #address-cells = 2 and #size-cells = 2 (the virt board's root and soc). */
export function regCells(base: number | bigint, size: number | bigint): number[] {
  return [...u64Cells(base), ...u64Cells(size)];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A whole device tree: the root node, the memory reservations, the boot CPU and phandle allocation. */
export class FdtTree {
  readonly root: FdtNode;
  readonly reservations: FdtReservation[] = [];
  /** The header's boot_cpuid_phys: the `reg` of the CPU that boots. */
  bootCpuId = 0;
  private nextPhandle = 1;

  constructor() {
    this.root = new FdtNode(this, null, '');
  }

  /**
   * A new phandle, never 0 or 0xffffffff (DT spec 2.3.3). Phandles are handed out in order, so
   * the same build yields the same blob.
   */
  allocPhandle(): number {
    let p = this.nextPhandle++;
    while (this.phandleInUse(p)) p = this.nextPhandle++;
    if (p >= 0xffff_ffff) throw new VirtusError('FDT_PHANDLES', 'out of phandles');
    return p;
  }

  /** The node at an absolute path such as `/soc/serial@10000000`, or undefined. */
  find(path: string): FdtNode | undefined {
    if (!path.startsWith('/')) return undefined;
    let n: FdtNode | undefined = this.root;
    for (const part of path.split('/').filter((p) => p !== '')) {
      n = n.child(part);
      if (!n) return undefined;
    }
    return n;
  }

  /** The node whose `phandle` property is `phandle`, or undefined. */
  byPhandle(phandle: number): FdtNode | undefined {
    const walk = (n: FdtNode): FdtNode | undefined => {
      if (n.getU32('phandle') === phandle) return n;
      for (const c of n.children) {
        const r = walk(c);
        if (r) return r;
      }
      return undefined;
    };
    return walk(this.root);
  }

  private phandleInUse(p: number): boolean {
    return this.byPhandle(p) !== undefined;
  }
}

/** A node: a name (with its unit address), ordered properties, and ordered children. */
export class FdtNode {
  private readonly propList: FdtProp[] = [];
  private readonly childList: FdtNode[] = [];

  /** @internal Nodes are made with FdtTree (the root) and addNode. */
  constructor(
    readonly tree: FdtTree,
    readonly parent: FdtNode | null,
    readonly name: string,
  ) {}

  get props(): readonly FdtProp[] {
    return this.propList;
  }

  get children(): readonly FdtNode[] {
    return this.childList;
  }

  /** The node's absolute path (`/` for the root). */
  path(): string {
    if (!this.parent) return '/';
    const p = this.parent.path();
    return p === '/' ? `/${this.name}` : `${p}/${this.name}`;
  }

  /** Adds a child named `name` (`node-name[@unit-address]`); sibling names must be unique. */
  addNode(name: string): FdtNode {
    if (!NODE_NAME.test(name)) {
      throw new VirtusError('FDT_BAD_NAME', `"${name}" is not a valid node name (DT spec 2.2.1)`);
    }
    if (this.child(name)) throw new VirtusError('FDT_DUPLICATE', `${this.path()} already has a child ${name}`);
    const n = new FdtNode(this.tree, this, name);
    this.childList.push(n);
    return n;
  }

  /** The child named exactly `name`, or undefined. */
  child(name: string): FdtNode | undefined {
    return this.childList.find((c) => c.name === name);
  }

  /** Sets property `name` to raw bytes (replacing an existing value in place, keeping its order). */
  setBytes(name: string, value: Uint8Array): this {
    if (!PROP_NAME.test(name)) {
      throw new VirtusError('FDT_BAD_NAME', `"${name}" is not a valid property name (DT spec 2.2.4)`);
    }
    const p: FdtProp = { name, value: new Uint8Array(value) };
    const i = this.propList.findIndex((q) => q.name === name);
    if (i >= 0) this.propList[i] = p;
    else this.propList.push(p);
    return this;
  }

  /** An empty property: a boolean flag such as `interrupt-controller` or `ranges`. */
  setEmpty(name: string): this {
    return this.setBytes(name, new Uint8Array(0));
  }

  /** A `<prop-encoded-array>` of 32-bit cells (each an unsigned integer below 2^32). */
  setCells(name: string, cells: readonly number[]): this {
    const b = new Uint8Array(cells.length * 4);
    const v = new DataView(b.buffer);
    cells.forEach((c, i) => {
      if (!Number.isInteger(c) || c < 0 || c > 0xffff_ffff) {
        throw new VirtusError('FDT_BAD_VALUE', `${this.path()}: ${name} cell ${c} is not a 32-bit unsigned integer`);
      }
      v.setUint32(i * 4, c);
    });
    return this.setBytes(name, b);
  }

  /** A single `<u32>`. */
  setU32(name: string, value: number): this {
    return this.setCells(name, [value]);
  }

  /** A `<u64>` (two cells, high first). */
  setU64(name: string, value: number | bigint): this {
    return this.setCells(name, u64Cells(value));
  }

  /** A `<string>` (NUL-terminated). */
  setString(name: string, value: string): this {
    return this.setStrings(name, [value]);
  }

  /** A `<stringlist>` such as `compatible` (each string NUL-terminated, concatenated). */
  setStrings(name: string, values: readonly string[]): this {
    const parts = values.map((s) => {
      if (s.includes('\0')) throw new VirtusError('FDT_BAD_VALUE', `${this.path()}: ${name} contains a NUL character`);
      return encoder.encode(s);
    });
    const b = new Uint8Array(parts.reduce((n, p) => n + p.length + 1, 0));
    let o = 0;
    for (const p of parts) {
      b.set(p, o);
      o += p.length + 1;
    }
    return this.setBytes(name, b);
  }

  /** This node's phandle, allocating one (and the `phandle` property) on first use. */
  phandle(): number {
    const p = this.getU32('phandle');
    if (p !== undefined) return p;
    const n = this.tree.allocPhandle();
    this.setU32('phandle', n);
    return n;
  }

  /** Removes property `name`; returns whether it existed. */
  remove(name: string): boolean {
    const i = this.propList.findIndex((q) => q.name === name);
    if (i < 0) return false;
    this.propList.splice(i, 1);
    return true;
  }

  has(name: string): boolean {
    return this.propList.some((q) => q.name === name);
  }

  getBytes(name: string): Uint8Array | undefined {
    return this.propList.find((q) => q.name === name)?.value;
  }

  /** The property as 32-bit cells (undefined when absent or not a multiple of 4 bytes). */
  getCells(name: string): number[] | undefined {
    const b = this.getBytes(name);
    if (!b || b.length % 4 !== 0) return undefined;
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    return Array.from({ length: b.length / 4 }, (_, i) => v.getUint32(i * 4));
  }

  /** The property as one `<u32>` (undefined unless exactly 4 bytes). */
  getU32(name: string): number | undefined {
    const c = this.getCells(name);
    return c && c.length === 1 ? c[0] : undefined;
  }

  /** The property as a string list (undefined unless NUL-terminated). */
  getStrings(name: string): string[] | undefined {
    const b = this.getBytes(name);
    if (!b || b.length === 0 || b[b.length - 1] !== 0) return undefined;
    return decoder.decode(b.subarray(0, b.length - 1)).split('\0');
  }

  /** The property as one string (the first of a string list). */
  getString(name: string): string | undefined {
    return this.getStrings(name)?.[0];
  }
}

/** Options of encodeFdt. */
export interface EncodeOptions {
  /**
   * Free bytes appended after the strings block and counted in totalsize, so software that
   * edits the tree in place (OpenSBI's fixups) has room to grow it.
   */
  padding?: number;
}

/** Growable big-endian byte buffer. */
class Writer {
  bytes = new Uint8Array(1024);
  view = new DataView(this.bytes.buffer);
  length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.bytes.length) return;
    let cap = this.bytes.length * 2;
    while (cap < this.length + n) cap *= 2;
    const b = new Uint8Array(cap);
    b.set(this.bytes.subarray(0, this.length));
    this.bytes = b;
    this.view = new DataView(b.buffer);
  }

  u32(v: number): void {
    this.reserve(4);
    this.view.setUint32(this.length, v);
    this.length += 4;
  }

  u64(v: bigint): void {
    this.reserve(8);
    this.view.setBigUint64(this.length, v);
    this.length += 8;
  }

  raw(b: Uint8Array): void {
    this.reserve(b.length);
    this.bytes.set(b, this.length);
    this.length += b.length;
  }

  /** Zero bytes up to a multiple of `n`. */
  align(n: number): void {
    const pad = (n - (this.length % n)) % n;
    this.reserve(pad);
    this.bytes.fill(0, this.length, this.length + pad);
    this.length += pad;
  }

  result(): Uint8Array {
    return this.bytes.slice(0, this.length);
  }
}

/**
 * Serializes `tree` as a DTB: header, memory reservation block (8-byte aligned), structure
 * block (4-byte aligned tokens), strings block (property names, each stored once).
 */
export function encodeFdt(tree: FdtTree, o: EncodeOptions = {}): Uint8Array {
  const padding = o.padding ?? 0;
  if (!Number.isInteger(padding) || padding < 0) throw new VirtusError('FDT_BAD_VALUE', `padding ${padding} is not a byte count`);
  const strings = new Writer();
  const offsets = new Map<string, number>();
  const nameOffset = (name: string): number => {
    let off = offsets.get(name);
    if (off === undefined) {
      off = strings.length;
      offsets.set(name, off);
      strings.raw(encoder.encode(name));
      strings.raw(new Uint8Array(1));
    }
    return off;
  };

  const struct = new Writer();
  const emit = (n: FdtNode): void => {
    struct.u32(FDT_BEGIN_NODE);
    struct.raw(encoder.encode(n.name));
    struct.raw(new Uint8Array(1));
    struct.align(4);
    for (const p of n.props) {
      struct.u32(FDT_PROP);
      struct.u32(p.value.length);
      struct.u32(nameOffset(p.name));
      struct.raw(p.value);
      struct.align(4);
    }
    for (const c of n.children) emit(c);
    struct.u32(FDT_END_NODE);
  };
  emit(tree.root);
  struct.u32(FDT_END);

  const out = new Writer();
  for (let i = 0; i < FDT_HEADER_SIZE / 4; i++) out.u32(0);
  out.align(8);
  const offRsv = out.length;
  for (const r of tree.reservations) {
    u64Cells(r.address); // range checks: both must fit in 64 bits
    u64Cells(r.size);
    out.u64(r.address);
    out.u64(r.size);
  }
  out.u64(0n);
  out.u64(0n);
  const offStruct = out.length;
  out.raw(struct.result());
  const offStrings = out.length;
  out.raw(strings.result());
  out.raw(new Uint8Array(padding));
  const blob = out.result();
  const v = new DataView(blob.buffer);
  const header = [
    FDT_MAGIC, blob.length, offStruct, offStrings, offRsv,
    FDT_VERSION, FDT_LAST_COMP_VERSION, tree.bootCpuId >>> 0, strings.length, struct.length,
  ];
  header.forEach((w, i) => v.setUint32(i * 4, w));
  return blob;
}
