/**
 * Splits a stream of JSON texts (QMP's input) into one text per top-level value, however the
 * bytes arrive: several values in one chunk, one value over several, with or without newlines
 * between them. It tracks nesting and strings only; each text is parsed by the caller.
 *
 * Input is untrusted and memory stays bounded: a text longer than MAX characters, or nested
 * deeper than MAX_NESTING, is not kept; once it ends the splitter hands over a refusal in its
 * place (QEMU answers both with an error and reads on) and goes on with the next text.
 */

/** A piece of the stream: a complete text, or the reason one was refused. */
export type JsonPiece = { text: string } | { refused: string };

export class JsonSplitter {
  /** Longest text accepted. */
  static readonly MAX = 1 << 20;
  /** Deepest nesting accepted (QEMU's JSON parser allows 1024 levels). */
  static readonly MAX_NESTING = 1024;

  private buf = '';
  /** Where the scan stopped in `buf`. */
  private at = 0;
  private depth = 0;
  private inString = false;
  private escaped = false;
  /** Why the text being read will be refused (its bytes are dropped as they come). */
  private refusal: string | null = null;

  /** Adds `chunk`; returns the texts (or refusals) it completed, in order. */
  push(chunk: string): JsonPiece[] {
    this.buf += chunk;
    const out: JsonPiece[] = [];
    let start = 0;
    const finish = (end: number): void => {
      const text = this.buf.slice(start, end).trim();
      if (this.refusal !== null) out.push({ refused: this.refusal });
      else if (text) out.push({ text });
      this.refusal = null;
      start = end;
    };
    for (; this.at < this.buf.length; this.at++) {
      const c = this.buf[this.at]!;
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === '\\') this.escaped = true;
        else if (c === '"') {
          this.inString = false;
          if (this.depth === 0) finish(this.at + 1);
        }
        continue;
      }
      if (this.depth === 0 && (c === '{' || c === '[' || c === '"' || /\s/.test(c))) {
        // A bare scalar (`123`, `null`) ends where whitespace or another value begins; it is
        // handed over to be refused.
        if (this.refusal !== null || this.buf.slice(start, this.at).trim()) finish(this.at);
        else start = this.at;
      }
      if (c === '"') this.inString = true;
      else if (c === '{' || c === '[') {
        if (++this.depth > JsonSplitter.MAX_NESTING) this.refusal ??= 'JSON nesting depth limit exceeded';
      } else if (c === '}' || c === ']') {
        // A stray closing bracket is a text of its own, refused by the parser.
        this.depth = Math.max(0, this.depth - 1);
        if (this.depth === 0) finish(this.at + 1);
      }
    }
    this.buf = this.buf.slice(start);
    this.at -= start;
    if (this.buf.length > JsonSplitter.MAX) {
      // Keep scanning the overlong text to find its end, but not its bytes.
      this.refusal ??= `a JSON text longer than ${JsonSplitter.MAX} bytes`;
      this.buf = '';
      this.at = 0;
    }
    return out;
  }
}
