/**
 * Booting a machine image from the store (`virtus run --image NAME[:TAG]`): the kernel and
 * initrd layers are decompressed into memory, disk layers into files under
 * <store>/unpacked/ (once per content; a base that machines put overlays on, never written),
 * and every layer's content is checked against the uncompressed digest its config records.
 * The image is held while the process runs, so `virtus image rm` refuses it and no
 * garbage collection takes its blobs.
 */
import { closeSync, createReadStream, existsSync, mkdirSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { createGunzip } from 'node:zlib';
import { Decompress } from 'fzstd';
import { VirtusError } from '../util/errors.ts';
import { fileReferences } from '../storage/qcow2/header.ts';
import { checkMachineManifest, parseLayerMediaType, parseMachineConfig, type Compression, type Descriptor, type DiskFormat, type LayerInfo, type MachineConfig, type Manifest } from './artifact.ts';
import { BlobWriter } from './blob-writer.ts';
import { digestMismatch, Hasher, hexOf } from './digest.ts';
import { type Hold, type ImageStore } from './store.ts';

/** A machine image opened for booting. */
export interface StoredMachine {
  /** The manifest's digest. */
  digest: string;
  config: MachineConfig;
  kernel?: Uint8Array;
  initrd?: Uint8Array;
  /** Disks in layer order: read-only base images (put an overlay on them). */
  disks: { path: string; format: DiskFormat; virtualSize: number }[];
  /** Lets the image go (also done at process exit). */
  release(): void;
}

/** The decompressed bytes of a layer blob, as a stream. */
async function* content(path: string, compression: Compression): AsyncGenerator<Uint8Array> {
  const src = createReadStream(path);
  if (compression === 'none') {
    yield* src;
  } else if (compression === 'gzip') {
    const gunzip = createGunzip();
    src.on('error', (e) => gunzip.destroy(e));
    yield* src.pipe(gunzip);
  } else {
    const out: Uint8Array[] = [];
    const z = new Decompress((chunk) => out.push(chunk));
    for await (const c of src) {
      z.push(c as Buffer);
      yield* out.splice(0);
    }
    z.push(new Uint8Array(0), true);
    yield* out.splice(0);
  }
}

/** Reads a layer's content into memory, checked against its uncompressed digest. */
async function readLayer(store: ImageStore, d: Descriptor, info: LayerInfo, what: string): Promise<Uint8Array> {
  const h = new Hasher();
  const parts: Uint8Array[] = [];
  try {
    for await (const c of content(store.blobPath(d.digest), parseLayerMediaType(d.mediaType)!.compression)) {
      h.update(c);
      parts.push(c);
      if (h.size > info.uncompressedSize) break;
    }
  } catch (e) {
    throw new VirtusError('BAD_LAYER', `${what}: cannot decompress the ${info.role} layer: ${(e as Error).message}`);
  }
  if (h.size !== info.uncompressedSize || h.digest() !== info.uncompressedDigest) throw digestMismatch(`${what}: the ${info.role} layer's content`, info.uncompressedDigest, h.digest());
  return Buffer.concat(parts);
}

/** Where a disk's decompressed content is kept: <store>/unpacked/<hex>.<format>. */
export function unpackedPath(store: ImageStore, info: LayerInfo): string {
  return join(store.root, 'unpacked', `${hexOf(info.uncompressedDigest)}.${info.format}`);
}

/** A disk layer as a file: the blob itself when uncompressed, else unpacked once. */
async function diskFile(store: ImageStore, d: Descriptor, info: LayerInfo, what: string): Promise<string> {
  const compression = parseLayerMediaType(d.mediaType)!.compression;
  if (compression === 'none') return store.blobPath(d.digest);
  const path = unpackedPath(store, info);
  if (existsSync(path)) return path;
  mkdirSync(join(store.root, 'unpacked'), { recursive: true });
  const w = BlobWriter.fresh(store);
  try {
    for await (const c of content(store.blobPath(d.digest), compression)) w.write(c);
  } catch (e) {
    w.abort(true);
    throw new VirtusError('BAD_LAYER', `${what}: cannot decompress the disk layer: ${(e as Error).message}`);
  }
  if (w.offset !== info.uncompressedSize || w.digest() !== info.uncompressedDigest) {
    const got = w.digest();
    w.abort(true);
    throw digestMismatch(`${what}: the disk layer's content`, info.uncompressedDigest, got);
  }
  // Not commit(), which files blobs by digest: the same content under its own name.
  try {
    w.keepAs(path);
  } catch (e) {
    throw new VirtusError('STORE', `cannot unpack a disk into ${path}: ${(e as Error).message}`);
  }
  return path;
}

/** How much of a disk layer is read to find references to other files (qcow2 keeps them in its first cluster). */
const HEAD_BYTES = 64 << 10;

/** The first `n` bytes (or fewer) of a layer's decompressed content. */
async function layerHead(store: ImageStore, d: Descriptor, n: number): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let got = 0;
  const src = content(store.blobPath(d.digest), parseLayerMediaType(d.mediaType)!.compression);
  try {
    for await (const c of src) {
      parts.push(c);
      got += c.length;
      if (got >= n) break;
    }
  } catch (e) {
    throw new VirtusError('BAD_LAYER', `cannot decompress the disk layer ${d.digest}: ${(e as Error).message}`);
  }
  return Buffer.concat(parts).subarray(0, n);
}

/** The first bytes of a file. */
function fileHead(path: string, n: number): Uint8Array {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(n);
    return buf.subarray(0, readSync(fd, buf, 0, n, 0));
  } finally {
    closeSync(fd);
  }
}

function refuseReferences(head: Uint8Array, what: string, i: number): void {
  const ref = fileReferences(head);
  if (ref === null) return;
  throw new VirtusError('DISK_HAS_BACKING', `${what}: the disk of layer ${i} names ${ref}; a machine image's disks must be self-contained, and virtus opens no host file an image names`);
}

/**
 * Refuses an image whose qcow2 disk layers name other files (a backing file or an external
 * data file), by what the layers' content says: checked when an image is pulled, before it is
 * tagged, and again when it boots (the store's files may have changed since).
 */
export async function checkDiskLayers(store: ImageStore, m: Manifest, config: MachineConfig, what: string): Promise<void> {
  for (const [i, d] of m.layers.entries()) {
    if (config.layers[i]!.role === 'disk' && config.layers[i]!.format === 'qcow2') refuseReferences(await layerHead(store, d, HEAD_BYTES), what, i);
  }
}

/**
 * Opens the image `text` (NAME[:TAG], a digest) of the store for booting; with
 * `disks: false` disk layers are listed in the config but not unpacked.
 */
export async function openStoredMachine(store: ImageStore, text: string, o: { disks?: boolean } = {}): Promise<StoredMachine> {
  const { digest } = store.resolve(text);
  const hold: Hold = store.hold('virtus run');
  try {
    hold.add([digest]);
    const m = store.manifest(digest);
    checkMachineManifest(m, text);
    const config = parseMachineConfig(store.readBlob(m.config.digest, `${text} config`), m, `${text} config`);
    const machine: StoredMachine = { digest, config, disks: [], release: () => hold.release() };
    for (const [i, d] of m.layers.entries()) {
      const info = config.layers[i]!;
      if (info.role === 'disk') {
        if (o.disks !== false) {
          const path = await diskFile(store, d, info, text);
          // The file the drive opens is checked, not the blob it came from.
          if (info.format === 'qcow2') refuseReferences(fileHead(path, HEAD_BYTES), text, i);
          machine.disks.push({ path, format: info.format!, virtualSize: info.virtualSize! });
        }
      } else machine[info.role] = await readLayer(store, d, info, text);
    }
    return machine;
  } catch (e) {
    hold.release();
    throw e;
  }
}
