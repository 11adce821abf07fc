import { defineConfig } from "vite";
import preact from "@preact/preset-vite";

// The control plane serves the build under /console/ from console/dist
// (embedded with go:embed by the Go package console).
export default defineConfig({
  base: "/console/",
  plugins: [preact()],
  build: { outDir: "../dist", emptyOutDir: false, assetsDir: "assets", sourcemap: false },
});
