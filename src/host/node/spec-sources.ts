/**
 * Where the Node host finds what the machine flags refer to (machine-flags.ts SpecSources):
 * the default guest (fetched on first use, with progress), its root disk, and machine images
 * in the local store, whose kernel and initrd are held in memory under the names the spec uses.
 */
import { imageBoot } from '../../repo/boot.ts';
import { stderrProgress as transferProgress } from '../../repo/progress.ts';
import { parseRemoteRef } from '../../repo/reference.ts';
import { ImageStore } from '../../repo/store.ts';
import { pullImage } from '../../repo/transfer.ts';
import type { SpecSources } from './machine-flags.ts';
import { ensureRootDisk } from './guest/disk.ts';
import { ensureDefaultGuest, type DefaultGuest } from './guest/fetch.ts';
import { stderrProgress } from './guest/progress.ts';

export interface NodeSpecSources extends SpecSources {
  /** Boot files held in memory, by the name the spec gives them. */
  readonly files: Map<string, Uint8Array>;
}

export function nodeSpecSources(): NodeSpecSources {
  let guest: Promise<DefaultGuest> | null = null;
  const defaultGuest = (): Promise<DefaultGuest> => (guest ??= ensureDefaultGuest({ progress: stderrProgress() }));
  const files = new Map<string, Uint8Array>();
  return {
    files,
    defaultGuest,
    rootDisk: async () => ensureRootDisk(await defaultGuest()),
    async image(name) {
      await pullIfMissing(name);
      const img = await imageBoot(name);
      const kernel = `${name} (kernel)`;
      files.set(kernel, img.kernel);
      const initrd = img.initrd ? `${name} (initrd)` : undefined;
      if (initrd) files.set(initrd, img.initrd!);
      return {
        kernel,
        ...(initrd ? { initrd } : {}),
        ...(img.append !== undefined ? { append: img.append } : {}),
        ...(img.memory !== undefined ? { memory: img.memory } : {}),
        disks: img.disks.map((d) => ({ file: d.path, format: d.format, readonly: false, serial: '', overlay: 'auto', locking: true })),
        rootDisk: img.rootDisk,
      };
    },
  };
}

/**
 * `run --image REGISTRY/REPO:TAG` of an image the store does not have: pulled first, with
 * progress, as `virtus image pull` would (a local name without a registry is left to fail).
 */
async function pullIfMissing(name: string): Promise<void> {
  const store = ImageStore.open();
  try {
    store.resolve(name);
    return;
  } catch (e) {
    if (!name.includes('/')) throw e;
  }
  const ref = parseRemoteRef(name, 'run --image');
  const progress = transferProgress('pull');
  await pullImage(store, ref, { progress, onWarning: (w) => progress.note(`registry warning: ${w}`) });
}
