/**
 * The disassembler against GNU objdump (Debian's binutils-riscv64-unknown-elf, `objdump -d`):
 * programs built with the cross toolchains at test time are disassembled by both, and every
 * instruction line must match exactly. The programs: a hand-written file with every row of
 * the table (test/guest/isa/all.S); generated files with every 16-bit word, every CSR under
 * each privileged spec, every funct combination and seeded random words of every row; real
 * compiled C (the project's test programs, a C mix at several optimisation levels, a static
 * glibc program, the shared C library, the OpenSBI firmware QEMU ships).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { BUILD, buildGuest, GUEST_SRC, requireTool } from '../support/toolchain.ts';
import { decode } from '../../src/isa/decode.ts';
import { Disassembler } from '../../src/isa/disasm.ts';
import { CINSNS } from '../../src/isa/rvc.ts';
import { INSNS } from '../../src/isa/table.ts';
import { readElfInfo, SHF_EXECINSTR } from './elf-info.ts';
import {
  allCompressed, allCsrs, functSweep, insnFile, privSpecAttributes, randomMajors, randomRows, randomStream,
} from './gen.ts';
import { compareWithObjdump, type CompareOptions } from './objdump.ts';

/** Compares `elf` with objdump; fails on any difference, showing the first ones. */
function check(elf: string, minLines: number, o: CompareOptions = {}): number {
  const r = compareWithObjdump(elf, o);
  assert.equal(
    r.mismatchCount, 0,
    `${r.mismatchCount} of ${r.compared + r.mismatchCount} lines of ${elf} differ (address: objdump | virtus):\n` +
      r.mismatches.join('\n'),
  );
  assert.ok(r.compared >= minLines, `${elf}: only ${r.compared} lines compared, expected at least ${minLines}`);
  return r.compared;
}

// A global pointer, so gp-relative addresses get objdump's comments too. Absolute: a symbol
// inside the code could fall in the middle of an instruction, where objdump cuts it in two.
const GP = ['  .globl __global_pointer$', '  __global_pointer$ = 0x80401800'];

/** Writes generated assembly under build/ (only when it changed) and builds it. */
function buildGenerated(name: string, asm: string, cflags: string[] = []): string {
  const dir = join(BUILD, 'isa');
  mkdirSync(dir, { recursive: true });
  const src = join(dir, `${name}.S`);
  if (!existsSync(src) || readFileSync(src, 'utf8') !== asm) writeFileSync(src, asm);
  return buildGuest(name, [src], { cflags });
}

test('every table row, hand-written (test/guest/isa/all.S)', () => {
  const elf = buildGuest('isa-all', ['isa/all.S']);
  check(elf, 400);
  // The file must keep covering the whole table.
  const info = readElfInfo(elf);
  const seen = new Set<string>();
  for (const sec of info.sections.filter((x) => x.flags & SHF_EXECINSTR)) {
    const bytes = info.bytes.subarray(sec.offset, sec.offset + sec.size);
    for (const { bytes: b } of new Disassembler().range(bytes, sec.addr)) {
      if (b.length > 4) continue;
      const d = decode(b.reduce((w, byte, i) => w | (byte << (8 * i)), 0));
      if (d) seen.add(d.cdef?.name ?? d.def.name);
    }
  }
  const missing = [...INSNS, ...CINSNS].map((x) => x.name).filter((n) => !seen.has(n));
  assert.deepEqual(missing, [], `all.S does not exercise ${missing.join(', ')}`);
});

test('every 16-bit word', () => {
  check(buildGenerated('isa-rvc', insnFile(allCompressed(), GP)), 49152);
});

test('seeded random words of every 32-bit row, with the operands aliases depend on', () => {
  check(buildGenerated('isa-rows', insnFile(randomRows(200, 0x5eed), GP)), 200 * INSNS.length);
});

test('every funct combination of every major opcode, and random words in each', () => {
  check(buildGenerated('isa-funct', insnFile([...functSweep(), ...randomMajors(100, 77)], GP)), 45000);
});

test('lui/auipc values consumed by later instructions (objdump address comments)', () => {
  check(buildGenerated('isa-stream', insnFile(randomStream(20000, 2024), GP)), 20000);
});

for (const [major, minor, rev] of [[1, 9, 1], [1, 10, 0], [1, 11, 0], [1, 12, 0]] as const) {
  test(`every CSR name under privileged spec ${major}.${minor}${rev ? `.${rev}` : ''}`, () => {
    check(buildGenerated(`isa-csr-${major}.${minor}`, insnFile(allCsrs(), privSpecAttributes([major, minor, rev]))), 4096);
  });
}

test('code of ISAs without F, D, C, M, A, Zicsr or Zifencei prints those instructions as data', () => {
  const words = [...randomRows(4, 11), ...allCompressed().filter((_, i) => i % 61 === 0), ...randomMajors(4, 12)];
  for (const isa of ['rv64i2p1', 'rv64i2p0', 'rv64i2p1_zmmul1p0', 'rv64i2p1_m2p0_a2p1_c2p0', 'rv64i2p1_f2p2_c2p0']) {
    const asm = insnFile(words, [`  .attribute arch, "${isa}"`]);
    check(buildGenerated(`isa-arch-${isa}`, asm, ['-mabi=lp64']), words.length); // lp64d needs D
  }
});

test('encodings of 48 bits and more print as objdump prints them', () => {
  // gas cannot emit 80-bit and longer encodings, so assemble halfwords and patch the bytes.
  const elf = buildGenerated('isa-long', insnFile(Array.from({ length: 48 }, () => ({ bits: 1, len: 2 as const }))));
  const info = readElfInfo(elf);
  const text = info.sections.find((s) => s.name === '.text')!;
  const bytes = new Uint8Array(readFileSync(elf));
  const patch = [
    [0x7f, 0x00, 1, 2, 3, 4, 5, 6, 7, 8], // 80 bits
    [0x7f, 0x10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10], // 96 bits
    [0x7f, 0x60, ...Array.from({ length: 20 }, (_, i) => i)], // 176 bits
    [0x7f, 0x70], // 192 bits and more: reserved, one halfword
    [0x1f, 0x00, 0xaa, 0xbb, 0xcc, 0xdd], // 48 bits
    [0x3f, 0x00, 1, 2, 3, 4, 5, 6], // 64 bits
  ].flat();
  bytes.set(patch, text.offset);
  const patched = join(BUILD, 'isa', 'isa-long-patched.elf');
  writeFileSync(patched, bytes);
  check(patched, 6 + (96 - patch.length) / 2);
});

test('the project test programs (every C file under test/guest/cpu and test/guest/bench)', () => {
  let n = 0;
  for (const dir of ['cpu', 'bench']) {
    for (const f of readdirSync(join(GUEST_SRC, dir)).filter((x) => x.endsWith('.c'))) {
      const sources = ['common/crt.S', 'common/trap.S', 'common/trap.c', `${dir}/${f}`];
      check(buildGuest(`isa-prog-${f.slice(0, -2)}`, sources, { cflags: ['-DREPS=1'] }), 200);
      n++;
    }
  }
  assert.ok(n >= 4, `only ${n} test programs found`);
});

test('compiled C: a mix of everything gcc emits, at several optimisation levels and ISAs', () => {
  const variants: [string, string[]][] = [
    ['O2', []], ['O0', ['-O0']], ['Os', ['-Os']], ['O3', ['-O3', '-funroll-loops']],
    // No F or D: libgcc's soft float, and code whose mapping symbols name other ISAs.
    ['imac', ['-march=rv64imac', '-misa-spec=2.2', '-mabi=lp64']],
  ];
  for (const [name, cflags] of variants) check(buildGuest(`isa-mix-${name}`, ['common/crt.S', 'isa/mix.c'], { cflags }), 4000);
});

test('compiled C: a static glibc program (riscv64-linux-gnu)', () => {
  const elf = buildGuest('isa-hosted', ['isa/hosted.c'], { cc: 'riscv64-linux-gnu-gcc', bare: false, cflags: ['-static', '-pthread'] });
  check(elf, 50000);
});

test('the shared C library of riscv64-linux-gnu (symbol names in <...> excepted)', () => {
  requireTool('riscv64-linux-gnu-gcc');
  const libc = spawnSync('riscv64-linux-gnu-gcc', ['-print-file-name=libc.so.6'], { encoding: 'utf8' }).stdout.trim();
  assert.ok(existsSync(libc), `no libc.so.6 for riscv64-linux-gnu (Debian package libc6-riscv64-cross)`);
  check(libc, 200000, { ignoreSymbolNames: true });
});

test('the OpenSBI firmware QEMU ships', () => {
  const fw = '/usr/share/qemu/opensbi-riscv64-generic-fw_dynamic.elf';
  assert.ok(existsSync(fw), `${fw} is missing (Debian package qemu-system-data); .ci/run installs it`);
  check(fw, 25000);
});
