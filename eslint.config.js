import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * What each module must not import, as its README says. cli may import anything; util nothing of ours.
 * The direction: cli → stages (engine, hosts) → routers → {canary, jmeter, validators, pipelines} →
 * metrics → {services, sandbox, clovisor, visibility} → spec → contract → util.
 */
const FORBIDDEN = {
  stages: ['cli'],
  metrics: ['cli', 'stages', 'routers', 'pipelines', 'canary', 'validators', 'jmeter', 'sandbox', 'clovisor', 'visibility'],
  visibility: ['cli', 'stages', 'routers', 'pipelines', 'canary', 'validators', 'jmeter', 'sandbox', 'clovisor', 'metrics'],
  routers: ['cli', 'stages', 'pipelines', 'jmeter', 'sandbox', 'clovisor', 'visibility', 'metrics'],
  pipelines: ['cli', 'stages', 'routers', 'sandbox', 'clovisor', 'validators', 'jmeter', 'visibility', 'metrics'],
  canary: ['cli', 'stages', 'routers', 'pipelines', 'validators', 'jmeter', 'sandbox', 'clovisor', 'visibility', 'metrics'],
  validators: ['cli', 'stages', 'routers', 'pipelines', 'canary', 'jmeter', 'sandbox', 'visibility'],
  jmeter: ['cli', 'stages', 'routers', 'pipelines', 'canary', 'validators', 'sandbox', 'clovisor', 'visibility', 'metrics'],
  sandbox: ['cli', 'stages', 'routers', 'pipelines', 'canary', 'validators', 'jmeter', 'clovisor', 'visibility', 'metrics'],
  clovisor: ['cli', 'stages', 'routers', 'pipelines', 'canary', 'validators', 'jmeter', 'sandbox', 'visibility', 'metrics'],
  services: ['cli', 'stages', 'routers', 'pipelines', 'canary', 'validators', 'jmeter', 'sandbox', 'clovisor', 'visibility', 'metrics'],
  spec: ['cli', 'stages', 'routers', 'pipelines', 'canary', 'validators', 'jmeter', 'sandbox', 'clovisor', 'services', 'visibility', 'metrics'],
  contract: ['cli', 'stages', 'routers', 'pipelines', 'canary', 'validators', 'jmeter', 'sandbox', 'clovisor', 'services', 'spec', 'visibility', 'metrics'],
  util: ['cli', 'stages', 'routers', 'pipelines', 'canary', 'validators', 'jmeter', 'sandbox', 'clovisor', 'services', 'spec', 'contract', 'visibility', 'metrics'],
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
