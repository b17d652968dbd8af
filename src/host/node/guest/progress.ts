/** Progress reporting for the guest builder: what is being downloaded and built. */

/**
 * Receives progress. A `transient` message (a download's byte count) replaces the previous
 * transient one on a terminal and may be dropped elsewhere; other messages are steps.
 */
export type ProgressFn = (message: string, transient?: boolean) => void;

/** Discards progress. */
export const quiet: ProgressFn = () => {};

/**
 * Progress on stderr as "virtus: guest: …" lines, stderr so that a guest console on stdout
 * stays clean. On a terminal, transient messages redraw one line; otherwise they are left
 * out, except one every 10 seconds so a log shows a long download is alive.
 */
export function stderrProgress(stream: NodeJS.WriteStream = process.stderr): ProgressFn {
  const tty = stream.isTTY === true;
  let open = false;
  let lastTransient = 0;
  return (message, transient = false) => {
    const line = `virtus: guest: ${message}`;
    if (transient) {
      if (tty) {
        stream.write(`\r\x1b[K${line}`);
        open = true;
      } else if (Date.now() - lastTransient >= 10_000) {
        lastTransient = Date.now();
        stream.write(line + '\n');
      }
      return;
    }
    stream.write(`${open ? '\r\x1b[K' : ''}${line}\n`);
    open = false;
  };
}

/** "117.2 MB" style sizes for progress lines (decimal units, as apt prints them). */
export function mb(bytes: number): string {
  if (bytes < 1e6) return `${Math.max(1, Math.round(bytes / 1e3))} kB`;
  return `${(bytes / 1e6).toFixed(1)} MB`;
}
