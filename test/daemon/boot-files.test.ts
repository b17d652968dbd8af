/**
 * The daemon's shared boot files (src/host/node/daemon/boot-files.ts): one copy per file for all
 * the machines booting from it, read again when the file changes, and nothing but regular files
 * read on the daemon's thread; and the files the machines read again instead of keeping them
 * (the daemon's own copies, files.ts rereadableFile).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { BootFiles } from '../../src/host/node/daemon/boot-files.ts';
import { rereadableFile } from '../../src/host/node/files.ts';
import { isVirtusError } from '../../src/util/errors.ts';
import { parseMachineSpec } from '../../src/vmm/spec.ts';

const dir = mkdtempSync(join(tmpdir(), 'virtus-boot-files-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('boot files shared by the daemon', () => {
  it('gives every machine the same bytes of a file, and the new bytes once it changed', () => {
    const kernel = join(dir, 'Image');
    writeFileSync(kernel, Buffer.alloc(3 << 20, 7));
    const files = new BootFiles();
    const a = files.get(kernel)!;
    assert.ok(a instanceof SharedArrayBuffer);
    assert.equal(a.byteLength, 3 << 20);
    assert.equal(new Uint8Array(a)[12345], 7);
    assert.equal(files.get(kernel), a, 'the second machine shares the first one\'s copy');
    writeFileSync(kernel, Buffer.alloc(1 << 20, 9));
    utimesSync(kernel, new Date(), new Date(Date.now() + 5000));
    const b = files.get(kernel)!;
    assert.notEqual(b, a);
    assert.equal(new Uint8Array(b)[0], 9);
    assert.equal(new Uint8Array(a)[0], 7, 'a machine that booted from the old contents keeps them');
  });

  it('names the files of a spec by the names it uses, and leaves what it cannot read to the machine', () => {
    const kernel = join(dir, 'k');
    const fw = join(dir, 'fw');
    writeFileSync(kernel, 'kernel');
    writeFileSync(fw, 'firmware');
    const files = new BootFiles();
    const spec = parseMachineSpec({ boot: { mode: 'firmware', firmware: fw, kernel, initrd: join(dir, 'missing') } });
    assert.deepEqual(Object.keys(files.forSpec(spec).files).sort(), [fw, kernel].sort());
    assert.deepEqual(files.forSpec(spec).reread, []);
    assert.equal(files.get(dir), null, 'a directory');
  });

  it('leaves the files it is told to the machines, which read them again', () => {
    const kernel = join(dir, 'own-kernel');
    const fw = join(dir, 'fw2');
    writeFileSync(kernel, 'kernel');
    writeFileSync(fw, 'firmware');
    const files = new BootFiles((path) => path === kernel);
    const spec = parseMachineSpec({ boot: { mode: 'firmware', firmware: fw, kernel } });
    assert.deepEqual(files.forSpec(spec), { files: { [fw]: files.get(fw) }, reread: [kernel] });
  });

  it('does not block on a FIFO named as a kernel', () => {
    const fifo = join(dir, 'fifo');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
    assert.equal(new BootFiles().get(fifo), null);
  });
});

describe('a boot file read again whenever it is needed', () => {
  it('reads the same file each time, and refuses one rewritten, replaced or gone', () => {
    const path = join(dir, 'again');
    writeFileSync(path, Buffer.alloc(2 << 20, 5));
    const read = rereadableFile(path, 'kernel');
    for (let i = 0; i < 2; i++) {
      const b = read();
      assert.equal(b.length, 2 << 20);
      assert.equal(b[(1 << 20) + 7], 5);
    }
    writeFileSync(path, Buffer.alloc(2 << 20, 6)); // same size, rewritten in place
    utimesSync(path, new Date(), new Date(Date.now() + 5000));
    assert.throws(read, (e: Error) => isVirtusError(e) && e.code === 'BOOT_FILE_CHANGED' && e.message.includes(path));
    const replaced = join(dir, 'again-new');
    writeFileSync(replaced, 'x');
    const r2 = rereadableFile(replaced, 'initrd');
    renameSync(join(dir, 'again'), replaced);
    assert.throws(r2, (e: Error) => isVirtusError(e) && e.code === 'BOOT_FILE_CHANGED');
    rmSync(replaced);
    assert.throws(r2, (e: Error) => isVirtusError(e) && e.code === 'FILE_OPEN' && /initrd .*: no such file/.test(e.message));
    assert.throws(() => rereadableFile(join(dir, 'none'), 'kernel'), (e: Error) => isVirtusError(e) && e.code === 'FILE_OPEN');
  });
});

