/**
 * The 9P2000.L server over MemFs, the in-memory share a browser tab gives its machine, with
 * small limits (64 KiB, 64 entries) so that inputs reach them. Inputs are 9p.ts's: sessions of
 * T-messages, each framed by its own size field. A run is a crash if the server throws (a bug
 * it catches is rethrown here), if a reply exceeds its buffer, if the share ever holds more
 * than its limits, or if its books do not balance afterwards: once the machine's share is
 * closed and everything in the tree removed, it must hold 0 bytes and 1 entry (the root).
 */
import { S_IFDIR, S_IFMT } from '../../src/devices/virtio/9p/fs.ts';
import { MemFs, openMemShare } from '../../src/devices/virtio/9p/mem-fs.ts';
import { P9Server } from '../../src/devices/virtio/9p/server.ts';
import type { FuzzTarget } from '../harness.ts';
import { seeds, serveMessages } from './9p.ts';

const LIMITS = { maxBytes: 64 * 1024, maxEntries: 64 };

/** The tree 9p.ts's seeds expect (its links point out of a folder this tree does not have). */
function pristine(): MemFs {
  const fs = new MemFs(LIMITS, () => 1_000_000_000n);
  fs.putFile(['file.txt'], new TextEncoder().encode('a file in the share\n'));
  fs.putFile(['big'], Uint8Array.from({ length: 9000 }, (_, i) => i & 0xff));
  fs.putFile(['sub', 'inner'], new TextEncoder().encode('inner\n'));
  fs.symlink(['link-out'], '../secret');
  fs.symlink(['dir-out'], '../outside');
  return fs;
}

/** Removes everything below `path`, as rm -r would (the guest may have taken permissions away: MemFs ignores them). */
function removeAll(fs: MemFs, path: string[]): void {
  const h = fs.openDir(path);
  const names: Array<{ name: string; dir: boolean }> = [];
  try {
    for (let at = 0; ; ) {
      const batch = fs.readdir(h, at, 64);
      if (batch.length === 0) break;
      for (const e of batch) names.push({ name: e.name, dir: (e.type & S_IFMT) === S_IFDIR });
      at = batch[batch.length - 1]!.next;
    }
  } finally {
    fs.close(h);
  }
  for (const { name, dir } of names) {
    if (dir) {
      removeAll(fs, [...path, name]);
      fs.rmdir([...path, name]);
    } else fs.unlink([...path, name]);
  }
}

function run(input: Uint8Array): void {
  const fs = pristine();
  const share = openMemShare(fs);
  const server = new P9Server({
    fs: share.fs,
    onInternalError: (e) => {
      throw e;
    },
  });
  try {
    serveMessages(server, input, () => {
      if (fs.bytesUsed > LIMITS.maxBytes) throw new Error(`the share holds ${fs.bytesUsed} bytes, over its ${LIMITS.maxBytes}`);
    });
  } finally {
    server.reset();
    share.close();
  }
  const st = fs.statfs();
  if (st.ffree < 0n) throw new Error(`the share holds more than its ${LIMITS.maxEntries} entries`);
  removeAll(fs, []);
  const after = fs.statfs();
  if (fs.bytesUsed !== 0 || after.ffree !== BigInt(LIMITS.maxEntries - 1)) {
    throw new Error(`an emptied share still holds ${fs.bytesUsed} bytes and ${LIMITS.maxEntries - Number(after.ffree)} entries`);
  }
}

export const target: FuzzTarget = {
  name: '9p-mem',
  seeds,
  run,
  iterations: 8_000,
};
