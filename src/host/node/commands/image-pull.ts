/** `virtus image pull`: fetch a machine image from an OCI registry into the local store. */
import { mb, silentProgress, stderrProgress } from '../../../repo/progress.ts';
import { formatRemoteRef, parseRemoteRef } from '../../../repo/reference.ts';
import { ImageStore } from '../../../repo/store.ts';
import { pullImage } from '../../../repo/transfer.ts';
import { VirtusError } from '../../../util/errors.ts';
import { parseFlags, type Command } from '../command.ts';

const HELP = `usage: virtus image pull [--insecure] [-q] REGISTRY/REPO[:TAG|@DIGEST]

Fetches a machine image from an OCI registry into the local store, where it is
named REGISTRY/REPO:TAG (see 'virtus image ls'). Every blob is checked against
its digest before it enters the store; blobs the store has are not fetched
again; an interrupted download resumes where it stopped (also on the next pull).

  --insecure   allow plain HTTP and unverified TLS certificates (plain HTTP is
               always allowed for a registry on loopback)
  -q, --quiet  no progress and no summary
  -h, --help   show this help

Credentials come from the Docker config file ($DOCKER_CONFIG/config.json or
~/.docker/config.json) when it has some for the registry.`;

const OPTIONS = {
  insecure: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const imagePullCommand: Command = {
  name: 'pull',
  summary: 'fetch a machine image from an OCI registry into the local store',
  async run(argv) {
    const { values: v, positionals } = parseFlags('image pull', argv, OPTIONS, true);
    if (v.help) {
      console.log(HELP);
      return 0;
    }
    if (positionals.length !== 1) throw new VirtusError('BAD_FLAG', "image pull: expected REGISTRY/REPO[:TAG] (try 'virtus image pull --help')", { exitCode: 2 });
    const ref = parseRemoteRef(positionals[0]!, 'image pull');
    const progress = v.quiet ? silentProgress : stderrProgress('pull');
    const r = await pullImage(ImageStore.open(), ref, {
      progress,
      ...(v.insecure ? { insecure: true } : {}),
      onWarning: (w) => progress.note(`registry warning: ${w}`),
    });
    if (!v.quiet) console.log(`pulled ${formatRemoteRef(ref)} ${r.digest}: ${r.transferred} blob(s) fetched (${mb(r.bytes)}), ${r.skipped} already in the store`);
    return 0;
  },
};
