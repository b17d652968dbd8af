/**
 * The internal snapshot table (qcow2.txt "Snapshot table"). virtus does not use snapshots,
 * but it reads their headers to check them, as QEMU does when it opens an image: a table or an
 * entry outside the file, or a snapshot's L1 table out of bounds, is corruption.
 */
import { VirtusError } from '../../util/errors.ts';
import type { HostFile } from '../host-file.ts';
import { LIMITS, type Qcow2Header } from './header.ts';

/** QEMU's limits (block/qcow2.h): extra data per snapshot, and the whole table. */
const MAX_EXTRA = 1024;
const MAX_TABLE = 64 << 20;

/** Checks every entry of the snapshot table of `h` (validated already for count and offset). */
export function checkSnapshots(file: HostFile, h: Qcow2Header): void {
  const cs = 2 ** h.clusterBits;
  const fileSize = file.size();
  const bad = (i: number, what: string): VirtusError =>
    new VirtusError('QCOW2_BAD_HEADER', `${file.name}: not a valid qcow2 image: snapshot table entry ${i} ${what}`);
  const fixed = new Uint8Array(40);
  const dv = new DataView(fixed.buffer);
  let at = h.snapshotsOffset;
  for (let i = 0; i < h.nbSnapshots; i++) {
    if (at + 40 > fileSize || file.read(at, fixed) !== 40) throw bad(i, `at ${at} lies beyond the end of the file (${fileSize} bytes)`);
    const l1Offset = Number(dv.getBigUint64(0));
    const l1Size = dv.getUint32(8);
    const idSize = dv.getUint16(12);
    const nameSize = dv.getUint16(14);
    const extra = dv.getUint32(36);
    if (extra > MAX_EXTRA) throw bad(i, `has ${extra} bytes of extra data (at most ${MAX_EXTRA})`);
    // qcow2.txt: version 3 entries carry extra data at least up to byte 55 (vm_state_size_large, disk_size).
    if (h.version === 3 && extra < 16) throw bad(i, `has ${extra} bytes of extra data (version 3 needs at least 16)`);
    if (l1Size * 8 > LIMITS.l1Bytes) throw bad(i, `has an L1 table of ${l1Size} entries (larger than 32 MiB)`);
    if (l1Offset % cs !== 0) throw bad(i, `has an L1 table offset ${l1Offset} that is not cluster-aligned`);
    if (l1Size > 0 && l1Offset + l1Size * 8 > fileSize) throw bad(i, `has an L1 table at ${l1Offset} beyond the end of the file`);
    // Entries are padded to a multiple of 8 bytes.
    const length = Math.ceil((40 + extra + idSize + nameSize) / 8) * 8;
    if (at + 40 + extra + idSize + nameSize > fileSize) throw bad(i, `at ${at} is cut off by the end of the file`);
    at += length;
    if (at - h.snapshotsOffset > MAX_TABLE) throw bad(i, 'ends past 64 MiB of snapshot table');
  }
}
