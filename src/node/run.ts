/** Run directories from the file system (src/landscape/run.ts through Node's fs), and model specs that may name a run's checkpoint. */
import { readdirSync, statSync } from 'node:fs';
import { InputError } from '../model/config.ts';
import { type Run, type RunReader, findCheckpoint, openRun, parseCheckpointSpec } from '../landscape/run.ts';
import { type LoadedModel, loadModel, readBytes } from './files.ts';

export const nodeRunReader: RunReader = {
  list(dir: string): string[] {
    try {
      return readdirSync(dir);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new InputError(`${dir}: no such directory`);
      if (code === 'ENOTDIR') throw new InputError(`${dir}: is a file, expected a run directory`);
      throw new InputError(`${dir}: cannot list (${(e as Error).message})`);
    }
  },
  read: readBytes,
};

export function loadRun(dir: string): Run {
  return openRun(dir, nodeRunReader);
}

function isDirectory(path: string): boolean {
  return statSync(path, { throwIfNoEntry: false })?.isDirectory() ?? false;
}

/**
 * A model from a model directory, a run directory (its last checkpoint), a
 * checkpoint file with config.json beside it, or `RUN:STEP`, `RUN:init`,
 * `RUN:final` for one checkpoint of a run.
 */
export function loadModelSpec(spec: string): LoadedModel {
  const ref = parseCheckpointSpec(spec);
  if (ref && isDirectory(ref.run) && !isDirectory(spec)) {
    return loadModel(findCheckpoint(loadRun(ref.run), ref.which).path);
  }
  return loadModel(spec);
}
