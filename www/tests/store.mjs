// The IndexedDB store under abuse, in headless Chromium (SwiftShader WebGPU):
//  1. Two pages of one profile load the same model at once: the file is downloaded once (a Web
//     Lock per model; the second page is told it waits), neither page damages the other's
//     records, and both generate llama.cpp's greedy tokens.
//  2. Cut downloads: CUTS times (default 10) a download is cut at a random point by closing its
//     page (no code of the page runs after: a crash, a closed tab, a reload), and a new page
//     resumes it. The store then holds chunks whose hashes equal the file's, and a load from it
//     gives llama.cpp's greedy tokens.
// Usage: node www/tests/store.mjs [--cuts N] [--seed S]   (after scripts/build-web.sh)
import { createHash } from "node:crypto";
import { openSync, readSync, closeSync, statSync } from "node:fs";
import { modelPath, oracle, startServer, startBrowser, checker, finish } from "./harness.mjs";

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const CUTS = opt("--cuts", 10);
let seed = opt("--seed", Date.now() % 1e9);
const rand = () => {
  // xorshift32: the cut points are reproducible from the printed seed.
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 2 ** 32;
};
console.log(`seed ${seed} (rerun the same cut points with --seed ${seed})`);

const CHUNK = 16 << 20;
const t = checker();
const { check, secs } = t;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const size = statSync(modelPath).size;
const fileHashes = [];
{
  const fd = openSync(modelPath, "r");
  for (let off = 0; off < size; off += CHUNK) {
    const buf = Buffer.alloc(Math.min(CHUNK, size - off));
    readSync(fd, buf, 0, buf.length, off);
    fileHashes.push(createHash("sha256").update(buf).digest("hex"));
  }
  closeSync(fd);
}

const server = await startServer();
const { base, modelUrl, modelRequests } = server;
const { browser } = await startBrowser();

async function newPage(context) {
  const page = await context.newPage();
  page.on("pageerror", (e) => console.log(`  [page error] ${e}`));
  await page.goto(`${base}/tests/e2e.html`);
  await page.waitForFunction(() => window.wispReady === true);
  return page;
}

/** The store's record of the model, read in a page of `context`. */
const stored = (page) =>
  page.evaluate(async (url) => {
    const e = await createEngine();
    const m = (await e.cache.list()).find((x) => x.url === url);
    await e.unload();
    return m ?? null;
  }, modelUrl);

await finish(t, { browser, server }, "all store tests passed", async () => {
  // 1. Two pages, one profile, one model, at the same time.
  const context = await browser.newContext();
  const [p1, p2] = [await newPage(context), await newPage(context)];
  await p1.evaluate(async (url) => {
    const e = await createEngine();
    await e.cache.delete(url);
    await e.unload();
  }, modelUrl);
  const before = modelRequests().length;
  const both = await Promise.all(
    [p1, p2].map((p) =>
      p.evaluate(
        async ({ url, ids }) => {
          const e = await createEngine();
          const notices = [];
          const info = await e.load(url, { context: 64, onProgress: (p) => p.phase === "notice" && notices.push(p.message) });
          const r = await e.generate(ids, { max_tokens: 2, temperature: 0 });
          await e.unload();
          return { notices, ids: r.token_ids, refetched: info.refetched_chunks };
        },
        { url: modelUrl, ids: oracle.prompt_ids },
      ),
    ),
  );
  const fetched = modelRequests().slice(before).map((r) => r.range[0]);
  console.log(`[${secs()} s] two pages: ${JSON.stringify(both)}; ${fetched.length} chunk requests`);
  check(fetched.length === fileHashes.length && new Set(fetched).size === fetched.length,
    `two pages loading one model download it once: ${fetched.length} chunk requests for ${fileHashes.length} chunks`);
  check(both.some((b) => b.notices.some((n) => /another page is downloading/.test(n))), "the page that waited was told so");
  const want2 = JSON.stringify(oracle.greedy_ids.slice(0, 2));
  check(both.every((b) => JSON.stringify(b.ids) === want2 && b.refetched.length === 0),
    `both pages generate llama.cpp's greedy tokens ${want2}, with no chunk re-fetched`);
  const m1 = await stored(p1);
  check(m1?.complete && JSON.stringify(m1.hashes) === JSON.stringify(fileHashes), "the store's chunks hash equal to the file's");
  await context.close();

  // 2. Cut downloads in one profile.
  const cctx = await browser.newContext();
  let page = await newPage(cctx);
  await page.evaluate(async (url) => {
    const e = await createEngine();
    await e.cache.delete(url);
    await e.unload();
  }, modelUrl);
  const cuts = [];
  for (let i = 0; i < CUTS; i++) {
    // Let 0 or 1 more chunks land, then cut 0–400 ms later: in the middle of a fetch, of a
    // hash, or of a transaction.
    const chunks = rand() < 0.5 ? 0 : 1;
    const extra = Math.floor(rand() * 400);
    await page.evaluate((url) => {
      window.events = 0;
      createEngine()
        .then((e) => e.cache.download(url, () => window.events++))
        .catch(() => {});
    }, modelUrl);
    const tStart = Date.now();
    while ((await page.evaluate(() => window.events)) < chunks && Date.now() - tStart < 60_000) await sleep(10);
    await sleep(extra);
    await page.close();
    page = await newPage(cctx);
    const m = await stored(page);
    const have = m ? m.hashes.filter((h) => h !== null).length : 0;
    cuts.push(have);
    if (m && m.hashes.some((h, j) => h !== null && h !== fileHashes[j])) {
      check(false, `after cut ${i + 1}, a stored chunk's recorded hash differs from the file's`);
    }
  }
  console.log(`[${secs()} s] ${CUTS} cuts; chunks stored after each: ${JSON.stringify(cuts)}`);
  check(cuts.some((c) => c > 0 && c < fileHashes.length), "the cuts fell in the middle of the download");
  const final = await page.evaluate(async ({ url, ids }) => {
    const e = await createEngine();
    const info = await e.load(url, { context: 64 });
    const r = await e.generate(ids, { max_tokens: 4, temperature: 0 });
    const m = (await e.cache.list()).find((x) => x.url === url);
    await e.unload();
    return { refetched: info.refetched_chunks, ids: r.token_ids, hashes: m.hashes, complete: m.complete };
  }, { url: modelUrl, ids: oracle.prompt_ids });
  check(final.complete && JSON.stringify(final.hashes) === JSON.stringify(fileHashes),
    `after ${CUTS} cuts and a last load, every chunk in the store hashes equal to the file's`);
  check(final.refetched.length === 0, `no stored chunk failed its verification (${JSON.stringify(final.refetched)})`);
  check(JSON.stringify(final.ids) === JSON.stringify(oracle.greedy_ids.slice(0, 4)),
    `and the load gives llama.cpp's greedy tokens: ${JSON.stringify(final.ids)}`);
  await cctx.close();
});
