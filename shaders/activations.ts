/**
 * GELU in WGSL, exact and tanh-approximated, with their derivatives for the
 * backward pass.
 *
 * WGSL has no erf. The exact GELU is written as 0.5 x erfc(-x / sqrt 2)
 * with the Chebyshev-fitted erfc of Numerical Recipes (erfcc, fractional
 * error below 1.2e-7 everywhere), which keeps full f32 relative accuracy
 * in the negative tail where 1 + erf(x) would cancel.
 * WGSL's tanh can return NaN for |x| beyond ~88 in f32, so its argument is
 * clamped (tanh(15) == 1 in f32 already).
 */
import { type Activation } from '../src/model/config.ts';

export const GELU_WGSL = /* wgsl */ `
fn erfc_nr(z: f32) -> f32 {
  let az = abs(z);
  let t = 1.0 / (1.0 + 0.5 * az);
  let poly = -az * az - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
    + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  let r = t * exp(poly);
  return select(2.0 - r, r, z >= 0.0);
}
fn gelu_exact(x: f32) -> f32 { return 0.5 * x * erfc_nr(-x * 0.70710678118654752); }
// d/dx [x Phi(x)] = Phi(x) + x phi(x)
fn gelu_exact_grad(x: f32) -> f32 {
  return 0.5 * erfc_nr(-x * 0.70710678118654752) + x * 0.39894228040143268 * exp(-0.5 * x * x);
}
fn gelu_tanh(x: f32) -> f32 {
  let u = clamp(0.7978845608028654 * (x + 0.044715 * x * x * x), -15.0, 15.0);
  return 0.5 * x * (1.0 + tanh(u));
}
fn gelu_tanh_grad(x: f32) -> f32 {
  let u = clamp(0.7978845608028654 * (x + 0.044715 * x * x * x), -15.0, 15.0);
  let th = tanh(u);
  return 0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * 0.7978845608028654 * (1.0 + 3.0 * 0.044715 * x * x);
}
`;

/** The WGSL function name of an activation. */
export function activationFn(a: Activation): string {
  return a === 'gelu' ? 'gelu_exact' : 'gelu_tanh';
}
