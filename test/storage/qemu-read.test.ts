/**
 * Differential tests against QEMU: images that qemu-img and qemu-io create read, in virtus,
 * exactly as `qemu-img convert -O raw` reads them (whole-disk SHA-256): both qcow2 versions,
 * cluster sizes from 512 B to 2 MiB, refcount widths, zero clusters, discards, compressed
 * clusters (zlib and zstd), extended L2 entries and backing chains mixing raw and qcow2.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { nodeFileSystem } from '../../src/host/node/host-file.ts';
import { openImage } from '../../src/storage/open.ts';
import { createQcow2 } from '../../src/storage/qcow2/create.ts';
import { diskHash, qemu, qemuDiskHash, Rng, scratch } from './support.ts';

const MiB = 1 << 20;

/** qemu-io commands that leave data, zero clusters, discarded ranges and a written tail. */
function exercise(size: number, seed: number): string[] {
  const r = new Rng(seed);
  const p = () => `0x${(r.below(255) + 1).toString(16)}`;
  return [
    `write -P ${p()} 0 64k`,
    `write -P ${p()} 100001 300000`,
    `write -P ${p()} 1M 2M`,
    `write -z 1536k 256k`,
    `discard 2560k 128k`,
    `write -P ${p()} ${size - 4096} 4096`,
    `write -P ${p()} ${r.below(size - 70000)} ${1 + r.below(70000)}`,
  ].flatMap((c) => ['-c', c]);
}

function virtusHash(path: string): string {
  const b = openImage(nodeFileSystem, path, { readOnly: true });
  try {
    return diskHash(b);
  } finally {
    b.close();
  }
}

describe('images made by qemu-img read identically in virtus', () => {
  const s = scratch();
  after(() => s.cleanup());

  for (const compat of ['0.10', '1.1']) {
    for (const cs of [512, 4096, 65536, 2 * MiB]) {
      it(`compat=${compat} cluster_size=${cs}`, () => {
        const f = s.path(`c${compat}-${cs}.qcow2`);
        const size = 12 * MiB + 1536;
        qemu('qemu-img', ['create', '-f', 'qcow2', '-o', `compat=${compat},cluster_size=${cs}`, f, String(size)]);
        qemu('qemu-io', [...exercise(size, cs), f]);
        assert.equal(virtusHash(f), qemuDiskHash(f, s.dir));
      });
    }
  }

  for (const bits of [1, 8, 64]) {
    it(`refcount_bits=${bits}`, () => {
      const f = s.path(`rb${bits}.qcow2`);
      qemu('qemu-img', ['create', '-f', 'qcow2', '-o', `refcount_bits=${bits},cluster_size=4096`, f, '8M']);
      qemu('qemu-io', [...exercise(8 * MiB, bits), f]);
      assert.equal(virtusHash(f), qemuDiskHash(f, s.dir));
    });
  }

  it('extended L2 entries (subclusters)', () => {
    const f = s.path('ext.qcow2');
    qemu('qemu-img', ['create', '-f', 'qcow2', '-o', 'extended_l2=on,cluster_size=64k', f, '8M']);
    qemu('qemu-io', ['-c', 'write -P 0x11 4k 4k', '-c', 'write -z 64k 8k', '-c', 'write -P 0x22 70k 2k', ...exercise(8 * MiB, 7), f]);
    assert.equal(virtusHash(f), qemuDiskHash(f, s.dir));
  });

  describe('compressed clusters', () => {
    let raw = '';
    before(() => {
      // Half random (stored uncompressed by qemu-img), half repetitive (compressed).
      raw = s.path('source.raw');
      const r = new Rng(42);
      const data = new Uint8Array(6 * MiB + 4096);
      for (let off = 0; off < data.length; off += 65536) {
        const n = Math.min(65536, data.length - off);
        if (r.below(2) === 0) data.set(r.bytes(n), off);
        else data.fill(r.below(256), off, off + n);
        data.set(r.bytes(300), off + r.below(n - 300));
      }
      writeFileSync(raw, data);
    });
    for (const type of ['zlib', 'zstd']) {
      for (const cs of [4096, 65536, 2 * MiB]) {
        it(`${type}, cluster_size=${cs}`, () => {
          const f = s.path(`z-${type}-${cs}.qcow2`);
          qemu('qemu-img', ['convert', '-c', '-O', 'qcow2', '-o', `compression_type=${type},cluster_size=${cs}`, raw, f]);
          const check = qemu('qemu-img', ['check', f]);
          assert.doesNotMatch(check, / 0\.00% compressed/, 'qemu-img stored some clusters compressed');
          assert.equal(virtusHash(f), qemuDiskHash(f, s.dir));
        });
      }
    }
    it('compat=0.10 (zlib)', () => {
      const f = s.path('z-v2.qcow2');
      qemu('qemu-img', ['convert', '-c', '-O', 'qcow2', '-o', 'compat=0.10', raw, f]);
      assert.equal(virtusHash(f), qemuDiskHash(f, s.dir));
    });
  });

  it('a backing chain of several overlays mixing raw and qcow2, sizes differing', () => {
    const base = s.path('chain0.raw');
    qemu('qemu-img', ['create', '-f', 'raw', base, '6M']);
    qemu('qemu-io', ['-f', 'raw', ...exercise(6 * MiB, 1), base]);
    const specs = [
      { o: 'compat=0.10', bf: 'raw', size: '8M' },
      { o: 'cluster_size=4096', bf: 'qcow2', size: '8M' },
      { o: 'cluster_size=65536', bf: 'qcow2', size: '10M' },
      { o: 'cluster_size=512', bf: 'qcow2', size: '10M' },
    ];
    let below = 'chain0.raw';
    specs.forEach((sp, i) => {
      const name = `chain${i + 1}.qcow2`;
      qemu('qemu-img', ['create', '-f', 'qcow2', '-o', sp.o, '-b', below, '-F', sp.bf, s.path(name), sp.size]);
      qemu('qemu-io', [...exercise(6 * MiB, 10 + i), s.path(name)]);
      below = name;
    });
    const top = s.path(below);
    assert.equal(virtusHash(top), qemuDiskHash(top, s.dir));
    // Every intermediate image as well.
    for (let i = 1; i < specs.length; i++) {
      const f = s.path(`chain${i}.qcow2`);
      assert.equal(virtusHash(f), qemuDiskHash(f, s.dir), f);
    }
  });

  it('a backing file without a recorded format is probed', () => {
    const base = s.path('probe-base.qcow2');
    const top = s.path('probe-top.qcow2');
    qemu('qemu-img', ['create', '-f', 'qcow2', base, '4M']);
    qemu('qemu-io', ['-c', 'write -P 0x5a 0 1M', base]);
    // qemu-img 7.2 insists on a backing format: write the header without one ourselves.
    const file = nodeFileSystem.create(top);
    createQcow2(file, { size: 4 * MiB, backingFile: 'probe-base.qcow2' });
    file.close();
    assert.match(qemu('qemu-img', ['info', top]), /backing file: probe-base.qcow2.*\n(?!backing file format)/);
    assert.equal(virtusHash(top), qemuDiskHash(top, s.dir));
  });
});
