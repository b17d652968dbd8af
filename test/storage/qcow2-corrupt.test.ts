/**
 * Corrupt qcow2 images, crafted from a valid one that qemu-img made: every header and table
 * field is checked against the file before anything is allocated for it, and an L2 entry
 * that points past the end of the file is refused, never read as zeros or written (which
 * grew the file to wherever it pointed). Each case is compared with what qemu-img says of the
 * same bytes: `qemu-img info` refuses the header, or `qemu-img check` counts a corruption.
 */
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { nodeFileSystem } from '../../src/host/node/host-file.ts';
import { openImage } from '../../src/storage/open.ts';
import { isVirtusError } from '../../src/util/errors.ts';
import { buildGuest, runVirtus } from '../support/toolchain.ts';
import { qemu, qemuCheck, requireQemu, scratch } from './support.ts';

const TiB = 2 ** 40;

function put(b: Uint8Array, at: number, width: 4 | 8, v: number | bigint): Uint8Array {
  const out = b.slice();
  const dv = new DataView(out.buffer);
  if (width === 4) dv.setUint32(at, Number(v));
  else dv.setBigUint64(at, BigInt(v));
  return out;
}

/** What qemu-img says: its `info` error, or null when it opens the image (then `check` must complain). */
function qemuInfoError(path: string): string | null {
  requireQemu('qemu-img');
  const r = spawnSync('qemu-img', ['info', path], { encoding: 'utf8' });
  return r.status === 0 ? null : r.stderr.trim();
}

/** The VirtusError `fn` throws (it must throw one, of one line). */
function refusal(fn: () => unknown, what = ''): Error {
  try {
    fn();
  } catch (e) {
    assert.ok(isVirtusError(e), `expected a VirtusError, got ${String(e)}`);
    assert.ok(!e.message.includes('\n'), `one line: ${e.message}`);
    return e;
  }
  assert.fail(`expected a refusal ${what}`);
}

describe('qcow2: corrupt images', () => {
  const s = scratch();
  let base = new Uint8Array(0);
  let l1 = 0;
  let l2 = 0;
  before(() => {
    qemu('qemu-img', ['create', '-f', 'qcow2', s.path('base.qcow2'), '64M']);
    qemu('qemu-io', ['-c', 'write -P 0x5a 0 64k', s.path('base.qcow2')]);
    base = new Uint8Array(readFileSync(s.path('base.qcow2')));
    const dv = new DataView(base.buffer);
    l1 = Number(dv.getBigUint64(40));
    l2 = Number(dv.getBigUint64(l1) & 0x00ff_ffff_ffff_fe00n);
    assert.ok(l1 > 0 && l2 > 0, 'the base image has an L2 table');
  });
  after(() => s.cleanup());

  /** name, the crafted bytes, what qemu-img info says (null: it opens it), the field virtus names. */
  const headerCases = (): [string, Uint8Array, RegExp | null, RegExp][] => [
    ['refcount_table_clusters 0xffffffff', put(base, 56, 4, 0xffffffff), /Reference count table too large/, /refcount_table_clusters 4294967295/],
    ['refcount table past the end of the file', put(base, 56, 4, 100), null, /refcount_table_offset .* refcount table .* beyond the end of the file/],
    ['refcount_table_offset at 1 TiB', put(base, 48, 8, TiB), null, /refcount_table_offset 1099511627776/],
    ['l1_size 0xffffffff', put(base, 36, 4, 0xffffffff), /Active L1 table too large/, /l1_size 4294967295/],
    ['l1_size too small for the disk', put(base, 36, 4, 0), /L1 table is too small/, /l1_size 0 is too small/],
    ['l1_table_offset not aligned', put(base, 40, 8, l1 + 8), /L1 table offset invalid/, /l1_table_offset \d+ is not cluster-aligned/],
    ['l1_table_offset at 1 TiB', put(base, 40, 8, TiB), null, /l1_table_offset 1099511627776/],
    ['nb_snapshots 70000', put(base, 60, 4, 70000), /Snapshot table too large/, /nb_snapshots 70000/],
    ['snapshot table past the end of the file', put(put(base, 60, 4, 1), 64, 8, base.length), null, new RegExp(`snapshots_offset ${base.length}: the snapshot table .* beyond the end of the file`)],
    ['a snapshot table of garbage', put(base, 60, 4, 1000), null, /snapshot table entry 0 has/],
    ['snapshots_offset not aligned', put(base, 64, 8, 12345), /Snapshot table offset invalid/, /snapshots_offset 12345/],
    ['backing_file_offset past the first cluster', put(put(base, 8, 8, 70000), 16, 4, 4), /Invalid backing file offset/, /backing_file_offset 70000/],
    ['backing_file_size 2000', put(put(base, 8, 8, 512), 16, 4, 2000), /Backing file name too long/, /backing_file_size 2000/],
    ['cluster_bits 30', put(base, 20, 4, 30), /Unsupported cluster size: 2\^30/, /cluster_bits 30/],
    ['crypt_method 5', put(base, 32, 4, 5), /Unsupported encryption method 5/, /crypt_method 5/],
    ['header_length 1 MiB', put(base, 100, 4, 1 << 20), /qcow2 header exceeds cluster size/, /header_length 1048576/],
    ['refcount_order 7', put(base, 96, 4, 7), /Reference count entry width too large/, /refcount_order 7/],
    ['size 2^62', put(base, 24, 8, 2n ** 62n), /Image is too big/, /size 4611686018427387904/],
    ['a header extension of 4 GiB', put(base, 116, 4, 0xfffffff0), /Header extension too large/, /header extension 0x[0-9a-f]+ at offset 112 is 4294967280 bytes/],
  ];

  it('bad header and table fields: refused naming the field, where qemu-img refuses or check counts corruption', () => {
    for (const [name, bytes, qemuSays, field] of headerCases()) {
      const path = s.path('x.qcow2');
      writeFileSync(path, bytes);
      const q = qemuInfoError(path);
      if (qemuSays) assert.match(q ?? '(opened)', qemuSays, `${name}: qemu-img info`);
      else assert.ok(q === null && qemuCheck(path).corruptions > 0, `${name}: qemu-img info opens it and check finds corruption`);
      for (const readOnly of [true, false]) {
        const e = refusal(() => openImage(nodeFileSystem, path, { readOnly }).close(), name);
        assert.match(e.message, field, `${name}: ${e.message}`);
      }
    }
  });

  it('an L2 entry pointing at a data cluster at 1 TiB: reads and writes refused, the file does not grow', () => {
    const cases: [string, Uint8Array, RegExp][] = [
      ['data cluster', put(base, l2, 8, 2n ** 63n | BigInt(TiB)), /L2 entry points to a data cluster at host offset 0x10000000000, beyond the end of the file/],
      ['compressed cluster', put(base, l2, 8, 2n ** 62n | BigInt(TiB)), /L2 entry points to a compressed cluster at host offset 0x10000000000/],
      ['L2 table', put(base, l1, 8, 2n ** 63n | BigInt(TiB)), /L1 entry 0 points to an L2 table at 0x10000000000, beyond the end of the file/],
    ];
    for (const [name, bytes, message] of cases) {
      const path = s.path('x.qcow2');
      writeFileSync(path, bytes);
      assert.ok(qemuCheck(path).corruptions > 0, `${name}: qemu-img check counts a corruption`);
      const b = openImage(nodeFileSystem, path);
      try {
        assert.match(refusal(() => b.read(0, new Uint8Array(4096))).message, message);
        assert.match(refusal(() => b.write(0, new Uint8Array(4096).fill(1))).message, message);
        // The rest of the disk (the rest of this L2 table) still works.
        if (name !== 'L2 table') b.write(1 << 20, new Uint8Array(4096).fill(2));
        b.flush();
      } finally {
        b.close();
      }
      assert.ok(statSync(path).size < 1 << 20, `${name}: the file is ${statSync(path).size} bytes`);
    }
  });

  it('snapshot tables qemu-img writes pass the checks (read-only: virtus does not write such images)', () => {
    const path = s.path('snap.qcow2');
    writeFileSync(path, base);
    qemu('qemu-img', ['snapshot', '-c', 'first', path]);
    qemu('qemu-io', ['-c', 'write -P 0x11 64k 64k', path]);
    qemu('qemu-img', ['snapshot', '-c', 'a-second-snapshot-with-a-longer-name', path]);
    const b = openImage(nodeFileSystem, path, { readOnly: true });
    const buf = new Uint8Array(4);
    b.read(65536, buf);
    assert.deepEqual([...buf], [0x11, 0x11, 0x11, 0x11]);
    assert.equal(b.info().qcow2?.snapshots, 2);
    b.close();
    assert.match(refusal(() => openImage(nodeFileSystem, path)).message, /2 internal snapshot/);
  });

  it('virtus image commit and run --drive answer one line, not an internal error', () => {
    const bad = s.path('bad.qcow2');
    writeFileSync(bad, put(base, 56, 4, 0xffffffff));
    qemu('qemu-img', ['create', '-f', 'qcow2', '-u', '-b', bad, '-F', 'qcow2', s.path('top.qcow2'), '64M']);
    const commit = runVirtus(['image', 'commit', s.path('top.qcow2')]);
    assert.equal(commit.status, 1, commit.stderr);
    assert.match(commit.stderr, /^virtus: .*refcount_table_clusters 4294967295.*\n$/);
    const elf = buildGuest('cli-exitcode', ['cli/exitcode.S']);
    const run = runVirtus(['run', '--kernel', elf, '--bios', 'none', '--drive', `file=${bad}`]);
    assert.equal(run.status, 2, run.stderr);
    assert.match(run.stderr, /^virtus: --drive .*refcount_table_clusters 4294967295.*\n$/);
  });
});
