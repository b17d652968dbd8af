/**
 * virtio-9p: a 9P2000.L client (as Linux's speaks it) over the test driver, against a real
 * host folder through the Node HostFs. Files made on either side appear on the other;
 * every way out of the folder (.., names with "/", symbolic links pointing out, links in the
 * middle of a path) is refused; a read-only share refuses changes; deterministic mode keeps
 * host time out; fids survive save/restore.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { VirtioP9 } from '../../src/devices/virtio/9p/9p.ts';
import { E } from '../../src/devices/virtio/9p/fs.ts';
import { T } from '../../src/devices/virtio/9p/wire.ts';
import { REG } from '../../src/devices/virtio/mmio.ts';
import { STATUS_DEVICE_NEEDS_RESET } from '../../src/devices/virtio/types.ts';
import { NodeHostFs } from '../../src/host/node/host-fs.ts';
import { isVirtusError } from '../../src/util/errors.ts';
import { Driver } from './driver.ts';
import { Client, errno, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY, share as shareIn } from './p9-client.ts';

const scratch = mkdtempSync(join(tmpdir(), 'virtus-9p-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
let n = 0;

const share = (o: { readOnly?: boolean; clock?: () => bigint } = {}) => shareIn(scratch, o);

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

describe('virtio-9p', () => {
  it('presents device ID 9 and the mount tag', () => {
    const { d } = share();
    assert.equal(d.r(REG.DEVICE_ID), 9);
    assert.equal(d.mmio.read(REG.CONFIG, 2), 5);
    const tag = [0, 1, 2, 3, 4].map((i) => d.mmio.read(REG.CONFIG + 2 + i, 1));
    assert.equal(String.fromCharCode(...tag), 'host0');
    assert.throws(() => new VirtioP9({ tag: 'a,b', fs: new NodeHostFs(scratch) }), (e) => isVirtusError(e, 'BAD_TAG'));
  });

  it('a host file appears in the share, and a file the guest writes appears on the host', () => {
    const { root, c } = share();
    writeFileSync(join(root, 'from-host.txt'), 'made on the host\n');
    mkdirSync(join(root, 'sub'));
    assert.deepEqual(c.walk(0, 1, 'from-host.txt').length, 1);
    c.lopen(1, O_RDONLY);
    assert.equal(dec(c.read(1, 0, 4096)), 'made on the host\n');
    assert.equal(c.getattr(1).size, 17n);
    c.clunk(1);

    c.walk(0, 2, 'sub');
    c.lcreate(2, 'from-guest.txt');
    assert.equal(c.write(2, 0, enc('written by the guest\n')), 21);
    c.clunk(2);
    assert.equal(readFileSync(join(root, 'sub/from-guest.txt'), 'utf8'), 'written by the guest\n');
    assert.equal(statSync(join(root, 'sub/from-guest.txt')).mode & 0o777, 0o644);

    c.walk(0, 3);
    c.lopen(3, O_RDONLY | 0o200000);
    assert.deepEqual(c.readdir(3).sort(), ['.', '..', 'from-host.txt', 'sub']);
  });

  it('makes directories, symlinks and hard links; renames (open fids follow); truncates; unlinks', () => {
    const { root, c } = share();
    c.mkdir(0, 'd');
    c.walk(0, 1, 'd');
    c.lcreate(1, 'f');
    c.write(1, 0, enc('0123456789'));
    c.symlink(0, 'ln', 'd/f');
    c.walk(0, 2, 'ln');
    assert.equal(c.readlink(2), 'd/f');
    c.walk(0, 3, 'd', 'f');
    c.link(0, 3, 'hard');
    assert.equal(readFileSync(join(root, 'hard'), 'utf8'), '0123456789');
    c.renameat(0, 'd', 0, 'e');
    // fid 1 (open on d/f) now names e/f: it still reads and writes.
    assert.equal(c.write(1, 10, enc('!')), 1);
    assert.equal(readFileSync(join(root, 'e/f'), 'utf8'), '0123456789!');
    c.setattr(3, 0x8, { size: 4 });
    assert.equal(readFileSync(join(root, 'e/f'), 'utf8'), '0123');
    c.setattr(3, 0x1, { mode: 0o600 });
    assert.equal(statSync(join(root, 'e/f')).mode & 0o777, 0o600);
    c.clunk(1);
    c.walk(0, 4, 'e');
    c.unlinkat(4, 'f');
    c.unlinkat(0, 'e', 0x200);
    assert.equal(errno(() => c.walk(0, 5, 'e')), E.NOENT);
  });

  it('refuses every way out of the folder', () => {
    const { root, c, rootQid } = share();
    const outside = join(scratch, `outside${n++}`);
    mkdirSync(outside);
    writeFileSync(join(outside, 'secret'), 'secret');
    symlinkSync(outside, join(root, 'out-dir'));
    symlinkSync(join(outside, 'secret'), join(root, 'out-file'));

    // ".." from the root stays at the root.
    const up = c.walk(0, 1, '..', '..');
    assert.deepEqual(up[1], rootQid);
    assert.equal(errno(() => c.walk(1, 2, 'secret')), E.NOENT);
    // Names with a slash never reach the host.
    assert.equal(errno(() => c.walk(0, 2, '../outside0')), E.INVAL);
    assert.equal(errno(() => c.walk(0, 2, `..${'/'}..${outside}`)), E.INVAL);
    // A symlink is a symlink: walking through it, or opening it, is refused.
    const q = c.walk(0, 2, 'out-dir');
    assert.equal(q[0]!.type, 0x02, 'qid type symlink');
    assert.equal(c.walk(0, 3, 'out-dir', 'secret').length, 1, 'walk(5): stops at the link, newfid not made');
    assert.equal(errno(() => c.walk(2, 3, 'secret')), E.NOTDIR);
    assert.equal(errno(() => c.lopen(2, O_RDONLY)), E.LOOP);
    c.walk(0, 3, 'out-file');
    assert.equal(errno(() => c.lopen(3, O_RDONLY)), E.LOOP);
    assert.equal(errno(() => c.setattr(3, 0x8, { size: 0 })), E.LOOP, 'truncate does not follow');
    assert.equal(readFileSync(join(outside, 'secret'), 'utf8'), 'secret');
    // Creating through a symlinked directory, or with a bad name, is refused.
    assert.equal(errno(() => c.lcreate(2, 'x')), E.NOTDIR);
    assert.equal(errno(() => c.mkdir(0, '..')), E.INVAL);
    assert.equal(errno(() => c.renameat(0, 'out-file', 0, '../stolen')), E.INVAL);
    // A host path change behind the guest's back does not let a fid out either.
    c.mkdir(0, 'real');
    c.walk(0, 4, 'real');
    rmSync(join(root, 'real'), { recursive: true });
    symlinkSync(outside, join(root, 'real'));
    assert.equal(errno(() => c.walk(4, 5, 'secret')), E.LOOP);
    assert.equal(errno(() => c.lcreate(4, 'planted')), E.LOOP);
    assert.deepEqual(readFileSync(join(outside, 'secret'), 'utf8'), 'secret');
  });

  it('a read-only share reads but refuses every change with EROFS', () => {
    const { root, c } = share({ readOnly: true });
    writeFileSync(join(root, 'f'), 'data');
    c.walk(0, 1, 'f');
    assert.equal(errno(() => c.lopen(1, O_WRONLY)), E.ROFS);
    assert.equal(errno(() => c.lopen(1, O_RDONLY | O_TRUNC)), E.ROFS);
    c.lopen(1, O_RDONLY);
    assert.equal(dec(c.read(1, 0, 10)), 'data');
    assert.equal(errno(() => c.write(1, 0, enc('x'))), E.BADF);
    assert.equal(errno(() => c.lcreate(0, 'new')), E.ROFS);
    assert.equal(errno(() => c.mkdir(0, 'd')), E.ROFS);
    assert.equal(errno(() => c.unlinkat(0, 'f')), E.ROFS);
    assert.equal(errno(() => c.setattr(1, 0x1, { mode: 0o777 })), E.ROFS);
    assert.equal(readFileSync(join(root, 'f'), 'utf8'), 'data');
  });

  it('in deterministic mode, what the guest changes carries the guest clock, and ctime reads as mtime', () => {
    const t = 1_767_225_600_000_000_000n; // 2026-01-01
    const { c } = share({ clock: () => t });
    c.lcreate(0, 'f');
    c.write(0, 0, enc('x'));
    const a = c.getattr(0);
    assert.equal(a.mtime, t / 1_000_000_000n);
    assert.equal(a.atime, t / 1_000_000_000n);
    assert.equal(a.ctime, a.mtime);
  });

  it('answers malformed messages with Rlerror and breaks the device only when there is no tag to answer', () => {
    const { c, d } = share();
    assert.equal(errno(() => c.rpc(T.walk, (w) => w.u32(0))), E.PROTO, 'a message cut short');
    assert.equal(errno(() => c.rpc(200, () => {})), E.OPNOTSUPP);
    assert.equal(errno(() => c.rpc(T.read, (w) => w.u32(77).u64(0).u32(10))), E.BADF);
    assert.equal(errno(() => c.walk(0, 0, 'nope')), E.NOENT);
    // A reply that cannot fit the buffer: EMSGSIZE.
    c.walk(0, 9);
    c.lopen(9, O_RDONLY | 0o200000);
    assert.equal(errno(() => c.rpc(T.getattr, (w) => w.u32(0).u64(0x7ff), 20)), E.MSGSIZE);
    // Four bytes carry no tag: the device needs a reset.
    d.submit(0, [{ data: new Uint8Array(4) }, { room: 100 }]);
    assert.ok(d.r(REG.STATUS) & STATUS_DEVICE_NEEDS_RESET);
  });

  it('keeps fids across save/restore, reopening files on first use', () => {
    const { root, dev, c } = share();
    writeFileSync(join(root, 'f'), 'persistent');
    c.walk(0, 1, 'f');
    c.lopen(1, O_RDWR);
    const saved = JSON.parse(JSON.stringify(dev.save()));
    assert.equal(saved.server.fids.length, 2);
    const dev2 = new VirtioP9({ tag: 'host0', fs: new NodeHostFs(root) });
    dev2.restore(saved);
    assert.deepEqual(dev2.save(), saved);
    const d2 = new Driver(dev2, 4 << 20);
    d2.init();
    dev2.restore(saved); // the driver's reset cleared the session: restore it into the live device
    const c2 = new Client(d2);
    assert.equal(dec(c2.read(1, 0, 100)), 'persistent');
    assert.throws(() => dev2.restore({ server: { msize: 65536, fids: [{ fid: 1, path: ['..'], dir: false, open: null }] } }), (e) => isVirtusError(e, 'BAD_STATE') && /valid names/.test(e.message));
    assert.throws(() => dev2.restore({ server: { msize: 10, fids: [] } }), (e) => isVirtusError(e, 'BAD_STATE') && /msize/.test(e.message));
    assert.equal(dec(c2.read(1, 0, 100)), 'persistent', 'a rejected state changes nothing');
  });
});
