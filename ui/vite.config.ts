import { defineConfig } from "vite";

// The server serves `dist/` at `/`, so assets are referenced from the root.
// No inline scripts or styles end up in index.html: the server's
// Content-Security-Policy allows scripts from 'self' only.
export default defineConfig({
  base: "/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
  },
  server: {
    proxy: {
      "/api": "http://127.0.0.1:5050",
    },
  },
});
