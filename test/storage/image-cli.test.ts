/**
 * `virtus image` end to end, against qemu-img: create (with -b), info (human, JSON, backing
 * chain: the same text qemu-img prints), convert both ways, commit, and the errors a user
 * can cause (one line, non-zero exit, no stack trace).
 */
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { runVirtus } from '../support/toolchain.ts';
import { qemu, qemuCheck, qemuDiskHash, Rng, scratch, sha256 } from './support.ts';

const MiB = 1 << 20;

describe('virtus image', () => {
  const s = scratch();
  after(() => s.cleanup());
  const v = (...args: string[]) => runVirtus(['image', ...args], { cwd: s.dir });
  const ok = (...args: string[]) => {
    const r = v(...args);
    assert.equal(r.status, 0, `virtus image ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const qimg = (...args: string[]) => qemu('qemu-img', args.map((a) => (a.endsWith('.qcow2') || a.endsWith('.raw') || a.endsWith('.img') ? s.path(a) : a)));
  /** Runs qemu-img in the scratch directory, so relative names print as they do for virtus. */
  const qimgHere = (...args: string[]) => qemu('qemu-img', args, [0], s.dir);

  it('create prints what qemu-img create prints and makes an image qemu-img accepts', () => {
    const mine = ok('create', '-o', 'cluster_size=4096', 'a.qcow2', '20M');
    const theirs = qimgHere('create', '-f', 'qcow2', '-o', 'cluster_size=4096', 'q-a.qcow2', '20M');
    assert.equal(mine, theirs.replace("'q-a.qcow2'", "'a.qcow2'"));
    assert.deepEqual(qemuCheck(s.path('a.qcow2')).corruptions, 0);
    assert.equal(ok('create', '-f', 'raw', 'r.img', '3M'), "Formatting 'r.img', fmt=raw size=3145728\n");
    assert.equal(readFileSync(s.path('r.img')).length, 3 * MiB);
    assert.match(ok('create', '-o', 'compat=0.10', 'v2.qcow2', '1G'), /fmt=qcow2 cluster_size=65536 compat=0.10 compression_type=zlib size=1073741824 lazy_refcounts=off refcount_bits=16/);
  });

  it('create -b makes an overlay; info shows the same as qemu-img info', () => {
    ok('create', 'base.qcow2', '16M');
    qemu('qemu-io', ['-c', 'write -P 0x42 0 3M', s.path('base.qcow2')]);
    const out = ok('create', '-b', 'base.qcow2', 'top.qcow2');
    assert.match(out, /size=16777216 backing_file=base.qcow2 backing_fmt=qcow2/);
    qemu('qemu-io', ['-c', 'write -P 0x43 1M 1M', s.path('top.qcow2')]);
    for (const args of [['top.qcow2'], ['--backing-chain', 'top.qcow2'], ['base.qcow2']]) {
      assert.equal(ok('info', ...args), qimgHere('info', ...args), `info ${args.join(' ')}`);
      const j = (t: string) => JSON.parse(t);
      assert.deepEqual(j(ok('info', '--output', 'json', ...args)), j(qimgHere('info', '--output=json', ...args)), `info --output json ${args.join(' ')}`);
    }
    assert.match(ok('info', 'top.qcow2'), /^backing file: base.qcow2\nbacking file format: qcow2$/m);
  });

  it('convert qcow2 -> raw -> qcow2 keeps every byte; output images pass qemu-img check', () => {
    const rng = new Rng(8);
    const data = new Uint8Array(7 * MiB + 512);
    for (let off = 0; off < data.length; off += 256 * 1024) if (rng.below(3) > 0) data.set(rng.bytes(100000), off);
    writeFileSync(s.path('src.raw'), data);
    ok('convert', '-f', 'raw', '-O', 'qcow2', '-o', 'cluster_size=16384', 'src.raw', 'c1.qcow2');
    assert.equal(qemuCheck(s.path('c1.qcow2')).corruptions, 0);
    assert.equal(qemuDiskHash(s.path('c1.qcow2'), s.dir), sha256(data));
    ok('convert', '-O', 'raw', 'c1.qcow2', 'c2.raw');
    assert.equal(sha256(readFileSync(s.path('c2.raw'))), sha256(data));
    // A backing chain converts to one flat image.
    ok('create', '-b', 'c1.qcow2', 'c3.qcow2');
    qemu('qemu-io', ['-c', 'write -P 0x77 5M 100k', s.path('c3.qcow2')]);
    data.fill(0x77, 5 * MiB, 5 * MiB + 100 * 1024);
    ok('convert', '-p', 'c3.qcow2', 'c4.qcow2');
    assert.match(ok('info', 'c4.qcow2'), /file format: qcow2/);
    assert.doesNotMatch(ok('info', 'c4.qcow2'), /backing file/);
    assert.equal(qemuDiskHash(s.path('c4.qcow2'), s.dir), sha256(data));
  });

  it('convert -c writes compressed clusters that qemu-img reads, and virtus can overwrite', () => {
    const rng = new Rng(12);
    const data = new Uint8Array(3 * MiB + 4096);
    for (let off = 0; off < data.length; off += 20000) data.fill(rng.below(3), off, off + rng.below(20000));
    data.set(rng.bytes(70000), 1000000);
    writeFileSync(s.path('cz.raw'), data);
    ok('convert', '-c', '-O', 'qcow2', '-o', 'cluster_size=8192', 'cz.raw', 'cz.qcow2');
    const check = qemu('qemu-img', ['check', s.path('cz.qcow2')]);
    assert.match(check, /No errors were found/);
    assert.doesNotMatch(check, / 0\.00% compressed/);
    assert.equal(qemuDiskHash(s.path('cz.qcow2'), s.dir), sha256(data));
    assert.ok(statSync(s.path('cz.qcow2')).size < data.length / 4, 'it is smaller');
    // Overwrite some compressed clusters (their shared host clusters lose references).
    qemu('qemu-io', ['-c', 'write -P 0x66 100k 300k', '-c', 'write -z 1M 64k', s.path('cz.qcow2')]);
    ok('convert', '-c', '-O', 'qcow2', 'cz.qcow2', 'cz2.qcow2');
    data.fill(0x66, 100 * 1024, 400 * 1024);
    data.fill(0, MiB, MiB + 64 * 1024);
    assert.equal(qemuDiskHash(s.path('cz2.qcow2'), s.dir), sha256(data));
  });

  it('commit merges the overlay into its backing file and empties it', () => {
    ok('create', 'cb.qcow2', '8M');
    qemu('qemu-io', ['-c', 'write -P 0x11 0 4M', s.path('cb.qcow2')]);
    ok('create', '-b', 'cb.qcow2', 'co.qcow2');
    qemu('qemu-io', ['-c', 'write -P 0x22 1M 1M', '-c', 'write -z 3M 64k', '-c', 'write -P 0x33 6M 10000', s.path('co.qcow2')]);
    const before = qemuDiskHash(s.path('co.qcow2'), s.dir);
    assert.equal(ok('commit', 'co.qcow2'), 'Image committed.\n');
    assert.equal(qemuDiskHash(s.path('cb.qcow2'), s.dir), before, 'the base now holds the overlay data');
    assert.equal(qemuDiskHash(s.path('co.qcow2'), s.dir), before, 'the overlay reads the same');
    for (const f of ['cb.qcow2', 'co.qcow2']) assert.deepEqual(qemuCheck(s.path(f)).corruptions, 0);
    assert.equal(qimg('map', '--output=json', 'co.qcow2').includes('"depth": 0'), false, 'the overlay is empty');
    assert.equal(statSync(s.path('co.qcow2')).size, 4 * 65536, 'the freed space is given back');
  });

  it('commit -b into an image further down a chain, raw base', () => {
    writeFileSync(s.path('d0.raw'), new Rng(4).bytes(4 * MiB));
    ok('create', '-b', 'd0.raw', '-F', 'raw', 'd1.qcow2');
    qemu('qemu-io', ['-c', 'write -P 0x51 0 1M', s.path('d1.qcow2')]);
    ok('create', '-b', 'd1.qcow2', 'd2.qcow2');
    qemu('qemu-io', ['-c', 'write -P 0x52 512k 1M', s.path('d2.qcow2')]);
    const before = qemuDiskHash(s.path('d2.qcow2'), s.dir);
    ok('commit', '-q', '-b', 'd0.raw', 'd2.qcow2');
    assert.equal(sha256(readFileSync(s.path('d0.raw'))), before);
    assert.equal(qemuDiskHash(s.path('d2.qcow2'), s.dir), before);
  });

  it('bad input ends in one line and a non-zero exit', () => {
    writeFileSync(s.path('text.txt'), 'hello, not an image\n');
    const bad = readFileSync(s.path('a.qcow2'));
    bad.writeUInt32BE(40, 20); // cluster_bits 40
    writeFileSync(s.path('badbits.qcow2'), bad);
    const feat = readFileSync(s.path('a.qcow2'));
    feat[72 + 7] |= 0x40; // incompatible feature bit 6
    writeFileSync(s.path('feature.qcow2'), feat);
    const cases: [string[], RegExp][] = [
      [['info', 'missing.qcow2'], /cannot open missing.qcow2: no such file/],
      [['info', '-f', 'qcow2', 'text.txt'], /text.txt: not a qcow2 image/],
      [['info', 'badbits.qcow2'], /cluster_bits 40/],
      [['info', 'feature.qcow2'], /unsupported incompatible qcow2 features: bit 6/],
      [['create', 'x.qcow2', '12Q'], /"12Q" is not a size/],
      [['create', '-b', 'missing.qcow2', 'y.qcow2'], /cannot open backing file missing.qcow2/],
      [['create', '-o', 'cluster_size=1000', 'z.qcow2', '1M'], /cluster size must be a power of two/],
      [['convert', '-c', 'a.qcow2', 'out.raw'], /-c needs qcow2 output/],
      [['convert', '-c', '-o', 'compression_type=zstd', 'a.qcow2', 'out.qcow2'], /zlib only/],
      [['commit', 'a.qcow2'], /has no backing file/],
      [['frobnicate'], /unknown subcommand 'frobnicate'/],
      [['info'], /expected one FILE/],
    ];
    for (const [args, re] of cases) {
      const r = v(...args);
      assert.notEqual(r.status, 0, `${args.join(' ')} should fail`);
      assert.match(r.stderr, re, args.join(' '));
      assert.equal(r.stderr.trim().split('\n').length, 1, `one line for ${args.join(' ')}: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /internal error|at .*\.ts:/);
    }
  });
});
