import { defineConfig } from "vitest/config";
import path from "node:path";

// No @vitejs/plugin-react: esbuild's automatic JSX runtime is enough for tests.
export default defineConfig({
  esbuild: { jsx: "automatic" },
  resolve: { alias: { "@": path.resolve(__dirname, ".") } },
  test: {
    environment: "jsdom",
    globals: true,
    include: ["tests/**/*.test.{ts,tsx}"],
    setupFiles: ["tests/setup.ts"],
  },
});
