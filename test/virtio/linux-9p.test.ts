/**
 * A shared folder in Linux (the default guest, 9pnet_virtio) with files and directories of
 * every size: `cat`, `sha256sum`, `cp` and `ls` in the guest against the host's own SHA-256
 * and listings, at Linux's default msize and at a small one; files the guest writes arrive
 * whole; `chmod 4777` leaves no setuid bit on the host.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ensureDefaultGuest, stderrProgress } from '../../src/host/node/guest/index.ts';
import { Guest } from '../support/guest.ts';

let dir: string;
before(async () => {
  await ensureDefaultGuest({ progress: stderrProgress() });
  dir = mkdtempSync(join(tmpdir(), 'virtus-linux-9p-'));
});
after(() => {
  Guest.killAll();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const enc = (s: string) => new TextEncoder().encode(s);
/** Linux's default msize (net/9p/client.c) and its read payload (msize - P9_IOHDRSZ). */
const LINUX_MSIZE = 128 * 1024;
const around = (x: number) => [x - 1, x, x + 1];
const FILE_SIZES = [...new Set([0, 1, 245, 246, 1300, ...around(4096), ...around(8192 - 24), ...around(65536), ...around(LINUX_MSIZE - 24), 1 << 20, 5 * (1 << 20) + 3])];
const DIR_SIZES = [0, 1, 40, 500, 5000];

/** A long name for entry `i` (up to 255 bytes). */
const entryName = (i: number) => `${String(i).padStart(5, '0')}-${'a-long-file-name-'.repeat(15)}`.slice(0, 180 + (i % 76));

test('linux: files and directories of every size in a shared folder', { timeout: 40 * 60_000 }, async () => {
  const share = join(dir, 'share');
  mkdirSync(join(share, 'files'), { recursive: true });
  const want = new Map<string, string>();
  for (const n of FILE_SIZES) {
    const data = new Uint8Array(randomBytes(n));
    writeFileSync(join(share, 'files', `f${n}`), data);
    want.set(`f${n}`, sha(data));
  }
  for (const n of DIR_SIZES) {
    mkdirSync(join(share, `d${n}`));
    for (let i = 0; i < n; i++) writeFileSync(join(share, `d${n}`, entryName(i)), '');
  }
  writeFileSync(join(share, 'mode'), 'x');

  const m = Guest.virtus(['--share', share]);
  await m.shell();
  const sh = async (cmd: string) => {
    const r = await m.status(cmd);
    assert.equal(r.status, 0, `${cmd}: ${r.out}`);
    return r.out;
  };
  /** `sha256sum` of every file in the guest, as name → digest. */
  const sums = async (path: string) => {
    const out = await sh(`cd ${path} && sha256sum * && cd /`);
    return new Map(out.trim().split('\n').map((l) => l.split(/\s+/).reverse() as [string, string]));
  };

  for (const opts of ['', ',msize=8192']) {
    await sh(`mkdir -p /mnt/host && mount -t 9p -o trans=virtio,version=9p2000.L${opts} host0 /mnt/host`);
    // /proc/mounts names msize only when it is not the default.
    const mounted = await sh('grep " /mnt/host " /proc/mounts');
    if (opts) assert.match(mounted, /msize=8192/);
    else assert.doesNotMatch(mounted, /msize=/);
    // cat of a 1.3 KB file (the issue's first symptom), then every file's SHA-256.
    assert.equal(await sh('cat /mnt/host/files/f1300 | wc -c'), '1300\n');
    assert.deepEqual(await sums('/mnt/host/files'), want, `sha256sum with options "${opts}"`);
    // ls of every directory (the issue's second symptom: 40 entries), compared by digest
    // with the host's sorted listing (the names are ASCII, so both sort alike). The guest
    // stats each entry: 5000 entries take Linux on virtus some ten seconds, so once.
    for (const n of DIR_SIZES.filter((k) => k < 5000 || !opts)) {
      const names = readdirSync(join(share, `d${n}`)).sort();
      const listed = await sh(`ls -1 /mnt/host/d${n} | sha256sum; ls /mnt/host/d${n} | wc -l`);
      assert.equal(listed, `${sha(enc(names.map((x) => `${x}\n`).join('')))}  -\n${n}\n`, `ls of ${n} entries (${opts || 'default msize'})`);
    }
    assert.equal((await sh('ls -l /mnt/host/d40 | grep -c "^-rw"')).trim(), '40');
    await sh('umount /mnt/host');
  }

  // Copies: within the share, from the guest into the share, and out to the guest's tmpfs.
  await sh('mount -t 9p -o trans=virtio,version=9p2000.L host0 /mnt/host');
  await sh('mkdir /mnt/host/copies && cp /mnt/host/files/* /mnt/host/copies/ && cp /mnt/host/files/f5242883 /tmp/big');
  assert.equal((await sh('sha256sum /tmp/big')).split(/\s/)[0], want.get('f5242883'));
  const made = (await sh('dd if=/dev/urandom of=/tmp/made bs=1024 count=3001 2>/dev/null && sha256sum /tmp/made && cp /tmp/made /mnt/host/made')).split(/\s/)[0];
  // chmod 4777 from the guest: the permission bits arrive, the setuid bit does not.
  await sh('chmod 4777 /mnt/host/mode && chmod 1777 /mnt/host/copies');
  await sh('umount /mnt/host');
  assert.equal(await m.powerOff(), 0);

  for (const [name, digest] of want) assert.equal(sha(readFileSync(join(share, 'copies', name))), digest, `copies/${name} on the host`);
  assert.equal(sha(readFileSync(join(share, 'made'))), made, 'a file the guest made');
  assert.equal(statSync(join(share, 'mode')).mode & 0o7777, 0o777, 'chmod 4777 sets no setuid bit on the host');
  assert.equal(statSync(join(share, 'copies')).mode & 0o7777, 0o777, 'chmod 1777 sets no sticky bit on the host');
});
