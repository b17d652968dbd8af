/**
 * The messages between the exec page (page.ts) and its worker (worker.ts), which runs the
 * busybox shell with no kernel (session.ts).
 */

/** What the server says about the busybox it serves (GET /exec/manifest.json). */
export interface ExecManifest {
  busybox: { url: string; name: string; size: number; version: string };
  /** Its applets, read from the binary by the server. */
  applets: string[];
}

/** How the worker's run loop stands (for scripts and tests). */
export interface ExecStatus {
  /** Scheduler turns run so far: an idle shell adds none. */
  turns: number;
  /**
   * The run loop waits on the event loop: for input (`input`), a timer (`timer`), or both;
   * 'running' while it runs turns, 'exited' once the shell is gone.
   */
  loop: 'running' | 'input' | 'timer' | 'input+timer' | 'exited';
  /** Live guest processes. */
  processes: number;
}

/** Page to worker. */
export type ExecPageMessage =
  | { type: 'start'; busybox: Uint8Array; applets: string[]; cols: number; rows: number; engine: 'jit' | 'interp' }
  /** Keys typed or pasted (UTF-8). */
  | { type: 'input'; bytes: Uint8Array }
  | { type: 'resize'; cols: number; rows: number }
  /** A file for the home directory (a drop on the page). */
  | { type: 'put'; id: number; name: string; bytes: Uint8Array }
  | { type: 'status'; id: number };

/** Worker to page. */
export type ExecWorkerMessage =
  /** Bytes for the terminal: the guest's output and the echo of what was typed. */
  | { type: 'output'; bytes: Uint8Array }
  | { type: 'exited'; code: number; signal: number | null; message?: string }
  /** The run stopped with an error (one line). */
  | { type: 'error'; message: string }
  | ({ type: 'status'; id: number } & ExecStatus)
  /** The answer to a put: null, or why the file was refused. */
  | { type: 'put'; id: number; error: string | null };
