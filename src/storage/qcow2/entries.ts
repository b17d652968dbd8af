/**
 * L1 and L2 table entries (qcow2.txt "Cluster mapping"). Entries are 64-bit big-endian;
 * JavaScript numbers hold host offsets exactly (below 2^53), so an entry is read as two
 * 32-bit halves: `hi` holds bits 32-63 (the flags), `lo` bits 0-31.
 */
import { VirtusError } from '../../util/errors.ts';

/** Bit 63 of L1/L2 entries: refcount is exactly one, so the cluster may be written in place. */
export const COPIED = 0x80000000;
/** Bit 62 of L2 entries: the cluster is compressed. */
export const COMPRESSED = 0x40000000;
/** Bit 0 of a standard cluster descriptor: reads as zeros (version 3). */
export const ZERO = 1;

const TWO32 = 2 ** 32;

/** How one guest cluster (or subcluster) is stored. */
export type ClusterKind = 'unallocated' | 'zero' | 'data' | 'compressed';

/** A decoded L2 entry. */
export interface L2Entry {
  kind: ClusterKind;
  /** Host offset of the cluster (data, or a preallocated zero cluster); of the compressed bytes. */
  host: number;
  /** Bit 63. */
  copied: boolean;
  /** Compressed clusters: length in bytes from `host` (to the end of the last sector). */
  compressedLength: number;
}

/** Bits 9-55 of an entry: a cluster-aligned host offset. */
export function entryOffset(hi: number, lo: number): number {
  return (hi & 0x00ffffff) * TWO32 + ((lo & 0xfffffe00) >>> 0);
}

/** Splits a host offset (and flag bits in the high word) into the two halves of an entry. */
export function makeEntry(host: number, hiFlags: number, loFlags = 0): [number, number] {
  const hi = Math.floor(host / TWO32);
  return [(hi | hiFlags) >>> 0, ((host >>> 0) | loFlags) >>> 0];
}

/**
 * Decodes an L2 entry of an image with 2^`clusterBits`-byte clusters. `v3` says whether
 * bit 0 means "reads as zeros" (qcow2 v3 only; v2 ignores it).
 */
export function decodeL2(hi: number, lo: number, clusterBits: number, zeroBit: boolean): L2Entry {
  const copied = (hi & COPIED) !== 0;
  if (hi & COMPRESSED) {
    // qcow2.txt "Compressed Clusters Descriptor": x = 62 - (cluster_bits - 8); bits 0..x-1 are
    // the host byte offset, bits x..61 the number of additional 512-byte sectors.
    const x = BigInt(62 - (clusterBits - 8));
    const v = (BigInt(hi & 0x3fffffff) << 32n) | BigInt(lo >>> 0);
    const host = Number(v & ((1n << x) - 1n));
    const sectors = Number(v >> x) + 1;
    return { kind: 'compressed', host, copied, compressedLength: sectors * 512 - (host % 512) };
  }
  const host = entryOffset(hi, lo);
  if (zeroBit && lo & ZERO) return { kind: 'zero', host, copied, compressedLength: 0 };
  if (host === 0) return { kind: 'unallocated', host: 0, copied, compressedLength: 0 };
  if (host % 2 ** clusterBits !== 0) {
    throw new VirtusError('QCOW2_CORRUPT', `L2 entry points to unaligned host offset 0x${host.toString(16)}`);
  }
  return { kind: 'data', host, copied, compressedLength: 0 };
}

/** A cluster-sized table (L2 table or refcount block) as bytes with 64-bit entry access. */
export class Table {
  readonly dv: DataView;
  constructor(readonly bytes: Uint8Array) {
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  hi(i: number): number {
    return this.dv.getUint32(i * 8);
  }
  lo(i: number): number {
    return this.dv.getUint32(i * 8 + 4);
  }
  set(i: number, hi: number, lo: number): void {
    this.dv.setUint32(i * 8, hi >>> 0);
    this.dv.setUint32(i * 8 + 4, lo >>> 0);
  }
}
