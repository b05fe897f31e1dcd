/**
 * An orbit camera on gl-matrix: drag to rotate, wheel to zoom, right-drag or
 * shift-drag to pan, double-click to reset. It looks at the terrain's
 * [-1, 1]^2 footprint; projections use WebGPU's [0, 1] clip depth.
 */
import { mat4, vec3 } from 'gl-matrix';

export interface Orbit {
  target: vec3;
  distance: number;
  /** Rotation about the vertical axis, radians (0 = looking along -z). */
  yaw: number;
  /** Elevation above the ground plane, radians. */
  pitch: number;
}

export function defaultOrbit(): Orbit {
  return { target: vec3.fromValues(0, 0.1, 0), distance: 4.4, yaw: -0.6, pitch: 0.55 };
}

const MIN_PITCH = -1.45;
const MAX_PITCH = 1.5;
const FOV_Y = (40 * Math.PI) / 180;

export function eyeOf(o: Orbit): vec3 {
  const c = Math.cos(o.pitch);
  return vec3.fromValues(
    o.target[0] + o.distance * c * Math.sin(o.yaw),
    o.target[1] + o.distance * Math.sin(o.pitch),
    o.target[2] + o.distance * c * Math.cos(o.yaw),
  );
}

/**
 * Projection times view. `centreShiftNdc` moves the optical centre along x
 * (in clip units, -1..1), so that the target sits in the middle of the part
 * of the canvas that the panel leaves free.
 */
export function viewProjection(o: Orbit, aspect: number, centreShiftNdc = 0): mat4 {
  const shift = mat4.fromTranslation(mat4.create(), [centreShiftNdc, 0, 0]);
  const proj = mat4.perspectiveZO(mat4.create(), FOV_Y, aspect, 0.02, 100);
  const view = mat4.lookAt(mat4.create(), eyeOf(o), o.target, [0, 1, 0]);
  return mat4.multiply(mat4.create(), mat4.multiply(mat4.create(), shift, proj), view);
}

export function rotate(o: Orbit, dxPx: number, dyPx: number): void {
  o.yaw -= dxPx * 0.008;
  o.pitch = Math.min(MAX_PITCH, Math.max(MIN_PITCH, o.pitch + dyPx * 0.008));
}

/** Zooms by a factor per wheel notch (deltaY > 0 moves away). */
export function zoom(o: Orbit, deltaY: number): void {
  o.distance = Math.min(30, Math.max(0.3, o.distance * Math.exp(deltaY * 0.0015)));
}

/** Moves the target in the screen plane, by pixels of a viewport `heightPx` tall. */
export function pan(o: Orbit, dxPx: number, dyPx: number, heightPx: number): void {
  const eye = eyeOf(o);
  const forward = vec3.normalize(vec3.create(), vec3.subtract(vec3.create(), o.target, eye));
  const right = vec3.normalize(vec3.create(), vec3.cross(vec3.create(), forward, [0, 1, 0]));
  const up = vec3.cross(vec3.create(), right, forward);
  // World units per pixel at the target's depth.
  const scale = (2 * o.distance * Math.tan(FOV_Y / 2)) / Math.max(1, heightPx);
  vec3.scaleAndAdd(o.target, o.target, right, -dxPx * scale);
  vec3.scaleAndAdd(o.target, o.target, up, dyPx * scale);
}

/** Wires the pointer gestures of `element` to `orbit`; `changed` runs after each change. */
export function attachOrbitControls(element: HTMLElement, orbit: Orbit, changed: () => void): void {
  let drag: { x: number; y: number; panning: boolean } | null = null;
  element.addEventListener('contextmenu', (e) => e.preventDefault());
  element.addEventListener('pointerdown', (e) => {
    drag = { x: e.clientX, y: e.clientY, panning: e.button === 2 || e.shiftKey };
    element.setPointerCapture(e.pointerId);
  });
  element.addEventListener('pointermove', (e) => {
    if (!drag) return;
    const dx = e.clientX - drag.x;
    const dy = e.clientY - drag.y;
    drag.x = e.clientX;
    drag.y = e.clientY;
    if (drag.panning) pan(orbit, dx, dy, element.clientHeight);
    else rotate(orbit, dx, dy);
    changed();
  });
  const end = (e: PointerEvent): void => {
    drag = null;
    if (element.hasPointerCapture(e.pointerId)) element.releasePointerCapture(e.pointerId);
  };
  element.addEventListener('pointerup', end);
  element.addEventListener('pointercancel', end);
  element.addEventListener('wheel', (e) => {
    e.preventDefault();
    zoom(orbit, e.deltaY);
    changed();
  }, { passive: false });
  element.addEventListener('dblclick', () => {
    Object.assign(orbit, defaultOrbit());
    changed();
  });
}
