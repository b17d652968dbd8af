#!/usr/bin/env node
// The `virtus` command. The TypeScript sources are the program: no build step is needed. On
// first use, and whenever a source changes, esbuild bundles src/ into one module under build/cli/
// (named by a hash of its sources' paths, sizes and modification times), because loading some
// 170 modules through tsx's loader took about 0.3 s of every start. Without esbuild, or when
// build/ cannot be written, the sources run through tsx as they are.
//
// Node's built-in modules are required, not imported: an ES module's import of node:fs reads
// every export of it, which loads its lazy ones (the file streams, and node:stream with them):
// about 8 ms of each start of `virtus exec`.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } = require('node:fs');
const { basename, dirname, join, resolve } = require('node:path');
const { fileURLToPath, pathToFileURL } = require('node:url');
const { setFlagsFromString } = require('node:v8');
const { Script } = require('node:vm');

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src');
const dir = join(root, 'build/cli');
// `virtus exec` starts from its own, smaller bundle (src/host/node/exec-main.ts): the whole CLI
// loads every command and the packages they use, most of a static hello world's start-up. It is
// a CommonJS bundle run through node:vm with a V8 code cache beside it (ES modules get none on
// Node 20), which spares the compilation of what a run needs (15 ms of a hello world).
const light = process.argv[2] === 'exec';
const entry = join(src, light ? 'host/node/exec-main.ts' : 'host/node/cli.ts');
const prefix = light ? 'exec-' : 'virtus-';
const ext = light ? '.cjs' : '.mjs';
/** The bundle's inputs, written beside it: only those are checked for changes at start. */
const inputsFile = join(dir, `${prefix}inputs.json`);

/**
 * A hash of the files' paths, sizes and modification times (two 32-bit FNV-1a hashes: node:crypto
 * took 6 ms to load); null when one is missing.
 */
function stamp(files) {
  let a = 0x811c9dc5;
  let b = 0x01000193;
  for (const path of files) {
    const st = statSync(path, { throwIfNoEntry: false });
    if (!st) return null;
    const text = `${path}\0${st.size}\0${st.mtimeMs}\n`;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x5bd1e995) ^ (b >>> 15);
    }
  }
  return (a >>> 0).toString(16).padStart(8, '0') + (b >>> 0).toString(16).padStart(8, '0');
}

/** The bundle made from the inputs it was last made from, if none of them changed since. */
function current() {
  try {
    const files = JSON.parse(readFileSync(inputsFile, 'utf8'));
    if (!Array.isArray(files) || files.length === 0 || !files.every((f) => typeof f === 'string')) return null;
    const s = stamp(files);
    if (!s) return null;
    const file = join(dir, `${prefix}${s}${ext}`);
    return statSync(file, { throwIfNoEntry: false }) ? file : null;
  } catch {
    return null;
  }
}

/** The bundle for the sources as they are now, made if missing; null when it cannot be. */
async function bundle() {
  const found = current();
  if (found) return found;
  try {
    const esbuild = await import('esbuild');
    mkdirSync(dir, { recursive: true });
    // Several processes may start at once: each writes its own files and renames them into place.
    const tmp = join(dir, `${prefix}${process.pid}.tmp`);
    const built = await esbuild.build({
      entryPoints: [entry], bundle: true, platform: 'node', format: light ? 'cjs' : 'esm', target: 'node20',
      packages: 'external', outfile: tmp, logLevel: 'silent', metafile: true, absWorkingDir: root,
      // The CommonJS bundle is given its file's URL (see runCommonJs).
      define: light ? { 'import.meta.url': '__virtusBundleUrl' } : undefined,
    });
    const files = Object.keys(built.metafile.inputs).map((f) => resolve(root, f)).sort();
    const s = stamp(files);
    if (!s) throw new Error('a source vanished while bundling');
    const file = join(dir, `${prefix}${s}${ext}`);
    renameSync(tmp, file);
    writeFileSync(`${inputsFile}.${process.pid}.tmp`, JSON.stringify(files));
    renameSync(`${inputsFile}.${process.pid}.tmp`, inputsFile);
    // Older bundles go, with their code caches.
    for (const old of readdirSync(dir)) {
      if (!old.startsWith(prefix) || old === basename(file) || old === basename(inputsFile) || old.endsWith('.tmp')) continue;
      rmSync(join(dir, old), { force: true });
    }
    return file;
  } catch {
    return null;
  }
}

/**
 * Runs the exec bundle (CommonJS) through node:vm with the V8 code cache at FILE.cache, and makes
 * that cache after the first run (it then holds the functions the run compiled). V8 refuses a
 * cache made under other flags: the flag `virtus exec` sets (src/host/node/v8-tuning.ts) is set
 * here first, so that the cache is made and used under the same ones. A refused cache is made again.
 */
async function runCommonJs(file, argv) {
  setFlagsFromString('--wasm-tiering-budget=1800000000');
  const cacheFile = `${file}.cache`;
  let cachedData;
  try {
    cachedData = readFileSync(cacheFile);
  } catch {}
  const code = readFileSync(file, 'utf8');
  const script = new Script(`(function (exports, require, module, __filename, __dirname, __virtusBundleUrl) {${code}\n})`, {
    filename: file, cachedData,
  });
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(file), module, file, dirname(file), pathToFileURL(file).href);
  const status = await module.exports.main(argv);
  if (!cachedData || script.cachedDataRejected) {
    try {
      writeFileSync(`${cacheFile}.${process.pid}.tmp`, script.createCachedData());
      renameSync(`${cacheFile}.${process.pid}.tmp`, cacheFile);
    } catch {}
  }
  return status;
}

const built = process.env.VIRTUS_NO_BUNDLE ? null : await bundle();
if (built && light) {
  process.exitCode = await runCommonJs(built, process.argv.slice(2));
} else {
  let main;
  if (built) {
    ({ main } = await import(pathToFileURL(built).href));
  } else {
    const { register } = await import('tsx/esm/api');
    register();
    ({ main } = await import(pathToFileURL(entry).href));
  }
  process.exitCode = await main(process.argv.slice(2));
}
