// Soak of the browser engine in headless Chromium (SwiftShader WebGPU): N chat turns (default
// 200) through chat.completions.create on one engine (each turn reuses the conversation's KV
// cache), with a conversation reset every 10th turn, a streamed reply interrupted after its
// first chunk every 7th, and sampled and greedy replies. Wasm memory, the JavaScript heaps
// (page and engine worker, after a forced GC) and the engine's GPU allocations are read after
// a 14-turn warm-up (every kind of turn once) and at the end; growth over 5% fails.
// The default model is a tiny random-weight llama with SmolLM2-Instruct's tokenizer and chat
// template (scripts/gen_tiny_chat_gguf.py, written into the cache here): every path of a real
// chat at a fraction of a second per turn on SwiftShader. `--model FILE` (a GGUF in the cache)
// soaks a real one: SmolLM2-135M-Instruct takes about 12 s per turn here.
// Usage: node www/tests/soak.mjs [-n TURNS] [--model FILE]   (after scripts/build-web.sh, with
// SmolLM2-135M-Instruct in the cache: scripts/fetch-model.sh smollm2)
import { startServer, startBrowser, checker, finish, tinyChatModel } from "./harness.mjs";

const args = process.argv.slice(2);
const opt = (name) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const n = Number(opt("-n") ?? 200);
const MODEL = opt("--model") ?? tinyChatModel();
const WARMUP = Math.min(14, n);
const MAX_GROWTH = 0.05;

const t = checker();
const { check, secs } = t;
const server = await startServer();
const { browser, open } = await startBrowser(["--js-flags=--expose-gc"]);
await finish(t, { browser, server }, "browser soak passed", async () => {
  const page = await open(server.base);
  const url = `${server.base}/models/${MODEL}`;
  await page.evaluate(async (url) => {
    window.engine = await createEngine();
    window.info = await window.engine.load(url, { context: 512, contextShift: true });
  }, url);
  // The turns run inside the page, in one evaluate: the test driver's own per-call objects
  // stay out of the page's heap.
  const r = await page.evaluate(async ({ n, warmup }) => {
    const e = window.engine;
    const measure = async () => {
      gc();
      const m = await e.memory();
      return {
        wasm: m.wasm_bytes, gpu: m.gpu.buffer_bytes, gpuObjects: m.gpu.buffers + m.gpu.bind_groups + m.gpu.pipelines,
        pageHeap: performance.memory.usedJSHeapSize, workerHeap: m.js_heap_bytes,
      };
    };
    const questions = ["What is the capital of France?", "Name three colors.", "Write one sentence about the sea.",
      "What is 2 + 2?", "Say hello in Spanish.", "Give me a word that rhymes with cat.", "What do bees make?"];
    const system = { role: "system", content: "You are a helpful assistant. Answer briefly." };
    let messages = [system];
    let start = null;
    let tokens = 0;
    const kinds = { reset: 0, interrupted: 0, sampled: 0, greedy: 0 };
    for (let i = 0; i < n; i++) {
      if (i === warmup) start = await measure();
      if (i % 10 === 9) {
        await e.resetChat();
        messages = [system];
        kinds.reset++;
      }
      messages.push({ role: "user", content: questions[i % questions.length] });
      let text = "";
      if (i % 7 === 3) {
        const stream = await e.chat.completions.create({ messages, max_tokens: 4, stream: true });
        let interrupted = false;
        for await (const c of stream) {
          text += c.choices[0]?.delta?.content ?? "";
          if (!interrupted) {
            e.interrupt();
            interrupted = true;
          }
        }
        kinds.interrupted++;
      } else {
        const sampled = i % 3 === 1;
        const c = await e.chat.completions.create({ messages, max_tokens: 2, temperature: sampled ? 0.8 : 0, seed: i });
        text = c.choices[0].message.content;
        tokens += c.usage.completion_tokens;
        kinds[sampled ? "sampled" : "greedy"]++;
      }
      messages.push({ role: "assistant", content: text });
      if ((i + 1) % 50 === 0) console.log(`${i + 1} of ${n} turns`);
    }
    const end = await measure();
    return { start: start ?? end, end, tokens, kinds };
  }, { n, warmup: WARMUP });
  const { start, end, tokens, kinds } = r;
  const growth = (a, b) => (b - a) / Math.max(a, 1);
  const report = { model: MODEL, turns: n, warmup: WARMUP, tokens, ...kinds, start, end, seconds: Number(secs()) };
  console.log(`[${secs()} s] soak: ${JSON.stringify(report)}`);
  for (const [k, what] of [["wasm", "wasm memory"], ["gpu", "GPU memory the engine allocated"], ["pageHeap", "the page's JS heap"], ["workerHeap", "the worker's JS heap"]]) {
    if (k === "workerHeap" && (start[k] === null || end[k] === null)) {
      // performance.memory is window-only in Chromium; the engine's own data lives in wasm memory.
      console.log(`note: ${what} cannot be read inside a worker here; the engine's data is in wasm memory (above)`);
      continue;
    }
    const g = growth(start[k], end[k]);
    check(g <= MAX_GROWTH, `${what} stays flat over ${n - WARMUP} turns: ${start[k]} → ${end[k]} bytes (${(g * 100).toFixed(2)}%)`);
  }
  check(end.gpuObjects === start.gpuObjects, `no GPU object is created after the warm-up (${start.gpuObjects} → ${end.gpuObjects})`);
  check(kinds.reset > 0 && kinds.interrupted > 0 && kinds.sampled > 0, `every kind of turn ran: ${JSON.stringify(kinds)}`);
});
