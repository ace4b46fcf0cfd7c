import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// The console is built into dist/, which exportd embeds with go:embed. The
// build must be deterministic (CI rebuilds it and checks for a diff), so the
// output names are content hashes and nothing time- or path-dependent is
// written into the bundle.
export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  base: "/",
  resolve: {
    alias: { "@gen": fileURLToPath(new URL("../gen/ts/src", import.meta.url)) },
  },
  oxc: { jsx: { runtime: "automatic" } },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    target: "es2022",
    // Keep the module preload polyfill out: it is not needed in current
    // browsers and would be the only inline-ish helper.
    modulePreload: { polyfill: false },
  },
  server: {
    // `npm run dev` proxies the API to a local exportd.
    proxy: {
      "/audit.v1.": "http://127.0.0.1:8080",
      "/v1/": "http://127.0.0.1:8080",
    },
  },
  test: {
    include: ["src/**/*.test.ts", "src/**/*.test.tsx"],
    environment: "node",
  },
});
