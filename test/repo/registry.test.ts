/**
 * push and pull through a real OCI registry (Debian's docker-registry on loopback):
 * round trips compared byte for byte, deduplication both ways, chunked uploads, resumed
 * downloads, a tampered blob refused, and the errors a user can cause.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { openImage, createImage } from '../../src/storage/open.ts';
import { nodeFileSystem } from '../../src/host/node/host-file.ts';
import { scratch, startProxy, startRegistry, storeIndex, virtus, type Registry } from './support.ts';

const sha = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Deterministic pseudo-random bytes (xorshift), incompressible like real binaries. */
function noise(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed | 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

interface StoredManifest {
  config: { digest: string };
  layers: { mediaType: string; digest: string; size: number; annotations?: Record<string, string> }[];
}

describe('repo: push and pull through docker-registry', () => {
  const s = scratch();
  let reg: Registry;
  let n = 0;
  /** A fresh, empty store. */
  const newStore = () => s.path(`store${n++}`);
  const env = (store: string, extra: Record<string, string> = {}) => ({ VIRTUS_IMAGE_STORE: store, DOCKER_CONFIG: s.path('no-docker-config'), ...extra });
  const ok = async (args: string[], e: Record<string, string>) => {
    const r = await virtus(args, e);
    assert.equal(r.status, 0, `virtus ${args.join(' ')}:\n${r.stderr}`);
    return r;
  };
  const manifestIn = (store: string, key: string): StoredManifest => {
    const digest = storeIndex(store).get(key);
    assert.ok(digest, `${key} is in the store`);
    return JSON.parse(readFileSync(join(store, 'blobs/sha256', digest.slice(7)), 'utf8')) as StoredManifest;
  };
  const blobIn = (store: string, digest: string) => readFileSync(join(store, 'blobs/sha256', digest.slice(7)));
  /** Requests that open an upload session or send blob data (a cross-repository mount sends none). */
  const uploads = () => reg.requests().filter((l) => l.path.includes('/blobs/uploads/') && !l.path.includes('mount='));

  const kernel = noise(300_000, 1);
  const initrd = noise(120_000, 2);
  const disk = Buffer.alloc(4 << 20);
  noise(64 << 10, 3).copy(disk, 1 << 20);
  const remote = (repo: string) => `${reg.host}/${repo}`;

  before(async () => {
    reg = await startRegistry(s.path('registry'));
    writeFileSync(s.path('kernel'), kernel);
    writeFileSync(s.path('initrd'), initrd);
    writeFileSync(s.path('disk.img'), disk);
  });
  after(async () => {
    await reg?.stop();
    s.cleanup();
  });

  const pushFiles = (repo: string, store: string, diskFile = s.path('disk.img'), more: string[] = []) =>
    ok(['image', 'push', '--kernel', s.path('kernel'), '--initrd', s.path('initrd'), '--append', 'console=ttyS0 quiet', '-m', '256M', ...more, diskFile, remote(repo)], env(store));

  it('round trip: every layer comes back byte for byte, with its config', async () => {
    const r = await pushFiles('test/machine:1', newStore());
    assert.match(r.stdout, /^pushed 127\.0\.0\.1:\d+\/test\/machine:1 sha256:[a-f0-9]{64}: 4 blob\(s\) uploaded .*0 already there\n$/);
    const store = newStore();
    const p = await ok(['image', 'pull', remote('test/machine:1')], env(store));
    assert.match(p.stdout, /4 blob\(s\) fetched/);
    const m = manifestIn(store, `${remote('test/machine')}:1`);
    assert.deepEqual(m.layers.map((l) => l.mediaType), [
      'application/vnd.virtus.machine.kernel.v1+gzip',
      'application/vnd.virtus.machine.initrd.v1+gzip',
      'application/vnd.virtus.machine.disk.raw.v1+gzip',
    ]);
    const want = [kernel, initrd, disk];
    m.layers.forEach((l, i) => {
      const blob = blobIn(store, l.digest);
      assert.equal(sha(blob), l.digest);
      assert.ok(gunzipSync(blob).equals(want[i]!), `layer ${i} decompresses to the file pushed`);
    });
    const config = JSON.parse(blobIn(store, m.config.digest).toString()) as Record<string, unknown>;
    assert.equal(config.memory, 256 << 20);
    assert.equal(config.cmdline, 'console=ttyS0 quiet');
    assert.deepEqual((config.layers as { role: string }[]).map((l) => l.role), ['kernel', 'initrd', 'disk']);
    assert.equal((config.layers as { uncompressedDigest: string }[])[2]!.uncompressedDigest, sha(disk));
    // Nothing but the store's own files, and no partial download left behind.
    assert.deepEqual(readdirSync(join(store, 'tmp')), []);
  });

  it('a second push uploads nothing (HEAD finds every blob; other repositories mount them)', async () => {
    const before = uploads().length;
    const r = await pushFiles('test/machine:1', newStore());
    assert.match(r.stdout, /0 blob\(s\) uploaded .*4 already there/);
    const store = newStore();
    await ok(['image', 'pull', '-q', remote('test/machine:1')], env(store));
    // To another repository: the blobs are mounted from the one the image was pulled from.
    const again = await ok(['image', 'push', `${remote('test/machine')}:1`, remote('test/other:2')], env(store));
    assert.match(again.stdout, /0 blob\(s\) uploaded .*4 already there/);
    assert.match(again.stderr, /mounted from test\/machine/);
    assert.equal(uploads().length, before, 'no upload session was opened');
  });

  it('a qcow2 disk made by the storage layer round-trips uncompressed, and opens', async () => {
    const path = s.path('disk.qcow2');
    createImage(nodeFileSystem, path, { format: 'qcow2', size: 16 << 20 });
    const img = openImage(nodeFileSystem, path, { format: 'qcow2' });
    const data = noise(200_000, 4);
    img.write(5 << 20, data);
    img.close();
    await ok(['image', 'push', '--compress', 'none', path, remote('test/qcow:1')], env(newStore()));
    const store = newStore();
    await ok(['image', 'pull', remote('test/qcow:1')], env(store));
    const m = manifestIn(store, `${remote('test/qcow')}:1`);
    assert.equal(m.layers.length, 1);
    assert.equal(m.layers[0]!.mediaType, 'application/vnd.virtus.machine.disk.qcow2.v1');
    const blobPath = join(store, 'blobs/sha256', m.layers[0]!.digest.slice(7));
    assert.ok(readFileSync(blobPath).equals(readFileSync(path)));
    const back = openImage(nodeFileSystem, blobPath, { format: 'qcow2', readOnly: true });
    const got = new Uint8Array(data.length);
    back.read(5 << 20, got);
    back.close();
    assert.ok(Buffer.from(got).equals(data));
    const config = JSON.parse(blobIn(store, manifestIn(store, `${remote('test/qcow')}:1`).config.digest).toString()) as { layers: Record<string, unknown>[] };
    assert.equal(config.layers[0]!.format, 'qcow2');
    assert.equal(config.layers[0]!.virtualSize, 16 << 20);
  });

  it('large blobs go up in chunks (PATCH) and come back intact', async () => {
    const big = noise(1 << 20, 5);
    writeFileSync(s.path('big.img'), big);
    await ok(['image', 'push', '--compress', 'none', '--chunk-size', '200K', s.path('big.img'), remote('test/chunked:1')], env(newStore()));
    const patches = reg.requests().filter((l) => l.method === 'PATCH' && l.path.includes('/test/chunked/'));
    assert.equal(patches.length, Math.ceil((1 << 20) / (200 << 10)));
    const store = newStore();
    await ok(['image', 'pull', remote('test/chunked:1')], env(store));
    const m = manifestIn(store, `${remote('test/chunked')}:1`);
    assert.ok(blobIn(store, m.layers[0]!.digest).equals(big));
  });

  it('a pull of an image sharing layers does not fetch them again', async () => {
    const other = Buffer.from(disk);
    noise(1000, 6).copy(other, 0);
    writeFileSync(s.path('disk2.img'), other);
    await pushFiles('test/machine2:1', newStore(), s.path('disk2.img'));
    const store = newStore();
    await ok(['image', 'pull', remote('test/machine:1')], env(store));
    const first = manifestIn(store, `${remote('test/machine')}:1`);
    const mark = reg.requests().length;
    const r = await ok(['image', 'pull', remote('test/machine2:1')], env(store));
    assert.match(r.stdout, /2 blob\(s\) fetched .*2 already in the store/);
    const gets = reg.requests().slice(mark).filter((l) => l.method === 'GET' && l.path.includes('/blobs/'));
    assert.equal(gets.length, 2, 'only the new config and disk are fetched');
    for (const l of first.layers.slice(0, 2)) assert.ok(!gets.some((g) => g.path.endsWith(l.digest)), 'shared kernel/initrd not fetched');
  });

  it('a download cut mid-blob resumes with a Range request', async () => {
    const big = noise(2 << 20, 7);
    writeFileSync(s.path('resume.img'), big);
    await ok(['image', 'push', '--compress', 'none', s.path('resume.img'), remote('test/resume:1')], env(newStore()));
    const proxy = await startProxy(reg.host, { cutBlob: sha(big) });
    try {
      const store = newStore();
      const r = await ok(['image', 'pull', `${proxy.host}/test/resume:1`], env(store));
      assert.match(r.stderr, /connection lost; resuming/);
      const gets = proxy.log.filter((l) => l.url.endsWith(`/blobs/${sha(big)}`));
      assert.equal(gets.length, 2);
      assert.equal(gets[0]!.range, undefined);
      assert.match(gets[1]!.range ?? '', /^bytes=[1-9]\d*-$/, 'the second request asks for the rest only');
      const m = manifestIn(store, `${proxy.host}/test/resume:1`);
      assert.ok(blobIn(store, m.layers[0]!.digest).equals(big));
    } finally {
      await proxy.close();
    }
  });

  it('a partial download left by an earlier pull is resumed, not fetched again', async () => {
    const big = readFileSync(s.path('resume.img'));
    const store = newStore();
    // An earlier pull that stopped after the manifest and 1 MiB of the disk.
    await virtus(['image', 'ls'], env(store)); // creates the store
    writeFileSync(join(store, 'tmp', `${sha(big).slice(7)}.partial`), big.subarray(0, 1 << 20));
    const proxy = await startProxy(reg.host);
    try {
      await ok(['image', 'pull', `${proxy.host}/test/resume:1`], env(store));
      const get = proxy.log.find((l) => l.url.endsWith(`/blobs/${sha(big)}`));
      assert.equal(get?.range, `bytes=${1 << 20}-`);
      const m = manifestIn(store, `${proxy.host}/test/resume:1`);
      assert.ok(blobIn(store, m.layers[0]!.digest).equals(big));
      assert.deepEqual(readdirSync(join(store, 'tmp')), []);
    } finally {
      await proxy.close();
    }
  });

  it('two pulls of one image into one store at once both succeed, each blob fetched once', async () => {
    const store = newStore();
    const mark = reg.requests().length;
    const [a, b] = await Promise.all([virtus(['image', 'pull', remote('test/machine:1')], env(store)), virtus(['image', 'pull', remote('test/machine:1')], env(store))]);
    assert.equal(a.status, 0, a.stderr);
    assert.equal(b.status, 0, b.stderr);
    const gets = reg.requests().slice(mark).filter((l) => l.method === 'GET' && l.path.includes('/blobs/'));
    assert.equal(gets.length, 4, 'config, kernel, initrd and disk, once each');
    const m = manifestIn(store, `${remote('test/machine')}:1`);
    for (const l of m.layers) assert.equal(sha(blobIn(store, l.digest)), l.digest);
    assert.deepEqual(readdirSync(join(store, 'tmp')).filter((f) => f !== 'lock'), []);
  });

  it('a tampered blob in the registry is refused: digest mismatch, nothing enters the store', async () => {
    const victim = noise(100_000, 8);
    writeFileSync(s.path('victim.img'), victim);
    await ok(['image', 'push', '--compress', 'none', s.path('victim.img'), remote('test/tampered:1')], env(newStore()));
    const file = reg.blobFile(sha(victim));
    const bytes = readFileSync(file);
    bytes[50_000] ^= 0xff;
    writeFileSync(file, bytes);
    const store = newStore();
    const r = await virtus(['image', 'pull', '-q', remote('test/tampered:1')], env(store));
    assert.equal(r.status, 1);
    assert.match(r.stderr, new RegExp(`^virtus: .*blob ${sha(victim)}.*digest mismatch: expected ${sha(victim)}, got sha256:[a-f0-9]{64}; refused`));
    assert.equal(r.stderr.trim().split('\n').length, 1, 'one line, no stack trace');
    assert.equal(storeIndex(store).size, 0);
    assert.ok(!readdirSync(join(store, 'blobs/sha256')).includes(sha(victim).slice(7)));
    assert.deepEqual(readdirSync(join(store, 'tmp')), [], 'the bad download is not kept');
  });

  it('errors are one line and a non-zero exit', async () => {
    const store = newStore();
    const cases: [string[], number, RegExp][] = [
      [['image', 'pull', remote('test/nothing-here:1')], 1, /not found in 127\.0\.0\.1:\d+ \((MANIFEST_UNKNOWN|NAME_UNKNOWN)/],
      [['image', 'pull', remote('test/machine:no-such-tag')], 1, /not found/],
      [['image', 'pull', '127.0.0.1:1/test/machine:1'], 1, /cannot reach registry 127\.0\.0\.1:1: connection refused/],
      [['image', 'pull', 'test/machine:1'], 2, /names no registry; write REGISTRY\/REPO\[:TAG\]/],
      [['image', 'pull', `${reg.host}/Test/Machine:1`], 2, /not a valid repository name/],
      [['image', 'pull', `${reg.host}/test/machine:-bad`], 2, /not a valid tag/],
      [['image', 'pull', `${reg.host}/test/machine@sha256:abc`], 1, /not a sha256 digest/],
      [['image', 'push', 'no-such-image:1', remote('test/x:1')], 1, /no image 'no-such-image:1' in the store/],
      [['image', 'push', '--kernel', s.path('missing'), remote('test/x:1')], 1, /cannot read .*missing: no such file/],
      [['image', 'pull'], 2, /expected REGISTRY\/REPO/],
    ];
    for (const [args, status, re] of cases) {
      const r = await virtus(args, env(store));
      assert.equal(r.status, status, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re, args.join(' '));
      assert.equal(r.stderr.trim().split('\n').length, 1, `${args.join(' ')}: one line:\n${r.stderr}`);
      assert.doesNotMatch(r.stderr, /internal error|\n\s+at /);
    }
  });
});
