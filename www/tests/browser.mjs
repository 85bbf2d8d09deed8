// Browser tests of the npm package in headless Chromium (SwiftShader WebGPU), driven by
// playwright-core with /usr/bin/chromium. Starts scripts/serve.mjs, then:
//  1. "will it run" from the header alone, and a refusal by name (the load-time audit);
//  2. download interrupted at ~40%, page reloaded, load again: the server log shows the download
//     continuing at the first missing chunk, and every stored chunk's hash equals the file's;
//  3. 16 greedy tokens for "Once upon a time" equal llama.cpp's ids (tests/data/oracle);
//     and a warm decoded token makes no GPU object and one compute pass (WebGPU calls counted
//     inside the worker);
//  4. peak wasm memory stays far below the model size;
//  5. a damaged chunk is detected on the next load and re-fetched;
//  6. over the storage quota, the model streams uncached and the user is told;
//  7. the demo page streams tokens for a typed prompt (screenshot to $WISP_ARTIFACTS);
//  8. the package bundled by Vite (worker and wasm emitted by the bundler) loads and generates;
//  9. `fast` precision; lookup drafting gives llama.cpp's greedy tokens;
// 10. the GPU device destroyed during load, prefill and decode: DeviceLostError, then recovery.
// Usage: node www/tests/browser.mjs   (after scripts/build-web.sh; the model in $WISP_CACHE)
import { createHash } from "node:crypto";
import { openSync, readSync, closeSync, statSync, mkdirSync, writeFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { execFileSync } from "node:child_process";
import { cache, repo, modelPath, oracle, startServer, startBrowser, webgpuCalls, objectsCreated } from "./harness.mjs";

const CHUNK = 16 << 20;
const artifacts = process.env.WISP_ARTIFACTS ?? join(tmpdir(), "wisp-artifacts");
mkdirSync(artifacts, { recursive: true });

let failures = 0;
function check(cond, what) {
  console.log(`${cond ? "ok  " : "FAIL"} ${what}`);
  if (!cond) failures++;
}
const t0 = Date.now();
const secs = () => ((Date.now() - t0) / 1000).toFixed(1);

const server = await startServer();
const { base, modelUrl, modelRequests } = server;
const { browser, context, open } = await startBrowser();
let page;
const openTestPage = async () => (page = await open(base));

try {
  await openTestPage();
  // 1. Will it run?
  const wir = await page.evaluate(async (url) => {
    const e = await createEngine();
    await e.cache.delete(url);
    const r = await e.willItRun(url);
    await e.unload();
    return r;
  }, modelUrl);
  console.log(`[${secs()} s] will it run: ${JSON.stringify(wir)}`);
  check(wir.ok === true && wir.needs.file_bytes === statSync(modelPath).size, "will-it-run reads the header and says yes");
  check(wir.needs.largest_tensor.name === "token_embd.weight", "will-it-run names the largest tensor");
  // A model Wisp cannot compute exactly is refused before any download, by the same audit as
  // a native load, naming each key.
  const refusedName = "wisp-test-refused.gguf";
  execFileSync(process.env.WISP_PY ?? "python3", [join(repo, "scripts/gen_refused_gguf.py"), join(cache, refusedName)]);
  const refused = await page.evaluate(async (url) => {
    const e = await createEngine();
    const r = await e.willItRun(url);
    await e.unload();
    return r;
  }, `${base}/models/${refusedName}`);
  console.log(`[${secs()} s] will it run (refused model): ${JSON.stringify(refused.reasons)}`);
  check(
    refused.ok === false &&
      refused.reasons.some((r) => r.includes("'llama.expert_count'")) &&
      refused.reasons.some((r) => r.includes("'llama.rope.scaling.type'") && r.includes("longrope")),
    "will-it-run refuses by name what Wisp does not compute (mixture of experts, LongRoPE type)",
  );

  // 2. Interrupted download, reload, resume.
  const size = statSync(modelPath).size;
  const interrupted = await page.evaluate(async (url) => {
    const e = await createEngine();
    let stopped = false;
    try {
      await e.load(url, {
        onProgress: (p) => {
          if (p.phase === "download" && p.done >= 0.4 * p.total && !stopped) {
            stopped = true;
            e.interrupt();
          }
        },
      });
      return { error: null };
    } catch (err) {
      return { error: String(err), list: await e.cache.list() };
    }
  }, modelUrl);
  const stored = interrupted.list?.find((m) => m.url === modelUrl);
  console.log(`[${secs()} s] interrupted: ${interrupted.error}; stored ${stored?.stored_bytes} of ${size}`);
  check(/interrupted/.test(interrupted.error ?? ""), "interrupt stops the download");
  check(stored && !stored.complete && stored.stored_bytes >= 0.4 * size && stored.stored_bytes < size, "about 40% is stored");
  const firstMissing = stored.hashes.findIndex((h) => h === null);
  const before = modelRequests().length;
  await openTestPage();
  const loaded = await page.evaluate(async (url) => {
    window.engine = await createEngine();
    const info = await window.engine.load(url, { context: 256 });
    return { info, list: await window.engine.cache.list(), mem: await window.engine.memory() };
  }, modelUrl);
  const resumed = modelRequests().slice(before);
  console.log(`[${secs()} s] loaded: ${JSON.stringify(loaded.info)}`);
  check(resumed.length > 0 && resumed[0].range[0] === firstMissing * CHUNK, `the download resumes at chunk ${firstMissing} (byte ${firstMissing * CHUNK}), not at 0: first range ${JSON.stringify(resumed[0]?.range)}`);
  check(resumed.every((r) => r.range[0] >= firstMissing * CHUNK), "no chunk before the first missing one is fetched again");
  // Every chunk's recorded hash (verified again on load) equals the file's.
  const fd = openSync(modelPath, "r");
  const fileHashes = [];
  for (let off = 0; off < size; off += CHUNK) {
    const buf = Buffer.alloc(Math.min(CHUNK, size - off));
    readSync(fd, buf, 0, buf.length, off);
    fileHashes.push(createHash("sha256").update(buf).digest("hex"));
  }
  closeSync(fd);
  const m = loaded.list.find((x) => x.url === modelUrl);
  check(m.complete && JSON.stringify(m.hashes) === JSON.stringify(fileHashes), `the ${fileHashes.length} stored chunks hash equal to the file`);
  check(loaded.info.refetched_chunks.length === 0, "no chunk needed re-fetching");
  // The kernel family is measured on the first load in this profile and kept in IndexedDB.
  const k1 = loaded.info.adapter.kernels;
  const ms = k1?.step_matvec_ms ?? {};
  check(k1?.source === "measured" && ms.row > 0 && ms.workgroup > 0, `the first load times both kernel families: ${JSON.stringify(k1)}`);
  check(loaded.info.adapter.family === (ms.row <= ms.workgroup ? "row" : "workgroup"), `and keeps the faster: ${loaded.info.adapter.family}`);
  // Each block type's matvecs are timed from buffers and from textures, and the faster kept.
  const wm = Object.entries(k1?.weights_ms ?? {});
  const texWant = wm.filter(([, t]) => t.texture < t.buffer).map(([ty]) => ty).sort();
  check(wm.length > 0 && wm.every(([, t]) => t.buffer > 0 && t.texture > 0) && JSON.stringify([...loaded.info.adapter.weights_in_textures].sort()) === JSON.stringify(texWant), `each block type's weights go where its matvecs ran faster: in textures ${JSON.stringify(loaded.info.adapter.weights_in_textures)}, ${JSON.stringify(k1?.weights_ms)}`);
  const mm = k1?.prefill_matmul_ms ?? {};
  check(mm.row > 0 && mm.workgroup > 0 && loaded.info.adapter.prefill_family === (mm.row <= mm.workgroup ? "row" : "workgroup"), `prefill's family is timed on its own and the faster kept: ${loaded.info.adapter.prefill_family} ${JSON.stringify(mm)}`);

  // 3. Greedy tokens equal llama.cpp's.
  const gen = await page.evaluate(async (ids) => {
    const streamed = [];
    const r = await window.engine.generate(ids, { max_tokens: 16, temperature: 0, onToken: (t) => streamed.push(t.id) });
    return { r, streamed };
  }, oracle.prompt_ids);
  console.log(`[${secs()} s] generated: ${JSON.stringify(gen.r)}`);
  const want = oracle.greedy_ids.slice(0, 16);
  check(JSON.stringify(gen.r.token_ids) === JSON.stringify(want), `16 greedy tokens equal llama.cpp's ${JSON.stringify(want)}`);
  check(JSON.stringify(gen.streamed) === JSON.stringify(want), "each token was streamed as it was decoded");
  const text = await page.evaluate(async () => (await window.engine.generate("Once upon a time", { max_tokens: 4, temperature: 0 })).text);
  check(text === ", there was a", `raw text prompt: ${JSON.stringify(text)}`);

  // Structured output (llguidance compiled to wasm) and the prefix cache across
  // chat.completions.create calls.
  const structured = await page.evaluate(async () => {
    const schema = {
      type: "object",
      properties: { pet: { enum: ["cat", "dog"] }, age: { type: "integer", minimum: 0, maximum: 99 } },
      required: ["pet", "age"],
      additionalProperties: false,
    };
    const system = { role: "system", content: "You describe pets as JSON objects." };
    const a = await window.engine.chat.completions.create({
      messages: [system, { role: "user", content: "Describe a pet." }],
      max_tokens: 24,
      temperature: 0,
      response_format: { type: "json_schema", json_schema: { name: "pet", schema } },
    });
    const b = await window.engine.chat.completions.create({
      messages: [system, { role: "user", content: "Describe another pet." }],
      max_tokens: 1,
      temperature: 0,
    });
    return { text: a.choices[0].message.content, finish: a.choices[0].finish_reason, usage: b.usage };
  });
  console.log(`[${secs()} s] structured output: ${JSON.stringify(structured)}`);
  let pet = null;
  try {
    pet = JSON.parse(structured.text);
  } catch {}
  check(pet !== null && ["cat", "dog"].includes(pet.pet) && Number.isInteger(pet.age) && pet.age >= 0 && pet.age <= 99 &&
    Object.keys(pet).length === 2 && structured.finish === "stop",
    `response_format json_schema gives JSON that follows the schema: ${structured.text}`);
  check(structured.usage.prompt_tokens_details.cached_tokens >= 8,
    `a second request with the same system prompt reuses ${structured.usage.prompt_tokens_details.cached_tokens} cached tokens`);

  // Bad inputs to the JS API: www/tests/api.mjs (a table on a tiny model).

  // WebGPU calls per decoded token, counted inside the engine's worker (harness.mjs).
  const counter = await webgpuCalls(page);
  const perToken = await counter.perToken((n) =>
    page.evaluate(async (n) => window.engine.generate("Once upon a time", { max_tokens: n, temperature: 0 }), n));
  const total = Object.values(perToken).reduce((a, b) => a + b, 0);
  console.log(`[${secs()} s] WebGPU calls per decoded token: ${total} ${JSON.stringify(perToken)}`);
  const created = objectsCreated(perToken);
  check(created === 0, `a decoded token creates no GPU buffer, bind group or pipeline (${created} per token)`);
  check(perToken["GPUCommandEncoder.beginComputePass"] === 1 && perToken["GPUQueue.submit"] === 1,
    `one compute pass and one submit per decoded token (${perToken["GPUCommandEncoder.beginComputePass"]}, ${perToken["GPUQueue.submit"]})`);
  writeFileSync(join(artifacts, "webgpu-calls-per-token.json"), JSON.stringify(perToken, null, 2));

  // 4. Memory.
  const wasmBytes = loaded.mem.wasm_bytes;
  console.log(`[${secs()} s] peak wasm memory during load: ${(wasmBytes / 2 ** 20).toFixed(1)} MiB for a ${(size / 2 ** 20).toFixed(1)} MiB model`);
  check(wasmBytes < size / 2, "peak wasm memory is far below the model size");
  writeFileSync(join(artifacts, "browser-results.json"), JSON.stringify({ wasm_bytes: wasmBytes, size, timings: gen.r.timings }, null, 2));

  // 5. Corruption: damage chunk 3, reload, load: detected and re-fetched.
  await page.evaluate(async (url) => window.engine._corruptChunk(url, 3), modelUrl);
  const before2 = modelRequests().length;
  await openTestPage();
  // This load keeps its weights where the first did not (all in textures if the first kept
  // none there, else all in buffers), so both stores generate in the browser.
  const weights = loaded.info.adapter.weights_in_textures.length === 0 ? "texture" : "buffer";
  const again = await page.evaluate(async ([url, weights]) => {
    const e = await createEngine();
    const info = await e.load(url, { context: 64, weights });
    const r = await e.generate("Once upon a time", { max_tokens: 2, temperature: 0 });
    return { info, text: r.text };
  }, [modelUrl, weights]);
  const refetch = modelRequests().slice(before2);
  check(again.info.adapter.kernels?.source === "cached" && again.info.adapter.family === loaded.info.adapter.family && again.info.adapter.prefill_family === loaded.info.adapter.prefill_family, `a later load reads the family from IndexedDB: ${JSON.stringify(again.info.adapter)}`);
  check(JSON.stringify(again.info.refetched_chunks) === "[3]", `the damaged chunk is detected: re-fetched ${JSON.stringify(again.info.refetched_chunks)}`);
  check(refetch.length === 1 && refetch[0].range[0] === 3 * CHUNK, "only that chunk is fetched again");
  check((again.info.adapter.weights_in_textures.length > 0) === (weights === "texture"), `weights: "${weights}" puts every weight there: in textures ${JSON.stringify(again.info.adapter.weights_in_textures)}`);
  check(again.text === ", there", `the model still generates correctly, with its weights in ${weights}s`);
  console.log(`[${secs()} s] corruption handled`);

  // 6. Storage quota exceeded: said clearly, and the model streams from the network uncached.
  // A fresh browser context: no usage accounted to the origin yet.
  const qctx = await browser.newContext();
  const qpage = await qctx.newPage();
  await qpage.goto(`${base}/tests/e2e.html`);
  await qpage.waitForFunction(() => window.wispReady === true);
  const cdp = await qctx.newCDPSession(qpage);
  await cdp.send("Storage.overrideQuotaForOrigin", { origin: base, quotaSize: 40 * 2 ** 20 });
  const quota = await qpage.evaluate(async (url) => {
    const e = await createEngine();
    const notices = [];
    const info = await e.load(url, { context: 64, onProgress: (p) => p.phase === "notice" && notices.push(p.message) });
    const r = await e.generate("Once upon a time", { max_tokens: 2, temperature: 0 });
    await e.unload();
    return { info, notices, text: r.text };
  }, modelUrl);
  await cdp.send("Storage.overrideQuotaForOrigin", { origin: base });
  await qctx.close();
  check(quota.notices.some((n) => /quota/i.test(n)), `over quota, the user is told: ${JSON.stringify(quota.notices)}`);
  check(quota.info.cached === false && quota.text === ", there", "and the model streams uncached and runs");
  console.log(`[${secs()} s] quota handled`);

  // 7. The demo page.
  if (page) await page.close();
  page = await context.newPage();
  page.on("pageerror", (e) => console.log(`  [demo error] ${e}`));
  await page.goto(`${base}/?model=${encodeURIComponent(modelUrl)}`);
  await page.waitForSelector("#status:has-text('Ready:')", { timeout: 300_000 });
  await page.fill("#prompt", "Once upon a time");
  await page.click("#send");
  await page.waitForFunction(() => document.querySelectorAll("#chat .assistant")[0]?.textContent.length > 3, null, { timeout: 300_000 });
  // Stop mid-reply: the stop button interrupts generation at the next token. (The demo's
  // screens: www/tests/demo.mjs, on a tiny model.)
  await page.click("#stop");
  await page.waitForSelector("#chat .assistant:not(.pending)", { timeout: 120_000 });
  const shot = join(artifacts, "demo.png");
  await page.screenshot({ path: shot, fullPage: true });
  const reply = await page.textContent("#chat .assistant");
  const st = await page.textContent("#status");
  check(reply.length > 3, `the demo streamed a reply: ${JSON.stringify(reply.slice(0, 80))}; screenshot ${shot}`);
  check(/^Stopped\. \d+ tokens · [\d.]+ tok\/s/.test(st), `the stop button ended the reply early: ${JSON.stringify(st)}`);
  if (process.env.CI) {
    // The CI artifact: the screenshot, base64 in the log (decode with `base64 -d`).
    console.log(`demo screenshot (PNG, base64): ${readFileSync(shot).toString("base64")}`);
  }

  // 8. Through a bundler: Vite builds www/tests/vite-app, which imports "wisp-llm" by name.
  const vite = join(cache, "tools/node/node_modules/.bin/vite");
  execFileSync(vite, ["build"], { cwd: join(repo, "www/tests/vite-app"), stdio: "inherit" });
  const vpage = await context.newPage();
  await vpage.goto(`${base}/tests/vite-app/dist/index.html`);
  await vpage.waitForFunction(() => window.wispReady === true);
  const viaVite = await vpage.evaluate(async (url) => {
    const e = await createEngine();
    await e.load(url, { context: 64 });
    const r = await e.generate("Once upon a time", { max_tokens: 2, temperature: 0 });
    await e.unload();
    return r.text;
  }, modelUrl);
  check(viaVite === ", there", `the Vite-bundled package generates: ${JSON.stringify(viaVite)}`);

  // 9. `fast` precision (8-bit activations, dot4I8Packed where Chromium's WGSL has it): the
  // first 4 greedy tokens, which are far from ties, equal llama.cpp's.
  const fast = await vpage.evaluate(async ({ url, ids }) => {
    const e = await createEngine();
    const info = await e.load(url, { context: 64, precision: "fast" });
    const r = await e.generate(ids, { max_tokens: 4, temperature: 0 });
    await e.unload();
    return { precision: info.model.precision, ids: r.token_ids, tok_s: r.timings.decode_tok_s };
  }, { url: modelUrl, ids: oracle.prompt_ids });
  console.log(`[${secs()} s] fast precision: ${JSON.stringify(fast)}`);
  check(fast.precision === "fast" && JSON.stringify(fast.ids) === JSON.stringify(oracle.greedy_ids.slice(0, 4)),
    `at fast precision the first 4 greedy tokens equal llama.cpp's: ${JSON.stringify(fast.ids)}`);

  // 9b. Speculative decoding by prompt lookup: the same 16 greedy tokens as llama.cpp's (and as
  // native decoding, which the native tests hold to them), with drafts verified and counted.
  // (At token 31 exact math parts from llama.cpp on a near-tie, drafted or not.)
  const drafted = await vpage.evaluate(async ({ url, ids, n }) => {
    const e = await createEngine();
    const info = await e.load(url, { context: 64, draft: "lookup", draftMax: 4 });
    const r = await e.generate(ids, { max_tokens: n, temperature: 0 });
    await e.unload();
    return { draft: info.model.draft, ids: r.token_ids, timings: r.timings };
  }, { url: modelUrl, ids: oracle.prompt_ids, n: 16 });
  console.log(`[${secs()} s] lookup drafting: ${JSON.stringify(drafted)}`);
  check(JSON.stringify(drafted.ids) === JSON.stringify(oracle.greedy_ids.slice(0, 16)) && drafted.timings.drafted > 0,
    `with lookup drafts (${drafted.timings.accepted} of ${drafted.timings.drafted} accepted) the greedy tokens equal llama.cpp's`);

  // 10. Device loss: the engine's GPUDevice is captured inside its worker (requestDevice
  // wrapped) and destroyed from outside, as a driver reset would take it, during the load,
  // during the prompt's prefill and in the middle of decoding. Each time the call in progress
  // rejects with DeviceLostError within a step and nothing hangs; a new load on the same engine
  // object (no page reload) then generates llama.cpp's greedy tokens.
  await openTestPage();
  const workerCreated = page.waitForEvent("worker");
  await page.evaluate(() => {
    window.lossEngine = createEngine();
  });
  const lw = await workerCreated;
  await lw.evaluate(() => {
    globalThis.__devices = [];
    const request = GPUAdapter.prototype.requestDevice;
    GPUAdapter.prototype.requestDevice = async function (...a) {
      const d = await request.apply(this, a);
      globalThis.__devices.push(d);
      return d;
    };
  });
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const devices = () => lw.evaluate(() => globalThis.__devices.length);
  const destroy = () => lw.evaluate(() => globalThis.__devices.at(-1).destroy());
  // Starts `what` on the engine in the page; the outcome lands in window.lossOutcome.
  const start = (what, url, ids) =>
    page.evaluate(({ what, url, ids }) => {
      window.lossOutcome = null;
      window.lossTokens = [];
      const run = async () => {
        const e = await window.lossEngine;
        if (what === "load") return e.load(url, { context: 64 });
        return e.generate(ids, { max_tokens: 12, temperature: 0, onToken: (t) => window.lossTokens.push(t.id) });
      };
      run().then(
        (r) => (window.lossOutcome = { ok: true, r }),
        (err) => (window.lossOutcome = { ok: false, name: err.name, message: err.message, tokens: window.lossTokens.length }),
      );
    }, { what, url, ids });
  const outcome = async () => {
    await page.waitForFunction(() => window.lossOutcome !== null, null, { timeout: 120_000 });
    return page.evaluate(() => ({ ...window.lossOutcome, streamed: window.lossTokens }));
  };
  const lostRight = (o, what) =>
    check(!o.ok && o.name === "DeviceLostError" && /device was lost/.test(o.message),
      `a device lost ${what} rejects with DeviceLostError: ${o.name}: ${o.message}`);
  // During the load: as soon as the device exists, while the weights upload.
  start("load", modelUrl);
  while ((await devices()) < 1) await sleep(20);
  let tLost = Date.now();
  await destroy();
  let o = await outcome();
  lostRight(o, `while loading (after ${Date.now() - tLost} ms)`);
  // During the prefill: the first token is seconds away on SwiftShader.
  start("load", modelUrl);
  check((await outcome()).ok, "the same engine object loads again on a new device");
  start("generate", modelUrl, oracle.prompt_ids);
  await sleep(300);
  tLost = Date.now();
  await destroy();
  o = await outcome();
  lostRight(o, `during the prefill (after ${Date.now() - tLost} ms)`);
  check(o.streamed.length === 0, `no token came out of the lost prefill (${o.streamed.length})`);
  // Mid-decode, after the second token.
  start("load", modelUrl);
  check((await outcome()).ok, "and again");
  start("generate", modelUrl, oracle.prompt_ids);
  await page.waitForFunction(() => window.lossTokens.length >= 2, null, { timeout: 120_000 });
  const atLoss = await page.evaluate(() => window.lossTokens.length);
  tLost = Date.now();
  await destroy();
  o = await outcome();
  lostRight(o, `mid-decode (after ${Date.now() - tLost} ms)`);
  check(o.streamed.length <= atLoss + 1 && JSON.stringify(o.streamed) === JSON.stringify(oracle.greedy_ids.slice(0, o.streamed.length)),
    `decoding stopped within one step of the loss (${atLoss} tokens before, ${o.streamed.length} in all), and those were llama.cpp's`);
  // Calls after the loss reject the same way at once.
  const after = await page.evaluate(async () => {
    try {
      await (await window.lossEngine).generate("x", { max_tokens: 1 });
      return "resolved";
    } catch (err) {
      return err.name;
    }
  });
  check(after === "DeviceLostError", `a call after the loss rejects with DeviceLostError too (${after})`);
  // Recovery without a reload.
  start("load", modelUrl);
  check((await outcome()).ok, "after the losses, load opens a new device");
  const recovered = await page.evaluate(async (ids) => (await (await window.lossEngine).generate(ids, { max_tokens: 4, temperature: 0 })).token_ids, oracle.prompt_ids);
  check(JSON.stringify(recovered) === JSON.stringify(oracle.greedy_ids.slice(0, 4)),
    `the recovered engine generates llama.cpp's greedy tokens: ${JSON.stringify(recovered)} (${await devices()} devices opened)`);
  console.log(`[${secs()} s] device loss handled`);
} catch (e) {
  console.log(`FAIL ${e.stack ?? e}`);
  failures++;
} finally {
  await browser.close();
  server.stop();
}
console.log(`[${secs()} s] ${failures ? `${failures} FAILED` : "all browser tests passed"}`);
process.exit(failures ? 1 : 0);
