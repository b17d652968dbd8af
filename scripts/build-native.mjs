#!/usr/bin/env node
// Builds virtus' native helpers: build/native/ofd-lock.node (src/host/node/native/ofd-lock.c:
// fcntl OFD locks, for image locking as QEMU does it), build/native/sockets.node (sockets.c:
// synchronous socket calls for `virtus exec`) and build/native/memory.node (memory.c:
// malloc_trim, for the daemon). Run by `npm install`/`npm ci` (the
// package's install script). It compiles the C files directly against the Node-API headers
// that ship with Node (<prefix>/include/node): node-gyp would download Node's headers from
// the web first. Without a C compiler or the headers it says so and succeeds: virtus then
// runs without image locking (and warns when it opens an image) and `virtus exec` without
// sockets (ENOSYS).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
/** Each helper: its source, and what is off without it. */
const HELPERS = [
  { name: 'ofd-lock', without: 'image locking will be off' },
  { name: 'sockets', without: '`virtus exec` will have no sockets' },
  { name: 'memory', without: "the daemon will not return its threads' freed memory to the system" },
];

function note(message) {
  console.warn(`virtus: ${message}`);
}

if (process.platform !== 'linux') {
  note('the native helpers are for Linux (OFD locks, sockets); not building them');
  process.exit(0);
}
const includes = [join(dirname(process.execPath), '../include/node'), '/usr/include/node', '/usr/include/nodejs/src'];
const include = includes.find((d) => existsSync(join(d, 'node_api.h')));
if (!include) {
  note(`no Node-API headers (node_api.h) in ${includes.join(', ')}; ${HELPERS.map((h) => h.without).join(', ')}`);
  process.exit(0);
}
mkdirSync(join(root, 'build/native'), { recursive: true });
for (const h of HELPERS) {
  const out = join(root, 'build/native', `${h.name}.node`);
  const flags = ['-O2', '-fPIC', '-shared', '-Wall', '-Werror', `-I${include}`, '-o', out, join(root, 'src/host/node/native', `${h.name}.c`)];
  let built = false;
  let tried = false;
  for (const cc of [process.env.CC, 'cc', 'gcc', 'clang'].filter(Boolean)) {
    const r = spawnSync(cc, flags, { stdio: ['ignore', 'inherit', 'inherit'] });
    if (r.error) continue; // not installed
    tried = true;
    built = r.status === 0;
    break;
  }
  if (!tried) note(`no C compiler (cc, gcc or clang) to build the native helpers; ${h.without}`);
  else if (!built) note(`could not build ${out}; ${h.without}`);
}
