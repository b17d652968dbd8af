/**
 * The image repository's parts on their own: references, WWW-Authenticate, Docker config
 * credentials, manifest and config validation (one mutated field at a time is refused),
 * blob writes checked against their digest, and the plain-HTTP rule.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { checkMachineManifest, jsonBytes, parseMachineConfig, parseManifest, type MachineConfig, type Manifest } from '../../src/repo/artifact.ts';
import { dockerCredentials, parseChallenges } from '../../src/repo/auth.ts';
import { BlobWriter } from '../../src/repo/blob-writer.ts';
import { digestOf } from '../../src/repo/digest.ts';
import { isLoopback, send } from '../../src/repo/http.ts';
import { parseLocalRef, parseRemoteRef } from '../../src/repo/reference.ts';
import { ImageStore } from '../../src/repo/store.ts';
import { isVirtusError } from '../../src/util/errors.ts';
import { scratch } from './support.ts';

const D1 = digestOf('one');
const D2 = digestOf('two');
const refused = (fn: () => unknown, re: RegExp) => assert.throws(fn, (e) => isVirtusError(e) && re.test(e.message));

describe('repo: references', () => {
  it('remote references need a registry and follow the distribution-spec grammar', () => {
    assert.deepEqual(parseRemoteRef('127.0.0.1:5000/a/b'), { registry: '127.0.0.1:5000', repository: 'a/b', tag: 'latest' });
    assert.deepEqual(parseRemoteRef('localhost/x.y_z--w:v1.2-rc_3'), { registry: 'localhost', repository: 'x.y_z--w', tag: 'v1.2-rc_3' });
    assert.deepEqual(parseRemoteRef(`[::1]:5000/m@${D1}`), { registry: '[::1]:5000', repository: 'm', digest: D1 });
    assert.deepEqual(parseRemoteRef(`127.0.0.1:5000/m:t@${D1}`), { registry: '127.0.0.1:5000', repository: 'm', tag: 't', digest: D1 });
    refused(() => parseRemoteRef('machines/debian:1'), /names no registry/);
    refused(() => parseRemoteRef('debian'), /names no registry/);
    refused(() => parseRemoteRef('127.0.0.1:5000/Debian'), /not a valid repository name/);
    refused(() => parseRemoteRef('127.0.0.1:5000/a//b'), /not a valid repository name/);
    refused(() => parseRemoteRef('127.0.0.1:5000/a:.x'), /not a valid tag/);
    refused(() => parseRemoteRef(`127.0.0.1:5000/a:${'t'.repeat(129)}`), /not a valid tag/);
    refused(() => parseRemoteRef('127.0.0.1:5000/a@sha512:00'), /'sha512' is not supported/);
    refused(() => parseRemoteRef('bad_host.x:5000/a'), /not a valid registry/);
  });

  it('local references: names with or without a registry, tags, digests and prefixes', () => {
    assert.deepEqual(parseLocalRef('debian'), { name: 'debian', tag: 'latest' });
    assert.deepEqual(parseLocalRef('127.0.0.1:5000/a/b:2'), { name: '127.0.0.1:5000/a/b', tag: '2' });
    assert.deepEqual(parseLocalRef(`debian@${D1}`), { name: 'debian', digest: D1 });
    assert.deepEqual(parseLocalRef(D1), { name: '', digest: D1 });
    assert.deepEqual(parseLocalRef('sha256:abcd12'), { name: '', digest: 'abcd12' });
    refused(() => parseLocalRef('De Bian'), /not a valid repository name/);
  });
});

describe('repo: authentication parts', () => {
  const s = scratch();
  after(() => s.cleanup());

  it('WWW-Authenticate challenges (RFC 9110 11.6.1)', () => {
    assert.deepEqual(parseChallenges('Bearer realm="http://127.0.0.1:1/token",service="reg",scope="repository:a/b:pull,push"'), [
      { scheme: 'bearer', params: { realm: 'http://127.0.0.1:1/token', service: 'reg', scope: 'repository:a/b:pull,push' } },
    ]);
    assert.deepEqual(parseChallenges('Basic realm="a \\"b\\"", Bearer realm=x, error=invalid_token'), [
      { scheme: 'basic', params: { realm: 'a "b"' } },
      { scheme: 'bearer', params: { realm: 'x', error: 'invalid_token' } },
    ]);
  });

  it('Docker config credentials: auth, username/password, URL keys, helpers, none', () => {
    const dir = s.path('docker');
    mkdirSync(dir);
    const env = { DOCKER_CONFIG: dir, PATH: `${dir}:${process.env.PATH}` };
    assert.equal(dockerCredentials('127.0.0.1:5000', env), null, 'no config file');
    writeFileSync(join(dir, 'config.json'), JSON.stringify({
      auths: {
        '127.0.0.1:5000': { auth: Buffer.from('u:p:with:colons').toString('base64') },
        'https://localhost:6000/v1/': { username: 'v', password: 'q' },
      },
      credHelpers: { '127.0.0.2:7000': 'fake' },
    }));
    assert.deepEqual(dockerCredentials('127.0.0.1:5000', env), { username: 'u', password: 'p:with:colons' });
    assert.deepEqual(dockerCredentials('localhost:6000', env), { username: 'v', password: 'q' });
    assert.equal(dockerCredentials('127.0.0.1:5001', env), null);
    writeFileSync(join(dir, 'docker-credential-fake'), '#!/bin/sh\nread host\necho "{\\"ServerURL\\":\\"$host\\",\\"Username\\":\\"h\\",\\"Secret\\":\\"s-$host\\"}"\n');
    chmodSync(join(dir, 'docker-credential-fake'), 0o755);
    assert.deepEqual(dockerCredentials('127.0.0.2:7000', env), { username: 'h', password: 's-127.0.0.2:7000' });
    writeFileSync(join(dir, 'config.json'), '{not json');
    refused(() => dockerCredentials('127.0.0.1:5000', env), /is not valid JSON/);
  });

  it('plain HTTP only to loopback (or with --insecure): refused before connecting', async () => {
    assert.ok(isLoopback('127.0.0.1') && isLoopback('127.9.8.7') && isLoopback('localhost') && isLoopback('[::1]'));
    assert.ok(!isLoopback('10.0.0.1') && !isLoopback('128.0.0.1') && !isLoopback('localhost.example'));
    await assert.rejects(send({ method: 'GET', url: new URL('http://10.255.255.1:5000/v2/') }, { allowPlain: () => false, skipVerify: false }), /refusing plain HTTP to 10\.255\.255\.1:5000/);
  });
});

describe('repo: machine manifests and configs are validated as untrusted input', () => {
  const manifest = (): Manifest => ({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    artifactType: 'application/vnd.virtus.machine.v1',
    config: { mediaType: 'application/vnd.virtus.machine.config.v1+json', digest: D1, size: 100 },
    layers: [
      { mediaType: 'application/vnd.virtus.machine.kernel.v1+gzip', digest: D2, size: 10 },
      { mediaType: 'application/vnd.virtus.machine.disk.qcow2.v1', digest: D1, size: 20 },
    ],
  });
  const config = (): MachineConfig => ({
    schemaVersion: 1, architecture: 'riscv64', board: 'virt', memory: 1 << 28, cmdline: 'console=ttyS0',
    layers: [
      { role: 'kernel', uncompressedDigest: D1, uncompressedSize: 30 },
      { role: 'disk', uncompressedDigest: D1, uncompressedSize: 20, format: 'qcow2', virtualSize: 1 << 30 },
    ],
  });

  it('a good manifest and config parse', () => {
    const m = parseManifest(jsonBytes(manifest()), 'm');
    checkMachineManifest(m, 'm');
    assert.deepEqual(parseMachineConfig(jsonBytes(config()), m, 'c'), config());
  });

  it('one bad field at a time is refused, by name', () => {
    const mcases: [(m: Record<string, any>) => void, RegExp][] = [
      [(m) => (m.schemaVersion = 1), /schemaVersion must be 2/],
      [(m) => (m.mediaType = 'application/vnd.oci.image.index.v1+json'), /image index/],
      [(m) => (m.config.digest = 'sha256:xyz'), /not a sha256 digest/],
      [(m) => (m.layers[0].size = -1), /not a byte count/],
      [(m) => (m.layers[0].size = 1.5), /not a byte count/],
      [(m) => delete m.layers[1].mediaType, /without a mediaType/],
      [(m) => (m.layers = {}), /without a layers array/],
      [(m) => (m.annotations = { a: 1 }), /annotations must map strings/],
    ];
    for (const [mutate, re] of mcases) {
      const m = manifest() as unknown as Record<string, any>;
      mutate(m);
      refused(() => parseManifest(jsonBytes(m), 'm'), re);
    }
    const other = manifest();
    other.artifactType = 'application/vnd.example+type';
    other.config.mediaType = 'application/vnd.oci.empty.v1+json';
    refused(() => checkMachineManifest(other, 'x'), /not a virtus machine image/);
    const unknownLayer = manifest();
    unknownLayer.layers[0]!.mediaType = 'application/vnd.oci.image.layer.v1.tar+gzip';
    refused(() => checkMachineManifest(unknownLayer, 'x'), /which virtus does not know/);

    const m = manifest();
    const ccases: [(c: Record<string, any>) => void, RegExp][] = [
      [(c) => (c.schemaVersion = 2), /schemaVersion 2 is not 1/],
      [(c) => (c.architecture = 'x86_64'), /not riscv64/],
      [(c) => (c.memory = 0), /memory must be a positive/],
      [(c) => (c.cmdline = 5), /cmdline must be a string/],
      [(c) => c.layers.pop(), /describe each manifest layer/],
      [(c) => (c.layers[0].role = 'initrd'), /does not match media type/],
      [(c) => (c.layers[1].format = 'raw'), /does not match media type/],
      [(c) => delete c.layers[1].virtualSize, /needs its virtualSize/],
      [(c) => (c.layers[1].uncompressedDigest = D2), /must have the digest and size of its blob/],
    ];
    for (const [mutate, re] of ccases) {
      const c = config() as unknown as Record<string, any>;
      mutate(c);
      refused(() => parseMachineConfig(jsonBytes(c), m, 'c'), re);
    }
  });
});

describe('repo: blob writes', () => {
  const s = scratch();
  after(() => s.cleanup());

  it('content enters the store only with the digest it was asked for', async () => {
    const store = ImageStore.open(s.path('store'));
    const good = Buffer.from('the content');
    const w = (await BlobWriter.resumable(store, { digest: digestOf(good), size: good.length }))!;
    w.write(good.subarray(0, 4));
    w.abort(); // interrupted: the partial file stays
    const again = (await BlobWriter.resumable(store, { digest: digestOf(good), size: good.length }))!;
    assert.equal(again.offset, 4);
    again.write(good.subarray(4));
    again.commit('blob');
    assert.ok(store.hasBlob(digestOf(good), good.length));

    const want = digestOf('something else');
    const bad = (await BlobWriter.resumable(store, { digest: want, size: good.length }))!;
    bad.write(good);
    refused(() => bad.commit('blob X'), /blob X: digest mismatch: expected sha256:[a-f0-9]{64}, got/);
    assert.ok(!store.hasBlob(want));
    assert.deepEqual(readdirSync(store.tmpDir), []);
    const tooMuch = (await BlobWriter.resumable(store, { digest: want, size: 3 }))!;
    refused(() => tooMuch.write(good), /more than the 3 bytes/);
    tooMuch.abort(true);
  });

  it('collection removes what dead writers left in tmp, keeps recent partial downloads', async () => {
    const store = ImageStore.open(s.path('store2'));
    const dead = spawnSync('true').pid!;
    writeFileSync(join(store.tmpDir, `new-${dead}-abc`), 'left by a crash');
    writeFileSync(join(store.tmpDir, `new-${process.pid}-def`), 'being written');
    writeFileSync(join(store.tmpDir, `${'a'.repeat(64)}.partial`), 'to resume');
    await store.collect();
    assert.deepEqual(readdirSync(store.tmpDir).sort(), [`${'a'.repeat(64)}.partial`, `new-${process.pid}-def`]);
  });
});
