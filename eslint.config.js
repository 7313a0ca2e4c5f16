import js from '@eslint/js';
import tseslint from 'typescript-eslint';

import { forbidden } from './scripts/architecture.mjs';

/** What each module must not import: everything architecture/modules.mjs does not list for it. */
const FORBIDDEN = forbidden();

function layerRules() {
  return Object.entries(FORBIDDEN).map(([mod, banned]) => ({
    files: [`src/${mod}/**/*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: banned.map((b) => ({
            group: [`**/${b}/**`, `**/${b}/index.js`],
            message: `src/${mod} must not import src/${b} (architecture/modules.mjs; ARCHITECTURE.md "Modules")`,
          })),
        },
      ],
    },
  }));
}

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', '.state/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly' },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  // Layers: each module imports only what architecture/modules.mjs lists for it.
  ...layerRules(),
  {
    // Jest loads its test sequencer with require().
    files: ['**/*.cjs'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: { require: 'readonly', module: 'writable', setTimeout: 'readonly' },
    },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // Tests poke at parsed YAML/JSON documents; typing every fixture adds noise without catching bugs.
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
