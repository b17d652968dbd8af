/**
 * A machine image whose qcow2 disk layer names a backing file on the host (an absolute path,
 * or one that leaves the store) must never make virtus open that file: such an image is
 * refused when it is pulled from a registry (Debian's docker-registry on loopback), and
 * again when it boots from a store that holds it anyway (a store written by an older virtus,
 * or edited). The guest is the bare-metal virtio-blk driver, which reads sector 0: before
 * the fix it booted and read the host file as its disk.
 */
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { jsonBytes, layerMediaType, MACHINE_ARTIFACT, MACHINE_CONFIG, OCI_MANIFEST, type Manifest, type MachineConfig } from '../../src/repo/artifact.ts';
import { digestOf } from '../../src/repo/digest.ts';
import { parseLocalRef } from '../../src/repo/reference.ts';
import { ImageStore } from '../../src/repo/store.ts';
import { qemu } from '../storage/support.ts';
import { buildGuest } from '../support/toolchain.ts';
import { scratch, startRegistry, storeIndex, virtus, type Registry } from './support.ts';

/** Puts a machine image of `kernel` and the qcow2 `disk` (uncompressed layers) into `store`, tagged `name`. */
async function craftImage(store: ImageStore, name: string, kernel: Uint8Array, disk: Uint8Array, virtualSize: number, gzip = false): Promise<string> {
  const k = store.putBlob(kernel);
  const blob = gzip ? gzipSync(disk) : disk;
  const d = store.putBlob(blob);
  const config: MachineConfig = {
    schemaVersion: 1,
    architecture: 'riscv64',
    board: 'virt',
    layers: [
      { role: 'kernel', uncompressedDigest: k, uncompressedSize: kernel.length },
      { role: 'disk', uncompressedDigest: digestOf(disk), uncompressedSize: disk.length, format: 'qcow2', virtualSize },
    ],
  };
  const configBytes = jsonBytes(config);
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: MACHINE_ARTIFACT,
    config: { mediaType: MACHINE_CONFIG, digest: store.putBlob(configBytes), size: configBytes.length },
    layers: [
      { mediaType: layerMediaType('kernel', 'none'), digest: k, size: kernel.length },
      { mediaType: layerMediaType('disk', gzip ? 'gzip' : 'none', 'qcow2'), digest: d, size: blob.length },
    ],
  };
  const digest = store.putBlob(jsonBytes(manifest));
  await store.tag(parseLocalRef(name), digest);
  return digest;
}

describe('repo: disk layers that name host files', () => {
  const s = scratch();
  let reg: Registry;
  let kernel = new Uint8Array(0);
  const env = (store: string) => ({ VIRTUS_IMAGE_STORE: store, DOCKER_CONFIG: s.path('none') });
  /** The host file the image tries to reach: it starts with 'V', as the guest's disk check wants. */
  const secret = () => s.path('host-secret.raw');

  before(async () => {
    kernel = readFileSync(buildGuest('virtio-blk', ['common/crt.S', 'virtio/blk.c']));
    reg = await startRegistry(s.path('registry'));
    const bytes = Buffer.alloc(1 << 20);
    bytes.write('VIRTUS-HOST-SECRET');
    writeFileSync(secret(), bytes);
  });
  after(async () => {
    await reg?.stop();
    s.cleanup();
  });

  /** A qcow2 overlay over the host file, by absolute path or by a path that climbs out of the store. */
  const overlay = (name: string, backing: string): Uint8Array => {
    qemu('qemu-img', ['create', '-f', 'qcow2', '-u', '-b', backing, '-F', 'raw', s.path(name), '1M']);
    return readFileSync(s.path(name));
  };

  it('pull refuses an image whose qcow2 disk names an absolute backing file', async () => {
    const a = ImageStore.open(s.path('a'));
    await craftImage(a, 'evil:1', kernel, overlay('abs.qcow2', secret()), 1 << 20);
    const ref = `${reg.host}/evil/abs:1`;
    const push = await virtus(['image', 'push', '-q', 'evil:1', ref], env(a.root));
    assert.equal(push.status, 0, push.stderr);
    const b = s.path('b');
    const pull = await virtus(['image', 'pull', '-q', ref], env(b));
    assert.equal(pull.status, 1, `pull: ${pull.stdout}${pull.stderr}`);
    assert.equal(pull.stderr, `virtus: ${ref}: the disk of layer 1 names a backing file (${JSON.stringify(secret())}); a machine image's disks must be self-contained, and virtus opens no host file an image names\n`);
    assert.ok(![...storeIndex(b).keys()].some((k) => k.includes('evil')), 'the image is not tagged in the store');
    const run = await virtus(['run', '--image', ref, '--bios', 'none'], env(b));
    assert.notEqual(run.status, 0);
    assert.doesNotMatch(run.stdout, /virtio-blk: ok/);
  });

  it('pull refuses a relative backing file that leaves the store, compressed layers too', async () => {
    const a = ImageStore.open(s.path('c'));
    const climb = `../../../../../../../../../../../..${secret()}`;
    // Through `virtus image push FILE`, which refuses such a disk itself, no such image is made:
    overlay('abs2.qcow2', secret());
    const packed = await virtus(['image', 'push', '-q', '--kernel', s.path('abs2.qcow2'), s.path('abs2.qcow2'), `${reg.host}/evil/packed:1`], env(a.root));
    assert.equal(packed.status, 1);
    assert.match(packed.stderr, /names a backing file/);
    await craftImage(a, 'evil:2', kernel, overlay('rel.qcow2', climb), 1 << 20, true);
    const ref = `${reg.host}/evil/rel:1`;
    assert.equal((await virtus(['image', 'push', '-q', 'evil:2', ref], env(a.root))).status, 0);
    const pull = await virtus(['image', 'pull', '-q', ref], env(s.path('d')));
    assert.equal(pull.status, 1);
    assert.match(pull.stderr, /^virtus: .*names a backing file \(".*\/\.\.\/\.\..*"\).*\n$/);
  });

  it('an image already in the store that names a backing file does not boot', async () => {
    const store = ImageStore.open(s.path('e'));
    await craftImage(store, 'evil:3', kernel, overlay('abs3.qcow2', secret()), 1 << 20);
    const before = readFileSync(secret());
    const run = await virtus(['run', '--image', 'evil:3', '--bios', 'none'], env(store.root));
    assert.equal(run.status, 1, `run: ${run.stdout}${run.stderr}`);
    assert.equal(run.stdout, '', 'the machine never started');
    assert.match(run.stderr, /^virtus: evil:3: the disk of layer 1 names a backing file \(".*host-secret.raw"\);.*\n$/);
    assert.ok(readFileSync(secret()).equals(before));
    assert.ok(statSync(secret()).size === 1 << 20);
  });
});
