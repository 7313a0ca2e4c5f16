import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * What each module must not import, as its README says. cli may import anything; util nothing of ours.
 * The direction: cli → stages (engine, hosts) → routers → {canary, jmeter, validators, pipelines} →
 * {services, sandbox, clovisor, visibility} → spec → contract → util.
 */
const FORBIDDEN = {
  stages: ['cli'],
  visibility: ['cli', 'stages', 'routers', 'pipelines', 'canary', 'validators', 'jmeter', 'sandbox', 'clovisor'],
  routers: ['cli', 'stages', 'pipelines', 'jmeter', 'sandbox', 'clovisor', 'visibility'],
  pipelines: ['cli', 'stages', 'routers', 'sandbox', 'clovisor', 'validators', 'jmeter', 'visibility'],
  canary: ['cli', 'stages', 'routers', 'pipelines', 'validators', 'jmeter', 'sandbox', 'clovisor', 'visibility'],
  validators: ['cli', 'stages', 'routers', 'pipelines', 'canary', 'jmeter', 'sandbox', 'visibility'],
  jmeter: ['cli', 'stages', 'routers', 'pipelines', 'canary', 'validators', 'sandbox', 'clovisor', 'visibility'],
  sandbox: ['cli', 'stages', 'routers', 'pipelines', 'canary', 'validators', 'jmeter', 'clovisor', 'visibility'],
  clovisor: ['cli', 'stages', 'routers', 'pipelines', 'canary', 'validators', 'jmeter', 'sandbox', 'visibility'],
  services: ['cli', 'stages', 'routers', 'pipelines', 'canary', 'validators', 'jmeter', 'sandbox', 'clovisor', 'visibility'],
  spec: ['cli', 'stages', 'routers', 'pipelines', 'canary', 'validators', 'jmeter', 'sandbox', 'clovisor', 'services', 'visibility'],
  contract: ['cli', 'stages', 'routers', 'pipelines', 'canary', 'validators', 'jmeter', 'sandbox', 'clovisor', 'services', 'spec', 'visibility'],
  util: ['cli', 'stages', 'routers', 'pipelines', 'canary', 'validators', 'jmeter', 'sandbox', 'clovisor', 'services', 'spec', 'contract', 'visibility'],
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
    // Tests poke at parsed YAML/JSON documents; typing every fixture adds noise without catching bugs.
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
