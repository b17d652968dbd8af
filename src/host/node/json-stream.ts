/**
 * Splits a stream of JSON texts (QMP's input) into one text per top-level object, however the
 * bytes arrive: several objects in one chunk, one object over several, with or without
 * newlines between them. It tracks nesting and strings only; each text is parsed by the caller.
 */
export class JsonSplitter {
  private buf = '';
  private depth = 0;
  private inString = false;
  private escaped = false;
  /** Where the scan stopped in `buf`. */
  private at = 0;

  /** Longest text accepted before the stream is judged garbage. */
  static readonly MAX = 1 << 20;

  /** Adds `chunk`; returns the complete texts it finished. Throws on a text beyond MAX. */
  push(chunk: string): string[] {
    this.buf += chunk;
    const out: string[] = [];
    let start = 0;
    for (; this.at < this.buf.length; this.at++) {
      const c = this.buf[this.at]!;
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === '\\') this.escaped = true;
        else if (c === '"') this.inString = false;
        continue;
      }
      if (c === '"') this.inString = true;
      else if (c === '{' || c === '[') this.depth++;
      else if (c === '}' || c === ']') {
        this.depth--;
        if (this.depth <= 0) {
          out.push(this.buf.slice(start, this.at + 1).trim());
          start = this.at + 1;
          this.depth = 0;
        }
      } else if (this.depth === 0 && !/\s/.test(c)) {
        // A scalar at the top level is not a QMP message: hand it over to be refused.
        let end = this.at;
        while (end < this.buf.length && !/[\s{[]/.test(this.buf[end]!)) end++;
        if (end === this.buf.length) break;
        out.push(this.buf.slice(start, end).trim());
        start = end;
        this.at = end - 1;
      }
    }
    this.buf = this.buf.slice(start);
    this.at -= start;
    if (this.buf.length > JsonSplitter.MAX) {
      this.buf = '';
      this.at = this.depth = 0;
      this.inString = this.escaped = false;
      throw new Error(`a JSON text longer than ${JsonSplitter.MAX} bytes`);
    }
    return out;
  }
}
