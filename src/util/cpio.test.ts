/**
 * The newc writer against the reference: GNU cpio (Debian package cpio) extracts what we
 * wrote, and the extracted tree must hold exactly the entries, modes, contents, link targets
 * and device numbers we put in.
 */
import { spawnSync } from 'node:child_process';
import { lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CpioWriter } from './cpio.ts';
import { isVirtusError } from './errors.ts';

function requireCpio(): void {
  const r = spawnSync('cpio', ['--version'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error('cpio is not installed (Debian package cpio); .ci/run installs it');
}

function sample(): { archive: Uint8Array; blob: Uint8Array } {
  const blob = new Uint8Array(70_001);
  for (let i = 0; i < blob.length; i++) blob[i] = (i * 2654435761) >>> 24;
  const w = new CpioWriter();
  w.dir('bin', 0o755)
    .file('bin/tool', blob, 0o755)
    .symlink('bin/sh', 'tool')
    .file('/etc/motd', 'hello\n')
    .file('etc/empty', new Uint8Array(0), 0o600)
    .file('deep/a/b/c.txt', 'abc', 0o640) // parents deep, deep/a, deep/a/b come first, implicitly
    .dir('tmp', 0o1777)
    .symlink('lib', '/usr/lib')
    .device('dev/console', 'char', 5, 1, 0o600)
    .device('dev/vda', 'block', 254, 0, 0o660)
    .fifo('run/fifo', 0o644);
  return { archive: w.finish(), blob };
}

test('cpio: the host cpio extracts exactly what the writer put in', () => {
  requireCpio();
  const { archive, blob } = sample();
  const dir = mkdtempSync(join(tmpdir(), 'virtus-cpio-'));
  try {
    const file = join(dir, 'a.cpio');
    writeFileSync(file, archive);
    const list = spawnSync('cpio', ['-it', '--quiet', '-F', file], { encoding: 'utf8' });
    assert.equal(list.status, 0, list.stderr);
    assert.deepEqual(list.stdout.trim().split('\n'), [
      'bin', 'bin/tool', 'bin/sh', 'etc', 'etc/motd', 'etc/empty', 'deep', 'deep/a', 'deep/a/b', 'deep/a/b/c.txt',
      'tmp', 'lib', 'dev', 'dev/console', 'dev/vda', 'run', 'run/fifo',
    ]);

    const root = join(dir, 'x');
    const asRoot = process.getuid?.() === 0;
    // Device nodes need root to create; as another user cpio is told to skip them.
    const args = ['-idv', '--quiet', '--no-absolute-filenames', '-D', root, '-F', file, ...(asRoot ? [] : ['--nonmatching', 'dev/*'])];
    const x = spawnSync('cpio', ['--make-directories', ...args], { encoding: 'utf8' });
    assert.equal(x.status, 0, x.stderr);

    const mode = (p: string) => lstatSync(join(root, p)).mode;
    assert.equal(mode('bin'), 0o040755);
    assert.equal(mode('bin/tool'), 0o100755);
    assert.deepEqual(new Uint8Array(readFileSync(join(root, 'bin/tool'))), blob);
    assert.equal(readlinkSync(join(root, 'bin/sh')), 'tool');
    assert.equal(readFileSync(join(root, 'etc/motd'), 'utf8'), 'hello\n');
    assert.equal(mode('etc/empty'), 0o100600);
    assert.equal(readFileSync(join(root, 'etc/empty')).length, 0);
    assert.equal(mode('deep/a'), 0o040755);
    assert.equal(readFileSync(join(root, 'deep/a/b/c.txt'), 'utf8'), 'abc');
    assert.equal(mode('deep/a/b/c.txt'), 0o100640);
    assert.equal(mode('tmp'), 0o041777);
    assert.equal(readlinkSync(join(root, 'lib')), '/usr/lib');
    assert.equal(mode('run/fifo'), 0o010644);
    if (asRoot) {
      const con = lstatSync(join(root, 'dev/console'));
      assert.equal(con.mode, 0o020600);
      assert.equal(con.rdev, (5 << 8) | 1);
      const vda = lstatSync(join(root, 'dev/vda'));
      assert.equal(vda.mode, 0o060660);
      assert.equal(vda.rdev, 254 << 8);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cpio: headers, padding and trailer follow the newc layout', () => {
  const a = new CpioWriter().file('x', 'ab', 0o644, { uid: 1, gid: 2, mtime: 0x5f5e100 }).finish();
  const text = new TextDecoder().decode(a);
  // 110-byte header + "x\0" padded to 112; data "ab" padded to 4; then the trailer.
  assert.equal(text.slice(0, 6), '070701');
  const field = (i: number, at = 0) => parseInt(text.slice(at + 6 + 8 * i, at + 14 + 8 * i), 16);
  assert.equal(field(0), 1); // ino
  assert.equal(field(1), 0o100644);
  assert.equal(field(2), 1);
  assert.equal(field(3), 2);
  assert.equal(field(5), 0x5f5e100);
  assert.equal(field(6), 2); // filesize
  assert.equal(field(11), 2); // namesize counts the NUL
  assert.equal(text.slice(110, 112), 'x\0');
  assert.equal(text.slice(112, 114), 'ab');
  assert.equal(text.slice(116, 122), '070701');
  assert.equal(text.slice(116 + 110, 116 + 121), 'TRAILER!!!\0');
  assert.equal(a.length % 4, 0);
  assert.equal(a.length, 116 + 124);
});

test('cpio: archives are reproducible', () => {
  assert.deepEqual(sample().archive, sample().archive);
});

test('cpio: bad entries are refused with a clear error', () => {
  const w = new CpioWriter().file('a', 'x');
  assert.throws(() => w.file('a', 'y'), (e) => isVirtusError(e, 'CPIO_DUPLICATE'));
  assert.throws(() => w.file('a/b', 'y'), (e) => isVirtusError(e, 'CPIO_BAD_PATH'));
  assert.throws(() => w.file('../etc', 'y'), (e) => isVirtusError(e, 'CPIO_BAD_PATH'));
  assert.throws(() => w.file('/', 'y'), (e) => isVirtusError(e, 'CPIO_BAD_PATH'));
  assert.throws(() => w.dir('d', 0o17777), (e) => isVirtusError(e, 'CPIO_BAD_MODE'));
  assert.throws(() => w.device('dev/x', 'char', -1, 0), (e) => isVirtusError(e, 'CPIO_BAD_FIELD'));
  w.finish();
  assert.throws(() => w.file('b', 'x'), (e) => isVirtusError(e, 'CPIO_FINISHED'));
});
