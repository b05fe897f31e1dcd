/**
 * safetensors reader/writer (SPEC sections 3 and 7). Files under test are
 * built byte by byte here (`rawFile`), independently of the writer, so that
 * malformed headers and data can be expressed directly.
 */
import { describe, expect, it } from 'vitest';
import { f16ToNumber, parseSafetensors, serializeSafetensors } from '../src/io/safetensors.ts';
import { expectInputError } from './helpers/errors.ts';

/** 8-byte LE header length, the header text as given (padded with spaces to 8 bytes), then the data bytes. */
function rawFile(header: unknown, data: Uint8Array = new Uint8Array(0), headerLength?: number): Uint8Array {
  const text = typeof header === 'string' ? header : JSON.stringify(header);
  const json = new TextEncoder().encode(text.padEnd(Math.ceil(text.length / 8) * 8, ' '));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setUint32(0, headerLength ?? json.length, true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function u16(...words: number[]): Uint8Array {
  const out = new Uint8Array(2 * words.length);
  words.forEach((w, i) => new DataView(out.buffer).setUint16(2 * i, w, true));
  return out;
}

function f32(...values: number[]): Uint8Array {
  return new Uint8Array(new Float32Array(values).buffer);
}

const SRC = 'weights.safetensors';

describe('parseSafetensors: well-formed files', () => {
  it('reads F32 tensors in any order of offsets, and the metadata', () => {
    const bytes = rawFile(
      {
        __metadata__: { format: 'pt', step: '7' },
        b: { dtype: 'F32', shape: [3], data_offsets: [0, 12] },
        a: { dtype: 'F32', shape: [2, 1], data_offsets: [12, 20] },
      },
      f32(0.5, -1.25, 3, 1e-3, -7),
    );
    const file = parseSafetensors(bytes, SRC);
    expect(file.metadata).toEqual({ format: 'pt', step: '7' });
    expect(file.tensors.get('a')).toEqual({ name: 'a', dtype: 'F32', shape: [2, 1], data: new Float32Array([1e-3, -7]) });
    expect([...file.tensors.get('b')!.data]).toEqual([0.5, -1.25, 3]);
  });

  it('reads from a Uint8Array that is a view at an odd offset of a larger buffer', () => {
    const inner = rawFile({ x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, f32(2.5, -4));
    const outer = new Uint8Array(inner.length + 3);
    outer.set(inner, 3);
    expect([...parseSafetensors(outer.subarray(3), SRC).tensors.get('x')!.data]).toEqual([2.5, -4]);
  });

  it('decodes F16 bit patterns (hand-computed)', () => {
    const words = [0x3c00, 0xc000, 0x7c00, 0xfc00, 0x0001, 0x3555, 0x7bff, 0x0400, 0x8000, 0x3800];
    const want = [1, -2, Infinity, -Infinity, 2 ** -24, 0.333251953125, 65504, 2 ** -14, -0, 0.5];
    const file = parseSafetensors(rawFile({ h: { dtype: 'F16', shape: [words.length], data_offsets: [0, 2 * words.length] } }, u16(...words)), SRC);
    const got = [...file.tensors.get('h')!.data];
    got.forEach((v, i) => expect(Object.is(v, want[i])).toBe(true));
    expect(Number.isNaN(f16ToNumber(0x7e00))).toBe(true);
  });

  it('decodes BF16 bit patterns (hand-computed)', () => {
    const words = [0x3f80, 0xc040, 0x4049, 0x7f80, 0xff80, 0x3e80, 0x0001, 0x8000];
    // 0x4049 = 0x40490000 as float32 = 1.5703125 * 2 = 3.140625; 0x0001 = 2^-133 (float32 subnormal).
    const want = [1, -3, 3.140625, Infinity, -Infinity, 0.25, 2 ** -133, -0];
    const file = parseSafetensors(rawFile({ h: { dtype: 'BF16', shape: [2, 4], data_offsets: [0, 16] } }, u16(...words)), SRC);
    const t = file.tensors.get('h')!;
    expect(t.data).toBeInstanceOf(Float32Array);
    [...t.data].forEach((v, i) => expect(Object.is(v, want[i])).toBe(true));
    const nan = parseSafetensors(rawFile({ h: { dtype: 'BF16', shape: [1], data_offsets: [0, 2] } }, u16(0x7fc0)), SRC);
    expect(Number.isNaN(nan.tensors.get('h')!.data[0])).toBe(true);
  });

  it('reads I64 into Int32Array over the whole int32 range', () => {
    const values = [0n, 36n, -5n, 2147483647n, -2147483648n];
    const file = parseSafetensors(rawFile({ t: { dtype: 'I64', shape: [5], data_offsets: [0, 40] } }, new Uint8Array(new BigInt64Array(values).buffer)), SRC);
    const t = file.tensors.get('t')!;
    expect(t.data).toBeInstanceOf(Int32Array);
    expect([...t.data]).toEqual([0, 36, -5, 2147483647, -2147483648]);
  });

  it.each([2n ** 31n, -(2n ** 31n) - 1n, 2n ** 40n])('rejects the I64 value %s that does not fit int32', (v) => {
    const bytes = rawFile({ ids: { dtype: 'I64', shape: [2], data_offsets: [0, 16] } }, new Uint8Array(new BigInt64Array([1n, v]).buffer));
    expectInputError(() => parseSafetensors(bytes, SRC), SRC, '"ids"', 'element 1', String(v));
  });

  it('reads I32, scalars (shape []) and empty tensors', () => {
    const file = parseSafetensors(rawFile({
      i: { dtype: 'I32', shape: [2], data_offsets: [0, 8] },
      s: { dtype: 'F32', shape: [], data_offsets: [8, 12] },
      e: { dtype: 'F32', shape: [0, 5], data_offsets: [12, 12] },
    }, new Uint8Array([...new Uint8Array(new Int32Array([-3, 70000]).buffer), ...f32(9)])), SRC);
    expect([...file.tensors.get('i')!.data]).toEqual([-3, 70000]);
    expect([...file.tensors.get('s')!.data]).toEqual([9]);
    expect(file.tensors.get('e')!.data.length).toBe(0);
  });
});

describe('serializeSafetensors', () => {
  it('round-trips F32 and I32 with metadata, header padded with spaces to 8 bytes, offsets contiguous', () => {
    const w = new Float32Array([1.5, -2, NaN, Infinity, 3e-39, 7]);
    const ids = new Int32Array([5, -1, 2147483647]);
    const bytes = serializeSafetensors(
      [{ name: 'w', dtype: 'F32', shape: [2, 3], data: w }, { name: 'ids', dtype: 'I32', shape: [3], data: ids }],
      { kind: 'test' },
    );
    const headerLength = new DataView(bytes.buffer).getUint32(0, true);
    expect(new DataView(bytes.buffer).getUint32(4, true)).toBe(0);
    expect(headerLength % 8).toBe(0);
    const text = new TextDecoder().decode(bytes.subarray(8, 8 + headerLength));
    expect(text).toMatch(/^\{.*\} *$/);
    const header = JSON.parse(text);
    expect(header.w.data_offsets).toEqual([0, 24]);
    expect(header.ids.data_offsets).toEqual([24, 36]);
    expect(bytes.length).toBe(8 + headerLength + 36);

    const file = parseSafetensors(bytes, SRC);
    expect(file.metadata).toEqual({ kind: 'test' });
    expect(file.tensors.get('w')).toEqual({ name: 'w', dtype: 'F32', shape: [2, 3], data: w });
    expect(file.tensors.get('ids')).toEqual({ name: 'ids', dtype: 'I32', shape: [3], data: ids });
  });

  it('refuses data whose length does not match the shape', () => {
    expect(() => serializeSafetensors([{ name: 'w', dtype: 'F32', shape: [4], data: new Float32Array(3) }])).toThrow(/"w" has 3 elements/);
  });
});

describe('parseSafetensors: malformed files each get an InputError naming the file and the tensor', () => {
  const good = rawFile({ w: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] } }, f32(1, 2, 3, 4));

  it.each([0, 5, 7])('a file of %i bytes, shorter than the 8-byte length', (n) => {
    expectInputError(() => parseSafetensors(good.subarray(0, n), SRC), SRC, 'too short');
  });

  it('a file truncated inside the header: header length past the end', () => {
    expectInputError(() => parseSafetensors(good.subarray(0, 20), SRC), SRC, 'header length', 'past the end');
  });

  it('a header length field far past the end (high word set)', () => {
    const bytes = good.slice();
    const view = new DataView(bytes.buffer);
    view.setUint32(4, 1, true);
    expectInputError(() => parseSafetensors(bytes, SRC), SRC, `header length ${2 ** 32 + view.getUint32(0, true)}`, 'past the end');
  });

  it('a file truncated inside the data', () => {
    expectInputError(() => parseSafetensors(good.subarray(0, good.length - 4), SRC), SRC, '"w"', 'data_offsets [0, 16] out of range of the 12 data bytes');
  });

  it('trailing bytes after the last tensor', () => {
    const bytes = new Uint8Array([...good, 0, 0, 0, 0]);
    expectInputError(() => parseSafetensors(bytes, SRC), SRC, 'cover 16 data bytes', 'has 20');
  });

  it.each([
    ['not JSON', '{"w": {"dtype": "F32",'],
    ['a JSON array', '[1, 2]'],
    ['a JSON string', '"hello"'],
    ['null', 'null'],
  ])('a header that is %s', (_what, text) => {
    expectInputError(() => parseSafetensors(rawFile(text), SRC), SRC, 'header');
  });

  it('a header that is not UTF-8', () => {
    const bytes = rawFile('{"w":1}');
    bytes[10] = 0xff;
    expectInputError(() => parseSafetensors(bytes, SRC), SRC, 'UTF-8');
  });

  it.each(['F64', 'U8', 'float32', 7])('an unknown dtype %s', (dtype) => {
    expectInputError(
      () => parseSafetensors(rawFile({ w: { dtype, shape: [2], data_offsets: [0, 8] } }, f32(1, 2)), SRC),
      SRC, '"w"', 'unsupported dtype', JSON.stringify(dtype),
    );
  });

  it('a header entry that is not an object', () => {
    expectInputError(() => parseSafetensors(rawFile({ w: [0, 4] }, f32(1)), SRC), SRC, '"w"', 'header entry');
  });

  it.each([
    ['negative', [-2, 2]],
    ['non-integer', [1.5]],
    ['a string', ['2']],
    ['not an array', 4],
  ])('a %s shape entry', (_what, shape) => {
    expectInputError(
      () => parseSafetensors(rawFile({ w: { dtype: 'F32', shape, data_offsets: [0, 16] } }, f32(1, 2, 3, 4)), SRC),
      SRC, '"w"', 'shape must be an array of non-negative integers',
    );
  });

  it.each([
    ['end past the data', [0, 20], 'out of range'],
    ['begin after end', [16, 0], 'out of range'],
    ['a negative offset', [-4, 12], 'data_offsets must be'],
    ['a fractional offset', [0, 15.5], 'data_offsets must be'],
    ['three numbers', [0, 8, 16], 'data_offsets must be'],
  ])('data_offsets with %s', (_what, offsets, message) => {
    expectInputError(
      () => parseSafetensors(rawFile({ w: { dtype: 'F32', shape: [4], data_offsets: offsets } }, f32(1, 2, 3, 4)), SRC),
      SRC, '"w"', message,
    );
  });

  it('overlapping data_offsets', () => {
    const bytes = rawFile({
      a: { dtype: 'F32', shape: [3], data_offsets: [0, 12] },
      b: { dtype: 'F32', shape: [3], data_offsets: [8, 20] },
      c: { dtype: 'F32', shape: [1], data_offsets: [20, 24] },
    }, f32(1, 2, 3, 4, 5, 6));
    expectInputError(() => parseSafetensors(bytes, SRC), SRC, '"b"', 'overlap tensor "a"');
  });

  it('two tensors on the same bytes', () => {
    const bytes = rawFile({
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      b: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
    }, f32(1, 2));
    expectInputError(() => parseSafetensors(bytes, SRC), SRC, 'overlap');
  });

  it('a gap between tensors: the data is not covered', () => {
    const bytes = rawFile({
      a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
      b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] },
    }, f32(1, 2, 3));
    expectInputError(() => parseSafetensors(bytes, SRC), SRC, '"b"', 'leave the data bytes [4, 8) unused');
  });

  it.each([
    ['F16 over 4 floats of bytes', 'F16', [4], 'expected 8'],
    ['F32 over 3 floats of bytes', 'F32', [4], 'expected 16'],
    ['I64 with an odd shape', 'I64', [3], 'expected 24'],
    ['BF16 with shape [2, 3]', 'BF16', [2, 3], 'expected 12'],
  ])('a byte length that does not match product(shape) * dtype size: %s', (_what, dtype, shape, message) => {
    const bytes = rawFile({ w: { dtype, shape, data_offsets: [0, dtype === 'F32' ? 12 : 16] } }, new Uint8Array(dtype === 'F32' ? 12 : 16));
    expectInputError(() => parseSafetensors(bytes, SRC), SRC, '"w"', message);
  });

  it('metadata with a non-string value', () => {
    expectInputError(() => parseSafetensors(rawFile({ __metadata__: { step: 3 } }), SRC), SRC, '__metadata__');
  });
});
