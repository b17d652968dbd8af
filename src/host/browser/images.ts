/**
 * Guest files in the page: fetched from the server by URL with download progress, and kept
 * in the browser's Cache API under their version, so a second visit boots without
 * downloading. Versions that the server no longer offers are deleted, so the cache holds
 * one guest, not every guest ever served. The manifest is cached too: with the server gone,
 * the page can still boot what it has.
 */

import type { MachineSpec } from '../../vmm/spec.ts';

/** A file the server offers (see host/node/commands/web.ts, GuestManifest). */
export interface ManifestFile {
  url: string;
  name: string;
  size: number;
  version: string;
}

export interface Manifest {
  title: string;
  /** The machine the server describes; its files name entries of `files` by their names. */
  spec: MachineSpec;
  files: Partial<Record<'kernel' | 'initrd' | 'disk', ManifestFile>>;
}

/** Progress of one file: bytes so far and in all, and whether they come from the cache. */
export type ProgressFn = (name: string, done: number, total: number, cached: boolean) => void;

const CACHE = 'virtus-guest';
const MANIFEST_URL = '/guest/manifest.json';

function cacheKey(f: ManifestFile): string {
  return new URL(`${f.url}?v=${encodeURIComponent(f.version)}`, location.href).href;
}

async function openCache(name = CACHE): Promise<Cache | null> {
  // The Cache API exists only in secure contexts (localhost is one) and may be refused.
  try {
    return typeof caches === 'undefined' ? null : await caches.open(name);
  } catch {
    return null;
  }
}

/** The server's manifest, or the last one cached when the server cannot be reached. */
export async function loadManifest(): Promise<Manifest> {
  const cache = await openCache();
  try {
    const r = await fetch(MANIFEST_URL, { cache: 'no-store' });
    if (!r.ok) throw new Error(`${MANIFEST_URL}: HTTP ${r.status}`);
    const text = await r.text();
    await cache?.put(new URL(MANIFEST_URL, location.href).href, new Response(text, { headers: { 'Content-Type': 'application/json' } }));
    return JSON.parse(text) as Manifest;
  } catch (e) {
    const hit = await cache?.match(new URL(MANIFEST_URL, location.href).href);
    if (hit) return (await hit.json()) as Manifest;
    throw e;
  }
}

/** Reads a response body into one array, reporting progress as chunks arrive. */
async function readBody(r: Response, total: number, onChunk: (done: number) => void): Promise<Uint8Array<ArrayBuffer>> {
  if (!r.body) return new Uint8Array(await r.arrayBuffer());
  const reader = r.body.getReader();
  let buf = new Uint8Array(total > 0 ? total : 1 << 20);
  let done = 0;
  for (;;) {
    const { value, done: end } = await reader.read();
    if (end) break;
    if (done + value.length > buf.length) {
      const bigger = new Uint8Array(Math.max(buf.length * 2, done + value.length));
      bigger.set(buf.subarray(0, done));
      buf = bigger;
    }
    buf.set(value, done);
    done += value.length;
    onChunk(done);
  }
  return done === buf.length ? buf : buf.slice(0, done);
}

/**
 * One guest file: from the cache when it holds this version, else downloaded and cached. The
 * exec page keeps its busybox in a cache of its own (`cacheName`), which pruneCache leaves alone.
 */
export async function loadFile(f: ManifestFile, progress: ProgressFn, cacheName = CACHE): Promise<Uint8Array<ArrayBuffer>> {
  const cache = await openCache(cacheName);
  const key = cacheKey(f);
  const hit = await cache?.match(key);
  if (hit) {
    const bytes = await readBody(hit, f.size, (n) => progress(f.name, n, f.size, true));
    if (bytes.length === f.size) return bytes;
  }
  progress(f.name, 0, f.size, false);
  const r = await fetch(f.url, { cache: 'no-store' });
  if (!r.ok) throw new Error(`cannot download ${f.name}: HTTP ${r.status}`);
  const total = Number(r.headers.get('Content-Length')) || f.size;
  const bytes = await readBody(r, total, (n) => progress(f.name, n, total, false));
  if (cache) {
    try {
      await cache.put(key, new Response(bytes, { headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(bytes.length) } }));
    } catch {
      // Over quota: this visit boots anyway, the next downloads again.
    }
  }
  return bytes;
}

/** Deletes cached guest files whose version the manifest no longer names. */
export async function pruneCache(m: Manifest): Promise<void> {
  const cache = await openCache();
  if (!cache) return;
  const keep = new Set(Object.values(m.files).map((f) => cacheKey(f)));
  keep.add(new URL(MANIFEST_URL, location.href).href);
  for (const req of await cache.keys()) if (!keep.has(req.url)) await cache.delete(req);
}

/** True when the page can keep files between visits. */
export async function cacheAvailable(): Promise<boolean> {
  return (await openCache()) !== null;
}
