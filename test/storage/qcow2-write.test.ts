/**
 * Writing qcow2 images: random workloads against an in-memory model, then the image must
 * pass `qemu-img check` with no errors and no leaks (after a clean close) and read back
 * identically through `qemu-img convert`. Covers both versions, cluster sizes from 512 B to
 * 2 MiB, refcount widths from 1 to 64 bits, raw and qcow2 backing files, and writes into
 * images QEMU made (overwriting compressed and zero clusters).
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { nodeFileSystem } from '../../src/host/node/host-file.ts';
import { MemoryFileSystem } from '../../src/storage/host-file.ts';
import { convertImage } from '../../src/storage/copy.ts';
import { createImage, openImage } from '../../src/storage/open.ts';
import type { Qcow2CreateOptions } from '../../src/storage/qcow2/create.ts';
import { diskHash, qemu, qemuCheck, qemuDiskHash, Rng, scratch, sha256 } from './support.ts';
import { assertDisk, runWorkload } from './workload.ts';

const MiB = 1 << 20;
const SIZE = 6 * MiB + 1536;

type Backing = 'none' | 'raw' | 'qcow2';

const CONFIGS: { name: string; o: Partial<Qcow2CreateOptions>; backings: Backing[] }[] = [
  { name: 'v3, 64 KiB clusters', o: {}, backings: ['none', 'raw', 'qcow2'] },
  { name: 'v2, 64 KiB clusters', o: { version: 2 }, backings: ['none', 'qcow2'] },
  { name: 'v3, 512 B clusters, 1-bit refcounts', o: { clusterSize: 512, refcountBits: 1 }, backings: ['none', 'raw'] },
  { name: 'v3, 512 B clusters, 64-bit refcounts (refcount table grows)', o: { clusterSize: 512, refcountBits: 64 }, backings: ['none'] },
  { name: 'v3, 4 KiB clusters, 8-bit refcounts', o: { clusterSize: 4096, refcountBits: 8 }, backings: ['qcow2'] },
  { name: 'v2, 2 KiB clusters', o: { version: 2, clusterSize: 2048 }, backings: ['raw'] },
  { name: 'v3, 2 MiB clusters', o: { clusterSize: 2 * MiB }, backings: ['none', 'raw'] },
];

describe('qcow2 writes are consistent and read back identically in QEMU', () => {
  const s = scratch();
  after(() => s.cleanup());

  /** Makes a backing image; returns its name (relative) and its contents. */
  function makeBacking(kind: Backing, tag: string, rng: Rng): { name: string | null; content: Uint8Array } {
    const content = new Uint8Array(SIZE);
    if (kind === 'none') return { name: null, content };
    const bsize = 4 * MiB + 512; // smaller than the overlay: the rest reads as zeros
    if (kind === 'raw') {
      const data = rng.bytes(bsize);
      data.fill(0, MiB, 2 * MiB);
      writeFileSync(s.path(`${tag}.base.raw`), data);
      content.set(data);
      return { name: `${tag}.base.raw`, content };
    }
    const name = `${tag}.base.qcow2`;
    qemu('qemu-img', ['create', '-f', 'qcow2', '-o', 'compat=0.10,cluster_size=4096', s.path(name), String(bsize)]);
    qemu('qemu-io', ['-c', 'write -P 0x61 0 1M', '-c', 'write -P 0x62 1500000 1000000', '-c', `write -P 0x63 ${bsize - 5000} 5000`, s.path(name)]);
    qemu('qemu-img', ['convert', '-O', 'raw', s.path(name), s.path(`${tag}.base.check`)]);
    content.set(readFileSync(s.path(`${tag}.base.check`)));
    return { name, content };
  }

  for (const cfg of CONFIGS) {
    for (const backing of cfg.backings) {
      it(`${cfg.name}, backing: ${backing}`, () => {
        const tag = `${cfg.name.replace(/\W+/g, '-')}-${backing}`;
        const rng = new Rng(tag.length * 7919 + backing.length);
        const base = makeBacking(backing, tag, rng);
        const path = s.path(`${tag}.qcow2`);
        createImage(nodeFileSystem, path, {
          format: 'qcow2', size: SIZE, ...cfg.o,
          ...(base.name ? { backingFile: base.name, backingFormat: backing } : {}),
        });
        const model = base.content;
        const cs = cfg.o.clusterSize ?? 65536;
        const discardZeroes = (cfg.o.version ?? 3) === 3 || backing === 'none';
        let b = openImage(nodeFileSystem, path);
        runWorkload(b, model, rng, { ops: 400, clusterSize: cs, discardZeroes, maxLength: 3 * MiB });
        b.close();
        const check = qemuCheck(path);
        assert.deepEqual([check.corruptions, check.leaks, check.checkErrors], [0, 0, 0], check.raw);
        assert.equal(qemuDiskHash(path, s.dir), sha256(model));
        // Reopen and go on: state on disk is complete.
        b = openImage(nodeFileSystem, path);
        assertDisk(b, model, 'after reopening');
        runWorkload(b, model, rng, { ops: 150, clusterSize: cs, discardZeroes });
        b.close();
        const again = qemuCheck(path);
        assert.deepEqual([again.corruptions, again.leaks], [0, 0], again.raw);
        assert.equal(qemuDiskHash(path, s.dir), sha256(model));
      });
    }
  }

  it('writes into an image QEMU compressed (zstd), replacing compressed and zero clusters', () => {
    const raw = s.path('comp.raw');
    const rng = new Rng(99);
    const data = new Uint8Array(4 * MiB);
    for (let off = 0; off < data.length; off += 65536) data.fill(rng.below(4), off, off + 65536);
    data.set(rng.bytes(100000), 300000);
    writeFileSync(raw, data);
    const path = s.path('comp.qcow2');
    qemu('qemu-img', ['convert', '-c', '-O', 'qcow2', '-o', 'compression_type=zstd', raw, path]);
    qemu('qemu-io', ['-c', 'write -z 2M 512k', path]);
    data.fill(0, 2 * MiB, 2 * MiB + 512 * 1024);
    const b = openImage(nodeFileSystem, path);
    assertDisk(b, data, 'before writing');
    runWorkload(b, data, rng, { ops: 300, clusterSize: 65536, discardZeroes: true });
    b.close();
    const check = qemuCheck(path);
    assert.deepEqual([check.corruptions, check.leaks], [0, 0], check.raw);
    assert.equal(qemuDiskHash(path, s.dir), sha256(data));
  });

  it('overwriting clusters virtus compressed frees their shared host clusters exactly', () => {
    const rng = new Rng(31);
    const data = new Uint8Array(2 * MiB);
    for (let off = 0; off < data.length; off += 4096) data.fill(rng.below(5), off, off + 4096);
    writeFileSync(s.path('vc.raw'), data);
    const src = openImage(nodeFileSystem, s.path('vc.raw'), { readOnly: true });
    const path = s.path('vc.qcow2');
    createImage(nodeFileSystem, path, { format: 'qcow2', size: data.length, clusterSize: 4096 });
    const dst = openImage(nodeFileSystem, path);
    convertImage(src, dst, { compress: true });
    src.close();
    runWorkload(dst, data, rng, { ops: 300, clusterSize: 4096, discardZeroes: true });
    dst.close();
    const check = qemuCheck(path);
    assert.deepEqual([check.corruptions, check.leaks], [0, 0], check.raw);
    assert.equal(qemuDiskHash(path, s.dir), sha256(data));
  });

  it('a dirty image QEMU left behind (lazy refcounts, aborted) is repaired on a writable open', () => {
    const path = s.path('lazy.qcow2');
    qemu('qemu-img', ['create', '-f', 'qcow2', '-o', 'lazy_refcounts=on,cluster_size=4096', path, '8M']);
    // qemu-io's abort leaves the dirty bit set and the refcounts stale.
    qemu('qemu-io', ['-c', 'write -P 0x12 0 1M', '-c', 'write -P 0x13 3M 100k', '-c', 'abort', path], [134, 1, -1]);
    assert.notEqual(qemuCheck(path).corruptions, 0, 'the refcounts are stale before the repair');
    const raw = s.path('lazy.raw');
    qemu('qemu-img', ['convert', '-O', 'raw', path, raw]);
    const model = new Uint8Array(readFileSync(raw));
    const b = openImage(nodeFileSystem, path);
    runWorkload(b, model, new Rng(77), { ops: 200, clusterSize: 4096, discardZeroes: true });
    b.close();
    const check = qemuCheck(path);
    assert.deepEqual([check.corruptions, check.leaks], [0, 0], check.raw);
    assert.doesNotMatch(qemu('qemu-img', ['info', path]), /dirty/);
    assert.equal(qemuDiskHash(path, s.dir), sha256(model));
  });

  it('a sequential fill of a 512-byte-cluster image grows the refcount table many times', () => {
    const path = s.path('fill.qcow2');
    createImage(nodeFileSystem, path, { format: 'qcow2', size: 24 * MiB, clusterSize: 512 });
    const rng = new Rng(5);
    const model = new Uint8Array(24 * MiB);
    const b = openImage(nodeFileSystem, path);
    for (let off = 0; off < model.length; off += MiB) {
      const d = rng.bytes(MiB);
      b.write(off, d);
      model.set(d, off);
    }
    b.close();
    const check = qemuCheck(path);
    assert.deepEqual([check.corruptions, check.leaks], [0, 0], check.raw);
    assert.equal(qemuDiskHash(path, s.dir), sha256(model));
  });
});

describe('qcow2 in memory (no host files)', () => {
  it('long random workloads with reopening keep every byte', () => {
    for (const o of [{ clusterSize: 512, refcountBits: 2 }, { clusterSize: 65536 }, { clusterSize: 4096, version: 2 as const }]) {
      const fs = new MemoryFileSystem();
      createImage(fs, 'disk.qcow2', { format: 'qcow2', size: 3 * MiB, ...o });
      const rng = new Rng(o.clusterSize);
      const model = new Uint8Array(3 * MiB);
      for (let round = 0; round < 4; round++) {
        const b = openImage(fs, 'disk.qcow2');
        assertDisk(b, model, `round ${round} start`);
        runWorkload(b, model, rng, { ops: 600, clusterSize: o.clusterSize, discardZeroes: true });
        b.close();
      }
      const b = openImage(fs, 'disk.qcow2', { readOnly: true });
      assert.equal(diskHash(b), sha256(model));
      b.close();
    }
  });
});
