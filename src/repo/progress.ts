/**
 * Progress of uploads and downloads, on stderr so that stdout carries only results. On a
 * terminal one line per blob is redrawn in place ("12.3 MB of 40.0 MB (30%)"); elsewhere
 * (a log, CI) a blob gets a line when it starts and ends, and one every 10 seconds in
 * between so a long transfer is seen to be alive. --quiet prints nothing.
 */

/** Receives progress for one operation (a push or a pull). */
export interface Progress {
  /** A step worth a line of its own ("kernel: already in the registry"). */
  note(text: string): void;
  /** A transfer of `total` bytes under `label` begins (at `start` for a resumed one). */
  begin(label: string, total: number, start?: number): void;
  /** `done` bytes of the current transfer are through. */
  update(done: number): void;
  /** The current transfer ended. */
  end(): void;
}

/** Discards progress. */
export const silentProgress: Progress = { note() {}, begin() {}, update() {}, end() {} };

/** "117.2 MB", "12 kB", "512 B" style sizes (decimal units, as apt and the guest fetcher print them). */
export function mb(bytes: number): string {
  if (bytes < 1e3) return `${bytes} B`;
  if (bytes < 1e6) return `${Math.round(bytes / 1e3)} kB`;
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

/** Progress as "virtus: VERB: ..." lines on `stream`. */
export function stderrProgress(verb: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  const tty = stream.isTTY === true;
  let label = '';
  let total = 0;
  let done = 0;
  let lastDraw = 0;
  let open = false;
  const text = () => `virtus: ${verb}: ${label} ${mb(done)} of ${mb(total)} (${total ? Math.floor((100 * done) / total) : 100}%)`;
  const line = (s: string) => {
    stream.write(`${open ? '\r\x1b[K' : ''}${s}\n`);
    open = false;
  };
  return {
    note: (s) => line(`virtus: ${verb}: ${s}`),
    begin(l, t, start = 0) {
      label = l;
      total = t;
      done = start;
      lastDraw = Date.now();
      if (!tty) line(`virtus: ${verb}: ${label} ${mb(total)}${start ? `, resuming at ${mb(start)}` : ''}`);
    },
    update(n) {
      done = n;
      const now = Date.now();
      if (tty && now - lastDraw >= 100) {
        stream.write(`\r\x1b[K${text()}`);
        open = true;
        lastDraw = now;
      } else if (!tty && now - lastDraw >= 10_000) {
        line(text());
        lastDraw = now;
      }
    },
    end() {
      line(`virtus: ${verb}: ${label} ${mb(total)} done`);
    },
  };
}
