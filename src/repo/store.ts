/**
 * The local image store: one directory per user, laid out as an OCI image layout
 * (image-spec image-layout.md), so other OCI tools can read it:
 *
 *   <root>/oci-layout                 {"imageLayoutVersion": "1.0.0"}
 *   <root>/index.json                 an image index; each entry is a tagged manifest, its
 *                                     org.opencontainers.image.ref.name is "name:tag"
 *                                     (or "name@digest" for an image pulled by digest)
 *   <root>/blobs/sha256/<hex>         manifests, configs and layers, named by their digest
 *   <root>/tmp/                       partial downloads (<hex>.partial, kept for resuming),
 *                                     blobs being written, the lock
 *   <root>/holds/<pid>-<n>.json       digests a running virtus needs (a pull in progress,
 *                                     a machine booted from an image): never collected
 *   <root>/unpacked/                  decompressed disk layers (disks.ts), a cache
 *
 * Blobs enter only through BlobWriter.commit, which checks the digest and renames a
 * complete temporary file into place; index.json is replaced by rename under the store
 * lock. So a crash or two concurrent virtus processes leave at worst an unused temporary
 * file, never a blob with the wrong content or a torn index.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { VirtusError } from '../util/errors.ts';
import { ANNOTATION, OCI_INDEX, OCI_MANIFEST, parseManifest, type Descriptor, type Manifest } from './artifact.ts';
import { DIGEST_RE, digestMismatch, digestOf, hexOf } from './digest.ts';
import { processAlive, withLock } from './lock.ts';
import { parseLocalRef, refKey, type LocalRef } from './reference.ts';

/**
 * The store's default place: <data>/images, where <data> is $VIRTUS_DATA_DIR, else
 * $XDG_DATA_HOME/virtus, else ~/.local/share/virtus (the same data directory as the
 * default guest's root disk; images are data, not cache). $VIRTUS_IMAGE_STORE overrides it.
 */
export function defaultStoreRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.VIRTUS_IMAGE_STORE) return env.VIRTUS_IMAGE_STORE;
  if (env.VIRTUS_DATA_DIR) return join(env.VIRTUS_DATA_DIR, 'images');
  if (env.XDG_DATA_HOME) return join(env.XDG_DATA_HOME, 'virtus', 'images');
  const home = homedir();
  if (!home) throw new VirtusError('STORE', 'no home directory to keep images in; set VIRTUS_DATA_DIR');
  return join(home, '.local', 'share', 'virtus', 'images');
}

/** How long an abandoned partial download is kept for resuming. */
const PARTIAL_TTL = 30 * 24 * 3600 * 1000;

/** One tagged image, as `virtus image ls` lists it. */
export interface StoredImage {
  /** The index key: "name:tag", or "name@digest". */
  key: string;
  name: string;
  tag?: string;
  /** The manifest's digest. */
  digest: string;
  /** Manifest, config and layers, as stored (compressed). */
  size: number;
  /** When the image was made (its manifest's annotation), else when it was tagged here. */
  created: string;
  artifactType?: string;
}

/** A store entry found by resolve(). */
export interface Resolved {
  digest: string;
  /** The index keys that name this digest and matched the reference. */
  keys: string[];
  /** True when the reference was a digest (or a prefix of one), not a name. */
  byDigest: boolean;
}

/** An entry of the store's index.json. */
export interface IndexEntry extends Descriptor {
  annotations: Record<string, string>;
}

/** Writes `data` to `path` atomically: a temporary file beside it, flushed, renamed. */
export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/**
 * The entries of the store's index.json (image-spec image-index.md) that name an image: a
 * sha256 digest and a ref name annotation; others are skipped. The file is untrusted (it may
 * have been edited): anything that is not an index is refused.
 */
export function parseStoreIndex(text: string, what: string): IndexEntry[] {
  let x: unknown;
  try {
    x = JSON.parse(text);
  } catch (e) {
    throw storeError(`cannot read ${what}`, e);
  }
  const manifests = typeof x === 'object' && x !== null ? (x as { manifests?: unknown }).manifests : undefined;
  if (!Array.isArray(manifests)) throw new VirtusError('STORE', `${what} is not an image index`);
  return manifests.filter((m): m is IndexEntry => {
    if (typeof m !== 'object' || m === null) return false;
    const e = m as { digest?: unknown; annotations?: unknown };
    if (typeof e.digest !== 'string' || !DIGEST_RE.test(e.digest)) return false;
    const a = e.annotations;
    return typeof a === 'object' && a !== null && typeof (a as Record<string, unknown>)[ANNOTATION.refName] === 'string';
  });
}

function storeError(what: string, e: unknown): VirtusError {
  return new VirtusError('STORE', `${what}: ${(e as Error).message}`);
}

/** The local content-addressed image store. */
export class ImageStore {
  private holdCount = 0;

  private constructor(readonly root: string) {}

  /** Opens the store at `root` (default: defaultStoreRoot()), creating it when it is not there. */
  static open(root: string = defaultStoreRoot()): ImageStore {
    try {
      for (const d of ['blobs/sha256', 'tmp', 'holds']) mkdirSync(join(root, d), { recursive: true });
      if (!existsSync(join(root, 'oci-layout'))) writeFileAtomic(join(root, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
      if (!existsSync(join(root, 'index.json'))) writeFileAtomic(join(root, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] }));
    } catch (e) {
      throw storeError(`cannot create the image store ${root}`, e);
    }
    return new ImageStore(root);
  }

  get tmpDir(): string {
    return join(this.root, 'tmp');
  }

  blobPath(digest: string): string {
    return join(this.root, 'blobs', 'sha256', hexOf(digest));
  }

  /** Whether the store has the blob (and, when given, with that size). */
  hasBlob(digest: string, size?: number): boolean {
    try {
      const st = statSync(this.blobPath(digest));
      return size === undefined || st.size === size;
    } catch {
      return false;
    }
  }

  /** A small blob's bytes (manifest, config), checked against its digest: disks rot too. */
  readBlob(digest: string, what: string): Buffer {
    let bytes: Buffer;
    try {
      bytes = readFileSync(this.blobPath(digest));
    } catch {
      throw new VirtusError('STORE_MISSING', `${what}: blob ${digest} is missing from the store ${this.root}`);
    }
    const got = digestOf(bytes);
    if (got !== digest) throw digestMismatch(`${what} in the store`, digest, got);
    return bytes;
  }

  /** Stores a small blob given whole; returns its digest. */
  putBlob(bytes: Uint8Array): string {
    const digest = digestOf(bytes);
    if (!this.hasBlob(digest, bytes.length)) {
      try {
        writeFileAtomic(this.blobPath(digest), bytes);
      } catch (e) {
        throw storeError(`cannot write to the image store ${this.root}`, e);
      }
    }
    return digest;
  }

  /** The manifest stored under `digest`, validated. */
  manifest(digest: string): Manifest {
    return parseManifest(this.readBlob(digest, `manifest ${digest}`), `manifest ${digest}`);
  }

  private readIndex(): IndexEntry[] {
    const path = join(this.root, 'index.json');
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      throw storeError(`cannot read ${path}`, e);
    }
    return parseStoreIndex(text, path);
  }

  private writeIndex(entries: IndexEntry[]): void {
    const doc = { schemaVersion: 2, mediaType: OCI_INDEX, manifests: entries };
    writeFileAtomic(join(this.root, 'index.json'), JSON.stringify(doc, null, 2) + '\n');
  }

  /** Runs `fn` holding the store's lock (index updates, garbage collection). */
  locked<T>(fn: () => T | Promise<T>): Promise<T> {
    return withLock(join(this.tmpDir, 'lock'), fn);
  }

  /** Every tagged image, sorted by name and tag. */
  list(): StoredImage[] {
    return this.readIndex()
      .map((e) => this.describe(e))
      .sort((a, b) => a.key.localeCompare(b.key));
  }

  private describe(e: IndexEntry): StoredImage {
    const key = e.annotations[ANNOTATION.refName]!;
    const at = key.lastIndexOf('@');
    const colon = key.lastIndexOf(':');
    const named = at > 0 ? { name: key.slice(0, at) } : { name: key.slice(0, colon), tag: key.slice(colon + 1) };
    let size = e.size;
    let created = e.annotations[ANNOTATION.created] ?? '';
    try {
      const m = this.manifest(e.digest);
      size += m.config.size + m.layers.reduce((n, l) => n + l.size, 0);
      created = m.annotations?.[ANNOTATION.created] ?? created;
    } catch {
      // A damaged entry is still listed, so that it can be removed.
    }
    return { key, ...named, digest: e.digest, size, created, ...(e.artifactType ? { artifactType: e.artifactType } : {}) };
  }

  /**
   * Finds an image: "name[:tag]", "name@digest", a digest, or `sha256:` and a prefix of
   * one (also a bare hex prefix when no image has that name). One clear line when nothing
   * or more than one image matches.
   */
  resolve(text: string): Resolved {
    const ref = parseLocalRef(text);
    const entries = this.readIndex();
    const keyOf = (e: IndexEntry) => e.annotations[ANNOTATION.refName]!;
    const byPrefix = (hex: string): Resolved | null => {
      const hits = entries.filter((e) => hexOf(e.digest).startsWith(hex));
      const digests = new Set(hits.map((e) => e.digest));
      if (digests.size > 1) throw new VirtusError('AMBIGUOUS_IMAGE', `'${text}' matches ${digests.size} images; give more digits`, { exitCode: 2 });
      return hits.length ? { digest: hits[0]!.digest, keys: hits.map(keyOf), byDigest: true } : null;
    };
    let found: Resolved | null = null;
    if (ref.name === '') {
      found = byPrefix(ref.digest!.replace(/^sha256:/, ''));
    } else if (ref.tag !== undefined) {
      const e = entries.find((x) => keyOf(x) === refKey(ref));
      found = e ? { digest: e.digest, keys: [keyOf(e)], byDigest: false } : null;
      if (!found && /^[a-f0-9]{4,64}$/.test(text)) found = byPrefix(text);
    } else {
      const hits = entries.filter((x) => x.digest === ref.digest && (keyOf(x) === refKey(ref) || keyOf(x).startsWith(`${ref.name}:`)));
      found = hits.length ? { digest: ref.digest!, keys: hits.map(keyOf), byDigest: false } : null;
    }
    if (!found) throw new VirtusError('NO_SUCH_IMAGE', `no image '${text}' in the store (see 'virtus image ls')`);
    return found;
  }

  /**
   * Names the manifest `digest` by `ref`, replacing what the name meant before. All the
   * manifest's blobs must be in the store: a concurrent garbage collection may have taken
   * a blob not yet named, and the caller then fetches it again (StoreMissingBlobs).
   */
  async tag(ref: LocalRef, digest: string): Promise<void> {
    const m = this.manifest(digest);
    const missing = [m.config, ...m.layers].filter((d) => !this.hasBlob(d.digest, d.size));
    if (missing.length) throw new StoreMissingBlobs(missing.map((d) => d.digest));
    await this.locked(() => {
      const again = [m.config, ...m.layers].filter((d) => !this.hasBlob(d.digest, d.size));
      if (again.length) throw new StoreMissingBlobs(again.map((d) => d.digest));
      const key = refKey(ref);
      const entries = this.readIndex().filter((e) => e.annotations[ANNOTATION.refName] !== key);
      entries.push({
        mediaType: OCI_MANIFEST,
        ...(m.artifactType ? { artifactType: m.artifactType } : {}),
        digest,
        size: statSync(this.blobPath(digest)).size,
        annotations: { [ANNOTATION.refName]: key, [ANNOTATION.created]: new Date().toISOString() },
      });
      this.writeIndex(entries);
    });
  }

  /** Removes index keys; returns the ones that were there. */
  async untag(keys: string[]): Promise<string[]> {
    return this.locked(() => {
      const entries = this.readIndex();
      const removed = entries.filter((e) => keys.includes(e.annotations[ANNOTATION.refName]!));
      this.writeIndex(entries.filter((e) => !removed.includes(e)));
      return removed.map((e) => e.annotations[ANNOTATION.refName]!);
    });
  }

  /**
   * Declares that this process needs some digests (and, for a manifest, its blobs) until
   * release() or the process ends: collect() leaves them alone, and `virtus image rm`
   * says who uses them. `what` says why ("virtus run", "virtus image pull").
   */
  hold(what: string): Hold {
    const path = join(this.root, 'holds', `${process.pid}-${this.holdCount++}.json`);
    const digests: string[] = [];
    const release = () => rmSync(path, { force: true });
    process.once('exit', release);
    return {
      add(more) {
        digests.push(...more);
        writeFileAtomic(path, JSON.stringify({ pid: process.pid, what, digests }));
      },
      release() {
        release();
        process.off('exit', release);
      },
    };
  }

  /** The digests live processes hold, with who holds them. */
  holds(): Map<string, { pid: number; what: string }> {
    const out = new Map<string, { pid: number; what: string }>();
    const dir = join(this.root, 'holds');
    for (const n of readdirSync(dir)) {
      try {
        const h = JSON.parse(readFileSync(join(dir, n), 'utf8')) as { pid: number; what: string; digests: string[] };
        if (!processAlive(h.pid)) {
          rmSync(join(dir, n), { force: true });
          continue;
        }
        for (const d of h.digests) out.set(d, { pid: h.pid, what: h.what });
      } catch {
        // being written, or damaged: not a hold
      }
    }
    return out;
  }

  /**
   * Deletes blobs no tag reaches and no live process holds (a mark-and-sweep under the
   * store lock); returns the digests deleted and the bytes freed. Blobs are listed before
   * holds are read: a blob renamed in after its hold was written is always seen as held.
   */
  async collect(): Promise<{ deleted: string[]; freed: number }> {
    return this.locked(() => {
      const dir = join(this.root, 'blobs', 'sha256');
      const present = readdirSync(dir).filter((n) => /^[a-f0-9]{64}$/.test(n));
      const keep = new Set<string>();
      const keepUnpacked = new Set<string>();
      const reach = (digest: string) => {
        keep.add(digest);
        try {
          const m = this.manifest(digest);
          keep.add(m.config.digest);
          for (const l of m.layers) keep.add(l.digest);
          // Unpacked disks are named by their uncompressed digest, which the config records.
          const config = JSON.parse(this.readBlob(m.config.digest, 'config').toString('utf8')) as { layers?: { uncompressedDigest?: unknown }[] };
          for (const l of config.layers ?? []) if (typeof l.uncompressedDigest === 'string') keepUnpacked.add(hexOf(l.uncompressedDigest));
        } catch {
          // not a manifest (or damaged, or not ours): only what was found is kept
        }
      };
      for (const d of this.holds().keys()) reach(d);
      for (const e of this.readIndex()) reach(e.digest);
      let freed = 0;
      const deleted: string[] = [];
      for (const hex of present) {
        const digest = `sha256:${hex}`;
        if (keep.has(digest)) continue;
        const path = join(dir, hex);
        try {
          freed += statSync(path).size;
          rmSync(path, { force: true });
          deleted.push(digest);
        } catch {
          // gone already
        }
      }
      // Temporary files of processes that died mid-write, and partial downloads nobody
      // resumed for a month (kept that long so that an interrupted pull can resume).
      for (const n of readdirSync(this.tmpDir)) {
        const path = join(this.tmpDir, n);
        const writer = /^new-(\d+)-/.exec(n);
        try {
          const stale = writer ? !processAlive(Number(writer[1])) : n.endsWith('.partial') && Date.now() - statSync(path).mtimeMs > PARTIAL_TTL && !existsSync(`${path}.lock`);
          if (!stale) continue;
          freed += statSync(path).size;
          rmSync(path, { force: true });
        } catch {
          // gone already
        }
      }
      const unpacked = join(this.root, 'unpacked');
      for (const n of existsSync(unpacked) ? readdirSync(unpacked) : []) {
        if (keepUnpacked.has(n.replace(/\..*$/, ''))) continue;
        try {
          freed += statSync(join(unpacked, n)).size;
          rmSync(join(unpacked, n), { force: true });
        } catch {
          // gone already
        }
      }
      return { deleted, freed };
    });
  }
}

/** Digests a live process needs; see ImageStore.hold. */
export interface Hold {
  /** Adds digests; written to disk before this returns. */
  add(digests: string[]): void;
  release(): void;
}

/** Thrown by tag() when blobs of the manifest are not (or no longer) in the store. */
export class StoreMissingBlobs extends VirtusError {
  constructor(readonly digests: string[]) {
    super('STORE_MISSING', `the store lacks ${digests.length} blob(s) of this image (${digests[0]}${digests.length > 1 ? ', ...' : ''})`);
  }
}
