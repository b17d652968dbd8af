/**
 * A scripted tour of Debian's riscv64 busybox (busybox-static, from the default guest's
 * packages) under `virtus exec` and under qemu-riscv64: the shell with pipes, command
 * substitution, functions and exit codes, and applets for files, text, archives and checksums.
 * stdout, stderr and the exit status must be the same.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ExecKernel } from '../../src/exec/kernel.ts';
import { MemExecHost } from '../../src/exec/mem-host.ts';
import { LineDiscipline } from '../../src/host/browser/exec/tty.ts';
import { cacheRoot, ensureDefaultGuest, stderrProgress } from '../../src/host/node/guest/index.ts';
import { runQemuUser, runVirtusExec, type ExecRunOptions } from '../support/exec.ts';
import { requireTool, VIRTUS } from '../support/toolchain.ts';

let scratch = '';
let busybox = '';

before(async () => {
  const guest = await ensureDefaultGuest({ progress: stderrProgress() });
  scratch = mkdtempSync(join(tmpdir(), 'virtus-busybox-'));
  const deb = join(cacheRoot(), 'debs', guest.manifest.packages.busybox.file);
  const r = spawnSync('dpkg-deb', ['-x', deb, scratch], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  busybox = join(scratch, 'usr/bin/busybox');
});

after(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

const setup = (dir: string): void => {
  writeFileSync(join(dir, 'fruits'), 'pear 3\napple 10\nfig 7\napple 2\nplum 10\n');
  writeFileSync(join(dir, 'poem'), 'The quick brown fox\njumps over\nthe lazy dog\n');
};

/**
 * A shell script under both. PATH names an empty directory: under qemu-riscv64, busybox's
 * re-execution of itself fails (there is no binfmt_misc here), and the shell would then run
 * the host's own commands from PATH, which is no reference. So these scripts use what the
 * shell runs without exec: its builtins and busybox's NOFORK applets.
 */
function sameScript(script: string): void {
  const o: ExecRunOptions = { setup, env: { PATH: '/nonexistent-virtus-test' } };
  const args = ['sh', '-c', script];
  const want = runQemuUser(busybox, args, o);
  const got = runVirtusExec(busybox, args, o);
  assert.equal(got.stdout, want.stdout, 'stdout');
  assert.equal(got.stderr, want.stderr, 'stderr');
  assert.deepEqual([got.status, got.signal], [want.status, want.signal], 'exit status');
}

const TEXT_TOUR = [
  ['grep', '-n', 'apple', 'fruits'], ['grep', '-c', '1', 'fruits'], ['grep', '-v', '-i', 'the', 'poem'], ['grep', 'kiwi', 'fruits'],
  ['sed', '-e', 's/apple/APPLE/g', '-e', '/fig/d', 'fruits'],
  ['awk', '{ s[$1] += $2 } END { n = 0; for (k in s) n += s[k]; print n, length(s) }', 'fruits'],
  ['sort', '-k2,2n', '-k1,1', 'fruits'], ['sort', '-u', '-k1,1', 'fruits'], ['uniq', '-c', 'fruits'], ['cut', '-d', ' ', '-f2', 'fruits'],
  ['wc', 'poem'], ['wc', '-l', 'poem', 'fruits'], ['tail', '-n', '1', 'poem'], ['od', '-c', 'poem'], ['expand', 'poem'],
];

const quote = (a: string): string => `'${a.replace(/'/g, `'\\''`)}'`;

/**
 * Applets one after another in one directory: under qemu-riscv64 each is its own run of
 * busybox; under virtus, one busybox shell runs them all (forking, and executing busybox
 * again through /proc/self/exe for each). Each command's output and exit status must agree.
 */
function sameApplets(commands: string[][]): void {
  requireTool('qemu-riscv64');
  const dirs = [mkdtempSync(join(tmpdir(), 'virtus-bb-')), mkdtempSync(join(tmpdir(), 'virtus-bb-'))];
  try {
    dirs.forEach(setup);
    let stdout = '';
    let stderr = '';
    for (const c of commands) {
      const r = spawnSync('qemu-riscv64', [busybox, ...c], { cwd: dirs[0], encoding: 'utf8', input: '' });
      stdout += `${r.stdout}rc=${r.status}\n`;
      stderr += r.stderr;
    }
    const script = commands.map((c) => `${c.map(quote).join(' ')}; echo rc=$?`).join('\n');
    const got = spawnSync(process.execPath, [VIRTUS, 'exec', busybox, 'sh', '-c', script], { cwd: dirs[1], encoding: 'utf8', input: '' });
    assert.equal(got.stdout, stdout, 'stdout');
    assert.equal(got.stderr, stderr, 'stderr');
    assert.equal(got.status, 0, 'exit status');
  } finally {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}

/** Runs `busybox sh -c script` in this process over an in-memory file system holding busybox and the setup files. */
function runOnMemHost(script: string, terminal?: LineDiscipline): { stdout: string; stderr: string; code: number } {
  const out: Uint8Array[][] = [[], []];
  const host = new MemExecHost({ read: () => null, write: (fd, b) => out[fd - 1]!.push(b), terminal });
  host.mkdirp('/bin');
  host.writeFile('/bin/busybox', new Uint8Array(readFileSync(busybox)), 0o755);
  host.mkdirp('/work');
  const dir = mkdtempSync(join(tmpdir(), 'virtus-bb-'));
  try {
    setup(dir);
    for (const f of ['fruits', 'poem']) host.writeFile(`/work/${f}`, new Uint8Array(readFileSync(join(dir, f))));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const kernel = new ExecKernel(host, { memory: 256 << 20 });
  kernel.start({ program: '/bin/busybox', argv: ['busybox', 'sh', '-c', script], envp: ['PATH=/bin'], cwd: '/work' });
  const exit = kernel.run();
  const text = (parts: Uint8Array[]) => Buffer.concat(parts).toString('utf8');
  return { stdout: text(out[0]!), stderr: text(out[1]!), code: exit.code };
}

describe('busybox under virtus exec and qemu-riscv64', () => {
  it('sh: pipes, command substitution, functions, loops, arithmetic, read and exit codes', () =>
    sameScript(`
      f() { echo "f got $# args: $*"; return 3; }
      f a "b c"; echo "status $?"
      for i in 1 2 3; do printf '%s-' $((i * i)); done; echo
      x=$(echo hello | head -n 1); echo "$x" \${#x}
      case $x in he*) echo matched;; *) echo no;; esac
      (exit 5); echo "subshell $?"
      yes | head -n 2
      seq 3 | { read a; read b; echo "$b after $a"; }
      echo one two three | { read a b; echo "$b/$a"; }
      false || echo "or-else"; true && echo "and-then"
      test -f fruits && echo "fruits is a file"
      [ -d nothing ] || echo "no directory"
      printf '%05.1f|%-4s|%x\\n' 3.14159 ab 255
      head -n 2 fruits poem | head -n 4
      no-such-command; echo "not found: $?"
      exit 4`));

  it('sh reads its script from stdin, as a shell in a pipeline does', () => {
    const script = 'echo "from stdin"; read line; echo "then read: $line"; exit 3\nthe next line\n';
    const o: ExecRunOptions = { setup, env: { PATH: '/nonexistent-virtus-test' }, input: script };
    const want = runQemuUser(busybox, ['sh'], o);
    const got = runVirtusExec(busybox, ['sh'], o);
    // ash reads its script in blocks from a pipe, so `read` finds the rest already taken.
    assert.equal(want.stdout, 'from stdin\nthen read: \n');
    assert.equal(want.status, 3);
    assert.deepEqual(got, want);
  });

  it('a writer whose reader went away dies of SIGPIPE, silently, as under qemu-riscv64', () => {
    const pipeline = (runner: string) =>
      spawnSync('bash', ['-c', `${runner} ${quote(busybox)} yes | head -n 1; echo "status \${PIPESTATUS[0]}"`], { encoding: 'utf8', timeout: 60_000 });
    const want = pipeline('qemu-riscv64');
    const got = pipeline(`${quote(process.execPath)} ${quote(VIRTUS)} exec`);
    assert.equal(want.stdout, 'y\nstatus 141\n');
    assert.equal(got.stdout, want.stdout);
    assert.equal(got.stderr, want.stderr);
  });

  it('files: mkdir, cp, mv, ln, find, ls, rm, stat, du, touch', () =>
    sameApplets([
      ['mkdir', '-p', 'a/b/c'], ['cp', 'fruits', 'a/b/c/f'], ['cp', '-r', 'a', 'z'], ['mv', 'z/b/c/f', 'z/b/c/g'],
      ['ln', '-s', '../fruits', 'a/link'], ['head', '-n', '1', 'a/link'], ['find', '.', '-name', '[fg]'], ['ls', '-R', 'a', 'z'],
      ['stat', '-c', '%n %s %F %a', 'fruits', 'a', 'a/link'], ['rm', '-r', 'a'], ['ls'], ['ls', 'nothing-here'], ['du', '-s', 'z'],
      ['rmdir', 'z'], ['touch', 'new'], ['ls', '-a'],
    ]));

  it('text: grep, sed, awk, sort, uniq, cut, wc, tail, od, expand', () => sameApplets(TEXT_TOUR));

  it('the text tour again in this process, over the in-memory host a browser tab would use', () => {
    const commands = TEXT_TOUR;
    let stdout = '';
    const dir = mkdtempSync(join(tmpdir(), 'virtus-bb-'));
    try {
      setup(dir);
      for (const c of commands) {
        const r = spawnSync('qemu-riscv64', [busybox, ...c], { cwd: dir, encoding: 'utf8', input: '' });
        stdout += `${r.stdout}rc=${r.status}\n`;
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const got = runOnMemHost(commands.map((c) => `${c.map(quote).join(' ')}; echo rc=$?`).join('\n'));
    assert.equal(got.stdout, stdout);
    assert.equal(got.stderr, '');
    assert.equal(got.code, 0);
  });

  it('a terminal: isatty through glibc 2.42\'s termios2 ioctls, the window size, and stty setting the mode', () => {
    // qemu-riscv64 (7.2) answers TCGETS2 with ENOSYS, so busybox sees no terminal there even
    // on a pty: the reference is Linux's asm-generic ioctls and termios(3).
    const script = 'test -t 0; echo "stdin $?"; test -t 1; echo "stdout $?"; stty size; stty -echo -icanon; stty -a';
    const tty = new LineDiscipline({ screen: () => {}, signal: () => {} });
    tty.resize(100, 30);
    const got = runOnMemHost(script, tty);
    assert.equal(got.stderr, '');
    const lines = got.stdout.split('\n');
    assert.deepEqual(lines.slice(0, 3), ['stdin 0', 'stdout 0', '30 100']);
    assert.match(lines[3]!, /^speed 38400 baud; rows 30; columns 100;/);
    assert.match(got.stdout, / -icanon /);
    assert.match(got.stdout, / -echo /);
    const attr = tty.getAttr();
    assert.equal(attr[12]! & 0o12, 0, 'ICANON and ECHO are off in the terminal itself');
    const none = runOnMemHost('test -t 0; echo "stdin $?"; stty size');
    assert.equal(none.stdout, 'stdin 1\n');
    assert.match(none.stderr, /^stty: standard input: Inappropriate ioctl for device$/m);
  });

  it('no terminal on /dev/null, a character device that is not one, as under qemu-riscv64', () => {
    // Node's 'ignore' is /dev/null; the host's isatty is asked only for character devices.
    const script = 'test -t 0; echo "stdin $?"; test -t 2; echo "stderr $?"; stty size; echo "stty $?"';
    const run = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const want = run('qemu-riscv64', [busybox, 'sh', '-c', script]);
    const got = run(process.execPath, [VIRTUS, 'exec', busybox, 'sh', '-c', script]);
    assert.equal(want.stdout, 'stdin 1\nstderr 1\nstty 1\n');
    assert.equal(got.stdout, want.stdout);
    assert.equal(got.status, 0);
  });

  it('an interactive shell on a terminal (a pty): raw mode for its line editor, so each line echoes once, and the cooked mode back at the end', async () => {
    requireTool('script');
    // script(1) runs the command on a new pty; stty after virtus shows the mode it left.
    const cmd = `stty rows 33 cols 99; ${quote(process.execPath)} ${quote(VIRTUS)} exec ${quote(busybox)} sh; stty -a`;
    const child = spawn('script', ['-qec', cmd, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    const steps: Array<[RegExp, string]> = [[/commands\.\r\n\r\n.*[#$] $/, 'echo "hi""there"; stty size\n'], [/hithere\r\n33 99\r\n.*[#$] $/, 'exit 5\n']];
    const done = new Promise<number | null>((resolve) => child.on('exit', resolve));
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString('latin1');
      if (steps[0] && steps[0][0].test(out)) child.stdin!.write(steps.shift()![1]);
    });
    const timer = setTimeout(() => child.kill(), 60_000);
    await done;
    clearTimeout(timer);
    const lines = out.split('\r\n');
    assert.equal(lines.filter((l) => l.endsWith('echo "hi""there"; stty size')).length, 1, `one echo of the typed line:\n${out}`);
    assert.ok(lines.includes('hithere') && lines.includes('33 99'), out);
    assert.match(out, / icanon .* echo /s, 'the terminal is cooked again after virtus');
  });

  it('archives and checksums: gzip, tar, bzip2, sha256sum, md5sum, sha1sum, cmp', () =>
    sameApplets([
      ['sh', '-c', 'seq 1 3000 > numbers'], ['gzip', '-9', 'numbers'], ['ls'], ['gzip', '-t', 'numbers.gz'], ['gunzip', 'numbers.gz'],
      ['md5sum', 'numbers'], ['tar', 'cf', 't.tar', 'fruits', 'poem', 'numbers'], ['tar', 'tf', 't.tar'], ['mkdir', 'out'],
      ['tar', 'xf', 't.tar', '-C', 'out'], ['cmp', 'out/numbers', 'numbers'], ['cmp', 'fruits', 'poem'], ['sha256sum', 'fruits', 'poem', 'out/poem'],
      ['sha1sum', 'numbers'], ['bzip2', '-k', 'poem'], ['bunzip2', '-c', 'poem.bz2'],
    ]));
});
