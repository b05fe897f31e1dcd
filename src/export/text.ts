/** Number formatting shared by the text exports (CSV, OBJ). */

/**
 * The shortest decimal that reads back (as float32) to the same float32, so a
 * text export loses nothing and stays short; non-finite values as numpy and
 * pandas read them: `nan`, `inf`, `-inf`.
 */
export function f32String(v: number): string {
  if (Number.isNaN(v)) return 'nan';
  if (v === Infinity) return 'inf';
  if (v === -Infinity) return '-inf';
  const f = Math.fround(v);
  for (let digits = 1; digits < 9; digits++) {
    const s = f.toPrecision(digits);
    if (Math.fround(Number(s)) === f) return String(Number(s));
  }
  // 9 significant digits always identify a float32.
  return String(Number(f.toPrecision(9)));
}
