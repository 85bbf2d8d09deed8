// wisp-llm: run GGUF language models on the visitor's GPU (WebGPU), in a Web Worker.
// The main-thread object is a thin proxy: every call becomes a message to the worker, and
// streamed tokens come back as events.

let nextId = 1;

// The engine's build output, next to this file (scripts/build-web.sh writes it).
const DIST = ["./dist/wisp.js", "./dist/wisp_bg.wasm"];

/**
 * An Error naming the engine's first missing file (`name` "EngineFilesMissingError"), or null
 * when both answer. Relative to this module: bundlers that move the files give no verdict here.
 */
async function missingFiles() {
  for (const rel of DIST) {
    const url = new URL(rel, import.meta.url);
    let status;
    try {
      status = (await fetch(url, { method: "HEAD", cache: "no-store" })).status;
    } catch (e) {
      status = `no answer (${e.message})`;
    }
    if (typeof status !== "number" || status >= 400) {
      const err = new Error(
        `the engine's files are missing: ${url} answered ${typeof status === "number" ? `HTTP ${status}` : status}. ` +
          "In a checkout of Wisp, build them with scripts/build-web.sh; from npm, the wisp-llm package ships them in dist/.",
      );
      err.name = "EngineFilesMissingError";
      return err;
    }
  }
  return null;
}

/** Why the worker failed to start: missing files, else the event's own message. */
async function workerFailure(e) {
  const missing = await missingFiles();
  if (missing) return missing;
  return new Error(`the wisp worker failed to start: ${e.message || "its script or an import could not be loaded"}`);
}

class WorkerProxy {
  constructor(worker) {
    this.worker = worker;
    this.pending = new Map();
    worker.onmessage = (e) => {
      this.started = true;
      const { id, event, data, done, result, error, name } = e.data;
      const p = this.pending.get(id);
      if (!p) return;
      if (event) {
        p.onEvent?.(event, data);
      } else if (done) {
        this.pending.delete(id);
        if (error !== undefined) {
          const err = new Error(error);
          if (name) err.name = name;
          // The worker started but its wasm module did not: the same diagnosis as above.
          if (/WebAssembly|wisp_bg\.wasm/.test(error)) missingFiles().then((m) => p.reject(m ?? err));
          else p.reject(err);
        }
        else p.resolve(result);
      }
    };
    // A module worker whose imports fail gets a bare Event (no message): find out why, and
    // fail every call, pending and later (a worker that never started will never answer).
    // An error in a worker that has answered before fails the calls pending, as it always did.
    worker.onerror = (e) => {
      e.preventDefault?.();
      const failure = this.started
        ? Promise.resolve(new Error(`wisp worker failed: ${e.message || "an error without a message"}`))
        : (this.failure ??= workerFailure(e));
      failure.then((err) => {
        for (const p of this.pending.values()) p.reject(err);
        this.pending.clear();
      });
    };
  }

  call(op, args, onEvent) {
    if (this.closed) return Promise.reject(new Error(`the engine was unloaded: '${op}' needs createEngine() again`));
    if (this.failure) return this.failure.then((err) => Promise.reject(err));
    const id = nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onEvent });
      this.worker.postMessage({ id, op, args });
    });
  }

  interrupt() {
    this.worker.postMessage({ id: 0, op: "interrupt" });
  }
}

// Arguments are checked here, at the API boundary: a wrong type rejects with a TypeError that
// names the argument, instead of being coerced (JSON turns NaN into null, Uint32Array turns 1.5
// into 1) or reaching the wasm module. Ranges are checked by the engine.
function bad(message) {
  return new TypeError(message);
}

function isObject(o) {
  return typeof o === "object" && o !== null && !Array.isArray(o);
}

function checkPrompt(prompt) {
  if (typeof prompt === "string") {
    if (prompt.length === 0) throw bad("the prompt is empty");
    return;
  }
  if (!Array.isArray(prompt)) {
    throw bad(`the prompt must be a string or an array of token ids, not ${describe(prompt)}`);
  }
  if (prompt.length === 0) throw bad("the prompt is empty");
  const i = prompt.findIndex((id) => !Number.isInteger(id) || id < 0 || id >= 2 ** 32);
  if (i >= 0) throw bad(`prompt token ${i} is ${describe(prompt[i])}: token ids are integers from 0`);
}

function describe(v) {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") return JSON.stringify(v.length > 20 ? `${v.slice(0, 20)}…` : v);
  if (typeof v === "number") return String(v);
  return `a value of type ${typeof v}`;
}

// Integer options and their ranges (the engine checks the rest of each range).
const INTEGER_OPTIONS = { max_tokens: [1, 2 ** 31 - 1], top_k: [0, 2 ** 31 - 1], seed: [0, Number.MAX_SAFE_INTEGER] };
const NUMBER_OPTIONS = ["temperature", "top_p", "min_p", "repetition_penalty", "frequency_penalty_multiplier"];

function checkOptions(o, what) {
  if (o === undefined) return;
  if (!isObject(o)) throw bad(`${what} must be an object, not ${describe(o)}`);
  for (const [k, [lo, hi]] of Object.entries(INTEGER_OPTIONS)) {
    const v = o[k];
    if (v === undefined || v === null) continue;
    if (!Number.isInteger(v)) throw bad(`'${k}' must be an integer, not ${describe(v)}`);
    if (v < lo || v > hi) throw new RangeError(`'${k}' is ${v}: it must be between ${lo} and ${hi}`);
  }
  for (const k of NUMBER_OPTIONS) {
    if (o[k] !== undefined && o[k] !== null && !Number.isFinite(o[k])) {
      throw bad(`'${k}' must be a finite number, not ${describe(o[k])}`);
    }
  }
  if (o.onToken !== undefined && typeof o.onToken !== "function") throw bad("'onToken' must be a function");
}

const ROLES = ["system", "developer", "user", "assistant"];

/** Chat messages as the worker takes them: content as text (OpenAI's text parts joined). */
function checkMessages(messages) {
  if (!Array.isArray(messages) || messages.length === 0) {
    throw bad(`'messages' must be a non-empty array of {role, content}, not ${describe(messages)}`);
  }
  return messages.map((m, i) => {
    if (!isObject(m)) throw bad(`messages[${i}] must be an object {role, content}`);
    if (!ROLES.includes(m.role)) {
      throw bad(`messages[${i}].role is ${describe(m.role)}: expected one of ${ROLES.join(", ")}`);
    }
    let content = m.content;
    if (Array.isArray(content)) {
      if (!content.every((p) => isObject(p) && p.type === "text" && typeof p.text === "string")) {
        throw bad(`messages[${i}].content parts must be {type: "text", text} (only text is supported)`);
      }
      content = content.map((p) => p.text).join("");
    }
    if (typeof content !== "string") {
      throw bad(`messages[${i}].content must be a string or text parts, not ${describe(m.content)}`);
    }
    return { role: m.role, content };
  });
}

function genOptions(o = {}) {
  const { max_tokens, temperature, top_p, top_k, min_p, seed, stop, response_format } = o;
  const repetition_penalty = o.repetition_penalty ?? o.frequency_penalty_multiplier;
  return {
    max_tokens,
    temperature,
    top_p,
    top_k,
    min_p,
    seed,
    repetition_penalty,
    stop: typeof stop === "string" ? [stop] : stop,
    response_format,
  };
}

/** An async iterable fed by pushes, ended by `end()` or `fail()`. */
function channel() {
  const items = [];
  let wake = null;
  let finished = false;
  let failure = null;
  return {
    push(x) {
      items.push(x);
      wake?.();
    },
    end() {
      finished = true;
      wake?.();
    },
    fail(e) {
      failure = e;
      wake?.();
    },
    async *[Symbol.asyncIterator]() {
      for (;;) {
        if (items.length) {
          yield items.shift();
          continue;
        }
        if (failure) throw failure;
        if (finished) return;
        await new Promise((r) => (wake = r));
        wake = null;
      }
    },
  };
}

class Engine {
  constructor(proxy, modelUrl) {
    this.proxy = proxy;
    this.model = modelUrl;
    const self = this;
    this.chat = {
      completions: {
        create(req) {
          return self.#chatCompletion(req);
        },
      },
    };
    this.cache = {
      list: () => proxy.call("list"),
      delete: (url) => proxy.call("delete", { url }),
      estimate: () => proxy.call("estimate"),
      download: (url, onProgress) =>
        proxy.call("download", { url }, (ev, d) => ev === "progress" && onProgress?.(d)),
    };
  }

  /** Loads (downloading into IndexedDB, resumable) the model at `url`. */
  async load(url, opts = {}) {
    if (typeof url !== "string" || url.length === 0) throw bad(`load(url): url must be a string, not ${describe(url)}`);
    if (!isObject(opts)) throw bad(`load's options must be an object, not ${describe(opts)}`);
    const { onProgress, context, precision, contextShift, weights, draft, draftMax } = opts;
    if (context !== undefined && (!Number.isInteger(context) || context < 1)) {
      throw bad(`'context' must be a positive integer (KV cache positions), not ${describe(context)}`);
    }
    if (onProgress !== undefined && typeof onProgress !== "function") throw bad("'onProgress' must be a function");
    if (weights !== undefined && weights !== "buffer" && weights !== "texture") {
      throw bad(`'weights' must be "buffer" or "texture", not ${describe(weights)}`);
    }
    if (draft !== undefined && draft !== "lookup") {
      throw bad(`'draft' must be "lookup", not ${describe(draft)}`);
    }
    if (draftMax !== undefined && (!Number.isInteger(draftMax) || draftMax < 1 || draftMax > 15)) {
      throw bad(`'draftMax' must be an integer from 1 to 15, not ${describe(draftMax)}`);
    }
    this.model = url;
    const options = Object.fromEntries(
      Object.entries({ context, precision, contextShift, weights, draft, draftMax }).filter(([, v]) => v !== undefined),
    );
    return this.proxy.call("load", { url, options }, (ev, d) => {
      if (ev === "progress") onProgress?.(d);
    });
  }

  /** Reads the GGUF header by Range request and checks the adapter: { ok, reasons, needs, adapter }. */
  willItRun(url, { context } = {}) {
    return this.proxy.call("willItRun", { url: url ?? this.model, options: { context } });
  }

  /** Raw-text generation from an empty context: { text, token_ids, usage, timings }. */
  async generate(prompt, options = {}) {
    checkPrompt(prompt);
    checkOptions(options, "generate's options");
    const onToken = options.onToken;
    const args = { options: genOptions(options) };
    const op = Array.isArray(prompt) ? "generateIds" : "generate";
    if (op === "generateIds") args.ids = prompt;
    else args.prompt = prompt;
    return this.proxy.call(op, args, (ev, d) => ev === "token" && onToken?.(d));
  }

  async #chatCompletion(req) {
    if (!isObject(req)) throw bad(`chat.completions.create needs a request object, not ${describe(req)}`);
    checkOptions(req, "the request");
    const messages = checkMessages(req.messages);
    const id = `chatcmpl-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
    const created = Math.floor(Date.now() / 1000);
    const base = { id, created, model: this.model };
    const args = { messages, options: genOptions(req) };
    if (!req.stream) {
      return this.proxy.call("chat", args).then((r) => ({
        ...base,
        object: "chat.completion",
        choices: [
          { index: 0, message: { role: "assistant", content: r.text }, finish_reason: r.finish_reason },
        ],
        usage: r.usage,
        timings: r.timings,
      }));
    }
    const ch = channel();
    const chunk = (delta, finish_reason) => ({
      ...base,
      object: "chat.completion.chunk",
      choices: [{ index: 0, delta, finish_reason }],
    });
    let first = true;
    this.proxy
      .call("chat", args, (ev, d) => {
        if (ev !== "token" || !d.text) return;
        ch.push(chunk(first ? { role: "assistant", content: d.text } : { content: d.text }, null));
        first = false;
      })
      .then((r) => {
        ch.push({ ...chunk({}, r.finish_reason), usage: r.usage, timings: r.timings });
        ch.end();
      })
      .catch((e) => ch.fail(e));
    return ch;
  }

  /** Stops the running download or generation at its next chunk or token. */
  interrupt() {
    this.proxy.interrupt();
  }

  /** Forgets the conversation (the next chat turn starts from an empty KV cache). */
  resetChat() {
    return this.proxy.call("reset");
  }

  /** What is loaded, on which adapter. */
  info() {
    return this.proxy.call("info");
  }

  /**
   * Bytes of wasm memory (it only grows, so this is also the peak), what the engine allocated
   * on the GPU since its load, and (in Chromium) the worker's JavaScript heap.
   */
  memory() {
    return this.proxy.call("memory");
  }

  /** Damages one stored chunk (tests of the store's verification). */
  _corruptChunk(url, index) {
    return this.proxy.call("corruptChunk", { url, index });
  }

  /** Ends the worker and frees the GPU memory; later calls reject, and pending ones too. */
  async unload() {
    this.proxy.worker.terminate();
    this.proxy.closed = true;
    const err = new Error("the engine was unloaded");
    for (const p of this.proxy.pending.values()) p.reject(err);
    this.proxy.pending.clear();
  }
}

/**
 * Starts the engine in a Web Worker and, with `model`, loads it.
 * @param {{model?: string, onProgress?: (p: object) => void, context?: number, precision?: "exact"|"fast", contextShift?: boolean, weights?: "buffer"|"texture", draft?: "lookup", draftMax?: number, workerUrl?: string|URL}} opts
 */
export async function createEngine(opts = {}) {
  // The literal `new Worker(new URL(...), ...)` form is what bundlers (Vite, webpack) recognize
  // to emit the worker and, through it, the wasm module.
  const worker = opts.workerUrl
    ? new Worker(opts.workerUrl, { type: "module" })
    : new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
  const engine = new Engine(new WorkerProxy(worker), opts.model);
  if (opts.model) await engine.load(opts.model, opts);
  return engine;
}
