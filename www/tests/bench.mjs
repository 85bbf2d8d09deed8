// Decode speed of the same model on the same SwiftShader, natively (`wisp run` with the
// SwiftShader Vulkan ICD) and in headless Chromium (the npm package), in one run, side by side.
// With --draft lookup, both also decode with prompt-lookup drafts (the same tokens, verified
// several per pass) and the report gives each side's speed-up and acceptance.
// Usage: node www/tests/bench.mjs [-n TOKENS] [--precision exact|fast] [--draft lookup]
// (after cargo build --release and scripts/build-web.sh)
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { repo, oracle, startServer, startBrowser, webgpuCalls, objectsCreated } from "./harness.mjs";

const n = Number(process.argv[process.argv.indexOf("-n") + 1] || 16) || 16;
const ids = oracle.prompt_ids;
const pi = process.argv.indexOf("--precision");
const precision = pi > 0 ? process.argv[pi + 1] : "exact";
const di = process.argv.indexOf("--draft");
const draft = di > 0 ? process.argv[di + 1] : undefined;
if (draft !== undefined && draft !== "lookup") throw new Error(`--draft ${draft}: the browser drafts by "lookup" only`);

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
const nativeDrafted = draft
  ? execFileSync(
      join(repo, "target/release/wisp"),
      ["run", "--prompt-ids", ids.join(","), "-n", String(n), "--json", "--ctx", "256", "--draft", draft, "--draft-max", "4"],
      { env: { ...process.env, VK_ICD_FILENAMES: "/usr/lib/chromium/vk_swiftshader_icd.json", WISP_ADAPTER: "" }, encoding: "utf8" },
    )
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l))
  : null;

// Browser: the npm package on Chromium's WebGPU (SwiftShader).
const server = await startServer();
const { browser, open } = await startBrowser();
let web;
try {
  const page = await open(server.base);
  web = await page.evaluate(
    async ({ url, ids, n, precision, draft }) => {
      let drafted = null;
      if (draft) {
        const d = await createEngine();
        await d.load(url, { context: 256, precision, draft, draftMax: 4 });
        drafted = await d.generate(ids, { max_tokens: n, temperature: 0 });
        await d.unload();
      }
      const e = (window.benchEngine = await createEngine());
      const info = await e.load(url, { context: 256, precision });
      const r = await e.generate(ids, { max_tokens: n, temperature: 0 });
      return { info, r, drafted };
    },
    { url: server.modelUrl, ids, n, precision, draft },
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
if (draft) {
  const nd = nativeDrafted[nativeDrafted.length - 1];
  const ndIds = nativeDrafted.filter((l) => "id" in l).map((l) => l.id);
  const wd = web.drafted;
  console.log(`drafting by ${draft} (up to 4): same tokens as plain: native ${JSON.stringify(ndIds) === JSON.stringify(nativeIds)}, browser ${JSON.stringify(wd.token_ids) === JSON.stringify(web.r.token_ids)}`);
  console.log("where                     plain tok/s  drafted tok/s  speed-up  accepted/drafted  tokens/pass");
  for (const [w, p, d] of [
    ["native (Vulkan ICD)", nat.decode_tok_s, nd],
    [`browser (${web.info.adapter.backend})`, web.r.timings.decode_tok_s, { ...wd.timings }],
  ]) {
    console.log(`${w.padEnd(26)}${p.toFixed(3).padStart(11)}${d.decode_tok_s.toFixed(3).padStart(15)}${(d.decode_tok_s / p).toFixed(2).padStart(10)}${`${d.accepted}/${d.drafted}`.padStart(18)}${d.tokens_per_pass.toFixed(2).padStart(13)}`);
  }
}
