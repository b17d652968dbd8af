/**
 * Where the Node host finds what the machine flags refer to (machine-flags.ts SpecSources):
 * the default guest (fetched on first use, with progress), its root disk, and machine images
 * in the local store, whose kernel and initrd are held in memory under the names the spec uses.
 */
import { imageBoot } from '../../repo/boot.ts';
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
