/** The engine version written into every file the CLI makes (package.json's version). */
import pkg from '../../package.json' with { type: 'json' };

export const ENGINE = `losscape ${pkg.version}`;
