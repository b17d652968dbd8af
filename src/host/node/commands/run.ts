/** `virtus run`: boot a machine (or a bare-metal program) and run it until it stops. */
import { writeSync } from 'node:fs';
import { resolve } from 'node:path';
import { migrateIn } from '../../../machine/migrate.ts';
import { openSnapshot, type HostConfig, type SnapshotConfig } from '../../../machine/snapshot.ts';
import { useCodec } from '../../../machine/snapshot-format.ts';
import { nodeCodec } from '../snapshot-codec.ts';
import { Runner } from '../../../machine/runner.ts';
import { collectStats, formatStats } from '../../../machine/stats.ts';
import { Tracer } from '../../../machine/trace.ts';
import { VirtBoard, type BootInfo, type BootOptions } from '../../../machine/virt.ts';
import { VirtusError } from '../../../util/errors.ts';
import { parseSize } from '../../../util/size.ts';
import { parseCount, parseFlags, type Command } from '../command.ts';
import { imageBoot } from '../../../repo/boot.ts';
import { readHostFile, writeHostFile } from '../files.ts';
import { ensureRootDisk } from '../guest/disk.ts';
import { ensureDefaultGuest } from '../guest/fetch.ts';
import { stderrProgress } from '../guest/progress.ts';
import { NodeRunnerHost, OutputBuffer } from '../runner-host.ts';
import { Terminal } from '../terminal.ts';
import { execute, parseTcp, serveMonitor, Session, tcpIncoming, writeSnapshot } from '../monitor.ts';
import { attachVirtio, VIRTIO_HELP, VIRTIO_OPTIONS, type VirtioFlags, type VirtioSetup } from '../virtio-devices.ts';

const HELP = `usage: virtus run [options]

Boots a RISC-V machine with QEMU's "virt" memory map. Without --kernel, boots the
default guest (Debian's kernel and a busybox initramfs; see 'virtus guest fetch').

  --kernel FILE        kernel or program: a Linux Image (with or without its EFI
                       header) or an ELF file
  --initrd FILE        initial ramdisk
  --image NAME[:TAG]   boot a machine image from the local store (see 'virtus
                       image ls'): its kernel, initrd, command line, memory and
                       disks (virtio-blk, each over a temporary overlay)
  --append STRING      kernel command line (/chosen/bootargs)
  --bios FILE|none|opensbi
                       firmware started in M-mode as QEMU starts it (fw_dynamic);
                       "opensbi" is the default guest's OpenSBI; "none" starts
                       --kernel itself in M-mode. Default: the built-in SBI
                       (virtus is the firmware; the kernel starts in S-mode)
${VIRTIO_HELP}
  --memory SIZE, -m    guest RAM (default 512M)
  --dtb-dump FILE      write the generated device tree blob and exit
  --stats              at exit, print the exits into the monitor: SBI calls,
                       device accesses, traps and interrupts
  --max-insns N        stop after exactly N instructions (exit code 124)
  --signature FILE     at exit, write the words between begin_signature and
                       end_signature, one 32-bit hex word per line
  --trace              print every executed instruction to stderr
  --deterministic      derive time from the instruction count (reproducible runs)
  --engine jit|interp  translate hot code to WebAssembly (default), or only
                       interpret (the reference engine)
  --snapshot-on-exit FILE
                       when the run stops (Ctrl-A X, quit, --max-insns; not the
                       guest's own poweroff or exit), save the machine to FILE
  --restore FILE       continue a saved machine (its disks must be unchanged);
                       the configuration comes from the snapshot
  --monitor unix:PATH  take monitor commands on a unix socket, one per line,
                       each answered with a line of JSON: savevm FILE, migrate
                       tcp:HOST:PORT, info migrate, info status, stop, cont, quit
  --incoming tcp:HOST:PORT
                       wait for a machine migrated from another virtus, then
                       run it (disks: the same paths, on shared storage)
  --migrate-max-dirty SIZE
                       migration: stop the guest for the last copy once a round
                       dirtied at most SIZE of RAM (default 2M)
  --migrate-max-rounds N
                       migration: stop after N rounds even if the guest keeps
                       dirtying more (default 30)
  -h, --help           show this help

Keys: Ctrl-A X quits, Ctrl-A C opens the monitor prompt, Ctrl-A H lists the
keys. The guest's 'poweroff' ends virtus with exit code 0; 'reboot' restarts the
machine. Every machine has a virtio-rng (entropy from the host; seeded with
--deterministic).
With --bios none and an ELF that has a "tohost" symbol, the HTIF protocol of
RISC-V test programs is served: the guest's exit code becomes virtus's.`;

const OPTIONS = {
  kernel: { type: 'string' },
  initrd: { type: 'string' },
  image: { type: 'string' },
  append: { type: 'string' },
  bios: { type: 'string' },
  memory: { type: 'string', short: 'm' },
  'dtb-dump': { type: 'string' },
  stats: { type: 'boolean' },
  'max-insns': { type: 'string' },
  signature: { type: 'string' },
  trace: { type: 'boolean' },
  deterministic: { type: 'boolean' },
  engine: { type: 'string' },
  'snapshot-on-exit': { type: 'string' },
  restore: { type: 'string' },
  monitor: { type: 'string' },
  incoming: { type: 'string' },
  'migrate-max-dirty': { type: 'string' },
  'migrate-max-rounds': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  ...VIRTIO_OPTIONS,
} as const;

/** The default guest's console command line. */
const DEFAULT_APPEND = 'console=ttyS0';

export const runCommand: Command = {
  name: 'run',
  summary: 'boot a machine or run a bare-metal program',
  async run(argv) {
    const { values: v } = parseFlags('run', argv, OPTIONS);
    if (v.help) {
      console.log(HELP);
      return 0;
    }
    const maxInsns = v['max-insns'] !== undefined ? parseCount(v['max-insns'], '--max-insns') : undefined;
    const engine = v.engine ?? 'jit';
    if (engine !== 'jit' && engine !== 'interp') {
      throw new VirtusError('BAD_FLAG', `run: --engine must be jit or interp, not "${engine}"`, { exitCode: 2 });
    }
    const migration = {
      ...(v['migrate-max-rounds'] !== undefined ? { maxRounds: parseCount(v['migrate-max-rounds'], '--migrate-max-rounds') } : {}),
      ...(v['migrate-max-dirty'] !== undefined ? { maxDirtyPages: Math.floor(parseSize(v['migrate-max-dirty'], '--migrate-max-dirty', 'M') / 4096) } : {}),
    };
    useCodec(nodeCodec);
    const out = new OutputBuffer(process.stdout);
    const warn = (line: string): void => void process.stderr.write(line + '\n');
    const host = new NodeRunnerHost();
    const virtioHost = {
      wake: () => host.wake(),
      rootDisk: async () => ensureRootDisk(await defaultGuest()),
      output: (b: Uint8Array) => out.write(b),
      warn,
    };
    let virtio: VirtioSetup | null = null;
    process.once('exit', () => virtio?.close());
    let board: VirtBoard;
    let hostConfig: HostConfig | string;
    let info: BootInfo | null = null;

    if (v.restore !== undefined || v.incoming !== undefined) {
      if (v.restore !== undefined && v.incoming !== undefined) throw usage('--restore and --incoming do not go together');
      const flag = v.restore !== undefined ? '--restore' : '--incoming';
      const clash = FROM_SNAPSHOT.find((k) => v[k] !== undefined);
      if (clash) throw usage(`${flag} takes the machine's configuration from the ${flag === '--restore' ? 'snapshot' : 'source'}: drop --${clash}`);
      const memory = v.memory !== undefined ? parseSize(v.memory, '--memory', 'M') : undefined;
      const build = (c: SnapshotConfig): VirtBoard => {
        if (memory !== undefined && memory !== c.ramSize) {
          throw new VirtusError('INCOMPATIBLE', `the machine has ${c.ramSize} bytes of RAM, not the ${memory} of --memory`);
        }
        return new VirtBoard({ ramSize: c.ramSize, deterministic: c.deterministic, engine, console: (b) => out.write(b) });
      };
      const devices = async (b: VirtBoard, c: SnapshotConfig): Promise<void> => {
        virtio = await attachVirtio(b, deviceFlags(c.devices), virtioHost);
      };
      let config: SnapshotConfig;
      if (v.restore !== undefined) {
        const t = performance.now();
        const reader = openSnapshot(readHostFile(v.restore, 'snapshot'), v.restore);
        config = reader.config;
        board = build(config);
        await devices(board, config);
        reader.restore(board);
        if (process.env.VIRTUS_TIMING === '1') warn(`virtus: restored in ${(performance.now() - t).toFixed(1)} ms`);
      } else {
        const { host, port } = parseTcp(v.incoming!, '--incoming', '0.0.0.0');
        const link = await tcpIncoming(host, port, warn);
        const got = await migrateIn(link, { build, devices }).catch(async (e: unknown) => {
          await link.finish(2000); // the source reads the answer before it hangs up
          throw e;
        });
        board = got.board;
        config = got.config;
        warn(`virtus: machine received after ${got.rounds} rounds; running it`);
      }
      hostConfig = { boot: config.boot, htif: config.htif, devices: config.devices };
    } else {
      const image = v.image !== undefined ? await imageBoot(v.image, v) : null;
      const ramSize = v.memory === undefined && image?.memory ? image.memory : parseSize(v.memory ?? '512M', '--memory', 'M');
      const boot = image ? image.boot : await bootOptions(v);
      board = new VirtBoard({ ramSize, deterministic: v.deterministic ?? false, engine, console: (b) => out.write(b) });
      // An image's disks come first (/dev/vda, ...), each behind a temporary overlay: the store's copy is never written.
      const flags = image?.drives.length ? { ...v, drive: [...image.drives, ...(v.drive ?? [])] } : v;
      const setup = (virtio = await attachVirtio(board, flags, virtioHost));
      if (setup.append.length) boot.append = [boot.append, ...setup.append].filter(Boolean).join(' ');
      info = board.boot(boot);
      if (v['dtb-dump']) {
        writeHostFile(v['dtb-dump'], board.machine.ram.read(info.dtbAddr, info.dtbSize), 'device tree');
        return 0;
      }
      let htif: HostConfig['htif'] = null;
      if (boot.firmware === 'none') {
        const tohost = info.symbols.get('tohost');
        if (tohost !== undefined) {
          htif = { tohost, fromhost: info.symbols.get('fromhost') ?? null };
          board.machine.attachHtif(htif.tohost, htif.fromhost);
        }
      }
      const temporary = (flags.drive ?? []).find((d) => /(^|,)overlay=auto(,|$)/.test(d));
      hostConfig = temporary
        ? `--drive ${temporary} writes to a temporary overlay, deleted at exit (use overlay=PATH)`
        : { boot: typeof boot.firmware === 'object' ? 'firmware' : boot.firmware, htif, devices: deviceConfig(flags) };
    }
    const machine = board.machine;

    const runner = new Runner(machine, host);
    const booted = info;
    const session = new Session({
      board, runner, host, hostConfig, migration, log: warn,
      ...(maxInsns !== undefined ? { maxInsns } : {}),
      reboot: booted
        ? () => {
            out.flush();
            board.reboot();
          }
        : null,
    });
    if (v.monitor !== undefined) await serveMonitor(session, v.monitor);
    const term = new Terminal({
      input: (b) => {
        if (virtio?.console) virtio.console.write(b);
        else board.consoleInput(b);
        host.wake();
      },
      quit: (why) => {
        // End of piped input is not a reason to stop the machine; Ctrl-A X is.
        if (why === 'user') session.quit();
      },
      monitor: async (line) => JSON.stringify(await execute(session, line)),
    });
    if (virtio?.console && process.stdout.isTTY) {
      process.stdout.on('resize', () => virtio?.console?.resize(process.stdout.columns, process.stdout.rows));
    }
    let exit;
    if (v.trace) {
      exit = new Tracer(machine, (line) => writeSync(2, line + '\n')).run(maxInsns);
    } else {
      term.start();
      try {
        exit = await session.run();
      } finally {
        term.stop();
      }
    }
    out.flush();
    if (session.migrated) {
      // The disks were flushed before the handover and belong to the target now: do not touch them again.
      virtio = null;
      return 0;
    }
    const guestEnded = exit?.reason === 'poweroff' || (exit?.reason === 'exit' && !session.userQuit);
    if (v['snapshot-on-exit'] !== undefined && !guestEnded) {
      const r = writeSnapshot(board, hostConfig, v['snapshot-on-exit']);
      warn(`virtus: saved the machine to ${v['snapshot-on-exit']} (${r.bytes} bytes, ${machine.instret()} instructions run)`);
    }
    virtio?.close();
    if (v.stats) process.stderr.write(formatStats(collectStats(board)) + '\n');
    if (v.signature && info) writeSignature(board, info.symbols, v.signature);
    if (!exit) return 0;
    if (exit.reason === 'reboot' && !booted) warn('virtus: the guest rebooted; a restored machine has no boot images to reboot from');
    if (exit.message) console.error(`virtus: ${exit.message}`);
    return exit.code > 255 ? 1 : exit.code;
  },
};

/** Flags that describe the machine: a restored or incoming machine brings its own. */
const FROM_SNAPSHOT = ['kernel', 'initrd', 'image', 'append', 'bios', 'dtb-dump', 'signature', 'trace', 'deterministic', 'drive', 'root', 'share', 'console'] as const;

function usage(message: string): VirtusError {
  return new VirtusError('BAD_FLAG', `run: ${message}`, { exitCode: 2 });
}

/** The devices as a snapshot remembers them: the virtio flags, with absolute paths. */
function deviceConfig(v: VirtioFlags): VirtioFlags {
  return {
    drive: (v.drive ?? []).map((d) => absolutePaths(d, ['file', 'overlay'])),
    share: (v.share ?? []).map((d) => absolutePaths(d, ['path'])),
    ...(v.console !== undefined ? { console: v.console } : {}),
    ...(v.root !== undefined ? { root: v.root } : {}),
  };
}

/** Checks the device description read from a snapshot or a migration stream. */
function deviceFlags(d: unknown): VirtioFlags {
  const strings = (x: unknown): x is string[] => Array.isArray(x) && x.every((s) => typeof s === 'string');
  const o = d as Record<string, unknown>;
  const ok = typeof d === 'object' && d !== null && strings(o.drive) && strings(o.share) &&
    (o.console === undefined || typeof o.console === 'string') && (o.root === undefined || typeof o.root === 'string');
  if (!ok) throw new VirtusError('BAD_SNAPSHOT', 'the device configuration of the machine is corrupt');
  return d as VirtioFlags;
}

/** A --drive or --share value with its paths made absolute (a restore may run elsewhere). */
function absolutePaths(text: string, keys: string[]): string {
  const esc = (x: string) => x.replace(/,/g, ',,');
  const items = text.replace(/,,/g, '\0').split(',').map((p) => p.replace(/\0/g, ','));
  return items
    .map((item, i) => {
      const eq = item.indexOf('=');
      if (eq < 0) return esc(i === 0 && item !== '' ? resolve(item) : item);
      const key = item.slice(0, eq);
      const value = item.slice(eq + 1);
      return keys.includes(key) && value !== 'auto' ? `${key}=${esc(resolve(value))}` : esc(item);
    })
    .join(',');
}

async function bootOptions(v: {
  kernel?: string;
  initrd?: string;
  append?: string;
  bios?: string;
}): Promise<BootOptions> {
  let firmware: BootOptions['firmware'] = 'builtin';
  if (v.kernel) {
    if (v.bios === 'none') firmware = 'none';
    else if (v.bios === 'opensbi') firmware = { bytes: readHostFile((await defaultGuest()).opensbi, 'firmware'), name: 'opensbi' };
    else if (v.bios) firmware = { bytes: readHostFile(v.bios, 'firmware'), name: v.bios };
    return {
      kernel: readHostFile(v.kernel, 'kernel'),
      kernelName: v.kernel,
      initrd: v.initrd ? readHostFile(v.initrd, 'initrd') : undefined,
      append: v.append,
      firmware,
    };
  }
  if (v.bios === 'none') throw new VirtusError('BAD_FLAG', 'run: --bios none needs --kernel FILE', { exitCode: 2 });
  const g = await defaultGuest();
  if (v.bios === 'opensbi') firmware = { bytes: readHostFile(g.opensbi, 'firmware'), name: 'opensbi' };
  else if (v.bios) firmware = { bytes: readHostFile(v.bios, 'firmware'), name: v.bios };
  return {
    kernel: readHostFile(g.kernel, 'kernel'),
    kernelName: g.kernel,
    initrd: readHostFile(v.initrd ?? g.initrd, 'initrd'),
    append: v.append ?? DEFAULT_APPEND,
    firmware,
  };
}

function defaultGuest() {
  return ensureDefaultGuest({ progress: stderrProgress() });
}

function writeSignature(board: VirtBoard, symbols: Map<string, number>, path: string): void {
  const begin = symbols.get('begin_signature');
  const end = symbols.get('end_signature');
  if (begin === undefined || end === undefined) {
    throw new VirtusError('NO_SIGNATURE', '--signature: the program has no begin_signature/end_signature symbols');
  }
  const lines: string[] = [];
  for (let a = begin; a < end; a += 4) lines.push(board.machine.ram.readU32(a).toString(16).padStart(8, '0'));
  writeHostFile(path, lines.join('\n') + '\n', 'signature');
}
