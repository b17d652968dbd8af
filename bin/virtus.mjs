#!/usr/bin/env node
// The `virtus` command. The TypeScript sources are the program: no build step is needed. On
// first use, and whenever a source changes, esbuild bundles src/ into one module under build/cli/
// (named by a hash of the sources' paths, sizes and modification times), because loading some
// 170 modules through tsx's loader took about 0.3 s of every start. Without esbuild, or when
// build/ cannot be written, the sources run through tsx as they are.
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src');
// `virtus exec` starts from its own, smaller bundle (src/host/node/exec-main.ts): the whole CLI
// loads every command and the packages they use, most of a static hello world's start-up.
const light = process.argv[2] === 'exec';
const entry = join(src, light ? 'host/node/exec-main.ts' : 'host/node/cli.ts');
const prefix = light ? 'exec-' : 'virtus-';

/** The bundle for the sources as they are now, made if missing; null when it cannot be. */
async function bundle() {
  const hash = createHash('sha256');
  for (const e of readdirSync(src, { recursive: true, withFileTypes: true })) {
    if (!e.isFile() || !e.name.endsWith('.ts') || e.name.endsWith('.test.ts')) continue;
    const path = join(e.parentPath ?? e.path, e.name);
    const st = statSync(path);
    hash.update(`${path}\0${st.size}\0${st.mtimeMs}\n`);
  }
  const dir = join(root, 'build/cli');
  const file = join(dir, `${prefix}${hash.digest('hex').slice(0, 16)}.mjs`);
  try {
    statSync(file);
    return file;
  } catch {}
  try {
    const esbuild = await import('esbuild');
    mkdirSync(dir, { recursive: true });
    // Several processes may start at once: each writes its own file and renames it into place.
    const tmp = `${file}.${process.pid}.tmp`;
    await esbuild.build({
      entryPoints: [entry], bundle: true, platform: 'node', format: 'esm', target: 'node20',
      packages: 'external', outfile: tmp, logLevel: 'silent',
    });
    renameSync(tmp, file);
    for (const old of readdirSync(dir)) {
      if (old.startsWith(prefix) && join(dir, old) !== file && !old.endsWith('.tmp')) rmSync(join(dir, old), { force: true });
    }
    return file;
  } catch {
    return null;
  }
}

const built = process.env.VIRTUS_NO_BUNDLE ? null : await bundle();
let main;
if (built) {
  ({ main } = await import(pathToFileURL(built).href));
} else {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import(pathToFileURL(entry).href));
}
process.exitCode = await main(process.argv.slice(2));
