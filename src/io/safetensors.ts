/**
 * safetensors read/write (SPEC section 3): an 8-byte little-endian header
 * length N, N bytes of JSON `{name: {dtype, shape, data_offsets}, "__metadata__":
 * {str: str}}`, then the raw little-endian tensor data; data_offsets are
 * relative to the first byte after the header. Every length, offset and
 * shape is checked before a byte is read (SPEC section 7), and every failure
 * is an InputError naming the file and the tensor.
 */
import { InputError } from '../model/config.ts';

export type Dtype = 'F32' | 'F16' | 'BF16' | 'I32' | 'I64';

export interface SafeTensor {
  name: string;
  dtype: Dtype;
  shape: number[];
  /** Floats (F32/F16/BF16) as Float32Array; I32/I64 as Int32Array (I64 range-checked). */
  data: Float32Array | Int32Array;
}

export interface SafetensorsFile {
  tensors: Map<string, SafeTensor>;
  metadata: Record<string, string>;
}

export const DTYPE_BYTES: Record<Dtype, number> = { F32: 4, F16: 2, BF16: 2, I32: 4, I64: 8 };

const METADATA_KEY = '__metadata__';
const HEADER_LENGTH_BYTES = 8;
const TWO_POW_32 = 4294967296;

export function isFloatDtype(dtype: Dtype): boolean {
  return dtype === 'F32' || dtype === 'F16' || dtype === 'BF16';
}

/** IEEE 754 binary16 (1 sign, 5 exponent, 10 mantissa bits) to a number. */
export function f16ToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24; // subnormal: m / 2^10 * 2^-14
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** bfloat16 is the top half of a float32: shift it back into place. */
function bf16ToNumber(view: DataView, scratch: DataView, at: number): number {
  scratch.setUint32(0, view.getUint16(at, true) << 16, true);
  return scratch.getFloat32(0, true);
}

function shapeToString(shape: number[]): string {
  return `[${shape.join(', ')}]`;
}

function decode(view: DataView, dtype: Dtype, begin: number, count: number, where: string): Float32Array | Int32Array {
  switch (dtype) {
    case 'F32': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(begin + 4 * i, true);
      return out;
    }
    case 'F16': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = f16ToNumber(view.getUint16(begin + 2 * i, true));
      return out;
    }
    case 'BF16': {
      const out = new Float32Array(count);
      const scratch = new DataView(new ArrayBuffer(4));
      for (let i = 0; i < count; i++) out[i] = bf16ToNumber(view, scratch, begin + 2 * i);
      return out;
    }
    case 'I32': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt32(begin + 4 * i, true);
      return out;
    }
    case 'I64': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) {
        const lo = view.getUint32(begin + 8 * i, true);
        const hi = view.getInt32(begin + 8 * i + 4, true);
        // The value fits an int32 exactly when the high word is the sign extension of the low word.
        if (hi !== (lo >= 0x80000000 ? -1 : 0)) {
          throw new InputError(`${where}: element ${i} (${hi * TWO_POW_32 + lo}) does not fit a 32-bit integer`);
        }
        out[i] = lo | 0;
      }
      return out;
    }
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isNonNegativeInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

interface HeaderEntry {
  name: string;
  dtype: Dtype;
  shape: number[];
  begin: number;
  end: number;
}

function parseEntry(name: string, value: unknown, dataBytes: number, source: string): HeaderEntry {
  const where = `${source}: tensor "${name}"`;
  if (!isPlainObject(value)) throw new InputError(`${where}: header entry must be an object {dtype, shape, data_offsets}`);
  const dtype = value.dtype;
  if (typeof dtype !== 'string' || !(dtype in DTYPE_BYTES)) {
    throw new InputError(`${where}: unsupported dtype ${JSON.stringify(dtype)} (expected one of ${Object.keys(DTYPE_BYTES).join(', ')})`);
  }
  const shape = value.shape;
  if (!Array.isArray(shape) || !shape.every(isNonNegativeInt)) {
    throw new InputError(`${where}: shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  const offsets = value.data_offsets;
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegativeInt)) {
    throw new InputError(`${where}: data_offsets must be [begin, end] non-negative integers, got ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end || end > dataBytes) {
    throw new InputError(`${where}: data_offsets [${begin}, ${end}] out of range of the ${dataBytes} data bytes`);
  }
  const count = (shape as number[]).reduce((a, b) => a * b, 1);
  const expectedBytes = count * DTYPE_BYTES[dtype as Dtype];
  if (end - begin !== expectedBytes) {
    throw new InputError(
      `${where}: ${end - begin} data bytes for shape ${shapeToString(shape as number[])} of ${dtype}, ` +
        `expected ${expectedBytes} (${count} elements x ${DTYPE_BYTES[dtype as Dtype]} bytes)`,
    );
  }
  return { name, dtype: dtype as Dtype, shape: shape as number[], begin, end };
}

function parseMetadata(value: unknown, source: string): Record<string, string> {
  if (!isPlainObject(value) || !Object.values(value).every((v) => typeof v === 'string')) {
    throw new InputError(`${source}: "${METADATA_KEY}" must be an object of string values`);
  }
  return { ...(value as Record<string, string>) };
}

/**
 * Parses a whole safetensors file. `source` (a path or a name) appears in
 * every error message. The data must be covered exactly: tensors' byte
 * ranges may neither overlap nor leave gaps nor leave trailing bytes, as
 * the reference implementation requires.
 */
export function parseSafetensors(bytes: Uint8Array, source: string): SafetensorsFile {
  if (bytes.length < HEADER_LENGTH_BYTES) {
    throw new InputError(`${source}: ${bytes.length} bytes is too short for a safetensors file (the header length alone is 8 bytes)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerBytes = view.getUint32(4, true) * TWO_POW_32 + view.getUint32(0, true);
  if (headerBytes > bytes.length - HEADER_LENGTH_BYTES) {
    throw new InputError(
      `${source}: header length ${headerBytes} runs past the end of the file (${bytes.length - HEADER_LENGTH_BYTES} bytes after the length field); truncated or not a safetensors file`,
    );
  }
  let header: unknown;
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(HEADER_LENGTH_BYTES, HEADER_LENGTH_BYTES + headerBytes));
    header = JSON.parse(text);
  } catch (e) {
    throw new InputError(`${source}: header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (!isPlainObject(header)) throw new InputError(`${source}: header must be a JSON object`);

  const dataStart = HEADER_LENGTH_BYTES + headerBytes;
  const dataBytes = bytes.length - dataStart;
  let metadata: Record<string, string> = {};
  const entries: HeaderEntry[] = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === METADATA_KEY) metadata = parseMetadata(value, source);
    else entries.push(parseEntry(name, value, dataBytes, source));
  }

  const byStart = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  let previous: HeaderEntry | null = null;
  for (const e of byStart) {
    if (e.begin < covered) {
      throw new InputError(`${source}: tensor "${e.name}" data_offsets [${e.begin}, ${e.end}] overlap tensor "${previous!.name}" [${previous!.begin}, ${previous!.end}]`);
    }
    if (e.begin > covered) {
      throw new InputError(`${source}: tensor "${e.name}" data_offsets [${e.begin}, ${e.end}] leave the data bytes [${covered}, ${e.begin}) unused`);
    }
    covered = e.end;
    previous = e;
  }
  if (covered !== dataBytes) {
    throw new InputError(`${source}: the tensors cover ${covered} data bytes but the file has ${dataBytes} after the header`);
  }

  const tensors = new Map<string, SafeTensor>();
  for (const e of entries) {
    const count = e.shape.reduce((a, b) => a * b, 1);
    const data = decode(view, e.dtype, dataStart + e.begin, count, `${source}: tensor "${e.name}"`);
    tensors.set(e.name, { name: e.name, dtype: e.dtype, shape: [...e.shape], data });
  }
  return { tensors, metadata };
}

export interface TensorToWrite {
  name: string;
  dtype: 'F32' | 'I32';
  shape: number[];
  data: Float32Array | Int32Array;
}

/**
 * Serialises tensors in the order given, data contiguous, `__metadata__`
 * first; the header is padded with spaces so that the data starts on an
 * 8-byte boundary, as `safetensors.torch.save_file` does.
 */
export function serializeSafetensors(tensors: TensorToWrite[], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header[METADATA_KEY] = metadata;
  let offset = 0;
  for (const t of tensors) {
    if (t.name === METADATA_KEY || t.name in header) throw new Error(`serializeSafetensors: duplicate or reserved tensor name "${t.name}"`);
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) {
      throw new Error(`serializeSafetensors: tensor "${t.name}" has ${t.data.length} elements, shape ${shapeToString(t.shape)} needs ${count}`);
    }
    if ((t.dtype === 'F32') !== t.data instanceof Float32Array) {
      throw new Error(`serializeSafetensors: tensor "${t.name}" dtype ${t.dtype} does not match its ${t.data.constructor.name}`);
    }
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + 4 * count] };
    offset += 4 * count;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerBytes = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(HEADER_LENGTH_BYTES + headerBytes + offset);
  const view = new DataView(out.buffer);
  view.setUint32(0, headerBytes, true);
  out.set(json, HEADER_LENGTH_BYTES);
  out.fill(0x20, HEADER_LENGTH_BYTES + json.length, HEADER_LENGTH_BYTES + headerBytes);
  let at = HEADER_LENGTH_BYTES + headerBytes;
  for (const t of tensors) {
    for (let i = 0; i < t.data.length; i++, at += 4) {
      if (t.dtype === 'F32') view.setFloat32(at, t.data[i]!, true);
      else view.setInt32(at, t.data[i]!, true);
    }
  }
  return out;
}
