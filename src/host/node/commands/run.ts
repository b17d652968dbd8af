/** `virtus run`: boot a machine (or a bare-metal program) and run it until it stops. */
import { writeSync } from 'node:fs';
import { Runner } from '../../../machine/runner.ts';
import { collectStats, formatStats } from '../../../machine/stats.ts';
import { Tracer } from '../../../machine/trace.ts';
import { VirtBoard, type BootOptions } from '../../../machine/virt.ts';
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
import { attachVirtio, VIRTIO_HELP, VIRTIO_OPTIONS } from '../virtio-devices.ts';

const HELP = `usage: virtus run [options]

Boots a RISC-V machine with QEMU's "virt" memory map. Without --kernel, boots the
default guest (Debian's kernel and a busybox initramfs; see 'virtus guest fetch').

  --kernel FILE        kernel or program: a Linux Image (with or without its EFI
                       header) or an ELF file
  --initrd FILE        initial ramdisk
  --image NAME[:TAG]   boot a machine image from the local store (see 'virtus
                       image ls'): its kernel, initrd, command line and memory
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
  -h, --help           show this help

Keys: Ctrl-A X quits, Ctrl-A H lists the keys. The guest's 'poweroff' ends
virtus with exit code 0; 'reboot' restarts the machine. Every machine has a
virtio-rng (entropy from the host; seeded with --deterministic).
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
    const image = v.image !== undefined ? await imageBoot(v.image, v) : null;
    const ramSize = v.memory === undefined && image?.memory ? image.memory : parseSize(v.memory ?? '512M', '--memory', 'M');
    const maxInsns = v['max-insns'] !== undefined ? parseCount(v['max-insns'], '--max-insns') : undefined;
    const engine = v.engine ?? 'jit';
    if (engine !== 'jit' && engine !== 'interp') {
      throw new VirtusError('BAD_FLAG', `run: --engine must be jit or interp, not "${engine}"`, { exitCode: 2 });
    }
    const boot = image ? image.boot : await bootOptions(v);

    const out = new OutputBuffer(process.stdout);
    const board = new VirtBoard({ ramSize, deterministic: v.deterministic ?? false, engine, console: (b) => out.write(b) });
    const virtio = await attachVirtio(board, v, {
      rootDisk: async () => ensureRootDisk(await defaultGuest()),
      output: (b) => out.write(b),
      warn: (line) => process.stderr.write(line + '\n'),
    });
    process.once('exit', () => virtio.close());
    if (virtio.append.length) boot.append = [boot.append, ...virtio.append].filter(Boolean).join(' ');
    const info = board.boot(boot);
    const machine = board.machine;
    if (v['dtb-dump']) {
      writeHostFile(v['dtb-dump'], board.machine.ram.read(info.dtbAddr, info.dtbSize), 'device tree');
      return 0;
    }
    if (boot.firmware === 'none') {
      const tohost = info.symbols.get('tohost');
      if (tohost !== undefined) machine.attachHtif(tohost, info.symbols.get('fromhost') ?? null);
    }

    const host = new NodeRunnerHost();
    const runner = new Runner(machine, host);
    const term = new Terminal({
      input: (b) => {
        if (virtio.console) virtio.console.write(b);
        else board.consoleInput(b);
        host.wake();
      },
      quit: (why) => {
        // End of piped input is not a reason to stop the machine; Ctrl-A X is.
        if (why === 'user') {
          machine.stop({ code: 0, reason: 'exit' });
          runner.requestStop();
          host.wake();
        }
      },
    });
    if (virtio.console && process.stdout.isTTY) {
      process.stdout.on('resize', () => virtio.console?.resize(process.stdout.columns, process.stdout.rows));
    }
    let exit;
    if (v.trace) {
      exit = new Tracer(machine, (line) => writeSync(2, line + '\n')).run(maxInsns);
    } else {
      term.start();
      try {
        for (;;) {
          exit = await runner.run({ maxInsns });
          if (exit?.reason !== 'reboot') break;
          out.flush();
          board.reboot();
        }
      } finally {
        term.stop();
      }
    }
    out.flush();
    virtio.close();
    if (v.stats) process.stderr.write(formatStats(collectStats(board)) + '\n');
    if (v.signature) writeSignature(board, info.symbols, v.signature);
    if (!exit) return 0;
    if (exit.message) console.error(`virtus: ${exit.message}`);
    return exit.code > 255 ? 1 : exit.code;
  },
};

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
