/**
 * Starting a program in a process, for the first process and for execve: find and read the
 * file and its ELF interpreter (or the interpreter of a `#!` script) while the old image still
 * stands, so a failure is an errno for the caller; then replace the address space, load, and
 * set the hart at the entry point with the initial stack (loader.ts).
 */
import { VirtusError } from '../util/errors.ts';
import { AT, E, S_IFDIR, S_IFMT, S_IFREG, TASK_SIZE } from './abi.ts';
import { parseProgram, type ElfProgram } from './elf.ts';
import type { ExecHost } from './host.ts';
import { buildStack, HWCAP_RV64GC, loadImage, PIE_BASE } from './loader.ts';
import { errnoText, type GuestProcess } from './process.ts';
import { SignalState } from './signals.ts';

/** A program ready to start. */
export interface Prepared {
  /** Guest-absolute path of the program (a script's interpreter for `#!`). */
  path: string;
  file: Uint8Array;
  elf: ElfProgram;
  interp: { file: Uint8Array; elf: ElfProgram } | null;
  /** For a script: the arguments that replace argv[0] (interpreter, its argument, the script). */
  argvHead: string[] | null;
}

/** Why a program cannot start: the errno for execve and a message for the user. */
export interface NotStarted {
  errno: number;
  message: string;
}

const MAX_FILE = 1 << 30;

/** The whole of a file through the host, or -errno. */
export function readFileAt(host: ExecHost, path: string): Uint8Array | number {
  const fd = host.open(path, { read: true, write: false, create: false, exclusive: false, truncate: false, append: false, directory: false, noFollow: true, mode: 0 });
  if (fd < 0) return fd;
  try {
    const st = host.fstat(fd);
    if (typeof st === 'number') return st;
    if ((st.mode & S_IFMT) === S_IFDIR) return -E.EISDIR;
    if ((st.mode & S_IFMT) !== S_IFREG) return -E.EACCES;
    if (st.size > BigInt(MAX_FILE)) return -E.EFBIG;
    const buf = new Uint8Array(Number(st.size));
    let done = 0;
    while (done < buf.length) {
      const n = host.read(fd, buf.subarray(done), done);
      if (n < 0) return n;
      if (n === 0) break;
      done += n;
    }
    return buf.subarray(0, done);
  } finally {
    host.close(fd);
  }
}

/** Finds, reads and checks the program `name` (resolved from the process's cwd). */
export function prepareProgram(p: GuestProcess, name: string, script = 0): Prepared | NotStarted {
  const fail = (errno: number, why = errnoText(errno)): NotStarted => ({ errno, message: `${name}: ${why}` });
  // /proc/self/exe is the running program (busybox runs its applets again through it).
  const path = name === '/proc/self/exe' ? p.exe : p.resolve(p.cwd, name, true);
  if (typeof path === 'number') return fail(path);
  const file = readFileAt(p.host, path);
  if (typeof file === 'number') return fail(file);
  if (file[0] === 0x23 && file[1] === 0x21) {
    // A script: "#!interpreter [one argument]" (execve(2)); the interpreter may not be a script.
    const end = file.indexOf(10);
    const line = new TextDecoder().decode(file.subarray(2, end < 0 ? Math.min(file.length, 256) : Math.min(end, 256))).trim();
    const [interp, ...rest] = line.split(/[ \t]+/);
    if (!interp || script > 0) return fail(-E.ENOEXEC, 'not an executable (a script whose interpreter is missing or a script)');
    const inner = prepareProgram(p, interp, script + 1);
    if ('errno' in inner) return inner;
    const arg = rest.join(' ');
    return { ...inner, argvHead: [interp, ...(arg ? [arg] : []), name] };
  }
  let elf: ElfProgram;
  try {
    elf = parseProgram(file, name);
  } catch (e) {
    if (e instanceof VirtusError) return { errno: -E.ENOEXEC, message: e.message };
    throw e;
  }
  let interp: Prepared['interp'] = null;
  if (elf.interp !== null) {
    const ipath = p.resolve('/', elf.interp, true);
    const ifile = typeof ipath === 'number' ? ipath : readFileAt(p.host, ipath);
    if (typeof ifile === 'number') {
      return fail(ifile, `its interpreter ${elf.interp} is not in the root (${errnoText(ifile)}); give the root with --root`);
    }
    try {
      interp = { file: ifile, elf: parseProgram(ifile, elf.interp) };
    } catch (e) {
      if (e instanceof VirtusError) return { errno: -E.ELIBBAD, message: e.message };
      throw e;
    }
  }
  return { path, file, elf, interp, argvHead: null };
}

/**
 * Replaces the process's image with `prog` (execve's point of no return): the old mappings go,
 * the program and its interpreter are loaded, and the hart starts at the entry point.
 */
export function startProgram(p: GuestProcess, prog: Prepared, argv: string[], envp: string[], execfn: string): void {
  const as = p.as;
  p.syncShared(0, TASK_SIZE);
  as.unmap(0, TASK_SIZE);
  const main = loadImage(as, prog.elf, prog.file, prog.elf.dyn ? PIE_BASE : null);
  as.brkStart = as.brkEnd = main.end;
  let entry = main.entry;
  let interpBase = 0;
  if (prog.interp) {
    const interp = loadImage(as, prog.interp.elf, prog.interp.file, null);
    entry = interp.entry;
    interpBase = interp.bias;
  }
  SignalState.mapTrampoline(p);
  const args = prog.argvHead ? [...prog.argvHead, ...argv.slice(1)] : argv;
  const random = new Uint8Array(16);
  p.host.random(random);
  const ids = p.host.ids;
  const sp = buildStack(as, {
    argv: args,
    envp,
    execfn,
    random,
    auxv: [
      [AT.PHDR, main.phdr], [AT.PHENT, prog.elf.phentsize], [AT.PHNUM, prog.elf.phnum], [AT.PAGESZ, 4096],
      [AT.BASE, interpBase], [AT.FLAGS, 0], [AT.ENTRY, main.entry], [AT.UID, ids.uid], [AT.EUID, ids.uid],
      [AT.GID, ids.gid], [AT.EGID, ids.gid], [AT.HWCAP, HWCAP_RV64GC], [AT.CLKTCK, 100], [AT.SECURE, 0],
    ],
  });
  p.exe = prog.path;
  p.argv = args;
  p.dropOtherThreads();
  const h = p.hart;
  h.x.fill(0);
  h.f.fill(0);
  h.set('fcsr', 0, 0);
  p.configureHart();
  h.setPcNum(entry);
  h.setX(2, BigInt(sp));
}
