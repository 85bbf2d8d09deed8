// Shared by the browser test and benchmark: the Range server (scripts/serve.mjs) on a free
// port with its request log, and headless Chromium (playwright-core, /usr/bin/chromium, WebGPU
// on SwiftShader) with a page that has imported the npm package.
import { spawn, execFileSync } from "node:child_process";
import { readFileSync, existsSync } from "node:fs";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { homedir, tmpdir } from "node:os";

export const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const cache = process.env.WISP_CACHE ?? join(homedir(), ".cache", "wisp");
export const MODEL = "gemma-3-270m-q4_k_m.gguf";
export const modelPath = join(cache, MODEL);
export const oracle = JSON.parse(
  readFileSync(join(repo, "tests/data/oracle/gemma3-270m-q4_k_m.once_upon_a_time.json"), "utf8"),
);

/**
 * Starts the server (`root`: the folder served instead of www/); returns { base, modelUrl, log(),
 * modelRequests(), stderr(), stop() }. Its stderr is passed through and kept for `stderr()`.
 */
export async function startServer({ root } = {}) {
  const port = 8000 + Math.floor(Math.random() * 900);
  const logFile = join(tmpdir(), `wisp-serve-${port}-${Date.now()}.log`);
  const args = [join(repo, "scripts/serve.mjs"), "--port", String(port), "--models", cache, "--log", logFile];
  if (root) args.push("--root", root);
  const proc = spawn("node", args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  proc.stderr.on("data", (d) => {
    stderr += d;
    process.stderr.write(d);
  });
  await new Promise((r) => setTimeout(r, 500));
  const base = `http://127.0.0.1:${port}`;
  const log = () => {
    try {
      return readFileSync(logFile, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
    } catch {
      return [];
    }
  };
  return {
    base,
    modelUrl: `${base}/models/${MODEL}`,
    log,
    stderr: () => stderr,
    // Range requests for the model's data (the one-byte size probes excluded).
    modelRequests: () => log().filter((e) => e.path === `/models/${MODEL}` && e.range && e.range[1] > 0),
    stop: () => proc.kill(),
  };
}

/**
 * Launches headless Chromium with WebGPU (`extraArgs` added to its command line); returns
 * { browser, context, open(url) }.
 */
export async function startBrowser(extraArgs = []) {
  const { chromium } = await import(join(cache, "tools/node/node_modules/playwright-core/index.mjs"));
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: [
      "--no-sandbox", "--no-first-run", "--disable-background-networking", "--disable-component-update",
      "--disable-sync", "--disable-quic", "--enable-unsafe-webgpu", ...extraArgs,
    ],
  });
  const context = await browser.newContext();
  let page;
  /** A fresh page on the test page (the previous one is closed, as a reload would). */
  async function open(base) {
    if (page) await page.close();
    page = await context.newPage();
    page.on("console", (m) => console.log(`  [page] ${m.text()}`));
    page.on("pageerror", (e) => console.log(`  [page error] ${e}`));
    await page.goto(`${base}/tests/e2e.html`);
    await page.waitForFunction(() => window.wispReady === true);
    return page;
  }
  return { browser, context, open };
}

/**
 * Counts WebGPU calls inside the page's engine worker: every method of GPUDevice, GPUQueue,
 * GPUCommandEncoder, GPUComputePassEncoder and GPUBuffer is wrapped (wasm-bindgen's glue looks
 * methods up on each call, so wrapping after load still counts every later call). Returns
 * `perToken(generate)`: runs `generate(n)` for n = 2 and 6 (same prompt, greedy) and returns the
 * calls per decoded token by name, prefill and set-up cancelled out.
 */
export async function webgpuCalls(page) {
  const worker = page.workers().at(-1);
  await worker.evaluate(() => {
    const calls = (globalThis.__wispCalls = {});
    for (const cls of ["GPUDevice", "GPUQueue", "GPUCommandEncoder", "GPUComputePassEncoder", "GPUBuffer"]) {
      const proto = globalThis[cls].prototype;
      for (const name of Object.getOwnPropertyNames(proto)) {
        const d = Object.getOwnPropertyDescriptor(proto, name);
        if (name === "constructor" || typeof d.value !== "function") continue;
        proto[name] = function (...args) {
          calls[`${cls}.${name}`] = (calls[`${cls}.${name}`] ?? 0) + 1;
          return d.value.apply(this, args);
        };
      }
    }
  });
  const callsOf = async (generate, n) => {
    await worker.evaluate(() => Object.keys(globalThis.__wispCalls).forEach((k) => delete globalThis.__wispCalls[k]));
    await generate(n);
    return worker.evaluate(() => ({ ...globalThis.__wispCalls }));
  };
  return {
    async perToken(generate) {
      const c2 = await callsOf(generate, 2);
      const c6 = await callsOf(generate, 6);
      const out = {};
      for (const k of new Set([...Object.keys(c2), ...Object.keys(c6)])) out[k] = ((c6[k] ?? 0) - (c2[k] ?? 0)) / 4;
      return out;
    },
  };
}

/** GPU objects created among `perToken` calls (buffers, bind groups, pipelines, shaders). */
export function objectsCreated(perToken) {
  return ["GPUDevice.createBuffer", "GPUDevice.createBindGroup", "GPUDevice.createComputePipeline",
    "GPUDevice.createComputePipelineAsync", "GPUDevice.createShaderModule", "GPUDevice.createBindGroupLayout"]
    .reduce((a, k) => a + (perToken[k] ?? 0), 0);
}

/** Test bookkeeping: `check(cond, what)` prints ok/FAIL and counts failures; `secs()` since now. */
export function checker() {
  const t0 = Date.now();
  const t = {
    failures: 0,
    secs: () => ((Date.now() - t0) / 1000).toFixed(1),
    check(cond, what) {
      console.log(`${cond ? "ok  " : "FAIL"} ${what}`);
      if (!cond) t.failures++;
    },
  };
  return t;
}

/**
 * Runs `body()` (a throw counts as a failure), then closes `browser` and `server`, prints the
 * outcome (`passed` when nothing failed) and exits with its status.
 */
export async function finish(t, { browser, server }, passed, body) {
  try {
    await body();
  } catch (e) {
    console.log(`FAIL ${e.stack ?? e}`);
    t.failures++;
  } finally {
    await browser.close();
    server.stop();
  }
  console.log(`[${t.secs()} s] ${t.failures ? `${t.failures} FAILED` : passed}`);
  process.exit(t.failures ? 1 : 0);
}

export const TINY_CHAT = "wisp-test-tiny-chat.gguf";

/**
 * The tiny chat model (scripts/gen_tiny_chat_gguf.py: SmolLM2-Instruct's tokenizer and chat
 * template on random weights), written into the cache when missing; returns its file name.
 */
export function tinyChatModel() {
  if (!existsSync(join(cache, TINY_CHAT))) {
    execFileSync(process.env.WISP_PY ?? "python3", [join(repo, "scripts/gen_tiny_chat_gguf.py"),
      join(cache, "SmolLM2-135M-Instruct.Q4_1.gguf"), join(cache, TINY_CHAT)]);
  }
  return TINY_CHAT;
}
