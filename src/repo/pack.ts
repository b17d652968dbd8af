/**
 * Making a machine image from files: a kernel, an initramfs and a disk (raw or qcow2)
 * become layers in the store, described by a machine config and an image manifest
 * (artifact.ts). Layers are compressed with gzip by default: disk images are mostly
 * zeros and free space and shrink many times, kernels and initramfs compress well too,
 * and gzip is what every OCI tool and Node's own zlib (on every Node version virtus
 * supports) read and write; zstd would be faster to decompress, but Node 20 cannot
 * compress it, so virtus reads `+zstd` layers and writes `+gzip` ones.
 */
import { closeSync, createReadStream, openSync, readSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { PROBE_BYTES, probeBytes } from '../storage/probe.ts';
import { fileReferences } from '../storage/qcow2/header.ts';
import { VirtusError } from '../util/errors.ts';
import { ANNOTATION, jsonBytes, layerMediaType, MACHINE_ARTIFACT, MACHINE_CONFIG, OCI_MANIFEST, type Descriptor, type DiskFormat, type LayerInfo, type MachineConfig, type Manifest, type Role } from './artifact.ts';
import { BlobWriter } from './blob-writer.ts';
import { digestOf, Hasher } from './digest.ts';
import type { Progress } from './progress.ts';
import type { Hold, ImageStore } from './store.ts';

/** What a machine image is made of. At least one file. */
export interface MachineFiles {
  kernel?: string;
  initrd?: string;
  disk?: string;
  /** The kernel command line. */
  cmdline?: string;
  /** Guest RAM in bytes. */
  memory?: number;
  /** The disk holds the root file system (machines get root=/dev/vda). */
  rootDisk?: boolean;
  /** Layer compression (default gzip). */
  compression?: 'gzip' | 'none';
  /** More manifest annotations. */
  annotations?: Record<string, string>;
}

/** A disk file's format and guest-visible size: qcow2 by its magic (QFI\xfb), else raw; other formats with a magic are refused. */
export function probeDisk(path: string): { format: DiskFormat; virtualSize: number } {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new VirtusError('NO_FILE', `cannot read ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  try {
    const head = Buffer.alloc(PROBE_BYTES);
    const n = readSync(fd, head, 0, PROBE_BYTES, 0);
    const probed = probeBytes(head.subarray(0, n));
    if ('foreign' in probed) {
      throw new VirtusError('FOREIGN_FORMAT', `${path} is a ${probed.foreign} image; a machine image's disk is raw or qcow2 (convert it: qemu-img convert -O qcow2 ${path} OUT.qcow2)`);
    }
    if (n >= 32 && probed.format === 'qcow2') {
      // qcow2 header: backing_file_offset at 8, size at 24 (QEMU's qcow2 spec).
      const ref = fileReferences(head.subarray(0, n));
      if (ref !== null) {
        throw new VirtusError('DISK_HAS_BACKING', `${path} is a qcow2 image that names ${ref}; make it self-contained first (virtus image convert ${path} FLAT.qcow2)`);
      }
      return { format: 'qcow2', virtualSize: Number(head.readBigUInt64BE(24)) };
    }
    return { format: 'raw', virtualSize: statSync(path).size };
  } finally {
    closeSync(fd);
  }
}

/** Streams one file into the store as a layer blob, compressed or not. */
async function packLayer(store: ImageStore, hold: Hold, path: string, role: Role, o: MachineFiles, progress: Progress): Promise<{ desc: Descriptor; info: LayerInfo }> {
  const disk = role === 'disk' ? probeDisk(path) : null;
  const gzip = (o.compression ?? 'gzip') === 'gzip';
  let total: number;
  try {
    total = statSync(path).size;
  } catch {
    throw new VirtusError('NO_FILE', `cannot read ${path}: no such file`);
  }
  const title = `${role === 'disk' ? `disk.${disk!.format}` : role === 'initrd' ? 'initrd' : 'kernel'}${gzip ? '.gz' : ''}`;
  const raw = new Hasher();
  const w = BlobWriter.fresh(store);
  progress.begin(`${gzip ? 'compressing' : 'reading'} ${basename(path)}`, total);
  try {
    const source = async function* (src: AsyncIterable<Buffer>) {
      for await (const c of src) {
        raw.update(c);
        progress.update(raw.size);
        yield c;
      }
    };
    const sink = async (src: AsyncIterable<Buffer>) => {
      for await (const c of src) w.write(c);
    };
    if (gzip) await pipeline(createReadStream(path), source, createGzip({ level: 6 }), sink);
    else await pipeline(createReadStream(path), source, sink);
  } catch (e) {
    w.abort(true);
    if (e instanceof VirtusError) throw e;
    throw new VirtusError('PACK', `cannot read ${path}: ${(e as Error).message}`);
  }
  const { digest, size } = w.commit(`${role} layer`, (d) => hold.add([d]));
  progress.end();
  const info: LayerInfo = { role, uncompressedDigest: raw.digest(), uncompressedSize: raw.size };
  if (disk) Object.assign(info, disk);
  return {
    desc: { mediaType: layerMediaType(role, gzip ? 'gzip' : 'none', disk?.format), digest, size, annotations: { [ANNOTATION.title]: title } },
    info,
  };
}

/**
 * Packs `files` into the store as a machine image (not tagged: the caller tags or pushes
 * it); returns the manifest's digest and a hold that keeps its blobs from collection
 * until released.
 */
export async function packMachine(store: ImageStore, files: MachineFiles, progress: Progress): Promise<{ digest: string; manifest: Manifest; hold: Hold }> {
  const roles: [Role, string | undefined][] = [['kernel', files.kernel], ['initrd', files.initrd], ['disk', files.disk]];
  if (!roles.some(([, p]) => p)) throw new VirtusError('BAD_FLAG', 'a machine image needs a kernel, an initrd or a disk', { exitCode: 2 });
  const hold = store.hold('packing an image');
  try {
    const layers: Descriptor[] = [];
    const infos: LayerInfo[] = [];
    for (const [role, path] of roles) {
      if (!path) continue;
      const { desc, info } = await packLayer(store, hold, path, role, files, progress);
      layers.push(desc);
      infos.push(info);
    }
    const config: MachineConfig = {
      schemaVersion: 1,
      architecture: 'riscv64',
      board: 'virt',
      ...(files.memory !== undefined ? { memory: files.memory } : {}),
      ...(files.cmdline !== undefined ? { cmdline: files.cmdline } : {}),
      ...(files.rootDisk && files.disk ? { rootDisk: 0 } : {}),
      layers: infos,
    };
    const configBytes = jsonBytes(config);
    const configDigest = digestOf(configBytes);
    hold.add([configDigest]); // before the blob exists, so no collection can miss it
    store.putBlob(configBytes);
    const manifest: Manifest = {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: MACHINE_ARTIFACT,
      config: { mediaType: MACHINE_CONFIG, digest: configDigest, size: configBytes.length },
      layers,
      annotations: { [ANNOTATION.created]: new Date().toISOString(), ...files.annotations },
    };
    const bytes = jsonBytes(manifest);
    const digest = digestOf(bytes);
    hold.add([digest]);
    store.putBlob(bytes);
    return { digest, manifest, hold };
  } catch (e) {
    hold.release();
    throw e;
  }
}
