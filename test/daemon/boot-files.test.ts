/**
 * The daemon's shared boot files (src/host/node/daemon/boot-files.ts): one copy per file for all
 * the machines booting from it, read again when the file changes, and nothing but regular files
 * read on the daemon's thread.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { BootFiles } from '../../src/host/node/daemon/boot-files.ts';
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
    assert.deepEqual(Object.keys(files.forSpec(spec)).sort(), [fw, kernel].sort());
    assert.equal(files.get(dir), null, 'a directory');
  });

  it('does not block on a FIFO named as a kernel', () => {
    const fifo = join(dir, 'fifo');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
    assert.equal(new BootFiles().get(fifo), null);
  });
});
