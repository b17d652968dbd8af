/**
 * Test support: the line-by-line comparison of virtus's disassembler with GNU objdump. objdump
 * disassembles an ELF file; virtus decodes the same bytes (read from the file, not from
 * objdump's listing) in the same order with one `Disassembler` for the whole file, and every
 * instruction line objdump prints must match exactly: address, length, raw bits and text.
 */
import { spawnSync } from 'node:child_process';
import { privSpecFromAttributes } from '../../src/isa/disasm-csr.ts';
import { DEFAULT_ISA } from '../../src/isa/disasm-isa.ts';
import { Disassembler, type DisasmLine } from '../../src/isa/disasm.ts';
import { requireTool } from '../support/toolchain.ts';
import { type ElfInfo, mappingIsa, mappingKind, readElfInfo, SHF_EXECINSTR, SHT_NOBITS } from './elf-info.ts';
import { objdumpSymbolizer } from './symbols.ts';

export const OBJDUMP = 'riscv64-unknown-elf-objdump';

/** One instruction line of `objdump -d`. */
export interface ObjdumpLine {
  addr: bigint;
  /** The raw bits column as printed (e.g. `00008117` or `4501`). */
  bits: string;
  text: string;
}

const LINE = /^ *([0-9a-f]+):\t([0-9a-f ]+?) *\t(.*)$/;

/** Runs `objdump -d` on `elf` and returns its instruction lines. */
export function objdumpLines(elf: string): ObjdumpLine[] {
  requireTool(OBJDUMP);
  const r = spawnSync(OBJDUMP, ['-d', elf], { encoding: 'utf8', maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`${OBJDUMP} -d ${elf} failed:\n${r.stderr}`);
  const out: ObjdumpLine[] = [];
  for (const l of r.stdout.split('\n')) {
    const m = LINE.exec(l);
    if (m) out.push({ addr: BigInt(`0x${m[1]}`), bits: m[2]!, text: m[3]! });
  }
  return out;
}

export interface Comparison {
  /** Instruction lines that matched objdump's. */
  compared: number;
  /** objdump lines in data regions ($d mapping symbols), not compared. */
  data: number;
  /** The first differences, as `address: objdump | virtus` lines. */
  mismatches: string[];
  /** Total number of differing lines. */
  mismatchCount: number;
}

/**
 * The raw column objdump prints for an instruction: its first 8 bytes as little-endian
 * 32-bit chunks when the length is a multiple of 4, else 16-bit chunks.
 */
export function rawColumn(bytes: Uint8Array): string {
  const chunk = bytes.length % 4 === 0 ? 4 : 2;
  const out: string[] = [];
  for (let i = 0; i < Math.min(bytes.length, 8); i += chunk) {
    let s = '';
    for (let j = chunk - 1; j >= 0; j--) s += bytes[i + j]!.toString(16).padStart(2, '0');
    out.push(s);
  }
  return out.join(' ');
}

interface Range {
  start: bigint;
  end: bigint;
  code: boolean;
  /** The ISA a `$x<isa>` mapping symbol set at the start of the range, if any. */
  isa?: string;
}

/**
 * A section cut at its mapping symbols: ranges of code (with the ISA of their `$x<isa>`
 * symbol) and of data, the whole section code when it has none.
 */
function mappedRanges(elf: ElfInfo, shndx: number): Range[] {
  const s = elf.sections[shndx]!;
  const end = s.addr + BigInt(s.size);
  const marks = elf.symbols
    .filter((y) => y.shndx === shndx && mappingKind(y.name) !== null)
    .map((y) => ({ at: y.value, code: mappingKind(y.name) === 'code', isa: mappingIsa(y.name) }))
    .sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  const out: Range[] = [];
  let cur: Omit<Range, 'end'> = { start: s.addr, code: true };
  for (const m of marks) {
    if (m.at > cur.start) out.push({ ...cur, end: m.at });
    if (m.at >= cur.start) cur = { start: m.at, code: m.code, isa: m.isa };
    else if (m.code && m.isa) cur.isa = m.isa;
  }
  if (end > cur.start) out.push({ ...cur, end });
  return out;
}

export interface CompareOptions {
  /** How many differing lines to report (default 8). */
  maxReported?: number;
  /**
   * Compare the text with the symbol names inside `<...>` left out (the addresses still
   * count). For shared libraries, where objdump names addresses after dynamic relocations,
   * versioned symbols and PLT entries: its symbol table logic, not the disassembler's.
   */
  ignoreSymbolNames?: boolean;
}

const withoutSymbols = (s: string): string => s.replace(/ <[^>]*>/g, '');

/** Disassembles every code section of `elf` with virtus and compares it with objdump. */
export function compareWithObjdump(path: string, co: CompareOptions = {}): Comparison {
  const maxReported = co.maxReported ?? 8;
  const same = co.ignoreSymbolNames ? (a: string, b: string) => withoutSymbols(a) === withoutSymbols(b) : (a: string, b: string) => a === b;
  const elf = readElfInfo(path);
  const ref = objdumpLines(path);
  const spec = elf.privSpec ? privSpecFromAttributes(elf.privSpec) : undefined;
  const gpSym = elf.symbols.find((s) => s.name === '__global_pointer$');
  const ours = new Map<bigint, DisasmLine>();
  const dataRanges: { start: bigint; end: bigint }[] = [];
  let dis: Disassembler | undefined;
  // The ISA: the file's attribute, then whatever the last `$x<isa>` mapping symbol said.
  let isa = elf.arch ?? DEFAULT_ISA;
  for (const sec of elf.sections) {
    if (!(sec.flags & SHF_EXECINSTR) || sec.type === SHT_NOBITS || sec.size === 0) continue;
    const symbolize = objdumpSymbolizer(elf, sec.index);
    for (const r of mappedRanges(elf, sec.index)) {
      if (!r.code) {
        dataRanges.push(r);
        continue;
      }
      isa = r.isa ?? isa;
      // objdump keeps one disassembler state for the whole file; symbols differ per section.
      const o = { symbolize, privSpec: spec ?? '1.12', gp: gpSym?.value, isa } as const;
      dis ??= new Disassembler(o);
      dis.options = o;
      const from = sec.offset + Number(r.start - sec.addr);
      const bytes = elf.bytes.subarray(from, from + Number(r.end - r.start));
      for (const line of dis.range(bytes, r.start)) ours.set(line.addr, line);
    }
  }
  const res: Comparison = { compared: 0, data: 0, mismatches: [], mismatchCount: 0 };
  const bad = (msg: string): void => {
    res.mismatchCount++;
    if (res.mismatches.length < maxReported) res.mismatches.push(msg);
  };
  const listed = new Set<bigint>();
  for (const l of ref) {
    listed.add(l.addr);
    if (dataRanges.some((r) => l.addr >= r.start && l.addr < r.end)) {
      res.data++;
      continue;
    }
    const a = l.addr.toString(16);
    const mine = ours.get(l.addr);
    if (!mine) {
      bad(`${a}: ${l.bits}\t${l.text} | (no instruction starts here)`);
      continue;
    }
    const bits = rawColumn(mine.bytes);
    if (bits !== l.bits || !same(mine.text, l.text)) bad(`${a}: ${l.bits}\t${l.text} | ${bits}\t${mine.text}`);
    else res.compared++;
  }
  // objdump leaves out only runs of zero bytes (its `...` lines).
  for (const [addr, line] of ours) {
    if (!listed.has(addr) && line.bytes.some((b) => b !== 0)) {
      bad(`${addr.toString(16)}: (objdump prints nothing here) | ${rawColumn(line.bytes)}\t${line.text}`);
    }
  }
  return res;
}
