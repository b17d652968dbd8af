/**
 * Machines made from an image of the store (`{"image": "default", "count": N}`): the image's
 * kernel and initrd are kept once per image under <state>/boot/<digest>/, and each machine gets
 * its own copy-on-write overlay of each of the image's disks in its own directory — the store's
 * copy is only ever read, as with `virtus run --image` (spec-sources.ts).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { hexOf } from '../../../repo/digest.ts';
import { openStoredMachine } from '../../../repo/machine.ts';
import { ImageStore } from '../../../repo/store.ts';
import { VirtusError } from '../../../util/errors.ts';
import { checkSpec, DEFAULT_MEMORY, type BootMode, type MachineSpec } from '../../../vmm/spec.ts';
import { writeAtomic, type StateDir } from './state-dir.ts';

/** What a request may change of the machine an image describes. */
export interface ImageOverrides {
  memory?: number;
  /** Harts (default 1). */
  harts?: number;
  append?: string;
  /** How the kernel starts (`bare` for a bare-metal program); default builtin. */
  boot?: BootMode;
  engine?: MachineSpec['engine'];
  console?: MachineSpec['devices']['console'];
  /** False: the machines leave out the image's disks (and so its root= on the command line). */
  disks?: boolean;
}

/** A machine of `image` without its disks' overlays: call `forMachine` for each machine. */
export interface ImageTemplate {
  digest: string;
  forMachine(dir: string): { spec: MachineSpec; owned: string[] };
}

/** Opens `image` of the store and keeps its boot files in the state directory. */
export async function imageTemplate(state: StateDir, image: string, o: ImageOverrides): Promise<ImageTemplate> {
  const m = await openStoredMachine(ImageStore.open(), image);
  // The store holds the image for this process's life (its disks are the overlays' bases).
  if (!m.kernel) throw new VirtusError('IMAGE_NO_KERNEL', `image ${image} has no kernel layer (it holds ${m.config.layers.map((l) => l.role).join(', ')})`);
  const dir = state.bootDir(hexOf(m.digest));
  mkdirSync(dir, { recursive: true });
  const kernel = join(dir, 'kernel');
  if (!existsSync(kernel)) writeAtomic(kernel, m.kernel);
  let initrd: string | undefined;
  if (m.initrd) {
    initrd = join(dir, 'initrd');
    if (!existsSync(initrd)) writeAtomic(initrd, m.initrd);
  }
  const rootDisk = m.config.rootDisk === 0;
  const append = o.append ?? [m.config.cmdline ?? '', rootDisk && o.disks !== false ? 'root=/dev/vda' : ''].filter(Boolean).join(' ');
  return {
    digest: m.digest,
    forMachine(machineDir) {
      const owned: string[] = [];
      const disks = (o.disks === false ? [] : m.disks).map((d, i) => {
        const overlay = join(machineDir, `disk${i}.qcow2`);
        owned.push(overlay);
        return { file: d.path, format: d.format as 'raw' | 'qcow2', readonly: false, serial: '', overlay, locking: true };
      });
      const spec = checkSpec({
        memory: o.memory ?? m.config.memory ?? DEFAULT_MEMORY,
        harts: o.harts ?? 1,
        deterministic: false,
        engine: o.engine ?? 'jit',
        boot: { mode: o.boot ?? 'builtin', kernel, ...(initrd ? { initrd } : {}), append },
        devices: { disks, shares: [], nics: [], console: o.console ?? 'serial' },
      });
      return { spec, owned };
    },
  };
}
