/**
 * The bare-metal runner as a user meets it: exit codes through HTIF, --max-insns, --signature,
 * --trace, and one clear line (never a stack trace) for every kind of bad input.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { buildGuest, runVirtus, VIRTUS } from '../support/toolchain.ts';

const dir = mkdtempSync(join(tmpdir(), 'virtus-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** One line on stderr starting with "virtus:", and no stack trace. */
function assertOneLineError(stderr: string, pattern: RegExp): void {
  const lines = stderr.trim().split('\n');
  assert.equal(lines.length, 1, `expected one line, got:\n${stderr}`);
  assert.match(lines[0]!, /^virtus: /);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(stderr, /\n\s+at /);
}

const asm = (name: string, extra: string[] = []): string =>
  buildGuest(`cli-${name}${extra.map((f) => f.replace(/\W+/g, '-').toLowerCase()).join('')}`, [`cli/${name}.S`], { cflags: extra });

describe('virtus run --bios none', () => {
  it('exits with the code the guest passes to tohost', () => {
    const r = runVirtus(['run', '--bios', 'none', '--kernel', asm('exitcode')]);
    assert.equal(r.status, 42, r.stderr);
  });

  it('refuses a machine too small for its program and its device tree, in one line', () => {
    // With 1 MiB of RAM the device tree's place (the last 2 MiB boundary that fits) is the program's.
    const r = runVirtus(['run', '--bios', 'none', '--kernel', asm('exitcode'), '-m', '1M']);
    assert.equal(r.status, 1);
    assertOneLineError(r.stderr, /the kernel .*exitcode.*\.elf overlaps the device tree at the end of RAM \(try a larger --memory\)/);
  });

  it('refuses a program whose fromhost lies outside RAM, in one line', () => {
    const r = runVirtus(['run', '--bios', 'none', '--kernel', asm('exitcode', ['-DFROMHOST_OUTSIDE'])]);
    assert.equal(r.status, 1);
    assertOneLineError(r.stderr, /the program's fromhost symbol \(0x1000\) is not an aligned 8-byte location in RAM/);
  });

  it('--max-insns stops a runaway guest after exactly N instructions with exit code 124', () => {
    const r = runVirtus(['run', '--bios', 'none', '--kernel', asm('spin'), '--max-insns', '100000']);
    assert.equal(r.status, 124);
    assertOneLineError(r.stderr, /stopped after 100000 instructions/);
    // Exactly N: the trace of a run limited to 7 instructions shows 7 instructions.
    const t = runVirtus(['run', '--bios', 'none', '--kernel', asm('spin'), '--max-insns', '7', '--trace']);
    assert.equal(t.stderr.split('\n').filter((l) => /^[0-9a-f]{16}: /.test(l)).length, 7);
  });

  it("a write of 0x7777 to the syscon reboots the machine (RAM kept, as QEMU's virt); 0x5555 powers off with exit code 0", () => {
    const elf = buildGuest('cli-reboot', ['cli/reboot.S']);
    const r = runVirtus(['run', '--bios', 'none', '--kernel', elf, '--max-insns', '1000000']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'boot 1\nboot 2\n');
    // The reference: QEMU's virt board runs the same program the same way.
    const q = spawnSync('qemu-system-riscv64', ['-M', 'virt', '-bios', 'none', '-kernel', elf, '-nographic', '-monitor', 'none', '-serial', 'stdio'], { encoding: 'utf8', timeout: 60_000, input: '' });
    assert.equal(q.status, 0, q.stderr);
    assert.equal(q.stdout, r.stdout);
  });

  it('a restored machine reboots from the boot images its snapshot kept; -no-reboot ends the run as QEMU does', () => {
    const elf = buildGuest('cli-reboot', ['cli/reboot.S']);
    const dir = mkdtempSync(join(tmpdir(), 'virtus-reboot-'));
    try {
      for (const engine of ['interp', 'jit']) {
        const snap = join(dir, `${engine}.snap`);
        const a = runVirtus(['run', '--bios', 'none', '--kernel', elf, '--engine', engine, '--max-insns', '30', '--snapshot-on-exit', snap]);
        assert.equal(a.status, 124, a.stderr);
        const b = runVirtus(['run', '--restore', snap, '--engine', engine]);
        assert.equal(b.status, 0, b.stderr);
        assert.equal(a.stdout + b.stdout, 'boot 1\nboot 2\n', `${engine}: the restored machine rebooted once, then powered off`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const r = runVirtus(['run', '-bios', 'none', '-kernel', elf, '-no-reboot']);
    const q = spawnSync('qemu-system-riscv64', ['-M', 'virt', '-bios', 'none', '-kernel', elf, '-nographic', '-monitor', 'none', '-serial', 'stdio', '-no-reboot'], { encoding: 'utf8', timeout: 60_000, input: '' });
    assert.equal(q.status, 0, q.stderr);
    assert.equal(r.status, q.status, r.stderr);
    assert.equal(r.stdout, q.stdout);
    assert.equal(r.stdout, 'boot 1\n');
  });

  it('--trace into a pipe shared with stdout waits for a slow reader (EAGAIN), and ends quietly when it goes', () => {
    const elf = asm('spin');
    // 2>&1 makes stderr the pipe Node sets non-blocking for stdout; the reader sleeps first, so it fills.
    const cmd = (reader: string) => `"${process.execPath}" "${VIRTUS}" run --bios none --kernel "${elf}" --max-insns 100000 --trace 2>&1 | ${reader}; echo "status \${PIPESTATUS[0]}"`;
    const slow = spawnSync('bash', ['-c', cmd('(sleep 1; wc -l)')], { encoding: 'utf8', timeout: 60_000 });
    assert.match(slow.stdout, /^\s*100001\n/, slow.stdout + slow.stderr);
    assert.match(slow.stdout, /status 124\n$/);
    const gone = spawnSync('bash', ['-c', cmd('head -3 >/dev/null')], { encoding: 'utf8', timeout: 60_000 });
    assert.doesNotMatch(gone.stdout, /internal error/);
  });

  /** Runs flood.S with its stdout unread for 3 s: what came out, the peak RSS and --stats. */
  async function flood(extra: string[], elf = asm('flood')): Promise<{ code: number | null; got: number; bad: number; peak: number; stderr: string }> {
    const child = spawn(process.execPath, [VIRTUS, 'run', '--bios', 'none', '--kernel', elf, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
    let peak = 0;
    const sample = (): void => {
      try {
        const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0);
        peak = Math.max(peak, kb * 1024);
      } catch {
        // exited
      }
    };
    const timer = setInterval(sample, 100);
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    // Nobody reads for 3 s: the pipe fills, then the guest must wait.
    child.stdout.pause();
    await new Promise((r) => setTimeout(r, 3000));
    sample();
    let got = 0;
    let bad = 0;
    child.stdout.on('data', (b: Buffer) => {
      got += b.length;
      for (const c of b) if (c !== 0x78) bad++;
    });
    child.stdout.resume();
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    clearInterval(timer);
    return { code, got, bad, peak, stderr };
  }

  it('a guest writing faster than its console is read waits for it: bounded memory, nothing lost', async () => {
    // 4 MiB: four times what the output buffer and the pipe hold while nobody reads for 3 s.
    const r = await flood([], asm('flood', ['-DFLOOD_BYTES=0x400000']));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.got, 4 << 20, 'every byte came out');
    assert.equal(r.bad, 0);
    assert.ok(r.peak < 400 << 20, `peak RSS ${(r.peak / 2 ** 20).toFixed(0)} MiB`);
  });

  it('a deterministic guest waits for a slow reader without seeing it: the same instructions as when read at once', async () => {
    // 4 MiB: more than the 1 MiB of output buffer and the pipe take while nobody reads for 3 s
    // (a deterministic guest writes about half a megabyte a second), so the guest waits.
    const elf = asm('flood', ['-DFLOOD_BYTES=0x400000']);
    const slow = await flood(['--deterministic', '--stats'], elf);
    assert.equal(slow.code, 0, slow.stderr);
    assert.equal(slow.got, 4 << 20, 'every byte came out');
    assert.ok(slow.peak < 400 << 20, `peak RSS ${(slow.peak / 2 ** 20).toFixed(0)} MiB`);
    const fast = spawnSync(process.execPath, [VIRTUS, 'run', '--bios', 'none', '--kernel', elf, '--deterministic', '--stats'], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'], timeout: 120_000 });
    assert.equal(fast.status, 0, fast.stderr);
    const insns = (s: string) => /^instructions: (\d+)$/m.exec(s)?.[1];
    assert.ok(insns(fast.stderr), fast.stderr);
    assert.equal(insns(slow.stderr), insns(fast.stderr));
  });

  it('--signature writes the words between begin_signature and end_signature', () => {
    const out = join(dir, 'sig.txt');
    const r = runVirtus(['run', '--bios', 'none', '--kernel', asm('signature'), '--signature', out]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(readFileSync(out, 'utf8'), '11111111\n33333333\n99999999\ncccccccb\ncafef00d\n');
  });

  it('--trace prints the pc, the disassembly and the register written', () => {
    const r = runVirtus(['run', '--bios', 'none', '--kernel', asm('spin'), '--max-insns', '3', '--trace']);
    const lines = r.stderr.split('\n');
    assert.match(lines[0]!, /^0000000080000000: li\ta0,0 +a0=0x0000000000000000$/);
    // objdump 2.40 prints c.addi as "add" with an immediate; the disassembler matches it.
    assert.match(lines[1]!, /^0000000080000002: add\ta0,a0,1 +a0=0x0000000000000001$/);
    assert.match(lines[2]!, /^0000000080000004: j\t(0x)?80000002/);
  });
});

describe('bad input gets one clear line and a non-zero exit', () => {
  it('a missing file', () => {
    const r = runVirtus(['run', '--bios', 'none', '--kernel', join(dir, 'nope.elf')]);
    assert.equal(r.status, 1);
    assertOneLineError(r.stderr, /cannot open kernel .*nope\.elf: no such file/);
  });

  it('a file that is neither ELF nor a Linux Image', () => {
    const f = join(dir, 'text.bin');
    writeFileSync(f, 'hello, this is not a kernel\n'.repeat(10));
    const r = runVirtus(['run', '--bios', 'none', '--kernel', f]);
    assert.equal(r.status, 1);
    assertOneLineError(r.stderr, /neither an ELF file nor a RISC-V Linux Image/);
  });

  it('an ELF file for another machine', () => {
    const r = runVirtus(['run', '--bios', 'none', '--kernel', process.execPath]);
    assert.equal(r.status, 1);
    assertOneLineError(r.stderr, /is an ELF file for x86-64, not RISC-V/);
  });

  it('a 32-bit RISC-V ELF file', () => {
    const elf = buildGuest('cli-exit32', ['cli/exit32.S'], { march: 'rv32imac', cflags: ['-mabi=ilp32'] });
    const r = runVirtus(['run', '--bios', 'none', '--kernel', elf]);
    assert.equal(r.status, 1);
    assertOneLineError(r.stderr, /32-bit ELF file; virtus runs 64-bit RISC-V/);
  });

  it('segments outside RAM', () => {
    const elf = buildGuest('cli-lowaddr', ['cli/exitcode.S'], { ldscript: join(import.meta.dirname, '../guest/cli/low.ld') });
    const r = runVirtus(['run', '--bios', 'none', '--kernel', elf]);
    assert.equal(r.status, 1);
    assertOneLineError(r.stderr, /does not fit in guest RAM: it needs 0x40000000-/);
  });

  it('an unknown flag, a bad size and a bad count', () => {
    let r = runVirtus(['run', '--frobnicate']);
    assert.equal(r.status, 2);
    assertOneLineError(r.stderr, /unknown option '--frobnicate'/);
    r = runVirtus(['run', '--memory', '12Q', '--bios', 'none', '--kernel', 'x']);
    assert.equal(r.status, 1);
    assertOneLineError(r.stderr, /--memory: "12Q" is not a size/);
    r = runVirtus(['run', '--max-insns', 'lots', '--bios', 'none', '--kernel', 'x']);
    assert.equal(r.status, 2);
    assertOneLineError(r.stderr, /--max-insns: "lots" is not a whole number/);
  });

  it('an unknown command', () => {
    const r = runVirtus(['frobnicate']);
    assert.equal(r.status, 2);
    assertOneLineError(r.stderr, /unknown command 'frobnicate'/);
  });
});
