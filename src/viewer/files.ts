/**
 * Opening files in the page: dropped on it, or picked with the panel's
 * "open grid file" button. Both go through openFiles, which reads a grid
 * file (safetensors, SPEC section 3) with the io module's reader.
 */
import { InputError } from '../model/config.ts';
import { type GridFile, gridFromSafetensors } from '../io/formats.ts';
import { parseSafetensors } from '../io/safetensors.ts';

export async function readGridFile(file: File): Promise<GridFile> {
  if (!file.name.endsWith('.safetensors')) {
    throw new InputError(`${file.name}: the viewer opens grid files (.safetensors with a "loss" tensor, written by losscape grid)`);
  }
  const bytes = new Uint8Array(await file.arrayBuffer());
  const st = parseSafetensors(bytes, file.name);
  if (!st.tensors.has('loss')) {
    throw new InputError(
      `${file.name}: no "loss" tensor, so not a grid file; models, runs and directions files are evaluated with `
      + '`losscape grid` for now, and its output dropped here',
    );
  }
  return gridFromSafetensors(st, file.name);
}

/** Calls `open` with the files dropped anywhere on `target`. */
export function attachDrop(target: HTMLElement, open: (files: File[]) => void): void {
  target.addEventListener('dragover', (e) => {
    e.preventDefault();
    if (e.dataTransfer) e.dataTransfer.dropEffect = 'copy';
  });
  target.addEventListener('drop', (e) => {
    e.preventDefault();
    const files = [...(e.dataTransfer?.files ?? [])];
    if (files.length > 0) open(files);
  });
}

/** Opens the browser's file picker for grid files. */
export function pickFiles(open: (files: File[]) => void): void {
  const input = document.createElement('input');
  input.type = 'file';
  input.accept = '.safetensors';
  input.addEventListener('change', () => {
    const files = [...(input.files ?? [])];
    if (files.length > 0) open(files);
  });
  input.click();
}
