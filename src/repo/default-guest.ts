/**
 * The default guest in the image store: after `virtus guest fetch` (or the first `virtus
 * run`) has built it, it is also kept as the machine image `default:latest` and
 * `default:<kernel release>`, so that it can be pushed, tagged and booted like any
 * image. It is packed once per built guest (the guest's cache key is recorded in an
 * annotation); an older `default:<release>` is removed as the cache drops an older guest.
 */
import { basename } from 'node:path';
import { ANNOTATION } from './artifact.ts';
import { packMachine } from './pack.ts';
import { silentProgress } from './progress.ts';
import { DEFAULT_TAG } from './reference.ts';
import { ImageStore } from './store.ts';
import { DEFAULT_CMDLINE } from '../vmm/spec.ts';

/** The store name of the default guest. */
export const DEFAULT_GUEST_IMAGE = 'default';
/** The manifest annotation that names the built guest an image was packed from. */
export const GUEST_KEY_ANNOTATION = 'vnd.virtus.guest.key';

/** What of the built guest goes into the image (the fields of guest/fetch.ts's DefaultGuest). */
export interface BuiltGuest {
  kernel: string;
  initrd: string;
  rootfs: string;
  /** The kernel release, e.g. 6.12.9-riscv64. */
  release: string;
  /** The guest's cache directory; its name is the guest's key. */
  dir: string;
}

/** A kernel release as a tag: characters a tag may not hold become '_'. */
export function releaseTag(release: string): string {
  return release.replace(/[^a-zA-Z0-9_.-]/g, '_').replace(/^[.-]/, '_').slice(0, 128);
}

/**
 * Keeps `guest` in the store as default:latest and default:<release>; returns the
 * manifest digest. Failures are reported through `progress` and do not fail the caller:
 * the guest itself is built and usable either way.
 */
export async function storeDefaultGuest(guest: BuiltGuest, progress: (message: string) => void, store?: ImageStore): Promise<string | null> {
  try {
    const s = store ?? ImageStore.open();
    // The image's layout version and command line follow the guest's key: an image packed
    // before the config named its root disk, or with another command line, is packed again.
    const key = `${basename(guest.dir)}/2 ${DEFAULT_CMDLINE}`;
    const tag = releaseTag(guest.release);
    const latest = { name: DEFAULT_GUEST_IMAGE, tag: DEFAULT_TAG };
    const mine = { name: DEFAULT_GUEST_IMAGE, tag };
    let digest: string | null = null;
    try {
      const have = s.resolve(`${DEFAULT_GUEST_IMAGE}:${tag}`).digest;
      if (s.manifest(have).annotations?.[GUEST_KEY_ANNOTATION] === key) digest = have;
    } catch {
      // not stored yet
    }
    if (!digest) {
      progress(`keeping the guest in the image store as ${DEFAULT_GUEST_IMAGE}:${tag}`);
      const packed = await packMachine(s, { kernel: guest.kernel, initrd: guest.initrd, disk: guest.rootfs, rootDisk: true, cmdline: DEFAULT_CMDLINE, annotations: { [GUEST_KEY_ANNOTATION]: key, [ANNOTATION.title]: `virtus default guest, Linux ${guest.release}` } }, silentProgress);
      try {
        await s.tag(mine, packed.digest);
      } finally {
        packed.hold.release();
      }
      digest = packed.digest;
    }
    await s.tag(latest, digest);
    const packedGuest = (d: string) => {
      try {
        return s.manifest(d).annotations?.[GUEST_KEY_ANNOTATION] !== undefined;
      } catch {
        return false;
      }
    };
    const stale = s.list().filter((i) => i.name === DEFAULT_GUEST_IMAGE && i.tag !== DEFAULT_TAG && i.tag !== tag && i.digest !== digest && packedGuest(i.digest));
    if (stale.length) await s.untag(stale.map((i) => i.key));
    await s.collect();
    return digest;
  } catch (e) {
    progress(`could not keep the guest in the image store: ${(e as Error).message}`);
    return null;
  }
}
