/** Unit tests of the pure message handling (src/model.ts): plain TypeScript, no JupyterLab, no DOM. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/src'],
  testMatch: ['**/__tests__/**/*.spec.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: { module: 'commonjs', target: 'ES2019', strict: true, types: ['jest'] } }]
  }
};
