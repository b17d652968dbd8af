/**
 * Reads a flattened device tree blob (DT spec v0.4, chapter 5) back into an FdtTree: enough to
 * check what encodeFdt wrote and to inspect DTBs produced by others (QEMU's dumpdtb). The
 * blob is untrusted: every offset and length is checked, and a malformed blob is a
 * VirtusError('FDT_BAD'), never an out-of-bounds read.
 */
import { isVirtusError, VirtusError } from '../util/errors.ts';
import {
  FDT_BEGIN_NODE, FDT_END, FDT_END_NODE, FDT_HEADER_SIZE, FDT_MAGIC, FDT_NOP, FDT_PROP, FdtTree, type FdtNode,
} from './fdt.ts';

/** The header fields of a blob (DT spec 5.2). */
export interface FdtHeader {
  totalsize: number;
  offDtStruct: number;
  offDtStrings: number;
  offMemRsvmap: number;
  version: number;
  lastCompVersion: number;
  bootCpuidPhys: number;
  sizeDtStrings: number;
  sizeDtStruct: number;
}

function bad(msg: string): never {
  throw new VirtusError('FDT_BAD', `device tree blob: ${msg}`);
}

/** Parses and checks the header of `blob`. */
export function readFdtHeader(blob: Uint8Array): FdtHeader {
  if (blob.length < FDT_HEADER_SIZE) bad(`${blob.length} bytes is shorter than a header`);
  const v = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const w = (i: number): number => v.getUint32(i * 4);
  if (w(0) !== FDT_MAGIC) bad(`magic is 0x${w(0).toString(16)}, not 0xd00dfeed`);
  const h: FdtHeader = {
    totalsize: w(1), offDtStruct: w(2), offDtStrings: w(3), offMemRsvmap: w(4), version: w(5),
    lastCompVersion: w(6), bootCpuidPhys: w(7), sizeDtStrings: w(8), sizeDtStruct: w(9),
  };
  if (h.totalsize > blob.length) bad(`totalsize ${h.totalsize} exceeds the ${blob.length} bytes given`);
  // Version 17 readers accept blobs whose last compatible version is 16 or 17.
  if (h.version < 17 || h.lastCompVersion > 17) bad(`version ${h.version} (last compatible ${h.lastCompVersion}) is not readable as 17`);
  const within = (off: number, size: number, what: string): void => {
    if (off + size > h.totalsize) bad(`${what} (offset ${off}, size ${size}) runs past totalsize ${h.totalsize}`);
  };
  within(h.offDtStruct, h.sizeDtStruct, 'structure block');
  within(h.offDtStrings, h.sizeDtStrings, 'strings block');
  if (h.offMemRsvmap % 8 !== 0) bad(`memory reservation block at ${h.offMemRsvmap} is not 8-byte aligned`);
  if (h.offDtStruct % 4 !== 0) bad(`structure block at ${h.offDtStruct} is not 4-byte aligned`);
  within(h.offMemRsvmap, 16, 'memory reservation block');
  return h;
}

/**
 * Decodes `blob` into a tree (properties keep their order; unknown tokens are rejected; names
 * must follow DT spec 2.2, as FdtNode requires).
 */
export function decodeFdt(blob: Uint8Array): FdtTree {
  try {
    return decode(blob);
  } catch (e) {
    if (isVirtusError(e) && e.code !== 'FDT_BAD') bad(e.message);
    throw e;
  }
}

function decode(blob: Uint8Array): FdtTree {
  const h = readFdtHeader(blob);
  const v = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const text = new TextDecoder('utf-8', { fatal: false });
  const tree = new FdtTree();
  tree.bootCpuId = h.bootCpuidPhys;

  for (let off = h.offMemRsvmap; ; off += 16) {
    if (off + 16 > h.totalsize) bad('memory reservation block has no terminating entry');
    const address = v.getBigUint64(off);
    const size = v.getBigUint64(off + 8);
    if (address === 0n && size === 0n) break;
    tree.reservations.push({ address, size });
  }

  const cstring = (start: number, end: number, what: string): [string, number] => {
    let i = start;
    while (i < end && blob[i] !== 0) i++;
    if (i >= end) bad(`${what} at ${start} is not NUL-terminated`);
    return [text.decode(blob.subarray(start, i)), i + 1];
  };
  const structEnd = h.offDtStruct + h.sizeDtStruct;
  const stringsEnd = h.offDtStrings + h.sizeDtStrings;
  const align4 = (n: number): number => (n + 3) & ~3;

  let p = h.offDtStruct;
  const token = (): number => {
    if (p + 4 > structEnd) bad('structure block ends without FDT_END');
    const t = v.getUint32(p);
    p += 4;
    return t;
  };
  const stack: FdtNode[] = [];
  let sawRoot = false;
  for (;;) {
    const t = token();
    if (t === FDT_NOP) continue;
    if (t === FDT_BEGIN_NODE) {
      const [name, next] = cstring(p, structEnd, 'node name');
      p = align4(next);
      if (stack.length === 0) {
        if (sawRoot) bad('more than one root node');
        if (name !== '') bad(`root node is named "${name}"`);
        sawRoot = true;
        stack.push(tree.root);
      } else {
        stack.push(stack[stack.length - 1]!.addNode(name));
      }
    } else if (t === FDT_END_NODE) {
      if (!stack.pop()) bad('FDT_END_NODE without a node');
    } else if (t === FDT_PROP) {
      const node = stack[stack.length - 1];
      if (!node) bad('property outside any node');
      const len = token();
      const nameoff = token();
      if (p + len > structEnd) bad(`property of ${len} bytes runs past the structure block`);
      if (h.offDtStrings + nameoff >= stringsEnd) bad(`property name offset ${nameoff} is outside the strings block`);
      const [name] = cstring(h.offDtStrings + nameoff, stringsEnd, 'property name');
      node.setBytes(name, blob.subarray(p, p + len));
      p = align4(p + len);
    } else if (t === FDT_END) {
      if (stack.length !== 0) bad(`FDT_END inside node ${stack[stack.length - 1]!.path()}`);
      if (!sawRoot) bad('no root node');
      return tree;
    } else {
      bad(`unknown token 0x${t.toString(16)} at offset ${p - 4}`);
    }
  }
}
