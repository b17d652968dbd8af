/** `virtus run`: boot a machine (or a bare-metal program) and run it until it stops. */
import { writeSync } from 'node:fs';
import { parseElf } from '../../../machine/elf.ts';
import { Machine } from '../../../machine/machine.ts';
import { Runner } from '../../../machine/runner.ts';
import { VirtusError } from '../../../util/errors.ts';
import { parseSize } from '../../../util/size.ts';
import { parseCount, parseFlags, type Command } from '../command.ts';
import { readHostFile, writeHostFile } from '../files.ts';
import { NodeRunnerHost, OutputBuffer } from '../runner-host.ts';
import { Tracer } from '../../../machine/trace.ts';

const HELP = `usage: virtus run [options]

Boots a RISC-V machine (QEMU's "virt" memory map).

  --kernel FILE        program or kernel to run (ELF, or a Linux Image)
  --bios FILE|none     firmware; "none" starts --kernel directly in M-mode
  --memory SIZE        guest RAM (default 512M)
  --max-insns N        stop after exactly N instructions (exit code 124)
  --signature FILE     at exit, write the words between begin_signature and
                       end_signature, one 32-bit hex word per line
  --trace              print every executed instruction to stderr
  --deterministic      derive time from the instruction count (reproducible runs)
  -h, --help           show this help

With --bios none, an ELF's segments load at their physical addresses and the
hart starts at its entry in M-mode with a0 = 0 (the hart id). When the ELF has
a "tohost" symbol, the HTIF protocol of RISC-V test programs is served: the
guest's exit code becomes virtus's exit code.`;

const OPTIONS = {
  kernel: { type: 'string' },
  bios: { type: 'string' },
  memory: { type: 'string', short: 'm' },
  'max-insns': { type: 'string' },
  signature: { type: 'string' },
  trace: { type: 'boolean' },
  deterministic: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const runCommand: Command = {
  name: 'run',
  summary: 'boot a machine or run a bare-metal program',
  async run(argv) {
    const { values: v } = parseFlags('run', argv, OPTIONS);
    if (v.help) {
      console.log(HELP);
      return 0;
    }
    const ramSize = parseSize(v.memory ?? '512M', '--memory', 'M');
    const maxInsns = v['max-insns'] !== undefined ? parseCount(v['max-insns'], '--max-insns') : undefined;
    if (v.bios !== 'none') {
      throw new VirtusError('NOT_YET', 'only --bios none is supported so far (a program to run with --kernel)', { exitCode: 2 });
    }
    if (!v.kernel) throw new VirtusError('BAD_FLAG', 'run: --kernel FILE is required with --bios none', { exitCode: 2 });

    const out = new OutputBuffer(process.stdout);
    const machine = new Machine({ ramSize, deterministic: v.deterministic ?? false, console: (b) => out.write(b) });
    const elf = parseElf(readHostFile(v.kernel, 'kernel'), v.kernel);
    for (const seg of elf.segments) {
      if (!machine.ram.contains(seg.paddr, seg.memsz)) {
        throw new VirtusError(
          'ELF_RANGE',
          `${v.kernel}: segment at 0x${seg.paddr.toString(16)} (${seg.memsz} bytes) lies outside RAM ` +
            `(0x${machine.ram.base.toString(16)}-0x${(machine.ram.end - 1).toString(16)})`,
        );
      }
      machine.ram.load(seg.paddr, seg.data);
      machine.ram.zero(seg.paddr + seg.data.length, seg.memsz - seg.data.length);
    }
    const tohost = elf.symbols.get('tohost');
    if (tohost !== undefined) machine.attachHtif(tohost, elf.symbols.get('fromhost') ?? null);
    const hart = machine.harts[0]!;
    hart.setPcNum(elf.entry);
    hart.setX(10, 0n);

    const host = new NodeRunnerHost();
    const runner = new Runner(machine, host);
    let exit;
    if (v.trace) {
      const tracer = new Tracer(machine, (line) => writeSync(2, line + '\n'));
      exit = tracer.run(maxInsns);
    } else {
      exit = await runner.run({ maxInsns });
    }
    out.flush();
    if (v.signature) writeSignature(machine, elf.symbols, v.signature);
    if (!exit) return 0;
    if (exit.message) console.error(`virtus: ${exit.message}`);
    return exit.code > 255 ? 1 : exit.code;
  },
};

function writeSignature(machine: Machine, symbols: Map<string, number>, path: string): void {
  const begin = symbols.get('begin_signature');
  const end = symbols.get('end_signature');
  if (begin === undefined || end === undefined) {
    throw new VirtusError('NO_SIGNATURE', '--signature: the program has no begin_signature/end_signature symbols');
  }
  const lines: string[] = [];
  for (let a = begin; a < end; a += 4) lines.push(machine.ram.readU32(a).toString(16).padStart(8, '0'));
  writeHostFile(path, lines.join('\n') + '\n', 'signature');
}
