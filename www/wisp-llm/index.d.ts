// Types of wisp-llm's public API.

export interface Progress {
  /**
   * "download" (network → IndexedDB), "measure" (timing this GPU's kernels: once per adapter
   * and model shape, then kept in IndexedDB; `message` says so), "load" (IndexedDB → GPU, each
   * chunk's hash checked on the way) or "notice" (see `message`).
   */
  phase: "download" | "measure" | "load" | "notice";
  done: number;
  total: number;
  /** Bytes per second in this phase. */
  rate: number;
  /** First chunk fetched by this download (0 unless resuming). */
  resumed_from_chunk: number;
  message: string;
}

/**
 * "exact": f32 activations (the default; equal to exact math within 0.1% of the top logit).
 * "fast": activations quantized to 8 bits per 32 values with integer dot products, as
 * llama.cpp computes; within 3% of the top logit.
 */
export type Precision = "exact" | "fast";

export interface GenerationOptions {
  max_tokens?: number;
  /** 0: greedy. */
  temperature?: number;
  top_p?: number;
  top_k?: number;
  min_p?: number;
  repetition_penalty?: number;
  seed?: number;
  stop?: string | string[];
  /**
   * Structured output: the reply is JSON that follows the schema (`json_schema`) or any JSON
   * object (`json_object`); the token mask comes from llguidance, applied before sampling.
   */
  response_format?:
    | { type: "text" }
    | { type: "json_object" }
    | { type: "json_schema"; json_schema: { name?: string; schema: object; strict?: boolean } };
  /** Called with each token as it is decoded. */
  onToken?: (t: { id: number; text: string }) => void;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** Prompt tokens whose KV cache was kept from the previous request (not prefilled again). */
  prompt_tokens_details: { cached_tokens: number };
}

export interface Timings {
  ttft_ms: number;
  prefill_tok_s: number;
  decode_tok_s: number;
  /** Speculative decoding (`load(url, { draft: "lookup" })`): draft tokens verified, of them accepted. */
  drafted: number;
  accepted: number;
  /** Tokens after the first per pass over the weights (1 without drafting). */
  tokens_per_pass: number;
}

export interface GenerateResult {
  text: string;
  token_ids: number[];
  finish_reason: "stop" | "length" | "abort";
  usage: Usage;
  timings: Timings;
}

export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

export interface ChatCompletionRequest extends Omit<GenerationOptions, "onToken"> {
  messages: ChatMessage[];
  stream?: boolean;
}

export interface ChatCompletionChunk {
  id: string;
  object: "chat.completion.chunk";
  created: number;
  model: string;
  choices: { index: number; delta: { role?: "assistant"; content?: string }; finish_reason: string | null }[];
  usage?: Usage;
  timings?: Timings;
}

export interface ChatCompletion {
  id: string;
  object: "chat.completion";
  created: number;
  model: string;
  choices: { index: number; message: ChatMessage; finish_reason: string }[];
  usage: Usage;
  timings: Timings;
}

export interface CachedModel {
  url: string;
  size: number;
  stored_bytes: number;
  complete: boolean;
  chunks: number;
  hashes: (string | null)[];
}

export interface WillItRun {
  ok: boolean;
  reasons: string[];
  needs: {
    file_bytes: number;
    weight_bytes: number;
    kv_cache_bytes: number;
    gpu_bytes_estimate: number;
    context: number;
    largest_tensor: { name: string; bytes: number };
    widest_row_bytes: number;
    architecture: string | null;
    shader_f16_required: boolean;
  };
  adapter: { name: string; tier: string; shader_f16: boolean; max_storage_binding: number; max_buffer_size: number };
}

export interface EngineInfo {
  url: string;
  size: number;
  cached: boolean;
  refetched_chunks: number[];
  adapter: {
    name: string;
    backend: string;
    tier: string;
    shader_f16: boolean;
    /** The kernel family of decode's matvecs: "row" (software adapters' shape) or "workgroup". */
    family: string;
    /** The kernel family of prefill's matmuls, chosen on its own: "row" or "workgroup". */
    prefill_family: string;
    /**
     * The block types (e.g. "Q8_0") whose weights were uploaded to textures instead of storage
     * buffers, because their matvecs ran faster from textures on this adapter (measured).
     */
    weights_in_textures: string[];
    /**
     * How the families were chosen: timed on this load ("measured"; both families' estimated
     * matvec time of a decode step and their time for one 32-column matmul of the model's
     * largest layer matrix, in ms; and, with the faster family, each block type's matvecs of a
     * decode step with its weights in buffers and in textures), read from IndexedDB where an
     * earlier load on this adapter measured them ("cached"), or the device-type default when
     * timing failed.
     */
    kernels: {
      source: "measured" | "cached" | "default";
      step_matvec_ms?: { row: number; workgroup: number };
      weights_ms?: { [blockType: string]: { buffer: number; texture: number } };
      prefill_matmul_ms?: { row: number; workgroup: number };
    };
  };
  model: {
    /** What to call the model: GGUF's `general.name`, else the file name in the URL. */
    name: string;
    arch: string;
    n_layer: number;
    n_vocab: number;
    context: number;
    precision: Precision;
  };
  template: string;
}

/**
 * Every call rejects with an `Error` whose message names the problem: an
 * `EngineFilesMissingError` when the engine's build (`dist/wisp.js`, `dist/wisp_bg.wasm`) cannot
 * be fetched next to `index.js` (the message names the URL and its HTTP status), a `TypeError` for an
 * argument of the wrong type (checked before anything runs: a prompt that is neither text nor
 * integer token ids, options that are not an object, a non-integer `max_tokens`, a message
 * whose role is not system, developer, user or assistant), a `RangeError` for an integer option
 * out of range, and the engine's own message for the rest. Calls run one at a time: a second
 * call while one runs waits for it. When the GPU device is
 * lost (a driver reset, the browser reclaiming it, `device.destroy()`), the call in progress and
 * every later one reject with `name === "DeviceLostError"`; `load()` again (or a new
 * `createEngine()`) opens a new device, without a page reload.
 */
export interface Engine {
  model: string | undefined;
  load(
    url: string,
    opts?: {
      onProgress?: (p: Progress) => void;
      context?: number;
      precision?: Precision;
      contextShift?: boolean;
      /** Every weight in storage buffers or in textures; by default measured per block type. */
      weights?: "buffer" | "texture";
      /** Speculative decoding: "lookup" drafts from the prompt and output so far (exact precision only). */
      draft?: "lookup";
      /** Draft tokens per verify pass at most (1 to 15, default 2). */
      draftMax?: number;
    },
  ): Promise<EngineInfo>;
  willItRun(url?: string, opts?: { context?: number }): Promise<WillItRun>;
  generate(prompt: string | number[], options?: GenerationOptions): Promise<GenerateResult>;
  chat: {
    completions: {
      create(req: ChatCompletionRequest & { stream: true }): Promise<AsyncIterable<ChatCompletionChunk>>;
      create(req: ChatCompletionRequest & { stream?: false }): Promise<ChatCompletion>;
    };
  };
  cache: {
    list(): Promise<CachedModel[]>;
    delete(url: string): Promise<void>;
    estimate(): Promise<{ usage: number; quota: number }>;
    download(url: string, onProgress?: (p: Progress) => void): Promise<{ url: string; size: number; complete: boolean }>;
  };
  interrupt(): void;
  resetChat(): Promise<void>;
  info(): Promise<EngineInfo>;
  memory(): Promise<{
    wasm_bytes: number;
    /** Every GPU allocation of the loaded engine, counted since its load; null before one. */
    gpu: { buffers: number; buffer_bytes: number; bind_groups: number; pipelines: number } | null;
    /** The engine worker's JavaScript heap (Chromium's performance.memory), else null. */
    js_heap_bytes: number | null;
  }>;
  unload(): Promise<void>;
}

export function createEngine(opts?: {
  model?: string;
  onProgress?: (p: Progress) => void;
  context?: number;
  /** Decode precision (default "exact"). */
  precision?: Precision;
  /** A chat that outgrows the context drops its oldest turns after the system prompt (default false). */
  contextShift?: boolean;
  /** Every weight in storage buffers or in textures (default: measured per block type). */
  weights?: "buffer" | "texture";
  /** Speculative decoding: "lookup" drafts from the prompt and output so far (exact precision only). */
  draft?: "lookup";
  /** Draft tokens per verify pass at most (1 to 15, default 2). */
  draftMax?: number;
  workerUrl?: string | URL;
}): Promise<Engine>;
