/**
 * qcow2 header rules (qcow2.txt "Header"): unknown incompatible features refused by name,
 * compatible ones preserved, autoclear ones cleared on the first write, the dirty and
 * corrupt bits, extended L2 entries, broken headers, backing loops; and --drive specs with
 * overlays. All in memory.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isVirtusError } from '../../src/util/errors.ts';
import { openDrive, parseDriveSpec } from '../../src/storage/drive.ts';
import { MemoryFileSystem, type MemoryHostFile } from '../../src/storage/host-file.ts';
import { createImage, MAX_CHAIN_DEPTH, openImage } from '../../src/storage/open.ts';
import { createQcow2 } from '../../src/storage/qcow2/create.ts';

function image(o: Parameters<typeof createImage>[2] = { format: 'qcow2', size: 1 << 20 }): { fs: MemoryFileSystem; file: MemoryHostFile } {
  const fs = new MemoryFileSystem();
  createImage(fs, 'disk.qcow2', o);
  return { fs, file: fs.files.get('disk.qcow2')! };
}

function u64(file: MemoryHostFile, at: number): bigint {
  const b = new Uint8Array(8);
  file.read(at, b);
  return new DataView(b.buffer).getBigUint64(0);
}

function setU64(file: MemoryHostFile, at: number, v: bigint): void {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v);
  file.write(at, b);
}

/** Appends one snapshot table entry (qcow2.txt "Snapshot table": no L1 table, 16 bytes of extra data, id "1", name "s"). */
function addSnapshot(file: MemoryHostFile): void {
  const at = Math.ceil(file.size() / 65536) * 65536;
  const e = new Uint8Array(64);
  const dv = new DataView(e.buffer);
  dv.setUint16(12, 1);
  dv.setUint16(14, 1);
  dv.setUint32(36, 16);
  e[56] = 0x31;
  e[57] = 0x73;
  file.write(at, e);
  file.write(60, new Uint8Array([0, 0, 0, 1]));
  setU64(file, 64, BigInt(at));
}

function throwsCode(fn: () => unknown, code: string, message?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isVirtusError(e, code), `expected ${code}, got ${String(e)}`);
    if (message) assert.match((e as Error).message, message);
    return true;
  });
}

describe('qcow2 feature bits', () => {
  it('unknown incompatible bits refuse the image, named from its feature name table', () => {
    const { fs, file } = image();
    setU64(file, 72, (1n << 9n) | (1n << 40n));
    throwsCode(() => openImage(fs, 'disk.qcow2', { readOnly: true }), 'QCOW2_FEATURES', /bit 9, bit 40/);
    // Name bit 9 in the image's own table: rename its first entry (the dirty bit) to bit 9.
    const entry = new Uint8Array(48);
    entry[0] = 0;
    entry[1] = 9;
    entry.set(new TextEncoder().encode('time travel'), 2);
    const ext = findExtension(file, 0x6803f857);
    file.write(ext, entry);
    throwsCode(() => openImage(fs, 'disk.qcow2', { readOnly: true }), 'QCOW2_FEATURES', /bit 9 \("time travel"\)/);
  });

  it('unknown compatible bits are kept; autoclear bits are cleared by the first write only', () => {
    const { fs, file } = image();
    setU64(file, 80, 1n << 33n);
    setU64(file, 88, (1n << 0n) | (1n << 20n));
    let b = openImage(fs, 'disk.qcow2');
    b.read(0, new Uint8Array(4096));
    b.flush();
    b.close();
    assert.equal(u64(file, 88), (1n << 0n) | (1n << 20n), 'reading does not clear autoclear bits');
    b = openImage(fs, 'disk.qcow2');
    b.write(0, new Uint8Array(512).fill(1));
    b.close();
    assert.equal(u64(file, 88), 0n, 'autoclear bits cleared on write');
    assert.equal(u64(file, 80), 1n << 33n, 'compatible bits preserved');
  });

  it('a corrupt image opens read-only only', () => {
    const { fs, file } = image();
    setU64(file, 72, 1n << 1n);
    openImage(fs, 'disk.qcow2', { readOnly: true }).close();
    throwsCode(() => openImage(fs, 'disk.qcow2'), 'QCOW2_READ_ONLY', /marked corrupt/);
  });

  it('a dirty image reads as it is, and has its refcounts rebuilt when opened for writing', () => {
    const { fs, file } = image();
    setU64(file, 72, 1n << 0n);
    let b = openImage(fs, 'disk.qcow2', { readOnly: true });
    assert.equal(b.info().qcow2?.dirty, true);
    b.close();
    assert.equal(u64(file, 72), 1n, 'a read-only open leaves the bit');
    b = openImage(fs, 'disk.qcow2');
    assert.equal(u64(file, 72), 0n, 'repaired and cleared on a writable open');
    b.write(4096, new Uint8Array(100).fill(3));
    b.close();
    // With snapshots, virtus does not rebuild: it says what to do instead.
    const other = image();
    setU64(other.file, 72, 1n << 0n);
    addSnapshot(other.file);
    throwsCode(() => openImage(other.fs, 'disk.qcow2'), 'QCOW2_READ_ONLY', /internal snapshot/);
  });

  it('extended L2 entries: readable, not writable; external data files refused', () => {
    const { fs, file } = image();
    setU64(file, 72, 1n << 4n);
    openImage(fs, 'disk.qcow2', { readOnly: true }).close();
    throwsCode(() => openImage(fs, 'disk.qcow2'), 'QCOW2_READ_ONLY', /extended L2/);
    setU64(file, 72, 1n << 2n);
    throwsCode(() => openImage(fs, 'disk.qcow2', { readOnly: true }), 'QCOW2_FEATURES', /external data file/);
  });

  it('broken headers are refused with the field named', () => {
    const cases: [number, number, string, RegExp][] = [
      [4, 1, 'QCOW2_VERSION', /version 1/],
      [20, 8, 'QCOW2_BAD_HEADER', /cluster_bits 8/],
      [32, 2, 'QCOW2_ENCRYPTED', /encrypted/],
      [96, 7, 'QCOW2_BAD_HEADER', /refcount_order 7/],
      [100, 100, 'QCOW2_BAD_HEADER', /header_length 100/],
    ];
    for (const [at, value, code, re] of cases) {
      const { fs, file } = image();
      const b = new Uint8Array(4);
      new DataView(b.buffer).setUint32(0, value);
      file.write(at, b);
      throwsCode(() => openImage(fs, 'disk.qcow2', { readOnly: true }), code, re);
    }
    const { fs, file } = image();
    file.truncate(65536 * 2);
    throwsCode(() => openImage(fs, 'disk.qcow2', { readOnly: true }), 'QCOW2_BAD_HEADER', /l1_table_offset 196608: the L1 table .* lies beyond the end of the file/);
  });

  it('backing loops and over-deep chains are refused', () => {
    const fs = new MemoryFileSystem();
    createQcow2(fs.create('a.qcow2'), { size: 65536, backingFile: 'b.qcow2', backingFormat: 'qcow2' });
    createQcow2(fs.create('b.qcow2'), { size: 65536, backingFile: 'a.qcow2', backingFormat: 'qcow2' });
    throwsCode(() => openImage(fs, 'a.qcow2'), 'BACKING_LOOP', /loops back to a.qcow2/);
    createImage(fs, 'l0.qcow2', { format: 'qcow2', size: 65536 });
    for (let i = 1; i <= MAX_CHAIN_DEPTH + 1; i++) createQcow2(fs.create(`l${i}.qcow2`), { size: 65536, backingFile: `l${i - 1}.qcow2`, backingFormat: 'qcow2' });
    openImage(fs, `l${MAX_CHAIN_DEPTH - 1}.qcow2`).close();
    throwsCode(() => openImage(fs, `l${MAX_CHAIN_DEPTH + 1}.qcow2`), 'BACKING_DEPTH');
  });

  it('read-only backends refuse writes; accesses beyond the disk are refused', () => {
    const { fs } = image();
    const b = openImage(fs, 'disk.qcow2', { readOnly: true });
    throwsCode(() => b.write(0, new Uint8Array(1)), 'READ_ONLY');
    throwsCode(() => b.read((1 << 20) - 1, new Uint8Array(2)), 'BLOCK_RANGE');
    b.close();
  });
});

describe('--drive specs and overlays', () => {
  it('parses QEMU-style key=value lists', () => {
    const d = parseDriveSpec('file=my,,disk.qcow2,format=qcow2,readonly=on,if=virtio');
    assert.equal(d.file, 'my,disk.qcow2');
    assert.equal(d.format, 'qcow2');
    assert.equal(d.readOnly, true);
    assert.equal(d.other.get('if'), 'virtio');
    assert.equal(parseDriveSpec('base.raw,overlay=auto').overlay, 'auto');
    throwsCode(() => parseDriveSpec('format=raw'), 'BAD_DRIVE', /file= is missing/);
    throwsCode(() => parseDriveSpec('file=x,format=vmdk'), 'BAD_FORMAT');
    throwsCode(() => parseDriveSpec('file=x,overlay=auto,readonly=on'), 'BAD_DRIVE');
  });

  it('overlay=auto gives each machine its own temporary overlay over a shared base', () => {
    const fs = new MemoryFileSystem();
    createImage(fs, '/img/base.qcow2', { format: 'qcow2', size: 1 << 20 });
    const base = openImage(fs, '/img/base.qcow2');
    base.write(0, new Uint8Array(1000).fill(7));
    base.close();
    let n = 0;
    const opts = { absolute: (p: string) => p, temporaryPath: () => `/tmp/overlay-${n++}.qcow2` };
    const spec = parseDriveSpec('file=/img/base.qcow2,overlay=auto');
    const m1 = openDrive(fs, spec, opts);
    const m2 = openDrive(fs, spec, opts);
    m1.backend.write(0, new Uint8Array(10).fill(1));
    const got = new Uint8Array(20);
    m2.backend.read(0, got);
    assert.deepEqual([...got], Array(20).fill(7), 'machine 2 does not see machine 1');
    m1.backend.read(0, got);
    assert.deepEqual([...got], [...Array(10).fill(1), ...Array(10).fill(7)]);
    assert.equal(m1.backend.backing?.readOnly, true);
    const p1 = m1.overlayPath!;
    m1.close();
    m2.close();
    assert.equal(fs.exists(p1), false, 'temporary overlay deleted');
    const after = new Uint8Array(10);
    const b = openImage(fs, '/img/base.qcow2', { readOnly: true });
    b.read(0, after);
    b.close();
    assert.deepEqual([...after], Array(10).fill(7), 'base unchanged');
  });

  it('overlay=PATH persists and is reused', () => {
    const fs = new MemoryFileSystem();
    createImage(fs, '/img/base.raw', { format: 'raw', size: 1 << 20 });
    const opts = { absolute: (p: string) => p, temporaryPath: () => assert.fail('no temporary overlay') };
    const spec = parseDriveSpec('file=/img/base.raw,format=raw,overlay=/vm/a.qcow2');
    let d = openDrive(fs, spec, opts);
    d.backend.write(4096, new Uint8Array([1, 2, 3]));
    d.close();
    d = openDrive(fs, spec, opts);
    const got = new Uint8Array(3);
    d.backend.read(4096, got);
    d.close();
    assert.deepEqual([...got], [1, 2, 3]);
    assert.equal(openImage(fs, '/vm/a.qcow2', { readOnly: true }).info().backingFormat, 'raw');
  });
});

/** Offset of the data of the first header extension of `type`. */
function findExtension(file: MemoryHostFile, type: number): number {
  const b = new Uint8Array(65536);
  file.read(0, b);
  const dv = new DataView(b.buffer);
  let at = dv.getUint32(100);
  while (at + 8 <= b.length) {
    const t = dv.getUint32(at);
    const len = dv.getUint32(at + 4);
    if (t === type) return at + 8;
    if (t === 0) break;
    at += 8 + Math.ceil(len / 8) * 8;
  }
  throw new Error(`no extension 0x${type.toString(16)}`);
}
