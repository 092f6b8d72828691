import js from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'scratch/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-properties': ['error',
        { object: 'Math', property: 'random', message: 'Inject a Random source; the engine must be deterministic.' },
        { object: 'Date', property: 'now', message: 'Inject the clock; read time only in runtime drivers.' }],
    },
  },
  {
    files: ['src/runtime/**', 'src/agent/**', 'src/cli/**', 'src/node.ts', 'bench/**', 'chaos/**', 'test/**'],
    rules: { 'no-restricted-properties': 'off' },
  },
)
