/**
 * The daemon's machine commands: create, start, stop, pause, resume, rm, snapshot, logs. Each
 * is one API request (daemon/client.ts) to the daemon `--host` or $VIRTUS_HOST names.
 */
import { readFileSync } from 'node:fs';
import { VirtusError } from '../../../util/errors.ts';
import { parseCount, parseFlags, type Command } from '../command.ts';
import { DaemonClient, daemonAddress } from '../daemon/client.ts';
import { MACHINE_OPTIONS, specFromFlags, type MachineFlags } from '../machine-flags.ts';
import { nodeSpecSources } from '../spec-sources.ts';
import { parseHarts, parseMemory } from '../machine-flags.ts';
import { declare } from '../cluster/ops.ts';
import { withCluster } from './cluster.ts';

const HOST_HELP = `  --host unix:PATH|tcp:HOST:PORT
                       the daemon (default $VIRTUS_HOST, else the socket in the
                       default state directory); on TCP the token is $VIRTUS_TOKEN
                       or the state directory's token file`;

const HOST = { host: { type: 'string' }, help: { type: 'boolean', short: 'h' } } as const;

function printHelp(text: string): number {
  console.log(text);
  return 0;
}

function usage(cmd: string, message: string): VirtusError {
  return new VirtusError('BAD_FLAG', `${cmd}: ${message}`, { exitCode: 2 });
}

/** One positional machine name (or id). */
function oneMachine(cmd: string, positionals: string[]): string {
  if (positionals.length !== 1) throw usage(cmd, `name one machine (virtus ${cmd} NAME)`);
  return positionals[0]!;
}

const CREATE_HELP = `usage: virtus create [options] [machine options]

Defines a machine in the daemon (and starts it with --start). Describe it with
--image (an image of the daemon's store: each machine gets its own overlays), with
--spec FILE (a MachineSpec as JSON), with --snapshot NAME, or with the machine
options of 'virtus run' (--kernel, --drive, --memory, ...).

  --name NAME          its name (with --count N: NAME-1 ... NAME-N)
  --count N            N machines from one image
  --image NAME[:TAG]   an image of the daemon's store ('default': the default guest)
  --spec FILE          a MachineSpec (JSON)
  --snapshot NAME      a snapshot of the daemon
  --restart always|on-failure|no
                       what to do when it stops by itself (default no)
  --start              start it at once
  --cluster etcd://HOST:PORT[,...]
                       declare it in the cluster instead (virtus cluster): it
                       runs on the node the scheduler chooses; give --spec or
                       machine options whose files every node sees
  --bios none          with --image: the kernel is a bare-metal program
  --memory SIZE, --smp N, --append TEXT
                       with --image: instead of the image's (one hart)
  --console serial|virtio       with --image: the guest's console (virtio lets
                       'virtus stop --time N' power a Linux guest off cleanly)
${HOST_HELP}`;

/** `virtus create`. */
export const createCommand: Command = {
  name: 'create',
  summary: 'define machines in the daemon',
  async run(argv) {
    const options = {
      ...MACHINE_OPTIONS, ...HOST,
      name: { type: 'string' }, count: { type: 'string' }, spec: { type: 'string' }, snapshot: { type: 'string' },
      restart: { type: 'string' }, start: { type: 'boolean' }, cluster: { type: 'string' },
    } as const;
    const { values: v } = parseFlags('create', argv, options);
    if (v.help) return printHelp(CREATE_HELP);
    const body: Record<string, unknown> = {};
    if (v.name !== undefined) body.name = v.name;
    if (v.count !== undefined) body.count = parseCount(v.count, '--count');
    if (v.restart !== undefined) {
      if (!['always', 'on-failure', 'no'].includes(v.restart)) throw usage('create', `--restart takes always, on-failure or no, not "${v.restart}"`);
      body.restart = v.restart;
    }
    if (v.start) body.start = true;
    if (v.image !== undefined) {
      body.image = v.image;
      if (v.memory !== undefined) body.memory = parseMemory(v.memory, 'create');
      if (v.smp !== undefined) body.harts = parseHarts(v.smp, 'create');
      if (v.append !== undefined) body.append = v.append;
      if (v.console !== undefined) body.console = v.console;
      if (v.bios === 'none') body.boot = 'bare';
      else if (v.bios !== undefined && v.bios !== 'default') throw usage('create', '--image boots with the built-in SBI or --bios none');
    } else if (v.spec !== undefined) {
      try {
        body.spec = JSON.parse(readFileSync(v.spec, 'utf8'));
      } catch (e) {
        throw usage('create', `--spec ${v.spec}: ${(e as Error).message}`);
      }
    } else if (v.snapshot !== undefined) {
      body.snapshot = v.snapshot;
    } else {
      body.spec = await specFromFlags(v as MachineFlags, 'create', nodeSpecSources());
    }
    if (v.cluster !== undefined) {
      const made = await withCluster(v.cluster, 'create', (c) => declare(c, body));
      for (const m of made) console.log(`${m.name}\t${m.id}\t${m.running ? 'running' : 'stopped'}`);
      return 0;
    }
    const client = new DaemonClient(daemonAddress(v.host));
    const r = await client.call<{ machines?: Array<{ id: string; name: string; state: string }>; cluster?: Array<{ id: string; name: string; desired: string }> }>('POST', '/vms', body);
    for (const m of r.machines ?? []) console.log(`${m.name}\t${m.id}\t${m.state}`);
    for (const m of r.cluster ?? []) console.log(`${m.name}\t${m.id}\t${m.desired}`);
    return 0;
  },
};

/** A command that is one POST on a machine. */
function machineAction(name: string, summary: string, help: string, extra: Record<string, { type: 'string' | 'boolean' }>, body: (v: Record<string, unknown>) => unknown): Command {
  return {
    name,
    summary,
    async run(argv) {
      const { values: v, positionals } = parseFlags(name, argv, { ...HOST, ...extra }, true);
      if (v.help) return printHelp(`usage: virtus ${name} [options] NAME\n\n${help}\n\n${HOST_HELP}`);
      const ref = oneMachine(name, positionals);
      const client = new DaemonClient(daemonAddress(v.host as string | undefined));
      const m = await client.call<{ name: string; state: string }>('POST', `/vms/${encodeURIComponent(ref)}/${name}`, body(v));
      console.log(`${m.name}\t${m.state}`);
      return 0;
    },
  };
}

/** `virtus start`, `pause`, `resume`, `stop`: one POST on a machine each. */
export const startCommand = machineAction('start', 'start a machine of the daemon', 'Boots the machine afresh (its disks keep what was written).', { paused: { type: 'boolean' } }, (v) => (v.paused ? { paused: true } : undefined));
export const pauseCommand = machineAction('pause', 'pause a machine of the daemon', 'Stops the guest between two instructions.', {}, () => undefined);
export const resumeCommand = machineAction('resume', 'resume a paused machine', 'Runs a paused machine again.', {}, () => undefined);
export const stopCommand = machineAction(
  'stop',
  'stop a machine of the daemon',
  `Asks the guest to power off and waits --time seconds (default 0), then stops the
machine: its run loop ends and its disks are flushed.
  --time SECONDS       how long the guest may take to power off
  --force              power off at once`,
  { time: { type: 'string' }, force: { type: 'boolean' } },
  (v) => ({ ...(v.force ? { force: true } : {}), ...(v.time !== undefined ? { timeout: parseCount(v.time as string, '--time') } : {}) }),
);

/** `virtus rm`. */
export const rmCommand: Command = {
  name: 'rm',
  summary: 'delete machines of the daemon',
  async run(argv) {
    const { values: v, positionals } = parseFlags('rm', argv, { ...HOST, force: { type: 'boolean', short: 'f' } }, true);
    if (v.help) return printHelp(`usage: virtus rm [--force] NAME...\n\nDeletes machines and their overlays (--force: running ones too).\n\n${HOST_HELP}`);
    if (!positionals.length) throw usage('rm', 'name a machine (virtus rm NAME...)');
    const client = new DaemonClient(daemonAddress(v.host));
    for (const ref of positionals) {
      await client.call('DELETE', `/vms/${encodeURIComponent(ref)}${v.force ? '?force=true' : ''}`);
      console.log(ref);
    }
    return 0;
  },
};

/** `virtus snapshot`. */
export const snapshotCommand: Command = {
  name: 'snapshot',
  summary: 'save a machine of the daemon to a snapshot',
  async run(argv) {
    const { values: v, positionals } = parseFlags('snapshot', argv, { ...HOST, name: { type: 'string' } }, true);
    if (v.help) return printHelp(`usage: virtus snapshot [--name SNAP] NAME\n\nSaves the machine (it runs on); 'virtus create --snapshot SNAP' makes a machine of it.\n\n${HOST_HELP}`);
    const ref = oneMachine('snapshot', positionals);
    const client = new DaemonClient(daemonAddress(v.host));
    const name = v.name ?? `${ref}-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    const r = await client.call<{ name: string; bytes: number; ms: number }>('POST', `/vms/${encodeURIComponent(ref)}/snapshot`, { name });
    console.log(`${r.name}\t${r.bytes} bytes\t${r.ms} ms`);
    return 0;
  },
};

/** `virtus logs`. */
export const logsCommand: Command = {
  name: 'logs',
  summary: "print a machine's recent console output",
  async run(argv) {
    const { values: v, positionals } = parseFlags('logs', argv, { ...HOST, tail: { type: 'string' } }, true);
    if (v.help) return printHelp(`usage: virtus logs [--tail BYTES] NAME\n\nPrints what the guest printed last (the daemon keeps 256 KiB).\n\n${HOST_HELP}`);
    const ref = oneMachine('logs', positionals);
    const client = new DaemonClient(daemonAddress(v.host));
    const res = await client.raw('GET', `/vms/${encodeURIComponent(ref)}/logs${v.tail !== undefined ? `?tail=${parseCount(v.tail, '--tail')}` : ''}`);
    if ((res.statusCode ?? 500) >= 400) {
      res.resume();
      await client.call('GET', `/vms/${encodeURIComponent(ref)}`);
      throw new VirtusError('DAEMON_ERROR', `logs: ${res.statusCode}`);
    }
    for await (const c of res) process.stdout.write(c as Buffer);
    return 0;
  },
};
