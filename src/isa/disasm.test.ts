/**
 * Unit tests of the disassembler's API. Its output is checked against objdump, line by line,
 * in test/isa/disasm.test.ts; these pin the contracts callers rely on.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decode } from './decode.ts';
import { csrDisasmName, privSpecFromAttributes } from './disasm-csr.ts';
import { parseIsa } from './disasm-isa.ts';
import { disassemble, disassembleUnknown, Disassembler, formatAddress, objdumpLength } from './disasm.ts';

const le = (...words: number[]): Uint8Array => {
  const out: number[] = [];
  for (const w of words) for (let i = 0; i < 4; i++) out.push((w >>> (8 * i)) & 0xff);
  return new Uint8Array(out);
};

const AUIPC_A0_1 = 0x00001517; // auipc a0,0x1
const ADDI_A0_16 = 0x01050513; // addi a0,a0,16
const JAL_RA_8 = 0x008000ef; // jal ra,.+8
const LUI_A5 = 0x800007b7; // lui a5,0x80000
const ADDIW_A4_A5_16 = 0x0107871b; // addiw a4,a5,16
const LD_A0_GP = 0x0081b503; // ld a0,8(gp)

test('disassemble: one instruction, targets as 0x... without symbols, named with them', () => {
  const jal = decode(JAL_RA_8)!;
  assert.equal(disassemble(jal, 0x80000000n), 'jal\t0x80000008');
  const named = disassemble(jal, 0x80000000n, { symbolize: (a) => (a === 0x80000008n ? 'main' : undefined) });
  assert.equal(named, 'jal\t80000008 <main>');
  assert.equal(disassemble(decode(0x8082)!, 0n), 'ret');
  assert.equal(disassemble(decode(ADDI_A0_16)!, 0n), 'add\ta0,a0,16'); // objdump 2.40's alias order
  assert.equal(formatAddress(-8n, {}), '0xfffffffffffffff8');
});

test('disassemble: instructions outside the ISA print as data', () => {
  const fadd = decode(0x00c58553)!; // fadd.s fa0,fa1,fa2,rne
  assert.equal(disassemble(fadd, 0n), 'fadd.s\tfa0,fa1,fa2,rne');
  assert.equal(disassemble(fadd, 0n, { isa: 'rv64imac' }), '.4byte\t0xc58553');
  assert.equal(disassemble(decode(0x0505)!, 0n, { isa: 'rv64g' }), '.2byte\t0x505');
});

test('Disassembler: a lui/auipc value names the address of the instruction that uses it', () => {
  const d = new Disassembler({ symbolize: (a) => (a === 0x80001020n ? 'data' : undefined) });
  const lines = d.range(le(AUIPC_A0_1, ADDI_A0_16, ADDI_A0_16), 0x80000010n);
  assert.deepEqual(lines.map((l) => l.text), ['auipc\ta0,0x1', 'add\ta0,a0,16 # 80001020 <data>', 'add\ta0,a0,16']);
  assert.deepEqual(lines.map((l) => l.addr), [0x80000010n, 0x80000014n, 0x80000018n]);
});

test('Disassembler: the state survives calls until used; addiw sign-extends; reset forgets', () => {
  const d = new Disassembler({ symbolize: () => 'x' });
  assert.equal(d.at(le(LUI_A5), 0, 0n)!.text, 'lui\ta5,0x80000');
  assert.equal(d.at(le(JAL_RA_8), 0, 4n)!.text, 'jal\tc <x>');
  assert.equal(d.at(le(ADDIW_A4_A5_16), 0, 8n)!.text, 'addw\ta4,a5,16 # ffffffff80000010 <x>');
  d.at(le(LUI_A5), 0, 0n);
  d.reset();
  assert.equal(d.at(le(ADDIW_A4_A5_16), 0, 8n)!.text, 'addw\ta4,a5,16');
});

test('Disassembler: gp-relative addresses need the global pointer', () => {
  assert.equal(new Disassembler().at(le(LD_A0_GP), 0, 0n)!.text, 'ld\ta0,8(gp)');
  assert.equal(new Disassembler({ gp: 0x80001800n }).at(le(LD_A0_GP), 0, 0n)!.text, 'ld\ta0,8(gp) # 0x80001808');
});

test('Disassembler: lengths follow the base instruction-length encoding; a cut instruction ends the range', () => {
  assert.deepEqual([0x0001, 0x0013, 0x001f, 0x003f, 0x007f, 0x107f, 0x607f, 0x707f].map(objdumpLength), [2, 4, 6, 8, 10, 12, 22, 2]);
  const d = new Disassembler();
  assert.equal(d.at(new Uint8Array([0x13, 0x00, 0x00]), 0, 0n), null);
  assert.equal(d.range(new Uint8Array([0x01, 0x00, 0x13, 0x00]), 0n).length, 1);
  assert.equal(disassembleUnknown(new Uint8Array([0x1f, 0, 1, 2, 3, 4])), '.byte\t0x1f, 0x00, 0x01, 0x02, 0x03, 0x04');
  assert.equal(disassembleUnknown(new Uint8Array([0x3f, 0, 0, 0, 0, 0, 0, 0x80])), '.8byte\t0x800000000000003f');
});

test('CSR names depend on the privileged spec version', () => {
  assert.equal(csrDisasmName(0x180, '1.9.1'), 'sptbr');
  assert.equal(csrDisasmName(0x180), 'satp');
  assert.equal(csrDisasmName(0x30a, '1.11'), '0x30a');
  assert.equal(csrDisasmName(0x30a, '1.12'), 'menvcfg');
  assert.equal(privSpecFromAttributes([1, 9, 1]), '1.9.1');
  assert.equal(privSpecFromAttributes([1, 11, 0]), '1.11');
  assert.equal(privSpecFromAttributes([2, 0, 0]), undefined);
});

test('ISA strings: implied extensions', () => {
  const g = parseIsa('rv64gc');
  for (const e of ['i', 'm', 'a', 'f', 'd', 'c', 'zicsr', 'zifencei', 'zmmul']) assert.ok(g.has(e), e);
  assert.ok(parseIsa('rv64i2p0_m2p0').has('zicsr'), 'i 2.0 includes Zicsr');
  assert.ok(!parseIsa('rv64i2p1_m2p0').has('zicsr'), 'i 2.1 does not');
  assert.ok(!parseIsa('rv64imac').has('zicsr'));
  assert.ok(parseIsa('rv64i2p1_d2p2').has('zicsr'), 'D implies F implies Zicsr');
});
