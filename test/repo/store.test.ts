/**
 * The local image store through the CLI: ls, tag, rm with garbage collection, images in
 * use, and concurrent virtus processes updating one store.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { packMachine } from '../../src/repo/pack.ts';
import { silentProgress } from '../../src/repo/progress.ts';
import { parseLocalRef } from '../../src/repo/reference.ts';
import { ImageStore } from '../../src/repo/store.ts';
import { scratch, storeIndex, virtus } from './support.ts';

describe('repo: the local store (virtus image ls, tag, rm)', () => {
  const s = scratch();
  const root = s.path('store');
  const env = { VIRTUS_IMAGE_STORE: root };
  let a = '';
  let b = '';
  const blobs = () => readdirSync(join(root, 'blobs/sha256')).length;
  const run = async (args: string[], status = 0) => {
    const r = await virtus(['image', ...args], env);
    assert.equal(r.status, status, `virtus image ${args.join(' ')}:\n${r.stderr}`);
    return r;
  };

  before(async () => {
    writeFileSync(s.path('kernel'), Buffer.alloc(50_000, 1));
    writeFileSync(s.path('initrd'), Buffer.alloc(20_000, 2));
    writeFileSync(s.path('disk'), Buffer.alloc(1 << 20, 3));
    const store = ImageStore.open(root);
    const pa = await packMachine(store, { kernel: s.path('kernel'), initrd: s.path('initrd'), cmdline: 'console=ttyS0' }, silentProgress);
    await store.tag(parseLocalRef('alpha:1'), pa.digest);
    pa.hold.release();
    const pb = await packMachine(store, { kernel: s.path('kernel'), disk: s.path('disk') }, silentProgress);
    await store.tag(parseLocalRef('127.0.0.1:5000/team/beta'), pb.digest);
    pb.hold.release();
    a = pa.digest;
    b = pb.digest;
  });
  after(() => s.cleanup());

  it('ls lists name, tag, short digest, size and creation time', async () => {
    const r = await run(['ls']);
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[0]!, /^NAME\s+TAG\s+DIGEST\s+SIZE\s+CREATED$/);
    assert.match(lines[1]!, new RegExp(`^127\\.0\\.0\\.1:5000/team/beta\\s+latest\\s+${b.slice(7, 19)}\\s+\\d+(\\.\\d)? [kM]?B\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d$`));
    assert.match(lines[2]!, new RegExp(`^alpha\\s+1\\s+${a.slice(7, 19)}\\s`));
    const json = JSON.parse((await run(['ls', '--json'])).stdout) as { key: string; digest: string; size: number }[];
    assert.deepEqual(json.map((i) => i.key), ['127.0.0.1:5000/team/beta:latest', 'alpha:1']);
    assert.ok(json.every((i) => i.size > 0));
    assert.deepEqual((await run(['ls', '-q', '--digests'])).stdout.trim().split('\n').sort(), [a, b].sort());
  });

  it('tag gives another name (by name or digest prefix); bad names are refused', async () => {
    await run(['tag', 'alpha:1', 'alpha:stable']);
    await run(['tag', b.slice(7, 19), 'beta-copy']);
    const idx = storeIndex(root);
    assert.equal(idx.get('alpha:stable'), a);
    assert.equal(idx.get('beta-copy:latest'), b);
    const bad = await run(['tag', 'alpha:1', 'Alpha:UP'], 2);
    assert.match(bad.stderr, /^virtus: .*not a valid repository name/);
    const missing = await run(['tag', 'nope', 'x'], 1);
    assert.match(missing.stderr, /^virtus: no image 'nope' in the store/);
  });

  it('rm untags; blobs go when no name reaches them; a digest with two names needs -f', async () => {
    const before = blobs();
    const r = await run(['rm', 'alpha:stable']);
    assert.equal(r.stdout, 'untagged: alpha:stable\n');
    assert.equal(blobs(), before, 'alpha:1 still needs every blob');
    const twice = await run(['rm', b.slice(0, 19)], 1);
    assert.match(twice.stderr, /has 2 names .*remove them one by one, or all with -f/);
    const gone = await run(['rm', 'alpha:1']);
    assert.match(gone.stdout, /untagged: alpha:1\ndeleted: 3 blob\(s\)/, 'manifest, config and initrd (the kernel is shared with beta)');
    assert.equal(blobs(), before - 3);
    await run(['rm', '-f', b.slice(0, 19)]);
    assert.equal(storeIndex(root).size, 0);
    assert.equal(blobs(), 0);
  });

  it('an image in use by a running virtus is not removed, and with -f its blobs stay until it stops', async () => {
    const store = ImageStore.open(root);
    const p = await packMachine(store, { kernel: s.path('kernel') }, silentProgress);
    await store.tag(parseLocalRef('busy:1'), p.digest);
    p.hold.release();
    const hold = store.hold('virtus run');
    hold.add([p.digest]);
    try {
      const refused = await run(['rm', 'busy:1'], 1);
      assert.match(refused.stderr, new RegExp(`busy:1 is in use by virtus run \\(pid ${process.pid}\\); stop it first, or use -f`));
      await run(['rm', '-f', 'busy:1']);
      assert.ok(existsSync(store.blobPath(p.digest)), 'held blobs stay');
    } finally {
      hold.release();
    }
    await store.collect();
    assert.ok(!existsSync(store.blobPath(p.digest)));
  });

  it('concurrent virtus processes updating one index lose nothing', async () => {
    const store = ImageStore.open(root);
    const p = await packMachine(store, { kernel: s.path('kernel') }, silentProgress);
    await store.tag(parseLocalRef('base:1'), p.digest);
    p.hold.release();
    const names = Array.from({ length: 8 }, (_, i) => `many:${i}`);
    const results = await Promise.all(names.map((n) => virtus(['image', 'tag', 'base:1', n], env)));
    for (const r of results) assert.equal(r.status, 0, r.stderr);
    const idx = storeIndex(root);
    for (const n of names) assert.equal(idx.get(n), p.digest, n);
  });
});
