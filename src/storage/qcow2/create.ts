/**
 * Creating empty qcow2 images. Layout (as qemu-img lays out small images): the header
 * cluster, the refcount table, the refcount blocks that count all of these, then the L1
 * table (left as a hole in the file: zeros mean "unallocated").
 */
import { VirtusError } from '../../util/errors.ts';
import type { HostFile } from '../host-file.ts';
import { encodeHeader, type CompressionType } from './header.ts';

/** What a new qcow2 image looks like; qemu-img's `-o` options by their meaning. */
export interface Qcow2CreateOptions {
  /** Virtual size in bytes. */
  size: number;
  /** Bytes per cluster: a power of two from 512 to 2 MiB (default 64 KiB). */
  clusterSize?: number;
  /** 3 (compat=1.1, the default) or 2 (compat=0.10). */
  version?: 2 | 3;
  /** Bits per refcount: a power of two from 1 to 64 (default 16; version 2 only has 16). */
  refcountBits?: number;
  lazyRefcounts?: boolean;
  compressionType?: CompressionType;
  /** Backing file name as it is to be stored (relative names are relative to the image). */
  backingFile?: string | null;
  backingFormat?: string | null;
}

/** Checks options and fills in defaults; throws a VirtusError naming a bad option. */
export function qcow2Defaults(o: Qcow2CreateOptions): Required<Qcow2CreateOptions> {
  const r: Required<Qcow2CreateOptions> = {
    size: o.size,
    clusterSize: o.clusterSize ?? 65536,
    version: o.version ?? 3,
    refcountBits: o.refcountBits ?? 16,
    lazyRefcounts: o.lazyRefcounts ?? false,
    compressionType: o.compressionType ?? 'zlib',
    backingFile: o.backingFile ?? null,
    backingFormat: o.backingFormat ?? null,
  };
  const bad = (what: string): never => {
    throw new VirtusError('BAD_OPTION', what, { exitCode: 1 });
  };
  const cs = r.clusterSize;
  if (!Number.isInteger(Math.log2(cs)) || cs < 512 || cs > 2 << 20) {
    bad(`cluster size must be a power of two between 512 and 2097152 bytes (got ${cs})`);
  }
  const rb = r.refcountBits;
  if (!Number.isInteger(Math.log2(rb)) || rb < 1 || rb > 64) bad(`refcount bits must be a power of two up to 64 (got ${rb})`);
  if (r.version === 2) {
    if (rb !== 16) bad('refcount bits other than 16 need compat=1.1');
    if (r.lazyRefcounts) bad('lazy refcounts need compat=1.1');
    if (r.compressionType !== 'zlib') bad('compression types other than zlib need compat=1.1');
  }
  if (!Number.isSafeInteger(r.size) || r.size < 0) bad(`invalid image size ${r.size}`);
  const l1 = Math.ceil(r.size / (cs * (cs / 8)));
  if (l1 * 8 > 32 << 20) bad(`image size is too large for ${cs}-byte clusters (the L1 table would exceed 32 MiB)`);
  return r;
}

/** Writes an empty qcow2 image into `file` (which should be empty) and flushes it. */
export function createQcow2(file: HostFile, options: Qcow2CreateOptions): void {
  const o = qcow2Defaults(options);
  const cs = o.clusterSize;
  const clusterBits = Math.log2(cs);
  const refcountOrder = Math.log2(o.refcountBits);
  const l1Size = Math.ceil(o.size / (cs * (cs / 8)));
  const l1Clusters = Math.ceil((l1Size * 8) / cs); // none for an empty disk, as qemu-img
  const perBlock = (cs * 8) / o.refcountBits;
  // Find the fixed point: the refcount table and blocks must count themselves.
  let tableClusters = 1;
  let blocks = 1;
  for (;;) {
    const total = 1 + tableClusters + blocks + l1Clusters;
    const b = Math.ceil(total / perBlock);
    const t = Math.ceil((b * 8) / cs);
    if (b === blocks && t === tableClusters) break;
    blocks = Math.max(b, blocks);
    tableClusters = Math.max(t, tableClusters);
  }
  const tableAt = 1;
  const blocksAt = tableAt + tableClusters;
  const l1At = blocksAt + blocks;
  const total = l1At + l1Clusters;

  file.truncate(0);
  file.write(0, encodeHeader({
    version: o.version,
    clusterBits,
    size: o.size,
    l1Size,
    l1TableOffset: l1Clusters > 0 ? l1At * cs : 0,
    refcountTableOffset: tableAt * cs,
    refcountTableClusters: tableClusters,
    refcountOrder,
    compressionType: o.compressionType,
    lazyRefcounts: o.lazyRefcounts,
    backingFile: o.backingFile,
    backingFormat: o.backingFormat,
  }));
  const table = new Uint8Array(tableClusters * cs);
  const tdv = new DataView(table.buffer);
  for (let j = 0; j < blocks; j++) tdv.setBigUint64(j * 8, BigInt((blocksAt + j) * cs));
  file.write(tableAt * cs, table);
  const refs = new Uint8Array(blocks * cs);
  const rdv = new DataView(refs.buffer);
  for (let c = 0; c < total; c++) {
    switch (o.refcountBits) {
      case 64: rdv.setBigUint64(c * 8, 1n); break;
      case 32: rdv.setUint32(c * 4, 1); break;
      case 16: rdv.setUint16(c * 2, 1); break;
      case 8: refs[c] = 1; break;
      default: refs[(c * o.refcountBits) >> 3]! |= 1 << ((c * o.refcountBits) & 7);
    }
  }
  file.write(blocksAt * cs, refs);
  file.truncate(total * cs);
  file.flush(false);
}
