/**
 * The target's reading of a post-copy page channel (migrate-postcopy.ts): the source's RAM and
 * zero-page records, then an end record. Every page still missing is written, then its bit
 * cleared (with Atomics: the machine's thread reads the bits while this runs on another); a page
 * already here (the guest may have written it since) is never overwritten. The bytes are
 * untrusted: every field is checked before use, and anything wrong is one VirtusError.
 */
import { PAGE_SIZE } from '../cpu/layout.ts';
import { bad, RecordParser, Rec, unpack } from './snapshot-format.ts';

const WHAT = 'post-copy page channel';

export class PageStream {
  private readonly parser = new RecordParser(WHAT);
  private readonly pages: number;

  /**
   * `ram` is guest RAM from its first byte, `missing` one bit per page; `arrived` is told after
   * each record's pages are in.
   */
  constructor(
    private readonly ram: Uint8Array,
    private readonly missing: Uint8Array,
    private readonly arrived: () => void,
  ) {
    this.pages = Math.min(ram.length / PAGE_SIZE, missing.length * 8);
  }

  private isMissing(p: number): boolean {
    return (Atomics.load(this.missing, p >>> 3) & (1 << (p & 7))) !== 0;
  }

  /** Takes bytes as they come; true once the end record came with every page in. */
  push(chunk: Uint8Array): boolean {
    const parser = this.parser;
    parser.push(chunk);
    for (let f = parser.next(); f; f = parser.next()) {
      const at = `${WHAT}: record ${parser.count}`;
      if (f.type === Rec.End) {
        if (parser.pending) bad(`${WHAT} is corrupt: bytes follow its end record`);
        let left = 0;
        for (let p = 0; p < this.pages; p++) if (this.isMissing(p)) left++;
        if (left) bad(`the source ended the ${WHAT} with ${left} pages still missing`);
        return true;
      }
      let count: number;
      let data: Uint8Array | null = null;
      if (f.type === Rec.Zero) {
        const raw = unpack(f, at);
        if (raw.length !== 4) bad(`${at} is corrupt: a zero-page record holds 4 bytes`);
        count = new DataView(raw.buffer, raw.byteOffset, 4).getUint32(0, true);
      } else if (f.type === Rec.Ram) {
        if (f.raw === 0 || f.raw % PAGE_SIZE) bad(`${at} is corrupt: RAM records hold whole pages`);
        count = f.raw / PAGE_SIZE;
        data = unpack(f, at);
      } else {
        bad(`${at} has no place in a ${WHAT}`);
      }
      if (count === 0 || f.arg + count > this.pages) bad(`${at} is corrupt: pages ${f.arg}+${count} lie outside the machine's ${this.pages} pages of RAM`);
      for (let i = 0; i < count; i++) {
        const p = f.arg + i;
        if (!this.isMissing(p)) continue;
        if (data) this.ram.set(data.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE), p * PAGE_SIZE);
        else this.ram.fill(0, p * PAGE_SIZE, (p + 1) * PAGE_SIZE);
        Atomics.and(this.missing, p >>> 3, ~(1 << (p & 7)) & 0xff);
      }
      this.arrived();
    }
    return false;
  }
}
