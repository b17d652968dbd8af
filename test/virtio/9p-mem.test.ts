/**
 * The in-memory share (MemFs, what a browser tab gives its machine) behind the 9P server, as
 * Linux's 9p client drives it: the same operations on a real host folder (NodeHostFs over
 * Linux's own file system) and on MemFs answer the same; hostile names (with "/", "..", NUL)
 * and writes beyond the byte limit are refused with the errno a guest expects, and nothing a
 * guest does makes the share hold more than its limit; the host's own puts obey the same
 * rules; a machine that goes closes the handles it held.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { VirtioP9 } from '../../src/devices/virtio/9p/9p.ts';
import { E, FsError, type HostFs } from '../../src/devices/virtio/9p/fs.ts';
import { MAX_HANDLES, MemFs, openMemShare } from '../../src/devices/virtio/9p/mem-fs.ts';
import { NodeHostFs } from '../../src/host/node/host-fs.ts';
import { Driver } from './driver.ts';
import { AT_REMOVEDIR, Client, errno, MSIZE, O_CREAT, O_EXCL, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY } from './p9-client.ts';

const scratch = mkdtempSync(join(tmpdir(), 'virtus-9p-mem-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
let n = 0;

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

/** A client attached (fid 0) to `fs` through a VirtioP9 on the test driver. */
function attach(fs: HostFs): Client {
  const dev = new VirtioP9({ tag: 'tab', fs, onInternalError: (e) => c.bugs.push(e) });
  const d = new Driver(dev, 4 << 20);
  d.init();
  const c = new Client(d, MSIZE);
  c.version(MSIZE);
  c.attach(0);
  return c;
}

const mem = (maxBytes = 1 << 20, maxEntries = 1000) => new MemFs({ maxBytes, maxEntries });

/** The result of `f` as text: what it returned, or the errno it got. */
function outcome(f: () => unknown): string {
  try {
    const v = f();
    return v instanceof Uint8Array ? `bytes ${dec(v)}` : `ok ${JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? 'n' : x))}`;
  } catch (e) {
    if (e instanceof Error && 'errno' in e) return `errno ${(e as { errno: number }).errno}`;
    throw e;
  }
}

/** A session of a guest on a share, each step's outcome recorded (inode numbers and times left out). */
function session(c: Client): string[] {
  const out: string[] = [];
  const step = (what: string, f: () => unknown) => out.push(`${what}: ${outcome(f)}`);
  let fid = 1;
  const dir = () => {
    const f = fid++;
    c.walk(0, f);
    return f;
  };
  step('mkdir d', () => (c.mkdir(0, 'd'), null));
  step('mkdir d again', () => (c.mkdir(0, 'd'), null));
  const a = dir();
  step('create a.txt', () => (c.lcreate(a, 'a.txt', O_RDWR | O_CREAT | O_EXCL), null));
  step('write', () => c.write(a, 0, enc('hello, world')));
  step('write past the end', () => c.write(a, 20, enc('!')));
  step('read', () => c.read(a, 0, 100));
  step('read past the end', () => c.read(a, 100, 10));
  step('size', () => Number(c.getattr(a).size));
  step('create a.txt exclusive again', () => {
    const f = dir();
    c.lcreate(f, 'a.txt', O_RDWR | O_CREAT | O_EXCL);
  });
  step('open a.txt truncating', () => {
    const f = fid++;
    c.walk(0, f, 'a.txt');
    c.lopen(f, O_WRONLY | O_TRUNC);
    return Number(c.getattr(f).size);
  });
  step('write after truncate', () => c.write(a, 0, enc('abc')));
  step('walk into a file', () => c.walk(0, fid++, 'a.txt', 'x'));
  step('open a directory to write', () => {
    const f = fid++;
    c.walk(0, f, 'd');
    c.lopen(f, O_RDWR);
  });
  step('rename a.txt into d', () => c.renameat(0, 'a.txt', 0, 'b.txt'));
  step('walk to the old name', () => c.walk(0, fid++, 'a.txt'));
  step('the renamed file reads', () => {
    const f = fid++;
    c.walk(0, f, 'b.txt');
    c.lopen(f, O_RDONLY);
    return c.read(f, 0, 100);
  });
  step('symlink', () => (c.symlink(0, 'l', 'd/../b.txt'), c.readlink((c.walk(0, fid, 'l'), fid++))));
  step('walk through the symlink', () => c.walk(0, fid++, 'l', 'x'));
  step('open the symlink', () => {
    const f = fid++;
    c.walk(0, f, 'l');
    c.lopen(f, O_RDONLY);
  });
  step('hard link', () => {
    const f = fid++;
    c.walk(0, f, 'b.txt');
    c.link(0, f, 'h');
    return Number(c.getattr(f).size);
  });
  step('rmdir a non-empty dir', () => {
    const f = fid++;
    c.walk(0, f, 'd');
    c.lcreate(f, 'in', O_RDWR | O_CREAT);
    c.unlinkat(0, 'd', AT_REMOVEDIR);
  });
  step('unlink a dir', () => c.unlinkat(0, 'd'));
  step('rename a dir into itself', () => {
    const f = fid++;
    c.walk(0, f, 'd');
    c.renameat(0, 'd', f, 'e');
  });
  step('rename a file over a dir', () => c.renameat(0, 'h', 0, 'd'));
  step('listing', () => {
    const f = fid++;
    c.walk(0, f);
    c.lopen(f, O_RDONLY);
    return c.readdir(f).sort();
  });
  step('listing of d', () => {
    const f = fid++;
    c.walk(0, f, 'd');
    c.lopen(f, O_RDONLY);
    return c.readdir(f).sort();
  });
  return out;
}

describe('virtio-9p over the in-memory share', () => {
  it('answers a session as a real folder on Linux does (NodeHostFs)', () => {
    const root = join(scratch, `real${n++}`);
    mkdirSync(root);
    const real = session(attach(new NodeHostFs(root, { readOnly: false })));
    const inMemory = session(attach(mem()));
    assert.deepEqual(inMemory, real);
    assert.ok(real.includes('listing: ok [".","..","b.txt","d","h","l"]'), real.join('\n'));
    assert.ok(real.includes('rmdir a non-empty dir: errno 39'), real.join('\n'));
  });

  it('refuses names with "/", NUL, ".." or nothing, however they arrive', () => {
    const fs = mem();
    const c = attach(fs);
    for (const bad of ['a/b', '/', 'a\0b', '..', '.', '']) {
      const f = 100 + bad.length;
      c.walk(0, f);
      assert.equal(errno(() => c.lcreate(f, bad)), E.INVAL, JSON.stringify(bad));
      c.clunk(f);
      assert.equal(errno(() => c.mkdir(0, bad)), E.INVAL, JSON.stringify(bad));
      assert.throws(() => fs.putFile([bad], enc('x')), (e) => e instanceof FsError && e.errno === E.INVAL);
      assert.throws(() => fs.mkdir(['ok', bad], 0o755), (e) => e instanceof FsError && (e.errno === E.INVAL || e.errno === E.NOENT));
    }
    assert.throws(() => fs.putFile(['x'.repeat(256)], enc('x')), (e) => e instanceof FsError && e.errno === E.NAMETOOLONG);
    // NAME_MAX counts bytes: 100 three-byte characters are too long for Linux, though 100 long.
    assert.throws(() => fs.putFile(['\u6587'.repeat(100)], enc('x')), (e) => e instanceof FsError && e.errno === E.NAMETOOLONG);
    c.walk(0, 50);
    assert.equal(errno(() => c.lcreate(50, '\u6587'.repeat(100))), E.NAMETOOLONG);
    fs.putFile(['\u6587'.repeat(85)], enc('255 bytes of name'));
    // ".." walks stop at the root: the guest cannot name anything outside the tree.
    fs.putFile(['top'], enc('top'));
    c.walk(0, 1, '..', '..', 'top');
    c.lopen(1, O_RDONLY);
    assert.equal(dec(c.read(1, 0, 10)), 'top');
    assert.deepEqual(fs.listFiles().map((f) => f.path), [['\u6587'.repeat(85)], ['top']]);
  });

  it('holds at most its byte limit: a write beyond is cut short, then ENOSPC; room comes back on unlink', () => {
    const limit = 256 * 1024;
    const fs = mem(limit);
    const c = attach(fs);
    c.walk(0, 1);
    c.lcreate(1, 'big', O_RDWR | O_CREAT);
    const chunk = new Uint8Array(60_000).fill(7);
    let written = 0;
    for (;;) {
      const r = outcome(() => c.write(1, written, chunk));
      if (r.startsWith('errno')) {
        assert.equal(r, `errno ${E.NOSPC}`);
        break;
      }
      written += Number(r.slice(3));
      assert.ok(fs.bytesUsed <= limit, `${fs.bytesUsed} bytes held`);
    }
    assert.equal(written, limit);
    assert.equal(fs.bytesUsed, limit);
    // A far offset is no way around it, nor is truncate, nor a second file, nor a put.
    c.walk(0, 2);
    c.lcreate(2, 'far', O_RDWR | O_CREAT);
    assert.equal(errno(() => c.write(2, 2 ** 40, enc('x'))), E.NOSPC);
    assert.equal(errno(() => c.setattr(2, 0x8, { size: 2 ** 30 })), E.NOSPC);
    assert.throws(() => fs.putFile(['put'], new Uint8Array(1)), (e) => e instanceof FsError && e.errno === E.NOSPC);
    assert.equal(fs.bytesUsed, limit);
    // statfs says there is no room.
    const st = c.rpc(8, (w) => w.u32(0));
    st.u32();
    st.u32();
    st.u64();
    assert.equal(st.u64(), 0n, 'no free blocks');
    // An open file keeps its bytes until it is closed.
    c.unlinkat(0, 'big');
    assert.equal(fs.bytesUsed, limit);
    c.clunk(1);
    assert.equal(fs.bytesUsed, 0);
    fs.putFile(['put'], new Uint8Array(limit));
    assert.equal(fs.getFile(['put']).length, limit);
  });

  it('holds at most its number of entries and open handles', () => {
    const fs = mem(1 << 20, 10);
    const c = attach(fs);
    let made = 0;
    for (let i = 0; i < 20; i++) if (outcome(() => c.mkdir(0, `d${i}`)).startsWith('ok')) made++;
    assert.equal(made, 9, 'the root is the tenth');
    assert.equal(errno(() => c.symlink(0, 'l', 'x')), E.NOSPC);
    const many = new MemFs({ maxBytes: 1 << 20, maxEntries: 10 });
    const handles = Array.from({ length: MAX_HANDLES }, () => many.openDir([]));
    assert.throws(() => many.openDir([]), (e) => e instanceof FsError && e.errno === E.NFILE);
    for (const h of handles) many.close(h);
    many.close(many.openDir([]));
  });

  it("closes a machine's handles when its share closes (a snapshot's machine takes over the tree)", () => {
    const fs = mem();
    fs.putFile(['f'], enc('data'));
    const first = openMemShare(fs);
    const c = attach(first.fs);
    c.walk(0, 1, 'f');
    c.lopen(1, O_RDONLY);
    c.unlinkat(0, 'f');
    assert.equal(fs.bytesUsed > 0, true, 'the open file keeps its bytes');
    first.close();
    assert.equal(fs.bytesUsed, 0, 'closing the share let the file go');
    const second = attach(openMemShare(fs).fs);
    second.walk(0, 1);
    second.lcreate(1, 'g', O_RDWR | O_CREAT);
    second.write(1, 0, enc('from the guest'));
    assert.equal(dec(fs.getFile(['g'])), 'from the guest');
    assert.deepEqual(fs.listFiles().map((f) => [f.path.join('/'), f.size]), [['g', 14]]);
  });

  it('lists a directory whole while the guest removes entries one by one (rm -r)', () => {
    const fs = mem();
    for (let i = 0; i < 300; i++) fs.putFile(['d', `f${i}`], enc(String(i)));
    const h = fs.openDir(['d']);
    let seen = 0;
    for (let at = 0; ; ) {
      const batch = fs.readdir(h, at, 7);
      if (batch.length === 0) break;
      for (const e of batch) {
        fs.unlink(['d', e.name]);
        seen++;
      }
      at = batch[batch.length - 1]!.next;
    }
    fs.close(h);
    assert.equal(seen, 300);
    fs.rmdir(['d']);
    assert.deepEqual(fs.listFiles(), []);
    assert.equal(fs.bytesUsed, 0);
  });
});
