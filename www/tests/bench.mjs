// Decode speed of the same model on the same SwiftShader, natively (`wisp run` with the
// SwiftShader Vulkan ICD) and in headless Chromium (the npm package), in one run, side by side.
// Usage: node www/tests/bench.mjs [-n TOKENS] [--precision exact|fast]
// (after cargo build --release and scripts/build-web.sh)
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { repo, oracle, startServer, startBrowser, webgpuCalls, objectsCreated } from "./harness.mjs";

const n = Number(process.argv[process.argv.indexOf("-n") + 1] || 16) || 16;
const ids = oracle.prompt_ids;
const pi = process.argv.indexOf("--precision");
const precision = pi > 0 ? process.argv[pi + 1] : "exact";

// Native: SwiftShader through its Vulkan ICD.
const native = execFileSync(
  join(repo, "target/release/wisp"),
  ["run", "--prompt-ids", ids.join(","), "-n", String(n), "--json", "--ctx", "256", "--precision", precision],
  { env: { ...process.env, VK_ICD_FILENAMES: "/usr/lib/chromium/vk_swiftshader_icd.json", WISP_ADAPTER: "" }, encoding: "utf8" },
)
  .trim()
  .split("\n")
  .map((l) => JSON.parse(l));
const nat = native[native.length - 1];
const nativeIds = native.filter((l) => "id" in l).map((l) => l.id);

// Browser: the npm package on Chromium's WebGPU (SwiftShader).
const server = await startServer();
const { browser, open } = await startBrowser();
let web;
try {
  const page = await open(server.base);
  web = await page.evaluate(
    async ({ url, ids, n, precision }) => {
      const e = (window.benchEngine = await createEngine());
      const info = await e.load(url, { context: 256, precision });
      const r = await e.generate(ids, { max_tokens: n, temperature: 0 });
      return { info, r };
    },
    { url: server.modelUrl, ids, n, precision },
  );
  // The host side of a decoded token: WebGPU calls made inside the worker.
  const counter = await webgpuCalls(page);
  web.calls = await counter.perToken((k) =>
    page.evaluate(async ({ ids, k }) => window.benchEngine.generate(ids, { max_tokens: k, temperature: 0 }), { ids, k }));
} finally {
  await browser.close();
  server.stop();
}
const same = JSON.stringify(web.r.token_ids) === JSON.stringify(nativeIds);
const rows = [
  ["native (Vulkan ICD)", nat.decode_tok_s, nat.prefill_tok_s, nat.ttft_ms],
  [`browser (${web.info.adapter.backend})`, web.r.timings.decode_tok_s, web.r.timings.prefill_tok_s, web.r.timings.ttft_ms],
];
console.log(`SwiftShader, default model, ${precision} precision, ${ids.length} prompt tokens, ${n} greedy tokens (same tokens: ${same})`);
console.log("where                     decode tok/s  prefill tok/s  TTFT ms");
for (const [w, d, p, t] of rows) {
  console.log(`${w.padEnd(26)}${d.toFixed(3).padStart(12)}${p.toFixed(2).padStart(15)}${t.toFixed(0).padStart(9)}`);
}
const ratio = web.r.timings.decode_tok_s / nat.decode_tok_s;
console.log(`browser decode = ${(100 * ratio).toFixed(0)}% of native`);
const callsTotal = Object.values(web.calls).reduce((a, b) => a + b, 0);
console.log(`browser, per decoded token: ${callsTotal} WebGPU calls, ${objectsCreated(web.calls)} GPU objects created, ` +
  `${web.calls["GPUCommandEncoder.beginComputePass"] ?? 0} compute passes, ${web.calls["GPUComputePassEncoder.dispatchWorkgroups"] ?? 0} dispatches`);
console.log(JSON.stringify({ precision, native: nat, browser: web.r.timings, browser_pct_of_native: 100 * ratio, same_tokens: same,
  webgpu_calls_per_token: callsTotal, gpu_objects_per_token: objectsCreated(web.calls), calls: web.calls }));
