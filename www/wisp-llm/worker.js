// The engine's Web Worker: loads the wasm module and runs one request at a time, posting
// progress and token events while it works. `interrupt` is handled at once, even mid-request,
// because the engine yields to the event loop at every chunk and every token.
import init, * as wisp from "./dist/wisp.js";

const ready = init();

function post(id, payload) {
  self.postMessage({ id, ...payload });
}

async function handle(id, op, a) {
  const wasm = await ready;
  const progress = (json) => post(id, { event: "progress", data: JSON.parse(json) });
  const token = (json) => {
    post(id, { event: "token", data: JSON.parse(json) });
    return true;
  };
  switch (op) {
    case "load":
      if (self.engine) self.engine.free();
      self.engine = null;
      // The download first, one tab at a time; then the load finds every chunk stored. A
      // failed download (no IndexedDB, over quota, network) is left to the load, which streams
      // uncached or reports it; only an interrupt ends the request here.
      try {
        await oneDownloadAtATime(a.url, progress, () => wisp.download_model(a.url, progress));
      } catch (err) {
        if (String(err?.message ?? err) === "interrupted") throw err;
      }
      self.engine = await wisp.Engine.load(a.url, JSON.stringify(a.options ?? {}), progress);
      return JSON.parse(self.engine.info());
    case "generate":
      return JSON.parse(await engine().generate(a.prompt, JSON.stringify(a.options ?? {}), token));
    case "generateIds":
      return JSON.parse(
        await engine().generate_ids(Uint32Array.from(a.ids), JSON.stringify(a.options ?? {}), token),
      );
    case "chat":
      return JSON.parse(
        await engine().chat(JSON.stringify(a.messages), JSON.stringify(a.options ?? {}), token),
      );
    case "reset":
      engine().reset();
      return null;
    case "info":
      return JSON.parse(engine().info());
    case "list":
      return JSON.parse(await wisp.list_models());
    case "delete":
      await wisp.delete_model(a.url);
      return null;
    case "download":
      return JSON.parse(await oneDownloadAtATime(a.url, progress, () => wisp.download_model(a.url, progress)));
    case "willItRun":
      return JSON.parse(await wisp.will_it_run(a.url, JSON.stringify(a.options ?? {})));
    case "estimate": {
      const e = await navigator.storage.estimate();
      return { usage: e.usage, quota: e.quota };
    }
    case "memory":
      return {
        wasm_bytes: wasm.memory.buffer.byteLength,
        gpu: self.engine ? JSON.parse(self.engine.gpu_allocations()) : null,
        // Chromium only: this worker's JavaScript heap.
        js_heap_bytes: self.performance?.memory?.usedJSHeapSize ?? null,
      };
    case "corruptChunk":
      await wisp.corrupt_chunk_for_test(a.url, a.index);
      return null;
    default:
      throw new Error(`unknown request '${op}'`);
  }
}

// Pages of one origin share the IndexedDB store. A Web Lock per model URL (across tabs and
// workers) keeps two pages from downloading the same file at once: the second waits, told so,
// and then finds the chunks stored. Where Web Locks are missing, downloads are not coordinated
// (each chunk and the metadata recording it are still written in one transaction).
let lockWait = null;
async function oneDownloadAtATime(url, progress, run) {
  const locks = self.navigator?.locks;
  if (!locks) return run();
  const name = `wisp-download:${url}`;
  return locks.request(name, { ifAvailable: true }, async (lock) => {
    if (lock) return run();
    progress(JSON.stringify({
      phase: "notice", done: 0, total: 0, rate: 0, resumed_from_chunk: 0,
      message: "another page is downloading this model: waiting for it",
    }));
    lockWait = new AbortController();
    try {
      return await locks.request(name, { signal: lockWait.signal }, run);
    } catch (err) {
      if (err?.name === "AbortError") throw new Error("interrupted");
      throw err;
    } finally {
      lockWait = null;
    }
  });
}

function engine() {
  if (!self.engine) throw new Error("no model is loaded");
  return self.engine;
}

let queue = Promise.resolve();
self.onmessage = (e) => {
  const { id, op, args } = e.data;
  if (op === "interrupt") {
    lockWait?.abort();
    ready.then(() => wisp.interrupt());
    return;
  }
  // One request at a time: a second waits for the first.
  queue = queue.then(async () => {
    try {
      post(id, { done: true, result: await handle(id, op, args ?? {}) });
    } catch (err) {
      const error = String(err?.message ?? err);
      // A lost GPU device gets its own error name: the caller creates the engine again (or
      // loads again) to continue.
      const name = error.startsWith("the GPU device was lost") ? "DeviceLostError" : undefined;
      post(id, { done: true, error, name });
    }
  });
};
