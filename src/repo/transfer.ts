/**
 * Pushing an image from the store to a registry and pulling one into the store
 * (distribution-spec 1.1 "Push" and "Pull"): blobs first, the manifest last on a push;
 * the manifest first, then the config (validated before any large download), then the
 * layers on a pull. Nothing is uploaded that the registry has (HEAD first) and nothing
 * downloaded that the store has, so layers shared between images travel once.
 */
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { VirtusError } from '../util/errors.ts';
import { ANNOTATION, checkMachineManifest, OCI_INDEX, OCI_MANIFEST, parseLayerMediaType, parseMachineConfig, parseManifest, type Descriptor, type MachineConfig } from './artifact.ts';
import { BlobWriter } from './blob-writer.ts';
import { RegistryClient, type ClientOptions } from './client.ts';
import { isTransient } from './http.ts';
import { checkDiskLayers } from './machine.ts';
import type { Progress } from './progress.ts';
import { formatRemoteRef, localRefOf, type RemoteRef } from './reference.ts';
import { StoreMissingBlobs, type ImageStore } from './store.ts';

export interface TransferOptions extends ClientOptions {
  progress: Progress;
  /**
   * Push: repositories of the same registry that hold the image already (it was pulled
   * from there), to mount its blobs from instead of uploading them.
   */
  mountFrom?: string[];
}

/** What a push or pull did. */
export interface TransferResult {
  /** The manifest's digest. */
  digest: string;
  /** Blobs sent or fetched, and their bytes. */
  transferred: number;
  bytes: number;
  /** Blobs the other side already had. */
  skipped: number;
  /** HTTP requests made. */
  requests: number;
}

/** How progress names a blob: its title annotation, else its role. */
function label(d: Descriptor, fallback: string): string {
  return d.annotations?.[ANNOTATION.title] ?? parseLayerMediaType(d.mediaType)?.role ?? fallback;
}

function openRange(path: string, start: number, end: number): Readable {
  return end > start ? createReadStream(path, { start, end: end - 1 }) : Readable.from([]);
}

/** Pushes the image `digest` from the store to `ref`. */
export async function pushImage(store: ImageStore, digest: string, ref: RemoteRef, o: TransferOptions): Promise<TransferResult> {
  if (ref.digest !== undefined && ref.digest !== digest) {
    throw new VirtusError('BAD_REFERENCE', `${formatRemoteRef(ref)}: the image's digest is ${digest}, not the one the reference gives`, { exitCode: 2 });
  }
  const bytes = store.readBlob(digest, `manifest ${digest}`);
  const m = parseManifest(bytes, `manifest ${digest}`);
  const client = new RegistryClient(ref.registry, ref.repository, 'pull,push', o);
  const result: TransferResult = { digest, transferred: 0, bytes: 0, skipped: 0, requests: 0 };
  for (const [i, d] of [m.config, ...m.layers].entries()) {
    const name = label(d, i === 0 ? 'config' : `layer ${i - 1}`);
    if (!store.hasBlob(d.digest, d.size)) throw new VirtusError('STORE_MISSING', `${name}: blob ${d.digest} is missing from the store`);
    if (await client.blobExists(d.digest)) {
      o.progress.note(`${name}: already in the registry`);
      result.skipped++;
      continue;
    }
    const open = (s: number, e: number) => openRange(store.blobPath(d.digest), s, e);
    const from = o.mountFrom?.find((r) => r !== ref.repository);
    o.progress.begin(name, d.size);
    if (from !== undefined && (await client.mountOrUpload(d.digest, from, d.size, open, (n) => o.progress.update(n)))) {
      o.progress.note(`${name}: mounted from ${from}`);
      result.skipped++;
      continue;
    }
    if (from === undefined) await client.uploadBlob(d.digest, d.size, open, (n) => o.progress.update(n));
    o.progress.end();
    result.transferred++;
    result.bytes += d.size;
  }
  await client.putManifest(ref.tag ?? digest, bytes, m.mediaType ?? OCI_MANIFEST);
  result.requests = client.requests;
  return result;
}

/**
 * Downloads one blob into the store, resuming a partial download (kept in the store's tmp
 * area) with a Range request, also after a connection lost mid-blob (up to 5 times).
 * The digest is checked before the blob enters the store; false when it was there already.
 */
async function fetchBlob(store: ImageStore, client: RegistryClient, d: Descriptor, name: string, progress: Progress): Promise<boolean> {
  let retries = 0;
  let fromScratch = false;
  for (;;) {
    if (store.hasBlob(d.digest, d.size)) return false;
    const w = await BlobWriter.resumable(store, d);
    if (!w) {
      if (retries++ === 0) progress.note(`${name}: another virtus is downloading it; waiting`);
      await new Promise((r) => setTimeout(r, 250));
      continue;
    }
    if (store.hasBlob(d.digest, d.size)) {
      w.abort(true); // finished by another process between our look and the lock
      return false;
    }
    const resumedAt = w.offset;
    try {
      progress.begin(name, d.size, resumedAt);
      await client.fetchBlob(d.digest, w, (n) => progress.update(n));
      w.commit(`${name} (blob ${d.digest})`);
      progress.end();
      return true;
    } catch (e) {
      w.abort();
      const mismatch = e instanceof VirtusError && (e.code === 'DIGEST_MISMATCH' || e.code === 'SIZE_MISMATCH');
      // A mismatch after resuming may come from our own partial file: fetch it whole once.
      if (mismatch && resumedAt > 0 && !fromScratch) {
        fromScratch = true;
        progress.note(`${name}: the resumed download does not verify; downloading it whole`);
        continue;
      }
      if (!mismatch && isTransient((e as { cause?: unknown }).cause ?? e) && ++retries <= 5) {
        progress.note(`${name}: connection lost; resuming`);
        continue;
      }
      throw e;
    }
  }
}

/** Pulls `ref` into the store and tags it there as REGISTRY/REPO:TAG. */
export async function pullImage(store: ImageStore, ref: RemoteRef, o: TransferOptions): Promise<TransferResult> {
  const client = new RegistryClient(ref.registry, ref.repository, 'pull', o);
  const what = formatRemoteRef(ref);
  const fetched = await client.getManifest(ref.digest ?? ref.tag!);
  if (fetched.mediaType === OCI_INDEX) throw new VirtusError('NOT_A_MACHINE', `${what} is an image index (a list of images), not a virtus machine image`);
  const m = parseManifest(fetched.bytes, what);
  // distribution-spec "Pulling manifests": reject when mediaType and Content-Type disagree.
  if (m.mediaType !== undefined && fetched.mediaType !== '' && fetched.mediaType !== m.mediaType) {
    throw new VirtusError('BAD_MANIFEST', `${what}: the registry says ${fetched.mediaType} but the manifest says ${m.mediaType}`);
  }
  checkMachineManifest(m, what);
  const hold = store.hold('virtus image pull');
  try {
    hold.add([fetched.digest, m.config.digest, ...m.layers.map((l) => l.digest)]);
    const result: TransferResult = { digest: fetched.digest, transferred: 0, bytes: 0, skipped: 0, requests: 0 };
    let config: MachineConfig | undefined;
    for (let round = 0; ; round++) {
      for (const [i, d] of [m.config, ...m.layers].entries()) {
        const name = label(d, i === 0 ? 'config' : `layer ${i - 1}`);
        if (await fetchBlob(store, client, d, name, o.progress)) {
          result.transferred++;
          result.bytes += d.size;
        } else if (round === 0) {
          o.progress.note(`${name}: already in the store`);
          result.skipped++;
        }
        if (i === 0) config = parseMachineConfig(store.readBlob(d.digest, `${what} config`), m, `${what} config`);
      }
      await checkDiskLayers(store, m, config!, what);
      store.putBlob(fetched.bytes);
      try {
        await store.tag(localRefOf(ref, fetched.digest), fetched.digest);
        break;
      } catch (e) {
        if (!(e instanceof StoreMissingBlobs) || round > 0) throw e;
      }
    }
    result.requests = client.requests;
    return result;
  } finally {
    hold.release();
  }
}
