// Lint rules that keep the layers apart (see ARCHITECTURE.md): a mistake fails `npm run lint`
// and the test suite.
import tseslint from 'typescript-eslint';
import vue from 'eslint-plugin-vue';

const noElectron = {
  paths: [{ name: 'electron', message: 'The service core and the contract run under plain Node: never import electron here.' }],
};

export default tseslint.config(
  { ignores: ['out/**', 'node_modules/**', 'dist/**', 'tests/artifacts/**', 'test-results/**'] },
  ...tseslint.configs.recommended,
  ...vue.configs['flat/recommended'],
  {
    files: ['**/*.vue'],
    languageOptions: { parserOptions: { parser: tseslint.parser } },
  },
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
      'vue/multi-word-component-names': 'off',
      'vue/max-attributes-per-line': 'off',
      'vue/singleline-html-element-content-newline': 'off',
      'vue/html-self-closing': 'off',
      'vue/html-indent': 'off',
      'vue/html-closing-bracket-newline': 'off',
      'vue/multiline-html-element-content-newline': 'off',
    },
  },
  {
    files: ['src-shared/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          ...noElectron,
          patterns: [
            { group: ['node:*', 'fs', 'path', 'os', 'crypto', 'child_process'], message: 'src-shared is the contract: no Node imports.' },
            { group: ['**/src-main/**', '**/src-renderer/**', 'vue', 'pinia'], message: 'src-shared imports nothing platform-specific.' },
          ],
        },
      ],
    },
  },
  {
    files: ['src-main/service/**', 'src-main/transport/**', 'src-main/cli/**'],
    rules: {
      'no-restricted-imports': ['error', { ...noElectron, patterns: [{ group: ['**/src-renderer/**'], message: 'The service never reaches into the renderer.' }] }],
    },
  },
  {
    files: ['src-renderer/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [{ name: 'electron', message: 'The renderer talks through window.fonds only.' }],
          patterns: [
            { group: ['**/src-main/**', '../src-main/*', '../../src-main/*'], message: 'The renderer never imports main-process code; use src-shared and the api client.' },
            { group: ['node:*'], message: 'The renderer has no Node.' },
          ],
        },
      ],
    },
  },
  {
    files: ['tests/**'],
    rules: {
      'no-restricted-imports': ['error', { paths: [{ name: 'electron', message: 'Tests never import electron (the binary is not installed); mock it.' }] }],
    },
  },
);
