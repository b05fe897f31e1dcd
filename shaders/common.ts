/**
 * Pieces shared by the kernel families: how a kernel reads the model's
 * weights. In `plain` mode a weight is `theta[i]`; in `perturbed` mode
 * every grid point p forms its own weight on the fly,
 * `theta[i] + a_p * d1[i] + b_p * d2[i]`, from the three shared flat buffers
 * and the point's coordinates — no per-point copy of the weights exists.
 */
import { type BindingDef } from '../src/gpu/kernel.ts';

export type WeightMode = 'plain' | 'perturbed';

/** Bindings 1.. for the weights: theta (and d1, d2, coords when perturbed). */
export function weightBindings(mode: WeightMode): BindingDef[] {
  const b: BindingDef[] = [{ name: 'theta', kind: 'read' }];
  if (mode === 'perturbed') b.push({ name: 'd1', kind: 'read' }, { name: 'd2', kind: 'read' }, { name: 'coords', kind: 'read' });
  return b;
}

/**
 * WGSL declarations of the weight buffers starting at `@binding(first)`, and
 * the function `w(i, ab)` reading weight i of the point at `ab` (its (a, b)
 * from `coords`, via `pointCoords(p)`). With `vec4`, the buffers are declared
 * as `array<vec4f>` so that `w4(i4, ab)` is three 16-byte loads (tensor
 * offsets are multiples of 4 floats, see src/model/params.ts).
 */
export function weightSource(mode: WeightMode, first: number, vec4 = false): string {
  const t = vec4 ? 'vec4f' : 'f32';
  const decl = (name: string, i: number, type: string): string => `@group(0) @binding(${i}) var<storage, read> ${name}: array<${type}>;`;
  const at = (buf: string, i: string): string => (vec4 ? `${buf}[${i} / 4u][${i} % 4u]` : `${buf}[${i}]`);
  const lines: string[] = [decl('theta', first, t)];
  if (mode === 'plain') {
    lines.push('fn pointCoords(p: u32) -> vec2f { return vec2f(0.0); }');
    lines.push(`fn w(i: u32, ab: vec2f) -> f32 { return ${at('theta', 'i')}; }`);
    if (vec4) lines.push('fn w4(i: u32, ab: vec2f) -> vec4f { return theta[i]; }');
  } else {
    lines.push(decl('d1', first + 1, t), decl('d2', first + 2, t), decl('coords', first + 3, 'vec2f'));
    lines.push('fn pointCoords(p: u32) -> vec2f { return coords[p]; }');
    lines.push(`fn w(i: u32, ab: vec2f) -> f32 { return ${at('theta', 'i')} + ab.x * ${at('d1', 'i')} + ab.y * ${at('d2', 'i')}; }`);
    if (vec4) lines.push('fn w4(i: u32, ab: vec2f) -> vec4f { return theta[i] + ab.x * d1[i] + ab.y * d2[i]; }');
  }
  return lines.join('\n');
}

/**
 * Element i of a row spread over the first 4 lanes of a subgroup, as the
 * subgroup kernels load it: in its load j, lane l holds elements
 * V*(4j + l) .. V*(4j + l) + V-1 (the vec4 `${name}j` when V is 4, a scalar
 * when 1). The WGSL expression that gives every lane element i, through
 * subgroupBroadcast from a constant lane.
 */
export function laneElement(name: string, i: number, V: 1 | 4): string {
  return `subgroupBroadcast(${name}${Math.floor(i / (4 * V))}${V === 4 ? `[${i % 4}]` : ''}, ${Math.floor(i / V) % 4}u)`;
}

/**
 * The loads that spread a row of n floats over the first 4 lanes of a
 * subgroup in laneElement's layout, in units of V floats: `let NAMEj =
 * READ(unit)` for each load j, where unit = min(4j + lane, n/V - 1) indexes
 * the row's units (lanes past the row's end repeat its last one).
 */
export function laneLoads(name: string, n: number, V: 1 | 4, read: (unit: string) => string, indent: string): string {
  const units = n / V;
  return Array.from({ length: Math.ceil(n / (4 * V)) }, (_, j) => `${indent}let ${name}${j} = ${read(`min(${4 * j}u + lane, ${units - 1}u)`)};`).join('\n');
}

/** The number of bindings `weightBindings(mode)` takes. */
export function weightBindingCount(mode: WeightMode): number {
  return mode === 'plain' ? 1 : 4;
}
