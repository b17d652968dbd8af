/**
 * virtio-9p against a hostile guest speaking raw 9P: a directory fid that outlives its
 * directory cannot list what a symbolic link put in its place; FIFOs and sockets are never
 * opened (an open must not block the monitor); setuid, setgid and sticky bits never reach
 * the host; a guest-chosen count never makes a reply larger than msize; open fids hold at
 * most MAX_HANDLES host descriptors; cut-short and garbled messages get Rlerror.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { E } from '../../src/devices/virtio/9p/fs.ts';
import { MAX_MSIZE } from '../../src/devices/virtio/9p/server.ts';
import { MAX_HANDLES } from '../../src/host/node/host-fs.ts';
import { T } from '../../src/devices/virtio/9p/wire.ts';
import { AT_REMOVEDIR, errno, IO_HEADER, Lerror, Msg, O_CREAT, O_DIRECTORY, O_RDONLY, O_RDWR, O_WRONLY, share as shareIn } from './p9-client.ts';

const scratch = mkdtempSync(join(tmpdir(), 'virtus-9p-hostile-'));
const children: ChildProcess[] = [];
const servers: Server[] = [];
after(() => {
  for (const c of children) c.kill('SIGKILL');
  for (const s of servers) s.close();
  rmSync(scratch, { recursive: true, force: true });
});
const share = (o: Parameters<typeof shareIn>[1] = {}) => shareIn(scratch, o);

/** Entries of an open directory fid, or the errno its Treaddir got. */
function listing(c: ReturnType<typeof share>['c'], fid: number): string[] | number {
  try {
    return c.readdir(fid);
  } catch (e) {
    if (e instanceof Lerror) return e.errno;
    throw e;
  }
}

describe('virtio-9p: a hostile guest', () => {
  it('cannot list a host directory through an open fid whose directory became a symlink (mkdir, open, remove, symlink, readdir)', () => {
    const outside = join(scratch, 'outside-dir');
    mkdirSync(outside);
    writeFileSync(join(outside, 'outside-secret'), 'x');
    for (const [target, names] of [['/etc', readdirSync('/etc')], [outside, ['outside-secret']]] as Array<[string, string[]]>) {
      const { c } = share();
      c.mkdir(0, 'd');
      c.walk(0, 1, 'd');
      c.lopen(1, O_RDONLY | O_DIRECTORY);
      c.unlinkat(0, 'd', AT_REMOVEDIR);
      c.symlink(0, 'd', target);
      const got = listing(c, 1);
      if (typeof got !== 'number') {
        const leaked = got.filter((n) => names.includes(n) && n !== '.' && n !== '..');
        assert.deepEqual(leaked, [], `Treaddir listed ${target}: ${got.slice(0, 8).join(' ')} ...`);
        assert.deepEqual(got.filter((n) => n !== '.' && n !== '..'), [], 'a removed directory is empty');
      }
      // The same through Tremove of a second fid, and with the listing read again from offset 0.
      const s2 = share();
      s2.c.mkdir(0, 'd');
      s2.c.walk(0, 1, 'd');
      s2.c.lopen(1, O_RDONLY | O_DIRECTORY);
      assert.deepEqual(s2.c.readdir(1).sort(), ['.', '..']);
      s2.c.walk(0, 2, 'd');
      s2.c.remove(2);
      s2.c.symlink(0, 'd', target);
      const again = listing(s2.c, 1);
      if (typeof again !== 'number') assert.deepEqual(again.filter((n) => n !== '.' && n !== '..'), [], `listed ${target}`);
    }
  });

  it('an open directory fid keeps listing its own directory after a host rename, and a restored one reopens by path without following links', () => {
    const { root, c, dev } = share();
    mkdirSync(join(root, 'a'));
    writeFileSync(join(root, 'a', 'inside'), '');
    c.walk(0, 1, 'a');
    c.lopen(1, O_RDONLY | O_DIRECTORY);
    renameSync(join(root, 'a'), join(root, 'b'));
    assert.deepEqual(c.readdir(1).sort(), ['.', '..', 'inside']);
    const saved = JSON.parse(JSON.stringify(dev.save()));
    dev.restore(saved); // the fid names path "a" again, which is now a link to a host folder
    rmSync(join(root, 'b'), { recursive: true });
    symlinkSync('/etc', join(root, 'a'));
    assert.equal(listing(c, 1), E.LOOP);
  });

  it('never opens a FIFO or a socket, and never blocks on one', async () => {
    const { root, c } = share();
    const fifo = join(root, 'fifo');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0, 'mkfifo (coreutils)');
    const sock = join(root, 'sock');
    const srv = createServer();
    servers.push(srv);
    await new Promise<void>((ok) => srv.listen(sock, ok));
    // A watchdog: if an open blocks, this opens the FIFO read-write after 3 s, so the broken
    // server returns (and the test fails on timing) instead of hanging the test run.
    const dog = spawn('sh', ['-c', 'sleep 3; exec 3<>"$0"; sleep 60', fifo], { stdio: 'ignore' });
    children.push(dog);
    const timed = (what: string, f: () => number, want: number) => {
      const t0 = performance.now();
      const got = f();
      const ms = performance.now() - t0;
      assert.ok(ms < 1000, `${what} took ${ms.toFixed(0)} ms`);
      assert.equal(got, want, what);
    };
    c.walk(0, 1, 'fifo');
    c.walk(0, 2, 'sock');
    timed('Tlopen of a FIFO for reading', () => errno(() => c.lopen(1, O_RDONLY)), E.NXIO);
    timed('Tlopen of a FIFO for writing', () => errno(() => c.lopen(1, O_WRONLY)), E.NXIO);
    timed('Tlopen of a FIFO read-write', () => errno(() => c.lopen(1, O_RDWR)), E.NXIO);
    timed('Tlopen of a socket', () => errno(() => c.lopen(2, O_RDONLY)), E.NXIO);
    timed('Tlcreate over a FIFO without O_EXCL', () => errno(() => c.lcreate(0, 'fifo', O_WRONLY | O_CREAT)), E.NXIO);
    c.walk(0, 3);
    timed('Tsetattr size of a FIFO', () => errno(() => c.setattr(1, 0x8, { size: 0 })), E.INVAL);
    timed('Tlopen of a FIFO as a directory', () => errno(() => c.lopen(1, O_RDONLY | O_DIRECTORY)), E.NOTDIR);
    // Its attributes are still there to see, and it can be removed.
    assert.equal(c.getattr(1).mode & 0o170000, 0o010000);
    c.unlinkat(0, 'fifo');
  });

  it('strips setuid, setgid and sticky bits the guest asks for', () => {
    const { root, c } = share();
    c.walk(0, 1);
    c.lcreate(1, 'f', O_RDWR | O_CREAT, 0o4755);
    assert.equal(statSync(join(root, 'f')).mode & 0o7000, 0, 'Tlcreate');
    c.walk(0, 2, 'f');
    c.setattr(2, 0x1, { mode: 0o4777 });
    assert.equal(statSync(join(root, 'f')).mode & 0o7777, 0o777, 'Tsetattr (chmod 4777)');
    c.setattr(2, 0x1, { mode: 0o2755 });
    assert.equal(statSync(join(root, 'f')).mode & 0o7777, 0o755, 'Tsetattr (chmod 2755)');
    c.mkdir(0, 'd', 0o3777);
    assert.equal(statSync(join(root, 'd')).mode & 0o7000, 0, 'Tmkdir');
    c.walk(0, 3, 'd');
    c.setattr(3, 0x1, { mode: 0o1777 });
    assert.equal(statSync(join(root, 'd')).mode & 0o7777, 0o777, 'Tsetattr (chmod 1777)');
    c.mknod(0, 'n', 0o100000 | 0o6755);
    assert.equal(statSync(join(root, 'n')).mode & 0o7000, 0, 'Tmknod');
  });

  it('bounds every reply by msize whatever count the guest asks for', () => {
    const msize = 8192;
    const { root, c } = share({ msize, buffers: 4 * msize });
    writeFileSync(join(root, 'big'), new Uint8Array(1 << 20).fill(7));
    mkdirSync(join(root, 'many'));
    for (let i = 0; i < 200; i++) writeFileSync(join(root, 'many', `${'n'.repeat(100)}${i}`), '');
    c.walk(0, 1, 'big');
    c.lopen(1, O_RDONLY);
    for (const count of [msize, msize + 1, 0x7fff_ffff, 0xffff_ffff]) {
      assert.equal(c.read(1, 0, count).length, msize - IO_HEADER, `Tread count ${count}`);
      assert.ok(c.lastReplySize <= msize);
    }
    c.walk(0, 2, 'many');
    c.lopen(2, O_RDONLY | O_DIRECTORY);
    for (const count of [msize, 0xffff_ffff]) {
      assert.ok(c.readdirOnce(2, 0n, count).length > 0);
      assert.ok(c.lastReplySize <= msize, `Treaddir count ${count}: ${c.lastReplySize} bytes`);
    }
    // Tversion cannot raise msize past the server's limit.
    assert.equal(c.version(0xffff_ffff).msize, MAX_MSIZE);
  });

  it('holds at most MAX_HANDLES host descriptors for open fids (ENFILE beyond)', () => {
    const { root, c, fs } = share();
    writeFileSync(join(root, 'f'), 'x');
    for (let fid = 1; fid <= MAX_HANDLES; fid++) {
      c.walk(0, fid, 'f');
      c.lopen(fid, O_RDONLY);
    }
    c.walk(0, MAX_HANDLES + 1, 'f');
    assert.equal(errno(() => c.lopen(MAX_HANDLES + 1, O_RDONLY)), E.NFILE);
    assert.equal(errno(() => c.lopen(0, O_RDONLY | O_DIRECTORY)), E.NFILE);
    c.clunk(1);
    c.lopen(MAX_HANDLES + 1, O_RDONLY);
    fs.closeAll();
  });

  it('answers every message cut short, and garbled fields, with Rlerror', () => {
    const { root, c, d } = share();
    writeFileSync(join(root, 'f'), 'data');
    const msgs: Array<[number, (m: Msg) => void]> = [
      [T.walk, (m) => m.u32(0).u32(5).u16(1).str('f')],
      [T.lopen, (m) => m.u32(5).u32(0)],
      [T.read, (m) => m.u32(5).u64(0).u32(100)],
      [T.write, (m) => m.u32(5).u64(0).u32(4).bytes(new Uint8Array(4))],
      [T.lcreate, (m) => m.u32(0).str('g').u32(O_RDWR | O_CREAT).u32(0o644).u32(0)],
      [T.setattr, (m) => m.u32(0).u32(0x1).u32(0o755).u32(0).u32(0).u64(0).u64(0).u64(0).u64(0).u64(0)],
      [T.readdir, (m) => m.u32(0).u64(0).u32(1000)],
      [T.symlink, (m) => m.u32(0).str('l').str('t').u32(0)],
      [T.renameat, (m) => m.u32(0).str('a').u32(0).str('b')],
      [T.getlock, (m) => m.u32(0).u8(0).u64(0).u64(0).u32(0).str('c')],
      [T.version, (m) => m.u32(8192).str('9P2000.L')],
    ];
    for (const [type, body] of msgs) {
      const m = new Msg();
      body(m);
      const full = m.finish(type, 1);
      for (let len = 7; len < full.length; len++) {
        const cut = full.slice(0, len);
        new DataView(cut.buffer).setUint32(0, len, true);
        const reply = c.raw(cut);
        assert.equal(reply[4], 7, `type ${type} cut to ${len} bytes: Rlerror`);
        // EPROTO, or the error of a field read before the cut (a fid that is not there).
        assert.ok(([E.PROTO, E.BADF] as number[]).includes(new DataView(reply.buffer, reply.byteOffset).getUint32(7, true)));
      }
      // A size field larger than the message, or smaller than a header.
      for (const size of [full.length + 1, 0xffff_ffff, 3]) {
        const bad = full.slice();
        new DataView(bad.buffer).setUint32(0, size, true);
        assert.equal(c.raw(bad)[4], 7, `type ${type} with size field ${size}`);
      }
    }
    assert.deepEqual(d.errors, []);
    assert.deepEqual(readdirSync(root), ['f'], 'nothing cut short was acted on');
    assert.equal(readFileSync(join(root, 'f'), 'utf8'), 'data');
  });
});
