// Serves the demo (www/) and models from the cache on localhost, with HTTP Range requests
// (bytes=a-b, a-, -n) as resumable downloads need. `GET /models/` (or /models/index.json)
// lists the models dir's *.gguf files as JSON [{name, bytes}], which the demo's picker offers
// first. No CORS headers are sent: pages of other origins cannot read the models (the demo's
// test relies on that). Every request is logged as one JSON line
// ({"t", "method", "path", "range", "status", "bytes"}) to stdout and, with --log FILE, to FILE.
// Usage: node scripts/serve.mjs [--port 8080] [--models DIR] [--root DIR (default www/)] [--log FILE]
import { createServer } from "node:http";
import { createReadStream, statSync, appendFileSync, readdirSync, existsSync } from "node:fs";
import { extname, join, normalize, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { homedir } from "node:os";

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const root = resolve(opt("--root", join(dirname(fileURLToPath(import.meta.url)), "..", "www")));
const models = resolve(opt("--models", process.env.WISP_CACHE ?? join(homedir(), ".cache", "wisp")));
const port = Number(opt("--port", "8080"));
const logFile = opt("--log", null);

const types = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".wasm": "application/wasm",
  ".json": "application/json",
  ".css": "text/css",
  ".ts": "text/plain",
  ".png": "image/png",
};

function log(entry) {
  const line = JSON.stringify({ t: Date.now(), ...entry });
  console.log(line);
  if (logFile) appendFileSync(logFile, line + "\n");
}

/** [start, end] inclusive for a Range header, or null when absent; "bad" when unsatisfiable. */
function parseRange(h, size) {
  if (!h) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(h.trim());
  if (!m || (m[1] === "" && m[2] === "")) return "bad";
  let start, end;
  if (m[1] === "") {
    const n = Number(m[2]);
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start > end || start >= size) return "bad";
  return [start, end];
}

/** The models dir's GGUF files, largest last: [{name, bytes}]. */
function modelList() {
  let names = [];
  try {
    names = readdirSync(models).filter((n) => n.endsWith(".gguf"));
  } catch {}
  return names
    .map((name) => {
      try {
        return { name, bytes: statSync(join(models, name)).size };
      } catch {
        return null;
      }
    })
    .filter((m) => m && m.bytes > 0)
    .sort((a, b) => a.bytes - b.bytes || a.name.localeCompare(b.name));
}

createServer((req, res) => {
  const url = new URL(req.url, "http://localhost");
  let path = decodeURIComponent(url.pathname);
  if (path === "/models/" || path === "/models/index.json") {
    const body = JSON.stringify(modelList());
    res.writeHead(200, { "Content-Type": "application/json", "Cache-Control": "no-store" });
    res.end(req.method === "HEAD" ? undefined : body);
    log({ method: req.method, path, range: null, status: 200, bytes: Buffer.byteLength(body) });
    return;
  }
  let file;
  if (path.startsWith("/models/")) file = join(models, normalize(path.slice(8)).replace(/^(\.\.[/\\])+/, ""));
  else file = join(root, normalize(path === "/" ? "/index.html" : path).replace(/^(\.\.[/\\])+/, ""));
  let st;
  try {
    st = statSync(file);
    if (st.isDirectory()) {
      file = join(file, "index.html");
      st = statSync(file);
    }
  } catch {
    res.writeHead(404).end("not found");
    log({ method: req.method, path, range: null, status: 404, bytes: 0 });
    return;
  }
  const headers = {
    "Content-Type": types[extname(file)] ?? "application/octet-stream",
    "Accept-Ranges": "bytes",
    "Cache-Control": "no-store",
  };
  const range = parseRange(req.headers.range, st.size);
  if (range === "bad") {
    res.writeHead(416, { "Content-Range": `bytes */${st.size}` }).end();
    log({ method: req.method, path, range: req.headers.range, status: 416, bytes: 0 });
    return;
  }
  const [start, end] = range ?? [0, st.size - 1];
  const status = range ? 206 : 200;
  if (range) headers["Content-Range"] = `bytes ${start}-${end}/${st.size}`;
  headers["Content-Length"] = st.size === 0 ? 0 : end - start + 1;
  res.writeHead(status, headers);
  log({ method: req.method, path, range: range ? [start, end] : null, status, bytes: end - start + 1 });
  if (req.method === "HEAD" || st.size === 0) return res.end();
  createReadStream(file, { start, end }).pipe(res);
}).listen(port, "127.0.0.1", () => {
  console.error(`serving ${root} and ${models} at http://127.0.0.1:${port}/ (models under /models/)`);
  // Without the engine's build the demo can only say so: tell whoever started the server too.
  if (!existsSync(join(root, "wisp-llm", "dist", "wisp_bg.wasm"))) {
    console.error(`warning: ${join(root, "wisp-llm", "dist", "wisp_bg.wasm")} is missing: run scripts/build-web.sh first`);
  }
});
