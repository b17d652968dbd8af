/**
 * QMP's input side (src/host/node/json-stream.ts, qmp-request.ts): bytes from a client, cut
 * into chunks where the input's own bytes say (a client may split anywhere), split into JSON
 * texts, read as requests and, for commands virtus has, their arguments checked. A request may
 * be refused (a QmpError, which is a VirtusError); anything else thrown is a crash, and so is
 * a reply that cannot be written back (its id must serialize).
 */
import { JsonSplitter } from '../../src/host/node/json-stream.ts';
import { COMMANDS } from '../../src/host/node/qmp-commands.ts';
import { checkArguments, parseRequest, QmpError } from '../../src/host/node/qmp-request.ts';
import type { FuzzTarget } from '../harness.ts';

const SEEDS = [
  '{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}',
  '{"execute":"query-status","id":"a-1"}{"execute":"stop"}\r\n{"execute":"cont","id":{"n":[1,2.5,null,true]}}',
  '{"execute":"human-monitor-command","arguments":{"command-line":"info \\"status\\"","cpu-index":0}}\n',
  '{"execute":"migrate","arguments":{"uri":"tcp:127.0.0.1:4444","blk":false,"constructor":1}}',
  '{"exec-oob":"query-status","id":7} "a\\u00e9" 123 [1,{"a":"]"}] }',
  '{"execute":"quer',
];

export const target: FuzzTarget = {
  name: 'qmp',
  seeds: () => SEEDS.map((s) => new TextEncoder().encode(s)),
  maxLength: 8192,
  run(input) {
    const text = new TextDecoder().decode(input);
    const split = new JsonSplitter();
    let at = 0;
    for (let i = 0; at < text.length; i++) {
      const n = 1 + ((input[i % input.length]! * 7) % 97);
      for (const piece of split.push(text.slice(at, at + n))) {
        try {
          const r = parseRequest(piece, (i & 1) === 0);
          const c = Object.hasOwn(COMMANDS, r.command) ? COMMANDS[r.command] : undefined;
          if (c?.params) checkArguments(c.params, r.args);
          JSON.stringify({ return: {}, id: r.id });
        } catch (e) {
          if (!(e instanceof QmpError)) throw e;
          JSON.stringify({ id: e.id, error: { class: e.cls, desc: e.message } });
        }
      }
      at += n;
    }
  },
};
