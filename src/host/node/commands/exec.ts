/**
 * `virtus exec`: runs a riscv64 Linux program as a process on this host (the process VM of
 * src/exec/), as `qemu-riscv64` does: its system calls are served by the host's files, clocks
 * and streams; with --root, inside a directory that is its `/`.
 */
import { realpathSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { syscallName } from '../../../exec/abi.ts';
import { ExecKernel } from '../../../exec/kernel.ts';
import { VirtusError } from '../../../util/errors.ts';
import { parseSize } from '../../../util/size.ts';
import { parseFlags, type Command } from '../command.ts';
import { NodeExecHost } from '../exec/node-host.ts';

const HELP = `usage: virtus exec [options] PROGRAM [ARGS...]

Runs a riscv64 Linux program (static or dynamically linked) as a process, as
qemu-riscv64 does: the program's system calls are served by this host. Its
exit status is virtus's exit status; a program killed by a signal kills virtus
with the same signal.

  --root DIR           the directory the program sees as /: PROGRAM, its ELF
                       interpreter and every path it uses are resolved inside
                       it ('..' and symbolic links never lead out). Default: /
  --cwd DIR            the working directory, inside the root (default: the
                       current directory without --root, / with it)
  --env K=V            set a variable in the program's environment (repeatable;
                       it starts as virtus's own environment)
  --unset-env K        remove a variable from it (repeatable)
  --memory SIZE        guest RAM for the process (default 1G; used as touched)
  --engine jit|interp  how guest code runs (default jit)
  --stats              at exit, print the system calls made and those that
                       returned ENOSYS
  -h, --help           show this help`;

const SIGPIPE = 13;

const OPTIONS = {
  root: { type: 'string' },
  cwd: { type: 'string' },
  env: { type: 'string', multiple: true },
  'unset-env': { type: 'string', multiple: true },
  memory: { type: 'string' },
  engine: { type: 'string' },
  stats: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Splits argv at PROGRAM: virtus's flags before it, the program's arguments from it on. */
function splitAtProgram(argv: string[]): [flags: string[], rest: string[]] {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return [argv.slice(0, i), argv.slice(i + 1)];
    if (!a.startsWith('-') || a === '-') return [argv.slice(0, i), argv.slice(i)];
    const name = a.replace(/^--?/, '').split('=')[0]!;
    const def = (OPTIONS as Record<string, { type: string }>)[name];
    if (def?.type === 'string' && !a.includes('=')) i++;
  }
  return [argv, []];
}

export const execCommand: Command = {
  name: 'exec',
  summary: 'run a riscv64 Linux program as a process (like qemu-riscv64)',
  async run(argv) {
    const [flagArgs, rest] = splitAtProgram(argv);
    const { values: v } = parseFlags('exec', flagArgs, OPTIONS);
    if (v.help) {
      console.log(HELP);
      return 0;
    }
    if (rest.length === 0) throw new VirtusError('BAD_FLAG', "exec: no program given (try 'virtus exec --help')", { exitCode: 2 });
    if (v.engine !== undefined && v.engine !== 'jit' && v.engine !== 'interp') {
      throw new VirtusError('BAD_FLAG', `exec: --engine must be jit or interp, not '${v.engine}'`, { exitCode: 2 });
    }
    let root = '/';
    if (v.root !== undefined) {
      try {
        root = realpathSync(resolve(v.root));
        if (!statSync(root).isDirectory()) throw new Error();
      } catch {
        throw new VirtusError('EXEC_ROOT', `exec: --root ${v.root} is not a directory`, { exitCode: 2 });
      }
    }
    const env = new Map(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined));
    for (const kv of v.env ?? []) {
      const eq = kv.indexOf('=');
      if (eq <= 0) throw new VirtusError('BAD_FLAG', `exec: --env takes K=V, not '${kv}'`, { exitCode: 2 });
      env.set(kv.slice(0, eq), kv.slice(eq + 1));
    }
    for (const k of v['unset-env'] ?? []) env.delete(k);
    const memory = v.memory === undefined ? undefined : parseSize(v.memory, '--memory');
    // The guest's umask is applied by the process VM; the host's must not narrow it again.
    process.umask(0);
    const host = new NodeExecHost(root);
    const kernel = new ExecKernel(host, { memory, engine: v.engine as 'jit' | 'interp' | undefined });
    const t0 = performance.now();
    const first = kernel.start({
      program: rest[0]!,
      argv: rest,
      envp: [...env].map(([k, val]) => `${k}=${val}`),
      cwd: v.cwd ?? (root === '/' ? process.cwd() : '/'),
    });
    let exit;
    try {
      exit = kernel.run();
    } finally {
      host.terminal?.restore();
    }
    if (v.stats) printStats(kernel, first.machine.instret(), performance.now() - t0);
    if (exit.signal !== null) {
      // Like a shell, say nothing of SIGPIPE: the reader went away, which is how pipelines end.
      if (exit.signal !== SIGPIPE) process.stderr.write(`virtus exec: ${rest[0]} killed by ${exit.message}\n`);
      try {
        process.kill(process.pid, exit.signal);
      } catch {
        // a signal this host cannot send itself
      }
      // Still here (Node ignores SIGPIPE, for one): the shell's convention, 128 + signal.
    }
    return exit.code;
  },
};

function printStats(k: ExecKernel, insns: number, ms: number): void {
  const lines = [`first process: ${insns} instructions; ${ms.toFixed(0)} ms in all; ${k.forks} processes forked`];
  const fmt = (m: Map<number, number>) => [...m].sort((a, b) => b[1] - a[1]).map(([n, c]) => `${syscallName(n)} ${c}`).join(', ') || 'none';
  lines.push(`system calls: ${fmt(k.calls)}`);
  lines.push(`ENOSYS (not implemented): ${fmt(k.unimplemented)}`);
  process.stderr.write(`${lines.join('\n')}\n`);
}
