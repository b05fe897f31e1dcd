declare module 'wgsl-preprocessor' {
  /** Template tag with #if/#elif/#else/#endif on template values. */
  export function wgsl(strings: TemplateStringsArray, ...values: unknown[]): string;
}
