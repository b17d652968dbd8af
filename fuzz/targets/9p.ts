/**
 * The 9P2000.L server (src/devices/virtio/9p/) over a NodeHostFs on a temporary folder, fed
 * sessions of 9P messages: an input is T-messages one after another, each framed by its own
 * size field, as a guest sends them. The shared folder holds files, a subdirectory, a FIFO
 * and symbolic links pointing out of it; beside it lie a canary file and a folder the guest
 * must never reach. A run is a crash if the server throws (any bug it catches is reported
 * through onInternalError and rethrown here), if a reply exceeds its buffer, if a reply
 * carries the canary, or if anything outside the shared folder changed. Each input starts
 * from the same folder (what the last one changed is remade), so it replays on its own.
 */
import { createHash, randomBytes } from 'node:crypto';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { P9Server } from '../../src/devices/virtio/9p/server.ts';
import { T, WireWriter } from '../../src/devices/virtio/9p/wire.ts';
import { NodeHostFs } from '../../src/host/node/host-fs.ts';
import type { FuzzTarget } from '../harness.ts';

/** Messages of one input that are served (the rest is ignored): keeps a run short. */
const MAX_MESSAGES = 32;
const ROOM = 65536;
const O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2, O_CREAT = 0o100, O_TRUNC = 0o1000, O_DIRECTORY = 0o200000;
const NOFID = 0xffff_ffff;

interface Box {
  dir: string;
  share: string;
  fifo: string;
  canary: Uint8Array;
  /** What outside the share must stay as it is. */
  outside: string;
}

let box: Box | null = null;
let watchdog: ChildProcess | null = null;

/** The temporary folder, made once per process: the canary, the outside folder, a FIFO kept aside. */
function setup(): Box {
  if (box) return box;
  const dir = mkdtempSync(join(tmpdir(), 'virtus-fuzz-9p-'));
  const canary = new TextEncoder().encode(`CANARY-${randomBytes(12).toString('hex')}`);
  writeFileSync(join(dir, 'secret'), canary);
  mkdirSync(join(dir, 'outside'));
  writeFileSync(join(dir, 'outside', `entry-${Buffer.from(canary).toString()}`), canary);
  mkdirSync(join(dir, 'stash'));
  const fifo = join(dir, 'stash', 'fifo');
  if (spawnSync('mkfifo', [fifo]).status !== 0) throw new Error('fuzz 9p: mkfifo (coreutils) failed');
  // A watchdog: should an open of the FIFO ever block, this opens it read-write within 3 s,
  // so the run ends as a finding ("took 3000 ms") instead of hanging. It stops with us.
  watchdog = spawn('sh', ['-c', 'while sleep 3 && kill -0 $PPID 2>/dev/null; do exec 3<>"$0"; exec 3>&-; done', fifo], { stdio: 'ignore' });
  watchdog.unref();
  box = { dir, share: join(dir, 'share'), fifo, canary, outside: '' };
  box.outside = outsideState(box);
  return box;
}

/**
 * Everything outside the share: the names in the temporary folder and all below them but
 * the share and the FIFO's stash (the folder's own times change as the share is remade).
 */
function outsideState(b: Box): string {
  const describe = (p: string): string => {
    const st = lstatSync(p, { bigint: true });
    const head = `${p} ${st.mode} ${st.size} ${st.mtimeNs} ${st.ino}`;
    if (st.isDirectory()) return [head, ...readdirSync(p).sort().map((n) => describe(join(p, n)))].join('\n');
    return st.isFile() ? `${head} ${createHash('sha256').update(readFileSync(p)).digest('hex')}` : head;
  };
  const names = readdirSync(b.dir).sort().filter((n) => n !== 'share' && n !== 'stash');
  return [names.join(' '), ...names.map((n) => describe(join(b.dir, n)))].join('\n');
}

/** Removes a file or folder of the share, even where the guest took its own permissions away. */
function remove(p: string): void {
  try {
    rmSync(p, { recursive: true, force: true });
  } catch (e) {
    if (!lstatSync(p).isDirectory()) throw e;
    const open = (d: string): void => {
      chmodSync(d, 0o700);
      for (const n of readdirSync(d)) if (lstatSync(join(d, n)).isDirectory()) open(join(d, n));
    };
    open(p);
    rmSync(p, { recursive: true, force: true });
  }
}

/** The shared folder as every input first sees it: name → how to make it. */
function pristine(b: Box): Record<string, (p: string) => void> {
  return {
    'file.txt': (p) => writeFileSync(p, 'a file in the share\n'),
    big: (p) => writeFileSync(p, Uint8Array.from({ length: 9000 }, (_, i) => i & 0xff)),
    sub: (p) => {
      mkdirSync(p);
      writeFileSync(join(p, 'inner'), 'inner\n');
    },
    'link-out': (p) => symlinkSync('../secret', p),
    'dir-out': (p) => symlinkSync('../outside', p),
    'abs-out': (p) => symlinkSync(join(b.dir, 'outside'), p),
    fifo: (p) => {
      chmodSync(b.fifo, 0o644);
      linkSync(b.fifo, p);
    },
  };
}

/** A file's or folder's state, for telling whether an input changed it. */
function fingerprint(p: string): string {
  const st = lstatSync(p, { bigint: true });
  const head = `${st.mode} ${st.size} ${st.mtimeNs} ${st.nlink}`;
  if (st.isDirectory()) return [head, ...readdirSync(p).sort().map((n) => `${n}: ${fingerprint(join(p, n))}`)].join('\n');
  if (st.isSymbolicLink()) return `${head} -> ${readlinkSync(p)}`;
  // Content is compared for the pristine files' sizes; anything larger has changed anyway.
  if (st.isFile()) return st.size <= 65536n ? `${head} ${createHash('sha256').update(readFileSync(p)).digest('hex')}` : head;
  return `${head} ${st.ino}`;
}

const made = new Map<string, string>();

/**
 * Puts the share back as pristine() has it, remaking only what an input changed (making
 * files is the slow part of a run): every input starts from the same folder.
 */
function freshShare(b: Box): void {
  const want = pristine(b);
  mkdirSync(b.share, { recursive: true });
  chmodSync(b.share, 0o755);
  for (const name of readdirSync(b.share)) {
    const p = join(b.share, name);
    if (!(name in want) || made.get(name) !== fingerprint(p)) remove(p);
  }
  for (const [name, make] of Object.entries(want)) {
    const p = join(b.share, name);
    if (lstatSync(p, { throwIfNoEntry: false })) continue;
    make(p);
    made.set(name, fingerprint(p));
  }
}

/** A session of messages with tags 1, 2, ... */
function session(build: (m: (type: number, body: (w: WireWriter) => void) => void) => void): Uint8Array {
  const parts: Uint8Array[] = [];
  build((type, body) => {
    const w = new WireWriter();
    body(w);
    parts.push(w.finish(type, parts.length + 1).slice());
  });
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Tversion and Tattach of fid 0. */
const hello = (m: (type: number, body: (w: WireWriter) => void) => void, msize = 65536) => {
  m(T.version, (w) => w.u32(msize).str('9P2000.L'));
  m(T.attach, (w) => w.u32(0).u32(NOFID).str('root').str('').u32(0));
};
const walk = (w: WireWriter, fid: number, newfid: number, ...names: string[]) => {
  w.u32(fid).u32(newfid).u16(names.length);
  for (const n of names) w.str(n);
};
const setattr = (w: WireWriter, fid: number, valid: number, mode: number, size: number) =>
  w.u32(fid).u32(valid).u32(mode).u32(0).u32(0).u64(size).u64(1).u64(2).u64(3).u64(4);

/** Sessions that use every message on the pristine share (file.txt, big, sub/inner, links out). */
export function seeds(): Uint8Array[] {
  return [
    // Reading: a file in pieces, a directory, attributes.
    session((m) => {
      hello(m);
      m(T.walk, (w) => walk(w, 0, 1, 'file.txt'));
      m(T.lopen, (w) => w.u32(1).u32(O_RDONLY));
      m(T.read, (w) => w.u32(1).u64(0).u32(4096));
      m(T.read, (w) => w.u32(1).u64(5).u32(7));
      m(T.getattr, (w) => w.u32(1).u64(0x7ff));
      m(T.clunk, (w) => w.u32(1));
      m(T.walk, (w) => walk(w, 0, 2, 'sub'));
      m(T.lopen, (w) => w.u32(2).u32(O_RDONLY | O_DIRECTORY));
      m(T.readdir, (w) => w.u32(2).u64(0).u32(4096));
      m(T.readdir, (w) => w.u32(2).u64(3).u32(40));
      m(T.walk, (w) => walk(w, 0, 3, 'big'));
      m(T.lopen, (w) => w.u32(3).u32(O_RDONLY));
      m(T.read, (w) => w.u32(3).u64(4000).u32(0xffff_ffff));
      m(T.statfs, (w) => w.u32(0));
      m(T.clunk, (w) => w.u32(2));
    }),
    // Writing: create, write, read back, chmod 4777, truncate, times, link, rename, unlink, remove.
    session((m) => {
      hello(m);
      m(T.walk, (w) => walk(w, 0, 1));
      m(T.lcreate, (w) => w.u32(1).str('new').u32(O_RDWR | O_CREAT).u32(0o4755).u32(0));
      m(T.write, (w) => w.u32(1).u64(0).u32(11).bytes(new TextEncoder().encode('hello world')));
      m(T.read, (w) => w.u32(1).u64(0).u32(100));
      m(T.fsync, (w) => w.u32(0).u32(0)); // a fid that is not open: a real fsync costs milliseconds
      m(T.clunk, (w) => w.u32(1));
      m(T.walk, (w) => walk(w, 0, 2, 'new'));
      m(T.setattr, (w) => setattr(w, 2, 0x1 | 0x8 | 0x10 | 0x20 | 0x80 | 0x100, 0o4777, 3));
      m(T.getattr, (w) => w.u32(2).u64(0x7ff));
      m(T.link, (w) => w.u32(0).u32(2).str('hard'));
      m(T.renameat, (w) => w.u32(0).str('hard').u32(0).str('moved'));
      m(T.rename, (w) => w.u32(2).u32(0).str('renamed'));
      m(T.unlinkat, (w) => w.u32(0).str('moved').u32(0));
      m(T.walk, (w) => walk(w, 0, 3, 'renamed'));
      m(T.lopen, (w) => w.u32(3).u32(O_WRONLY | O_TRUNC));
      m(T.write, (w) => w.u32(3).u64(100).u32(2).bytes(new Uint8Array([1, 2])));
      m(T.remove, (w) => w.u32(2));
    }),
    // The escape: open a directory, remove it, put a link in its place, list the open fid.
    session((m) => {
      hello(m);
      m(T.mkdir, (w) => w.u32(0).str('d').u32(0o3777).u32(0));
      m(T.walk, (w) => walk(w, 0, 1, 'd'));
      m(T.lopen, (w) => w.u32(1).u32(O_RDONLY | O_DIRECTORY));
      m(T.unlinkat, (w) => w.u32(0).str('d').u32(0x200));
      m(T.symlink, (w) => w.u32(0).str('d').str('../outside').u32(0));
      m(T.readdir, (w) => w.u32(1).u64(0).u32(8192));
      m(T.walk, (w) => walk(w, 0, 2, 'd'));
      m(T.readlink, (w) => w.u32(2));
      m(T.walk, (w) => walk(w, 1, 3, '..', 'sub', 'inner'));
      m(T.walk, (w) => walk(w, 0, 4, 'dir-out', 'secret'));
      m(T.walk, (w) => walk(w, 0, 5, '..', '..', 'secret'));
      m(T.walk, (w) => walk(w, 0, 6, 'link-out'));
      m(T.lopen, (w) => w.u32(6).u32(O_RDONLY));
      m(T.setattr, (w) => setattr(w, 6, 0x8, 0, 0));
      m(T.walk, (w) => walk(w, 0, 7, 'abs-out'));
      m(T.lcreate, (w) => w.u32(7).str('planted').u32(O_RDWR | O_CREAT).u32(0o644).u32(0));
      m(T.mknod, (w) => w.u32(0).str('node').u32(0o10644).u32(0).u32(0).u32(0));
    }),
    // The FIFO: every way to open or truncate it.
    session((m) => {
      hello(m);
      m(T.walk, (w) => walk(w, 0, 1, 'fifo'));
      m(T.lopen, (w) => w.u32(1).u32(O_RDONLY));
      m(T.lopen, (w) => w.u32(1).u32(O_WRONLY));
      m(T.lopen, (w) => w.u32(1).u32(O_RDWR));
      m(T.setattr, (w) => setattr(w, 1, 0x8, 0, 0));
      m(T.walk, (w) => walk(w, 0, 2));
      m(T.lcreate, (w) => w.u32(2).str('fifo').u32(O_WRONLY | O_CREAT).u32(0o644).u32(0));
      m(T.getattr, (w) => w.u32(1).u64(0x7ff));
      m(T.setattr, (w) => setattr(w, 1, 0x1, 0o7777, 0));
    }),
    // The rest of the protocol, at the smallest msize.
    session((m) => {
      hello(m, 4096);
      m(T.walk, (w) => walk(w, 0, 1, 'big'));
      m(T.xattrwalk, (w) => w.u32(1).u32(2).str(''));
      m(T.read, (w) => w.u32(2).u64(0).u32(100));
      m(T.xattrcreate, (w) => w.u32(1).str('user.x').u64(1).u32(0));
      m(T.lopen, (w) => w.u32(1).u32(O_RDWR));
      m(T.lock, (w) => w.u32(1).u8(1).u32(0).u64(0).u64(10).u32(1).str('c'));
      m(T.getlock, (w) => w.u32(1).u8(1).u64(0).u64(10).u32(1).str('c'));
      m(T.read, (w) => w.u32(1).u64(8192).u32(4096));
      m(T.flush, (w) => w.u16(3));
      m(T.auth, (w) => w.u32(9).str('u').str('').u32(0));
      m(T.walk, (w) => walk(w, 0, 0, 'sub'));
      m(T.walk, (w) => walk(w, 0, 3, '..'));
      m(T.clunk, (w) => w.u32(3));
      m(T.version, (w) => w.u32(8192).str('9P2000.u'));
    }),
  ];
}

function run(input: Uint8Array): void {
  const b = setup();
  freshShare(b);
  const fs = new NodeHostFs(b.share);
  const server = new P9Server({
    fs,
    onInternalError: (e) => {
      throw e;
    },
  });
  const canary = Buffer.from(b.canary);
  try {
    serveMessages(server, input, (reply) => {
      if (reply && Buffer.from(reply.buffer, reply.byteOffset, reply.length).includes(canary)) throw new Error('a reply carries the canary from outside the share');
    });
  } finally {
    server.reset();
    fs.closeAll();
  }
  if (outsideState(b) !== b.outside) throw new Error('something outside the share changed');
}

/**
 * Hands `server` the messages `input` holds, one after another (each by its size field, at
 * least 7 bytes, at most MAX_MESSAGES), and checks every reply fits its buffer and says its
 * own length; `check` sees each reply (null: none) after that. A tag with its top bit set asks
 * for a small reply buffer (its low bits), so short buffers are tried too.
 */
export function serveMessages(server: P9Server, input: Uint8Array, check: (reply: Uint8Array | null) => void = () => {}): void {
  const v = new DataView(input.buffer, input.byteOffset, input.byteLength);
  for (let at = 0, n = 0; at + 4 <= input.length && n < MAX_MESSAGES; n++) {
    const size = v.getUint32(at, true);
    const len = Math.min(Math.max(size, 7), input.length - at);
    const msg = input.subarray(at, at + len);
    at += len;
    const tag = msg.length >= 7 ? msg[5]! | (msg[6]! << 8) : 0;
    const room = tag & 0x8000 ? tag & 0x7fff : ROOM;
    const reply = server.handle(msg, room);
    if (reply && reply.length > room) throw new Error(`a ${reply.length}-byte reply for a ${room}-byte buffer`);
    if (reply && new DataView(reply.buffer, reply.byteOffset).getUint32(0, true) !== reply.length) throw new Error('reply size field disagrees with its length');
    check(reply);
  }
}

export const target: FuzzTarget = {
  name: '9p',
  seeds,
  run,
  // About a millisecond an input (real files): a short share of the seeded run in npm test.
  iterations: 5000,
  close() {
    if (box) {
      remove(box.share);
      rmSync(box.dir, { recursive: true, force: true });
      made.clear();
      box = null;
      watchdog?.kill();
      watchdog = null;
    }
  },
};
