/**
 * `virtus run --image NAME[:TAG]`: boot options from a machine image in the store. The
 * image gives the kernel, initrd, command line, memory and disks; the command line's --initrd,
 * --append and --memory override them, --bios chooses the firmware as it does for --kernel.
 * The disks become --drive specifications with overlay=auto: a machine writes into its own
 * temporary overlay, never into the store, so many machines can run from one image.
 */
import { readFileSync } from 'node:fs';
import type { BootOptions } from '../machine/virt.ts';
import { VirtusError } from '../util/errors.ts';
import { openStoredMachine, type StoredMachine } from './machine.ts';
import { ImageStore } from './store.ts';

/** The run flags that meet an image. */
export interface ImageBootFlags {
  kernel?: string;
  initrd?: string;
  append?: string;
  bios?: string;
}

function readFile(path: string, what: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new VirtusError('FILE_OPEN', `cannot open ${what} ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
}

/**
 * Opens the image `text` from the default store and makes boot options from it; `memory`
 * is the RAM the image asks for, if it does; `drives` are --drive values for its disks, in
 * order. The image stays held (in use) until the process ends.
 */
export async function imageBoot(text: string, v: ImageBootFlags): Promise<{ boot: BootOptions; memory?: number; drives: string[]; machine: StoredMachine }> {
  if (v.kernel !== undefined) throw new VirtusError('BAD_FLAG', 'run: --image gives the kernel; drop --kernel (or --image)', { exitCode: 2 });
  if (v.bios === 'opensbi') throw new VirtusError('BAD_FLAG', "run: --bios opensbi is the default guest's firmware; with --image give --bios FILE or none", { exitCode: 2 });
  const machine = await openStoredMachine(ImageStore.open(), text);
  if (!machine.kernel) {
    machine.release();
    throw new VirtusError('IMAGE_NO_KERNEL', `run: image ${text} has no kernel layer (it holds ${machine.config.layers.map((l) => l.role).join(', ')})`);
  }
  const drives = machine.disks.map((d) => `file=${d.path.replace(/,/g, ',,')},format=${d.format},overlay=auto`);
  let firmware: BootOptions['firmware'] = 'builtin';
  if (v.bios === 'none') firmware = 'none';
  else if (v.bios !== undefined) firmware = { bytes: readFile(v.bios, 'firmware'), name: v.bios };
  const append = v.append ?? machine.config.cmdline;
  return {
    boot: {
      kernel: machine.kernel,
      kernelName: `${text} (kernel)`,
      initrd: v.initrd !== undefined ? readFile(v.initrd, 'initrd') : machine.initrd,
      ...(append !== undefined ? { append } : {}),
      firmware,
    },
    ...(machine.config.memory !== undefined ? { memory: machine.config.memory } : {}),
    drives,
    machine,
  };
}
