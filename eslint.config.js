import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * What each module must not import, as its README says. cli may import anything; util nothing of ours.
 * The direction: cli → stages (engine, hosts) → {routers, reports} → {canary, jmeter, validators, pipelines} →
 * metrics → {services, sandbox, clovisor, visibility} → spec → contract → util.
 */
const FORBIDDEN = {
  stages: ['cli'],
  reports: ['cli', 'stages', 'routers', 'pipelines', 'canary', 'sandbox', 'clovisor', 'services', 'visibility', 'metrics'],
  metrics: ['cli', 'stages', 'routers', 'pipelines', 'canary', 'validators', 'jmeter', 'sandbox', 'clovisor', 'visibility', 'reports'],
  visibility: ['cli', 'stages', 'routers', 'pipelines', 'canary', 'validators', 'jmeter', 'sandbox', 'clovisor', 'metrics', 'reports'],
  routers: ['cli', 'stages', 'pipelines', 'jmeter', 'sandbox', 'clovisor', 'visibility', 'metrics', 'reports'],
  pipelines: ['cli', 'stages', 'routers', 'sandbox', 'clovisor', 'validators', 'jmeter', 'visibility', 'metrics', 'reports'],
  canary: ['cli', 'stages', 'routers', 'pipelines', 'validators', 'jmeter', 'sandbox', 'clovisor', 'visibility', 'metrics', 'reports'],
  validators: ['cli', 'stages', 'routers', 'pipelines', 'canary', 'jmeter', 'sandbox', 'visibility', 'reports'],
  jmeter: ['cli', 'stages', 'routers', 'pipelines', 'canary', 'validators', 'sandbox', 'clovisor', 'visibility', 'metrics', 'reports'],
  sandbox: ['cli', 'stages', 'routers', 'pipelines', 'canary', 'validators', 'jmeter', 'clovisor', 'visibility', 'metrics', 'reports'],
  clovisor: ['cli', 'stages', 'routers', 'pipelines', 'canary', 'validators', 'jmeter', 'sandbox', 'visibility', 'metrics', 'reports'],
  services: ['cli', 'stages', 'routers', 'pipelines', 'canary', 'validators', 'jmeter', 'sandbox', 'clovisor', 'visibility', 'metrics', 'reports'],
  spec: ['cli', 'stages', 'routers', 'pipelines', 'canary', 'validators', 'jmeter', 'sandbox', 'clovisor', 'services', 'visibility', 'metrics', 'reports'],
  contract: ['cli', 'stages', 'routers', 'pipelines', 'canary', 'validators', 'jmeter', 'sandbox', 'clovisor', 'services', 'spec', 'visibility', 'metrics', 'reports'],
  util: ['cli', 'stages', 'routers', 'pipelines', 'canary', 'validators', 'jmeter', 'sandbox', 'clovisor', 'services', 'spec', 'contract', 'visibility', 'metrics', 'reports'],
};

function layerRules() {
  return Object.entries(FORBIDDEN).map(([mod, banned]) => ({
    files: [`src/${mod}/**/*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: banned.map((b) => ({
            group: [`**/${b}/**`, `**/${b}/index.js`],
            message: `src/${mod} must not import src/${b} (see src/${mod}/README.md and ARCHITECTURE.md "Modules")`,
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
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  // Layers: each module imports only the modules below it (ARCHITECTURE.md, module READMEs).
  ...layerRules(),
  {
    // Jest loads its test sequencer with require().
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly', module: 'writable' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // Tests poke at parsed YAML/JSON documents; typing every fixture adds noise without catching bugs.
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
