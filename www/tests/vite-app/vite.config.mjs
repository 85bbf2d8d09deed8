// Resolves "wisp-llm" to the package in this repository, as node_modules/wisp-llm would.
import { fileURLToPath } from "node:url";
export default {
  base: "./",
  resolve: { alias: { "wisp-llm": fileURLToPath(new URL("../../wisp-llm/index.js", import.meta.url)) } },
  build: { outDir: "dist", emptyOutDir: true, target: "es2022" },
  worker: { format: "es" },
  logLevel: "warn",
};
