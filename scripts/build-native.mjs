#!/usr/bin/env node
// Builds virtus' one native helper, build/native/ofd-lock.node (src/host/node/native/ofd-lock.c:
// fcntl OFD locks, for image locking as QEMU does it). Run by `npm install`/`npm ci` (the
// package's install script). It compiles the C file directly against the Node-API headers
// that ship with Node (<prefix>/include/node): node-gyp would download Node's headers from
// the web first. Without a C compiler or the headers it says so and succeeds: virtus then
// runs without image locking and warns when it opens an image.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const source = join(root, 'src/host/node/native/ofd-lock.c');
const out = join(root, 'build/native/ofd-lock.node');

function note(message) {
  console.warn(`virtus: ${message}`);
}

if (process.platform !== 'linux') {
  note('image locking needs Linux open file description locks; not building the native helper');
  process.exit(0);
}
const includes = [join(dirname(process.execPath), '../include/node'), '/usr/include/node', '/usr/include/nodejs/src'];
const include = includes.find((d) => existsSync(join(d, 'node_api.h')));
if (!include) {
  note(`no Node-API headers (node_api.h) in ${includes.join(', ')}; image locking will be off`);
  process.exit(0);
}
mkdirSync(dirname(out), { recursive: true });
const flags = ['-O2', '-fPIC', '-shared', '-Wall', '-Werror', `-I${include}`, '-o', out, source];
for (const cc of [process.env.CC, 'cc', 'gcc', 'clang'].filter(Boolean)) {
  const r = spawnSync(cc, flags, { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.error) continue; // not installed
  if (r.status === 0) process.exit(0);
  note(`${cc} could not build ${out}; image locking will be off`);
  process.exit(0);
}
note('no C compiler (cc, gcc or clang) to build the native helper; image locking will be off');
