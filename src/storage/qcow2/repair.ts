/**
 * Repairing the refcounts of a dirty image. qcow2.txt, incompatible bit 0: "refcounts may be
 * inconsistent, make sure to scan L1/L2 tables to repair refcounts before accessing the
 * image". A writer with lazy refcounts (QEMU's lazy_refcounts=on) that did not close the
 * image cleanly leaves it so. QEMU repairs such an image when it opens it for writing, and
 * so does virtus:
 *
 * 1. count every reference: the header cluster, the L1 table, the L2 tables and every
 *    cluster they name (a compressed cluster counts once in each host cluster it touches);
 * 2. write a fresh refcount table and blocks holding those counts past the end of the file
 *    (the old refcount structures are simply no longer referenced: free space);
 * 3. barrier, switch the header to the new table, barrier, clear the dirty bit, barrier.
 *
 * A crash before step 3 completes leaves the old structure in use and the dirty bit set, so
 * the repair runs again next time: nothing is lost.
 */
import { VirtusError } from '../../util/errors.ts';
import { readExact, type HostFile } from '../host-file.ts';
import { decodeL2, entryOffset, Table } from './entries.ts';
import { EXT, HDR, INCOMPAT, type Qcow2Header } from './header.ts';
import { writeRefcount } from './refcount.ts';

/** Rebuilds the refcounts of the dirty image in `file` and clears its dirty bit; updates `h`. */
export function repairRefcounts(file: HostFile, h: Qcow2Header, l1: Table): void {
  const name = file.name;
  const refuse = (why: string): never => {
    throw new VirtusError('QCOW2_REPAIR', `${name}: the image is marked dirty and ${why}; run qemu-img check -r all, or open it read-only`);
  };
  if (h.nbSnapshots > 0) refuse('has internal snapshots, whose refcounts virtus does not rebuild');
  if (h.extensions.some((e) => e.type === EXT.bitmaps)) refuse('has persistent bitmaps, whose refcounts virtus does not rebuild');

  const cs = 2 ** h.clusterBits;
  const fileClusters = Math.ceil(file.size() / cs);
  // One 32-bit count per host cluster: refuse a (sparse) file that would need more than 256 MiB.
  if (fileClusters > 2 ** 26) refuse(`is ${file.size()} bytes long, too many clusters (${fileClusters}) to count in memory`);
  const counts = new Uint32Array(fileClusters);
  const refRange = (off: number, len: number, what: string): void => {
    const first = Math.floor(off / cs);
    const last = Math.floor((off + len - 1) / cs);
    if (last >= fileClusters) throw new VirtusError('QCOW2_CORRUPT', `${name}: ${what} at 0x${off.toString(16)} lies beyond the end of the file`);
    for (let c = first; c <= last; c++) counts[c]!++;
  };

  refRange(0, cs, 'header');
  if (h.l1Size > 0) refRange(h.l1TableOffset, h.l1Size * 8, 'L1 table');
  const l2 = new Table(new Uint8Array(cs));
  for (let i = 0; i < h.l1Size; i++) {
    const off = entryOffset(l1.hi(i), l1.lo(i));
    if (off === 0) continue;
    if (off % cs !== 0) throw new VirtusError('QCOW2_CORRUPT', `${name}: L1 entry ${i} is not cluster-aligned`);
    refRange(off, cs, 'L2 table');
    readExact(file, off, l2.bytes, 'L2 table');
    for (let j = 0; j < cs / 8; j++) {
      const e = decodeL2(l2.hi(j), l2.lo(j), h.clusterBits, h.version === 3);
      if (e.kind === 'compressed') refRange(e.host, e.compressedLength, 'compressed cluster');
      else if (e.host !== 0) refRange(e.host, cs, 'data cluster');
    }
  }

  // Lay out the new table and blocks past the end of the file; they count themselves.
  const bits = 2 ** h.refcountOrder;
  const perBlock = (cs * 8) / bits;
  let tableClusters = 1;
  let blocks = 1;
  for (;;) {
    const b = Math.ceil((fileClusters + tableClusters + blocks) / perBlock);
    const t = Math.ceil((b * 8) / cs);
    if (b === blocks && t === tableClusters) break;
    blocks = Math.max(b, blocks);
    tableClusters = Math.max(t, tableClusters);
  }
  const tableAt = fileClusters;
  const blocksAt = tableAt + tableClusters;
  const max = bits >= 32 ? 2 ** 32 - 1 : 2 ** bits - 1;
  const refblocks = new Table(new Uint8Array(blocks * cs));
  for (let c = 0; c < blocksAt + blocks; c++) {
    const v = c < fileClusters ? counts[c]! : 1;
    if (v > max) throw new VirtusError('QCOW2_CORRUPT', `${name}: cluster ${c} has ${v} references, more than ${bits}-bit refcounts hold`);
    if (v !== 0) writeRefcount(refblocks, bits, c, v);
  }
  const table = new Uint8Array(tableClusters * cs);
  const tdv = new DataView(table.buffer);
  for (let j = 0; j < blocks; j++) tdv.setBigUint64(j * 8, BigInt((blocksAt + j) * cs));

  file.write(blocksAt * cs, refblocks.bytes);
  file.write(tableAt * cs, table);
  file.flush(true);
  const hdr = new Uint8Array(12);
  const hdv = new DataView(hdr.buffer);
  hdv.setBigUint64(0, BigInt(tableAt * cs));
  hdv.setUint32(8, tableClusters);
  file.write(HDR.refcountTableOffset, hdr);
  file.flush(true);
  const incompatible = h.incompatible & ~(1n << INCOMPAT.dirty);
  const inc = new Uint8Array(8);
  new DataView(inc.buffer).setBigUint64(0, incompatible);
  file.write(HDR.incompatibleFeatures, inc);
  file.flush(true);
  h.refcountTableOffset = tableAt * cs;
  h.refcountTableClusters = tableClusters;
  h.incompatible = incompatible;
}
