/** `virtus daemon`: many machines on one host, each in its own worker thread, behind an HTTP API. */
import { totalmem } from 'node:os';
import { VirtusError } from '../../../util/errors.ts';
import { formatSize, parseSize } from '../../../util/size.ts';
import { parseFlags, type Command } from '../command.ts';
import { buildApi } from '../daemon/api.ts';
import { Daemon } from '../daemon/daemon.ts';
import { Listeners, parseListen } from '../daemon/listen.ts';
import { defaultStateDir, StateDir } from '../daemon/state-dir.ts';

/** The daemon's version (GET /info). */
export const VERSION = '0.1.0';

const HELP = `usage: virtus daemon [options]

Runs machines in the background, each in its own thread, driven through an HTTP
API (described by /openapi.json; docs/openapi.json in the sources). The virtus
commands ps, create, start, stop, pause, resume, rm, console, logs, snapshot and
migrate are its clients.

  --listen unix:PATH      serve the API on a unix socket (mode 0600); default
                          <state-dir>/daemon.sock when no --listen is given
  --listen tcp:HOST:PORT  serve the API on TCP; every request must carry
                          'Authorization: Bearer TOKEN' (<state-dir>/token)
                          --listen may be given several times
  --state-dir DIR         machine definitions, overlays, snapshots, the token
                          (default $VIRTUS_STATE_DIR, else $XDG_STATE_HOME/virtus,
                          else ~/.local/state/virtus)
  --max-memory SIZE       guest RAM all running machines may hold together
                          (default 80% of the host's memory)
  -h, --help              show this help

Machines whose restart policy is 'always' (and 'on-failure' ones that were running)
start with the daemon. SIGTERM or SIGINT stops every machine (their disks flushed)
and the daemon.`;

const OPTIONS = {
  listen: { type: 'string', multiple: true },
  'state-dir': { type: 'string' },
  'max-memory': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** `virtus daemon`. */
export const daemonCommand: Command = {
  name: 'daemon',
  summary: 'run machines in the background behind an HTTP API',
  async run(argv) {
    const { values: v } = parseFlags('daemon', argv, OPTIONS);
    if (v.help) {
      console.log(HELP);
      return 0;
    }
    const maxMemory = v['max-memory'] !== undefined ? parseSize(v['max-memory'], '--max-memory', 'M') : Math.floor((totalmem() * 0.8) / 1048576) * 1048576;
    if (maxMemory < 4096) throw new VirtusError('BAD_FLAG', `daemon: --max-memory ${v['max-memory']}: too small for any machine`, { exitCode: 2 });
    const state = new StateDir(v['state-dir'] ?? defaultStateDir());
    const listen = (v.listen?.length ? v.listen : [`unix:${state.socket}`]).map((t) => parseListen(t));
    state.open();
    const log = (line: string): void => void process.stderr.write(line + '\n');
    const daemon = new Daemon({ state, maxMemory, log });
    const listeners = new Listeners();
    try {
      await buildApi({ daemon, version: VERSION, token: state.token(), isTcp: listeners.isTcp }, listeners.factory);
      await listeners.listen(listen);
      await daemon.load();
    } catch (e) {
      await listeners.close();
      state.close();
      throw e;
    }
    log(`virtus daemon: listening on ${listeners.addresses.join(' ')} (state ${state.root}, max memory ${formatSize(maxMemory)})`);
    const code = await new Promise<number>((resolve) => {
      const stop = (sig: string): void => {
        log(`virtus daemon: ${sig}: stopping the machines`);
        resolve(0);
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
    await listeners.close();
    await daemon.shutdown();
    state.close();
    log('virtus daemon: stopped');
    return code;
  },
};
