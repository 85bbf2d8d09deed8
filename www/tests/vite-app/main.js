// A bundler user's app: imports the package by name; Vite emits the worker and the wasm.
import { createEngine } from "wisp-llm";
window.createEngine = createEngine;
window.wispReady = true;
