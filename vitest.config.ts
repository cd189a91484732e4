import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Each file gets its own process: WebGPU devices and gRPC servers never share state across files.
    pool: 'forks',
    // Two cores: more workers only make the software GPU slower for everyone.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ['default'],
    env: { NEXUS_LOG_LEVEL: process.env.NEXUS_LOG_LEVEL ?? 'warn' },
  },
});
