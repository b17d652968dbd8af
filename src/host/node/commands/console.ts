/**
 * `virtus console NAME`: attaches the terminal to a daemon machine's serial console (its
 * WebSocket). The daemon sends the recent output first. Ctrl-A X detaches; the machine runs on.
 */
import { parseFlags, type Command } from '../command.ts';
import { DaemonClient, daemonAddress } from '../daemon/client.ts';
import { Terminal } from '../terminal.ts';

/** `virtus console`. */
export const consoleCommand: Command = {
  name: 'console',
  summary: "attach the terminal to a daemon machine's console",
  async run(argv) {
    const { values: v, positionals } = parseFlags('console', argv, { host: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, true);
    if (v.help || positionals.length !== 1) {
      console.log('usage: virtus console [--host unix:PATH|tcp:HOST:PORT] NAME\n\nAttaches the terminal to the machine\'s console. Ctrl-A X detaches (the machine\nruns on); Ctrl-A Ctrl-A sends a Ctrl-A.');
      return v.help ? 0 : 2;
    }
    process.stderr.write(`virtus: attaching to ${positionals[0]} (Ctrl-A X detaches)\r\n`);
    const ws = await new DaemonClient(daemonAddress(v.host)).console(positionals[0]!, (data) => process.stdout.write(data));
    const closed = new Promise<void>((resolve) => ws.on('close', () => resolve()));
    const term = new Terminal({
      input: (bytes) => ws.send(bytes, { binary: true }),
      quit: (why) => {
        // Piped input that ends detaches too, once what was sent has gone out.
        if (why === 'eof') setTimeout(() => ws.close(), 200);
        else ws.close();
      },
      quitWord: { key: 'detach', done: 'detached' },
    });
    term.start();
    try {
      await closed;
    } finally {
      term.stop();
    }
    return 0;
  },
};
