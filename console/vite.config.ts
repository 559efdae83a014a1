/**
 * Builds the console into dist/console/, which the gateway serves (src/web/serve.ts). Asset names
 * carry a content hash, so the gateway can cache them as immutable. In development, `npx vite
 * --config console/vite.config.ts` proxies the API to a gateway on :4100.
 */
import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vite'
import react from '@vitejs/plugin-react'

const root = fileURLToPath(new URL('.', import.meta.url))

export default defineConfig({
  root,
  base: '/',
  plugins: [react()],
  build: {
    outDir: fileURLToPath(new URL('../dist/console', import.meta.url)),
    emptyOutDir: true,
    assetsDir: 'assets',
    sourcemap: false,
    chunkSizeWarningLimit: 1500,
    rollupOptions: {
      output: {
        // The chart library is the bulk of the bundle and changes least: its own long-cached file.
        manualChunks: (id) => (id.includes('node_modules/echarts') || id.includes('node_modules/zrender') ? 'charts' : undefined),
      },
    },
  },
  server: {
    proxy: { '/v1': 'http://127.0.0.1:4100' },
  },
})
