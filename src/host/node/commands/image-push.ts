/** `virtus image push`: send a machine image to an OCI registry. */
import { statSync } from 'node:fs';
import { packMachine } from '../../../repo/pack.ts';
import { mb, silentProgress, stderrProgress } from '../../../repo/progress.ts';
import { formatRemoteRef, parseRemoteRef } from '../../../repo/reference.ts';
import { ImageStore, type Hold } from '../../../repo/store.ts';
import { pushImage } from '../../../repo/transfer.ts';
import { VirtusError } from '../../../util/errors.ts';
import { parseSize } from '../../../util/size.ts';
import { parseFlags, type Command } from '../command.ts';

const HELP = `usage: virtus image push [options] SOURCE REGISTRY/REPO[:TAG]
       virtus image push --kernel FILE [options] REGISTRY/REPO[:TAG]

Sends a machine image to an OCI registry (OCI distribution protocol, HTTPS; plain
HTTP for a registry on loopback or with --insecure), as an OCI artifact of type
application/vnd.virtus.machine.v1. Blobs the registry has are not sent again.

SOURCE is an image in the local store (NAME[:TAG], NAME@DIGEST, a digest) or a
disk image file (raw or qcow2), which becomes the image's disk; --kernel,
--initrd, --append and --memory make the rest of a machine around it.

  --kernel FILE         the kernel (a Linux Image, or an ELF)
  --initrd FILE         the initial ramdisk
  --append STRING       the kernel command line
  --memory SIZE, -m     guest RAM the image asks for (e.g. 512M)
  --compress gzip|none  how file layers are stored (default gzip)
  --chunk-size SIZE     upload blobs larger than SIZE in chunks (default 32M)
  --insecure            allow plain HTTP and unverified TLS certificates
  -q, --quiet           no progress and no summary
  -h, --help            show this help

Credentials come from the Docker config file ($DOCKER_CONFIG/config.json or
~/.docker/config.json) when it has some for the registry.`;

const OPTIONS = {
  kernel: { type: 'string' },
  initrd: { type: 'string' },
  append: { type: 'string' },
  memory: { type: 'string', short: 'm' },
  compress: { type: 'string' },
  'chunk-size': { type: 'string' },
  insecure: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
} as const;

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

export const imagePushCommand: Command = {
  name: 'push',
  summary: 'send a machine image (from the store or files) to an OCI registry',
  async run(argv) {
    const { values: v, positionals } = parseFlags('image push', argv, OPTIONS, true);
    if (v.help) {
      console.log(HELP);
      return 0;
    }
    const machineFlags = v.kernel !== undefined || v.initrd !== undefined;
    if (positionals.length !== 2 && !(positionals.length === 1 && machineFlags)) {
      throw new VirtusError('BAD_FLAG', "image push: expected SOURCE REGISTRY/REPO[:TAG] (try 'virtus image push --help')", { exitCode: 2 });
    }
    const dest = parseRemoteRef(positionals[positionals.length - 1]!, 'image push');
    const source = positionals.length === 2 ? positionals[0]! : undefined;
    const compression = v.compress ?? 'gzip';
    if (compression !== 'gzip' && compression !== 'none') throw new VirtusError('BAD_FLAG', `image push: --compress must be gzip or none, not '${compression}'`, { exitCode: 2 });
    const chunkSize = v['chunk-size'] !== undefined ? parseSize(v['chunk-size'], '--chunk-size') : undefined;
    const memory = v.memory !== undefined ? parseSize(v.memory, '--memory', 'M') : undefined;
    const progress = v.quiet ? silentProgress : stderrProgress('push');
    const store = ImageStore.open();

    let digest: string;
    let hold: Hold | null = null;
    let mountFrom: string[] = [];
    if (source !== undefined && !isFile(source) && !machineFlags && v.append === undefined && memory === undefined) {
      const found = store.resolve(source);
      digest = found.digest;
      // Names this image has from the same registry: its blobs can be mounted from there.
      const prefix = `${dest.registry}/`;
      mountFrom = store.list().filter((i) => i.digest === digest && i.name.startsWith(prefix)).map((i) => i.name.slice(prefix.length));
    } else {
      if (source !== undefined && !isFile(source)) {
        throw new VirtusError('NO_FILE', `image push: ${source} is not a file (with --kernel, --initrd, --append or --memory, SOURCE is a disk image file)`);
      }
      const packed = await packMachine(store, {
        ...(v.kernel !== undefined ? { kernel: v.kernel } : {}),
        ...(v.initrd !== undefined ? { initrd: v.initrd } : {}),
        ...(source !== undefined ? { disk: source } : {}),
        ...(v.append !== undefined ? { cmdline: v.append } : {}),
        ...(memory !== undefined ? { memory } : {}),
        compression,
      }, progress);
      digest = packed.digest;
      hold = packed.hold;
    }
    try {
      const r = await pushImage(store, digest, dest, {
        progress,
        mountFrom,
        ...(v.insecure ? { insecure: true } : {}),
        ...(chunkSize !== undefined ? { chunkSize } : {}),
        onWarning: (w) => progress.note(`registry warning: ${w}`),
      });
      if (!v.quiet) console.log(`pushed ${formatRemoteRef(dest)} ${r.digest}: ${r.transferred} blob(s) uploaded (${mb(r.bytes)}), ${r.skipped} already there`);
    } finally {
      // Blobs packed from files belong to no image in the store: let them go.
      if (hold) {
        hold.release();
        await store.collect();
      }
    }
    return 0;
  },
};
