/**
 * Where a file dropped on a tab with a shared folder goes (dropBootRole), for real files made
 * by the tools that make them: the default guest's kernel Image, initramfs (cpio) and root
 * disk (mke2fs), a bare-metal ELF kernel from the cross gcc, riscv64 Linux programs from
 * Debian's riscv64-linux-gnu-gcc (static and dynamic), a qcow2 image from qemu-img, and gzip
 * output; data (text, empty files, archives) goes to the folder.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { dropBootRole, HEAD_BYTES } from '../../src/host/browser/user-files.ts';
import { ensureDefaultGuest, stderrProgress } from '../../src/host/node/guest/index.ts';
import { buildGuest, buildLinuxProgram, GUEST_SRC, requireTool } from '../support/toolchain.ts';

const dir = mkdtempSync(join(tmpdir(), 'virtus-drop-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const role = (name: string, bytes: Uint8Array) => dropBootRole(name, bytes.subarray(0, HEAD_BYTES));
const file = (path: string) => new Uint8Array(readFileSync(path));

describe('files dropped on a tab with a shared folder', () => {
  it("boots the default guest's kernel, initramfs and root disk, whatever their names", async () => {
    const g = await ensureDefaultGuest({ progress: stderrProgress() });
    assert.equal(role('Image', file(g.kernel)), 'kernel');
    assert.equal(role('whatever', file(g.kernel)), 'kernel');
    assert.equal(role('initrd.cpio', file(g.initrd)), 'initrd');
    assert.equal(role('root', file(g.rootfs)), 'disk', 'an ext4 file system, by its superblock');
  });

  it('boots an ELF linked at the RAM base; a Linux program goes to the folder', () => {
    const echo = buildGuest('web-echo', [join(GUEST_SRC, '../web/guest/echo.S')], { ldscript: join(GUEST_SRC, '../web/guest/echo.ld') });
    assert.equal(role('echo.elf', file(echo)), 'kernel');
    assert.equal(role('hello', file(buildLinuxProgram('drop-hello-static', ['hello.c']))), null);
    assert.equal(role('hello', file(buildLinuxProgram('drop-hello-dynamic', ['hello.c'], { dynamic: true }))), null);
  });

  it('boots a qcow2 image by its magic and a raw image by its name; data goes to the folder', () => {
    requireTool('qemu-img');
    const q = join(dir, 'disk.bin');
    assert.equal(spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', q, '1M']).status, 0);
    assert.equal(role('disk.bin', file(q)), 'disk');
    const random = new Uint8Array(4096).map((_, i) => (i * 31) & 0xff);
    assert.equal(role('data.img', random), 'disk');
    assert.equal(role('data.bin', random), null);
    const gz = new Uint8Array(gzipSync('some text\n'));
    assert.equal(role('notes.txt.gz', gz), null);
    assert.equal(role('initrd.gz', gz), 'initrd');
    assert.equal(role('note.txt', new TextEncoder().encode('a line of text\n')), null);
    assert.equal(role('empty', new Uint8Array(0)), null);
  });
});
