/** `virtus run`: boot a machine (or a bare-metal program) and run it until it stops. */
import { writeSync } from 'node:fs';
import { useCodec } from '../../../machine/snapshot-format.ts';
import { collectStats, formatStats } from '../../../machine/stats.ts';
import { Tracer } from '../../../machine/trace.ts';
import { VirtusError } from '../../../util/errors.ts';
import { parseSize } from '../../../util/size.ts';
import type { StopInfo } from '../../../vmm/actions.ts';
import { createVm, receiveVm, restoreVm, type ResourceFlags } from '../../../vmm/create.ts';
import { VmMigration, type MigrationDefaults } from '../../../vmm/migration.ts';
import type { Vm, VmOptions } from '../../../vmm/vm.ts';
import { parseCount, parseFlags, type Command } from '../command.ts';
import { readHostFile, writeHostFile } from '../files.ts';
import { MACHINE_HELP, MACHINE_OPTIONS, resourcesFromFlags, specFromFlags } from '../machine-flags.ts';
import { receiveMigration } from '../migration-link.ts';
import { serveMonitor, execute, writeSnapshotFile } from '../monitor.ts';
import { serveQmp } from '../qmp.ts';
import { toVirtusArgs } from '../qemu-args.ts';
import { OutputBuffer } from '../runner-host.ts';
import { nodeCodec } from '../snapshot-codec.ts';
import { nodeSpecSources } from '../spec-sources.ts';
import { Terminal } from '../terminal.ts';
import { NodeVmHost } from '../vm-host.ts';

const HELP = `usage: virtus run [options]

Boots a RISC-V machine with QEMU's "virt" memory map. Without --kernel, boots the
default guest (Debian's kernel and a busybox initramfs; see 'virtus guest fetch').

${MACHINE_HELP}
  --dtb-dump FILE      write the generated device tree blob and exit
  --stats              at exit, print the exits into the monitor: SBI calls,
                       device accesses, traps and interrupts
  --max-insns N        stop after exactly N instructions (exit code 124)
  --signature FILE     at exit, write the words between begin_signature and
                       end_signature, one 32-bit hex word per line
  --trace              print every executed instruction to stderr
  --snapshot-on-exit FILE
                       when the run stops (Ctrl-A X, quit, --max-insns; not the
                       guest's own poweroff or exit), save the machine to FILE
  --restore FILE       continue a saved machine; name its disks and folders again
                       with --drive/--root and --share, in the same order (they
                       must be the same disks, unchanged); the rest of the
                       machine comes from the snapshot
  --incoming tcp:HOST:PORT
                       wait for a machine migrated from another virtus, then run
                       it; name its disks (shared storage) and folders as for
                       --restore. Failed attempts are reported and the wait goes on
  --monitor unix:PATH  take monitor commands on a unix socket, one per line,
                       each answered with a line of JSON: savevm FILE, migrate
                       tcp:HOST:PORT, info migrate, info status, stop, cont,
                       system_reset, quit
  --qmp unix:PATH[,server=on,wait=off]
                       speak QEMU's machine protocol (QMP) on a unix socket
  -S, --paused         do not start the guest until told (cont)
  --migrate-downtime-limit MS
                       migration: stop the guest for the last copy only once what
                       is left can be sent in MS milliseconds (default 300)
  --migrate-capability NAME[=on|off]
                       migration: QEMU's capabilities (auto-converge, xbzrle,
                       compress, events); repeatable
  --migrate-parameter NAME=VALUE
                       migration: QEMU's parameters (downtime-limit, max-bandwidth,
                       cpu-throttle-initial, cpu-throttle-increment, max-cpu-throttle,
                       xbzrle-cache-size, ...); repeatable
  --migrate-max-dirty SIZE
                       migration: also stop the guest once a round dirtied at
                       most SIZE of RAM, whatever the estimate
  --migrate-max-rounds N
                       migration: stop the guest after N rounds even if the
                       guest keeps dirtying more
  -h, --help           show this help

Keys: Ctrl-A X quits, Ctrl-A C opens the monitor prompt, Ctrl-A H lists the
keys. The guest's 'poweroff' ends virtus with exit code 0; 'reboot' restarts the
machine. Every machine has a virtio-rng (entropy from the host; seeded with
--deterministic).
With --bios none and an ELF that has a "tohost" symbol, the HTIF protocol of
RISC-V test programs is served: the guest's exit code becomes virtus's.`;

const OPTIONS = {
  ...MACHINE_OPTIONS,
  'dtb-dump': { type: 'string' },
  stats: { type: 'boolean' },
  'max-insns': { type: 'string' },
  signature: { type: 'string' },
  trace: { type: 'boolean' },
  'snapshot-on-exit': { type: 'string' },
  restore: { type: 'string' },
  loadvm: { type: 'string' },
  monitor: { type: 'string' },
  qmp: { type: 'string' },
  incoming: { type: 'string' },
  paused: { type: 'boolean', short: 'S' },
  'migrate-max-dirty': { type: 'string' },
  'migrate-downtime-limit': { type: 'string' },
  'migrate-capability': { type: 'string', multiple: true },
  'migrate-parameter': { type: 'string', multiple: true },
  'migrate-max-rounds': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** How each kind of resource is named on this command line, for the messages of a restore. */
const RESOURCE_FLAGS: ResourceFlags = { disk: '--drive', share: '--share', nic: '--nic', memory: '--memory' };

/** The migration settings the flags give (checked as QMP's would be, naming the flag). */
function migrationFlags(v: Record<string, unknown>): MigrationDefaults {
  const capabilities: Record<string, boolean> = {};
  for (const c of (v['migrate-capability'] as string[] | undefined) ?? []) {
    const m = /^([a-z0-9-]+)(?:=(on|off))?$/.exec(c);
    if (!m) throw usage(`--migrate-capability takes NAME[=on|off], not "${c}"`);
    capabilities[m[1]!] = m[2] !== 'off';
  }
  const parameters: Record<string, unknown> = {};
  for (const p of (v['migrate-parameter'] as string[] | undefined) ?? []) {
    const m = /^([a-z0-9-]+)=(.*)$/.exec(p);
    if (!m) throw usage(`--migrate-parameter takes NAME=VALUE, not "${p}"`);
    const raw = m[2]!;
    parameters[m[1]!] = raw === 'on' || raw === 'off' ? raw === 'on' : /^\d+$/.test(raw) ? Number(raw) : /^\d/.test(raw) ? parseSize(raw, `--migrate-parameter ${m[1]}`, 'B') : raw;
  }
  if (v['migrate-downtime-limit'] !== undefined) parameters['downtime-limit'] = parseCount(v['migrate-downtime-limit'] as string, '--migrate-downtime-limit');
  const o: MigrationDefaults = {
    ...(v['migrate-max-rounds'] !== undefined ? { maxRounds: parseCount(v['migrate-max-rounds'] as string, '--migrate-max-rounds') } : {}),
    ...(v['migrate-max-dirty'] !== undefined ? { maxDirtyPages: Math.floor(parseSize(v['migrate-max-dirty'] as string, '--migrate-max-dirty', 'M') / 4096) } : {}),
    capabilities: capabilities as MigrationDefaults['capabilities'],
    parameters: parameters as MigrationDefaults['parameters'],
  };
  try {
    // Checked now, so a bad flag is a usage error before anything boots.
    new VmMigration({} as never, o);
  } catch (e) {
    throw usage(`migration settings: ${(e as Error).message}`);
  }
  return o;
}

/** Stops that the guest chose: nothing is left to continue, so nothing is saved. */
const GUEST_ENDED = new Set<StopInfo['reason']>(['poweroff', 'exit', 'migrated']);

function usage(message: string): VirtusError {
  return new VirtusError('BAD_FLAG', `run: ${message}`, { exitCode: 2 });
}

export const runCommand: Command = {
  name: 'run',
  summary: 'boot a machine or run a bare-metal program',
  async run(argv) {
    const { values: v } = parseFlags('run', toVirtusArgs('run', argv, OPTIONS), OPTIONS);
    if (v.help) {
      console.log(HELP);
      return 0;
    }
    const maxInsns = v['max-insns'] !== undefined ? parseCount(v['max-insns'], '--max-insns') : undefined;
    const migration = migrationFlags(v);
    const restore = v.restore ?? v.loadvm;
    if (restore !== undefined && v.incoming !== undefined) throw usage('--restore and --incoming do not go together');
    if (v.trace && (restore !== undefined || v.incoming !== undefined)) throw usage('--trace runs a machine from its start: drop --restore/--incoming');
    useCodec(nodeCodec);
    const warn = (line: string): void => void process.stderr.write(line + '\n');
    const sources = nodeSpecSources();
    const host = new NodeVmHost({ files: sources.files, warn });
    const out = new OutputBuffer(process.stdout, () => host.runner.wake());
    let onStopping: ((vm: Vm, info: StopInfo) => void) | null = null;
    let self: Vm | null = null;
    const vmOptions: VmOptions = {
      ...(maxInsns !== undefined ? { maxInsns } : {}),
      ...(v['no-reboot'] ? { noReboot: true } : {}),
      migration,
      outputRoom: () => out.room(),
      on: (e) => {
        if (e.type === 'output') out.write(e.bytes);
        else if (e.type === 'reset') out.flush();
        else if (e.type === 'migration' && e.info.status === 'failed') {
          // One line: where the machine is now follows from why the migration failed.
          const here = self?.state === 'stopped' ? '' : ' (the machine runs on here)';
          warn(`virtus: migration to ${e.info.target} failed: ${e.info.error}${here}`);
        }
        else if (e.type === 'migration' && e.info.target === 'incoming' && e.info.status === 'completed' && e.info.postcopyRequests !== undefined) {
          warn(`virtus: post-copy complete: every page is here; the guest waited for ${e.info.postcopyRequests} of them`);
        }
        else if (e.type === 'migration' && e.info.status === 'cancelled') warn(`virtus: migration to ${e.info.target} cancelled (the machine runs on here)`);
      },
      stopping: (info) => onStopping?.(self!, info),
    };

    let vm: Vm;
    if (restore !== undefined) {
      const given = await resourcesFromFlags(v, 'run', '--restore', sources);
      const t = performance.now();
      vm = await restoreVm(readHostFile(restore, 'snapshot'), restore, given, RESOURCE_FLAGS, host, vmOptions);
      if (process.env.VIRTUS_TIMING === '1') warn(`virtus: restored in ${(performance.now() - t).toFixed(1)} ms`);
    } else if (v.incoming !== undefined) {
      const given = await resourcesFromFlags(v, 'run', '--incoming', sources);
      const postcopy = vmOptions.migration?.capabilities?.['postcopy-ram'] === true;
      const got = await receiveMigration(v.incoming, warn, (link) => receiveVm(link, given, RESOURCE_FLAGS, host, vmOptions), { postcopy });
      vm = got.vm;
      warn(`virtus: machine received after ${got.rounds} rounds; running it`);
    } else {
      vm = await createVm(await specFromFlags(v, 'run', sources), host, vmOptions);
      const info = vm.bootInfo!;
      if (v['dtb-dump']) {
        writeHostFile(v['dtb-dump'], vm.board.machine.ram.read(info.dtbAddr, info.dtbSize), 'device tree');
        await vm.handle({ type: 'quit' });
        return 0;
      }
    }
    self = vm;
    const snapshotFile = v['snapshot-on-exit'];
    if (snapshotFile !== undefined) {
      const temporary = vm.spec.devices.disks.find((d) => d.overlay === 'auto');
      if (temporary) throw usage(`--snapshot-on-exit: the disk ${temporary.file} writes to a temporary overlay, deleted at exit (use overlay=PATH)`);
      onStopping = (m, info) => {
        if (GUEST_ENDED.has(info.reason)) return;
        const bytes = writeSnapshotFile(snapshotFile, m.snapshot());
        warn(`virtus: saved the machine to ${snapshotFile} (${bytes} bytes, ${m.board.machine.instret()} instructions run)`);
      };
    }
    if (v.monitor !== undefined) await serveMonitor(vm, v.monitor);
    if (v.qmp !== undefined) await serveQmp(vm, v.qmp);

    let stop: StopInfo;
    if (v.trace) {
      const exit = new Tracer(vm.board.machine, (line) => traceLine(line)).run(maxInsns);
      await vm.handle({ type: 'quit' });
      stop = exit ? { reason: exit.reason, code: exit.code, ...(exit.message ? { message: exit.message } : {}) } : { reason: 'quit', code: 0 };
    } else {
      const term = new Terminal({
        input: (bytes) => void vm.handle({ type: 'console-input', bytes }),
        quit: (why) => {
          // End of piped input is not a reason to stop the machine; Ctrl-A X is.
          if (why === 'user') void vm.handle({ type: 'quit' });
        },
        monitor: async (line) => JSON.stringify(await execute(vm, line)),
      });
      if (vm.spec.devices.console === 'virtio' && process.stdout.isTTY) {
        process.stdout.on('resize', () => void vm.handle({ type: 'console-resize', cols: process.stdout.columns, rows: process.stdout.rows }));
      }
      term.start();
      try {
        if (vm.state === 'created' && !v.paused) await vm.handle({ type: 'start' });
        else if (vm.state === 'paused' && !v.paused) await vm.handle({ type: 'resume' });
        stop = await vm.stopped();
      } finally {
        term.stop();
      }
    }
    out.flush();
    if (v.stats) process.stderr.write(formatStats(collectStats(vm.board)) + '\n');
    if (v.signature && vm.bootInfo) writeSignature(vm, v.signature);
    if (stop.message) warn(`virtus: ${stop.message}`);
    return stop.code > 255 ? 1 : stop.code;
  },
};

/**
 * One trace line to stderr. stderr may be a pipe that Node made non-blocking: a full pipe is
 * EAGAIN, which is waited out (the reader is slower, not gone); a reader that went away ends
 * the trace quietly.
 */
function traceLine(line: string): void {
  const b = Buffer.from(line + '\n');
  for (let at = 0; at < b.length; ) {
    try {
      at += writeSync(2, b, at);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
      else if (code === 'EPIPE') process.exit(0);
      else throw e;
    }
  }
}

function writeSignature(vm: Vm, path: string): void {
  const symbols = vm.bootInfo!.symbols;
  const begin = symbols.get('begin_signature');
  const end = symbols.get('end_signature');
  if (begin === undefined || end === undefined) {
    throw new VirtusError('NO_SIGNATURE', '--signature: the program has no begin_signature/end_signature symbols');
  }
  const lines: string[] = [];
  for (let a = begin; a < end; a += 4) lines.push(vm.board.machine.ram.readU32(a).toString(16).padStart(8, '0'));
  writeHostFile(path, lines.join('\n') + '\n', 'signature');
}
