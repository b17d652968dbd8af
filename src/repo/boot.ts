/**
 * `virtus run --image NAME[:TAG]`: what a machine image in the store gives a machine — its
 * kernel and initrd (in memory), command line, memory and disks (read-only base files a machine
 * puts its own overlay on: the store's copy is never written, so many machines can run from
 * one image). The machine flags (host/node/machine-flags.ts) combine it with the command line.
 */
import { VirtusError } from '../util/errors.ts';
import { openStoredMachine } from './machine.ts';
import { ImageStore } from './store.ts';

/** An image opened for booting. */
export interface ImageBoot {
  kernel: Uint8Array;
  initrd?: Uint8Array;
  append?: string;
  memory?: number;
  disks: Array<{ path: string; format: 'raw' | 'qcow2' }>;
  /** The first disk holds the root file system (the guest gets root=/dev/vda). */
  rootDisk: boolean;
}

/**
 * Opens the image `text` from the default store. The image stays held (in use) until the
 * process ends.
 */
export async function imageBoot(text: string): Promise<ImageBoot> {
  const machine = await openStoredMachine(ImageStore.open(), text);
  if (!machine.kernel) {
    machine.release();
    throw new VirtusError('IMAGE_NO_KERNEL', `run: image ${text} has no kernel layer (it holds ${machine.config.layers.map((l) => l.role).join(', ')})`);
  }
  return {
    kernel: machine.kernel,
    ...(machine.initrd ? { initrd: machine.initrd } : {}),
    ...(machine.config.cmdline !== undefined ? { append: machine.config.cmdline } : {}),
    ...(machine.config.memory !== undefined ? { memory: machine.config.memory } : {}),
    disks: machine.disks.map((d) => ({ path: d.path, format: d.format as 'raw' | 'qcow2' })),
    rootDisk: machine.config.rootDisk === 0,
  };
}
