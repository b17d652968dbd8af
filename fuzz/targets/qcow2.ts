/**
 * qcow2 images from memory, through the HostFile interface: opened read-only (reads across the
 * disk, block status), then read-write (a write, a flush, a read back, close). Seeds are small
 * images made by virtus' own create code and then written to: L2 tables, refcounts, data and
 * compressed clusters, a backing file, version 2, 1- and 64-bit refcounts, 512-byte clusters,
 * zstd, lazy refcounts left dirty, extended L2 entries, an internal snapshot. Refusing an image
 * with a VirtusError is fine; the file may not grow past a bound (an image that makes virtus
 * write far beyond its own size is a crash, as a huge allocation is).
 */
import type { BlockBackend } from '../../src/storage/backend.ts';
import { MemoryFileSystem, MemoryHostFile, normalizePath } from '../../src/storage/host-file.ts';
import { createImage, openImage } from '../../src/storage/open.ts';
import { Qcow2Backend } from '../../src/storage/qcow2/qcow2.ts';
import type { FuzzTarget } from '../harness.ts';

/** How far past its input an image may grow from one write (a few 2 MiB clusters of metadata and data). */
const GROWTH = 16 << 20;

class CappedFile extends MemoryHostFile {
  constructor(name: string, initial: Uint8Array, private readonly cap: number) {
    super(name, initial);
  }
  override write(position: number, buf: Uint8Array): void {
    if (position + buf.length > this.cap) throw new Error(`the image grew to ${position + buf.length} bytes (input ${this.cap - GROWTH})`);
    super.write(position, buf);
  }
  override truncate(size: number): void {
    if (size > this.cap) throw new Error(`the image was resized to ${size} bytes`);
    super.truncate(size);
  }
}

/** A file system with the image and the raw backing file its seeds name. */
function fileSystem(image: Uint8Array): MemoryFileSystem {
  const fs = new MemoryFileSystem();
  fs.files.set('disk.qcow2', new CappedFile('disk.qcow2', image, image.length + GROWTH));
  const base = new Uint8Array(64 << 10).fill(0x42);
  fs.files.set(normalizePath('base.raw'), new CappedFile('base.raw', base, base.length));
  return fs;
}

function seed(o: Parameters<typeof createImage>[2], fill: (b: BlockBackend) => void, edit?: (bytes: Uint8Array) => void): Uint8Array {
  const fs = new MemoryFileSystem();
  fs.files.set('base.raw', new MemoryHostFile('base.raw', new Uint8Array(64 << 10).fill(0x42)));
  createImage(fs, 'disk.qcow2', o);
  const b = openImage(fs, 'disk.qcow2');
  fill(b);
  b.close();
  const bytes = fs.files.get('disk.qcow2')!.contents();
  edit?.(bytes);
  return bytes;
}

const pattern = (n: number, v: number): Uint8Array => new Uint8Array(n).map((_, i) => (i * 7 + v) & 0xff);

function setU64(b: Uint8Array, at: number, v: bigint): void {
  new DataView(b.buffer, b.byteOffset).setBigUint64(at, v);
}

function seeds(): Uint8Array[] {
  const small = { size: 256 << 10, clusterSize: 4096 };
  return [
    seed({ format: 'qcow2', ...small }, (b) => {
      b.write(0, pattern(8192, 1));
      b.write(100 << 10, pattern(3000, 2));
      b.writeZeroes(4096, 4096);
    }),
    seed({ format: 'qcow2', ...small }, (b) => {
      (b as Qcow2Backend).writeCompressed(0, new Uint8Array(4096).fill(9));
      (b as Qcow2Backend).writeCompressed(8192, pattern(4096, 3));
    }),
    seed({ format: 'qcow2', ...small, backingFile: 'base.raw', backingFormat: 'raw' }, (b) => b.write(4096, pattern(512, 4))),
    seed({ format: 'qcow2', size: 64 << 10, clusterSize: 512, version: 2 }, (b) => b.write(1000, pattern(2000, 5))),
    seed({ format: 'qcow2', ...small, refcountBits: 1 }, (b) => b.write(0, pattern(4096, 6))),
    seed({ format: 'qcow2', ...small, refcountBits: 64, compressionType: 'zstd' }, (b) => b.write(8192, pattern(100, 7))),
    // Lazy refcounts, left dirty: opening it for writing rebuilds the refcounts.
    seed({ format: 'qcow2', ...small, lazyRefcounts: true }, (b) => b.write(0, pattern(4096, 8)), (bytes) => setU64(bytes, 72, 1n)),
    // Extended L2 entries (16 KiB clusters): the feature bit on an image without data.
    seed({ format: 'qcow2', size: 256 << 10, clusterSize: 16384 }, () => {}, (bytes) => setU64(bytes, 72, 1n << 4n)),
    // One internal snapshot: a table entry after the image (qcow2.txt "Snapshot table").
    withSnapshot(seed({ format: 'qcow2', ...small }, (b) => b.write(0, pattern(4096, 10)))),
  ];
}

function withSnapshot(image: Uint8Array): Uint8Array {
  const at = Math.ceil(image.length / 4096) * 4096;
  const out = new Uint8Array(at + 64);
  out.set(image);
  const dv = new DataView(out.buffer);
  dv.setUint16(at + 12, 1);
  dv.setUint16(at + 14, 1);
  dv.setUint32(at + 36, 16);
  out[at + 56] = 0x31;
  out[at + 57] = 0x73;
  dv.setUint32(60, 1);
  dv.setBigUint64(64, BigInt(at));
  return out;
}

/** Reads a few ranges across the disk and asks for block status. */
function readAround(b: BlockBackend): void {
  const buf = new Uint8Array(8192);
  for (const at of [0, Math.floor(b.size / 2), Math.max(0, b.size - buf.length)]) {
    const n = Math.min(buf.length, b.size - at);
    if (n <= 0) continue;
    b.read(at, buf.subarray(0, n));
    b.blockStatus(at, n);
  }
}

export const target: FuzzTarget = {
  name: 'qcow2',
  seeds,
  timeLimitMs: 3000,
  run(input) {
    const fs = fileSystem(input);
    const ro = openImage(fs, 'disk.qcow2', { readOnly: true });
    try {
      readAround(ro);
    } finally {
      ro.close();
    }
    const rw = openImage(fs, 'disk.qcow2');
    try {
      const at = Math.min(4096 + 512, Math.max(0, rw.size - 1024));
      const n = Math.min(1024, rw.size - at);
      if (n > 0) {
        rw.write(at, pattern(n, 0x33));
        rw.flush();
        rw.read(at, new Uint8Array(n));
      }
      readAround(rw);
    } finally {
      rw.close();
    }
  },
};
