/**
 * Snapshots through `virtus run`: a deterministic run stopped by --max-insns and saved, then
 * restored, prints exactly what the uninterrupted run prints (timer interrupts and a
 * virtio-rng request in flight included), with both engines and across them; corrupt,
 * truncated, newer and foreign files are refused with one line and no stack trace.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileHeader, jsonRecord, Rec, RecordParser, unpackJson } from '../../src/machine/snapshot-format.ts';
import { buildGuest, runVirtus } from '../support/toolchain.ts';

const dir = mkdtempSync(join(tmpdir(), 'virtus-snapshot-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** 40 counters, 2 ms (200,000 deterministic instructions) apart, each with 4 bytes of virtio-rng. */
const prog = () => buildGuest('snapshot-counter-rng', ['common/crt.S', 'snapshot/counter.c'], { cflags: ['-DRNG', '-DCOUNT=40', '-DWORDS=16384'] });
const base = () => ['run', '--bios', 'none', '--kernel', prog(), '--deterministic'];

function assertOneLineError(r: { status: number | null; stderr: string }, pattern: RegExp): void {
  assert.notEqual(r.status, 0, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, /^virtus: /);
  assert.match(lines[0]!, pattern);
}

describe('snapshot and restore', () => {
  const full = new Map<string, string>();
  const uninterrupted = (engine: string): string => {
    if (!full.has(engine)) {
      const r = runVirtus([...base(), '--engine', engine]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^counter 39 rng [0-9a-f]{8}\nchecksum ok sweeps=\d+\n$/m);
      full.set(engine, r.stdout);
    }
    return full.get(engine)!;
  };

  for (const [save, restore] of [['interp', 'interp'], ['jit', 'jit'], ['jit', 'interp']] as const) {
    it(`saved at instruction N and restored prints what the uninterrupted run prints (${save} → ${restore})`, () => {
      const want = uninterrupted(restore);
      const file = join(dir, `${save}-${restore}.snap`);
      const a = runVirtus([...base(), '--engine', save, '--max-insns', '3000001', '--snapshot-on-exit', file]);
      assert.equal(a.status, 124, a.stderr);
      assert.match(a.stderr, /saved the machine to .* 3000001 instructions run/);
      assert.ok(a.stdout.length > 0 && a.stdout.length < want.length, 'the stop came mid-run');
      const b = runVirtus(['run', '--restore', file, '--engine', restore]);
      assert.equal(b.status, 0, b.stderr);
      assert.equal(a.stdout + b.stdout, want);
    });
  }

  it('a restored machine can be saved again (snapshot chains)', () => {
    const want = uninterrupted('jit');
    const s1 = join(dir, 'chain1.snap');
    const s2 = join(dir, 'chain2.snap');
    const a = runVirtus([...base(), '--max-insns', '1234567', '--snapshot-on-exit', s1]);
    const b = runVirtus(['run', '--restore', s1, '--max-insns', '5000000', '--snapshot-on-exit', s2]);
    const c = runVirtus(['run', '--restore', s2]);
    assert.equal(b.status, 124, b.stderr);
    assert.equal(c.status, 0, c.stderr);
    assert.equal(a.stdout + b.stdout + c.stdout, want);
  });

  it('refuses corrupt, truncated, newer and foreign files with one line', () => {
    const good = join(dir, 'good.snap');
    const a = runVirtus([...base(), '--max-insns', '2000000', '--snapshot-on-exit', good]);
    assert.equal(a.status, 124, a.stderr);
    const bytes = readFileSync(good);
    const variant = (name: string, f: (b: Buffer) => Buffer): string => {
      const p = join(dir, name);
      writeFileSync(p, f(Buffer.from(bytes)));
      return p;
    };
    const cases: Array<[string, RegExp]> = [
      [variant('truncated.snap', (b) => b.subarray(0, Math.floor(b.length / 2))), /is truncated/],
      [variant('short.snap', (b) => b.subarray(0, 10)), /is truncated: it ends inside its 16-byte header/],
      [variant('flipped.snap', (b) => ((b[b.length - 200] ^= 0x40), b)), /is corrupt/],
      [variant('config.snap', (b) => ((b[40] ^= 0x55), b)), /record 1 \(config\) is corrupt: checksum mismatch/],
      [variant('newer.snap', (b) => ((b[8] = 3), b)), /format version 3, newer than this virtus reads \(2\)/],
      [variant('older.snap', (b) => ((b[8] = 1), b)), /format version 1, from an older virtus whose snapshots name host files; this virtus reads version 2 only/],
      [variant('foreign.snap', () => Buffer.from('#!/bin/sh\necho not a snapshot\n')), /is not a virtus snapshot/],
      [variant('trailing.snap', (b) => Buffer.concat([b, Buffer.from('xx')])), /bytes follow its end record/],
      [join(dir, 'missing.snap'), /cannot open snapshot .*missing\.snap: no such file/],
    ];
    for (const [file, pattern] of cases) assertOneLineError(runVirtus(['run', '--restore', file]), pattern);
    assertOneLineError(runVirtus(['run', '--restore', good, '--kernel', prog()]), /--restore takes the machine's configuration from the snapshot: drop --kernel/);
    assertOneLineError(runVirtus(['run', '--restore', good, '--memory', '256M']), /RAM/);
  });

  it('restores with the same disk, and refuses a disk changed or gone since', () => {
    const disk = join(dir, 'disk.img');
    writeFileSync(disk, Buffer.alloc(1 << 20, 7));
    const file = join(dir, 'disk.snap');
    const want = uninterrupted('jit');
    const a = runVirtus([...base(), '--drive', `file=${disk}`, '--max-insns', '2500000', '--snapshot-on-exit', file]);
    assert.equal(a.status, 124, a.stderr);
    // The snapshot names no host file: the disk is named again, and checked.
    assertOneLineError(runVirtus(['run', '--restore', file]), /the machine has 1 disk, but no --drive was given: name each in order with --drive/);
    const other = join(dir, 'other.img');
    writeFileSync(other, Buffer.alloc(1 << 20, 7));
    assertOneLineError(runVirtus(['run', '--restore', file, '--drive', `file=${disk}`, '--drive', `file=${other}`]), /the machine has 1 disk, but --drive was given 2 times/);
    assertOneLineError(runVirtus(['run', '--restore', file, '--drive', `file=${disk},readonly=on`]), /disk 0 of the machine is read-write, but --drive .*disk\.img says readonly/);
    const b = runVirtus(['run', '--restore', file, '--drive', `file=${disk}`]);
    assert.equal(b.status, 0, b.stderr);
    assert.equal(a.stdout + b.stdout, want, 'the disk is one more device; the guest output is the same');
    writeFileSync(disk, Buffer.alloc(1 << 20, 8));
    assertOneLineError(runVirtus(['run', '--restore', file, '--drive', `file=${disk}`]), /disk .*disk\.img is not the disk the snapshot was taken with/);
    writeFileSync(disk, Buffer.alloc(2 << 20, 7));
    assertOneLineError(runVirtus(['run', '--restore', file, '--drive', `file=${disk}`]), /is 2097152 bytes, but the snapshot's virtio-blk0 was 1048576: not the same disk/);
    rmSync(disk);
    assertOneLineError(runVirtus(['run', '--restore', file, '--drive', `file=${disk}`]), /--drive .*disk\.img: .*(no such file|not found|cannot open)/i);
  });

  it('a snapshot cannot choose host files: the user names them, and a crafted one is refused before anything opens', () => {
    const disk = join(dir, 'named.img');
    const secret = join(dir, 'secret.img');
    const secretDir = mkdtempSync(join(dir, 'secret-'));
    writeFileSync(disk, Buffer.alloc(1 << 20, 1));
    writeFileSync(secret, Buffer.alloc(1 << 20, 0x5e));
    const file = join(dir, 'named.snap');
    const a = runVirtus([...base(), '--drive', `file=${disk}`, '--max-insns', '1500000', '--snapshot-on-exit', file]);
    assert.equal(a.status, 124, a.stderr);
    const bytes = readFileSync(file);
    assert.ok(!bytes.includes(Buffer.from(disk)), 'the snapshot does not even mention the path of its disk');
    // Put host paths where an older format kept them: the disk's file, a shared folder's path.
    const p = new RecordParser('t');
    p.push(bytes.subarray(16));
    const first = p.next()!;
    const config = unpackJson(first, 't') as { machine: { devices: { disks: Array<Record<string, unknown>>; shares: unknown[] } } };
    const craft = (name: string, f: (c: typeof config) => void): string => {
      const c = structuredClone(config);
      f(c);
      const out = join(dir, name);
      writeFileSync(out, Buffer.concat([fileHeader('VIRTSNAP'), jsonRecord(Rec.Config, c), bytes.subarray(16 + 20 + first.data.length)]));
      return out;
    };
    const withFile = craft('file.snap', (c) => (c.machine.devices.disks[0]!.file = secret));
    const withShare = craft('share.snap', (c) => c.machine.devices.shares.push({ path: secretDir, tag: 'host0', readonly: false }));
    for (const extra of [[], ['--drive', `file=${disk}`]]) {
      assertOneLineError(runVirtus(['run', '--restore', withFile, ...extra]), /machine\.devices\.disks\[0\]\.file: unknown field/);
      assertOneLineError(runVirtus(['run', '--restore', withShare, ...extra]), /machine\.devices\.shares\[0\]\.path: unknown field/);
    }
    assert.deepEqual(readFileSync(secret), Buffer.alloc(1 << 20, 0x5e), 'the host file was not touched');
  });

  it('writes no snapshot when the guest ends by itself', () => {
    const file = join(dir, 'none.snap');
    const r = runVirtus([...base(), '--snapshot-on-exit', file]);
    assert.equal(r.status, 0, r.stderr);
    assert.throws(() => readFileSync(file), /ENOENT/);
  });
});
