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
      return JSON.parse(await wisp.download_model(a.url, progress));
    case "willItRun":
      return JSON.parse(await wisp.will_it_run(a.url, JSON.stringify(a.options ?? {})));
    case "estimate": {
      const e = await navigator.storage.estimate();
      return { usage: e.usage, quota: e.quota };
    }
    case "memory":
      return { wasm_bytes: wasm.memory.buffer.byteLength };
    case "corruptChunk":
      await wisp.corrupt_chunk_for_test(a.url, a.index);
      return null;
    default:
      throw new Error(`unknown request '${op}'`);
  }
}

function engine() {
  if (!self.engine) throw new Error("no model is loaded");
  return self.engine;
}

let queue = Promise.resolve();
self.onmessage = (e) => {
  const { id, op, args } = e.data;
  if (op === "interrupt") {
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
