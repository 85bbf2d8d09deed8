//! The forward pass: one readable function per architecture family over preallocated buffers.
//! Prefill and decode are the same code: `n` tokens at positions `pos0..pos0 + n` (matmul for
//! n > 1, matvec for n = 1); the KV cache keeps every position, so a chat continues without
//! re-reading its history.

use super::config::{Config, RopeFactors};
use super::weights::{GateUp, Qkv, TensorSource, Weights};
use super::ModelError;
use crate::gpu::Encoder;
use crate::gpu::{Gpu, GpuError, GpuWeight};
use crate::ops::attention::{self, AttnConfig, KvCache};
use crate::ops::matvec::{Input, Precision, X8};
use crate::ops::qk_rope::{encode_qk_rope, KvStore, QkNorm};
use crate::ops::rope::Rope;
use crate::ops::{act, argmax, embed, matmul, matvec, norm};

/// Tokens per forward step at most; longer prompts run in chunks of this many.
pub const MAX_BATCH: u32 = 128;

/// Tokens one [`Model::forward_verify`] pass takes at most: the last accepted token and up to
/// 15 drafts.
pub const MAX_VERIFY: usize = 16;

/// What a forward step hands back for its last token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    /// The greedy token, computed on the GPU (8 bytes read back).
    Argmax,
    /// All logits (n_vocab f32 read back), for sampling or inspection.
    Logits,
    /// The greedy token among those allowed by the mask last given to
    /// [`Model::set_token_mask`] (structured output): 8 bytes read back, not the logits.
    ArgmaxMasked,
}

/// Result of [`Model::forward`].
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    Token(u32),
    Logits(Vec<f32>),
}

/// Activation buffers, allocated once for [`MAX_BATCH`] tokens.
struct Activations {
    /// ids: (n) u32
    ids: wgpu::Buffer,
    /// x: (n, n_embd) the residual stream; h: (n, n_embd) scratch
    x: wgpu::Buffer,
    h: wgpu::Buffer,
    /// q, o: (n, n_head·head_dim); k, v: (n, n_head_kv·head_dim)
    q: wgpu::Buffer,
    k: wgpu::Buffer,
    v: wgpu::Buffer,
    o: wgpu::Buffer,
    /// g, u: (n, n_ff); gu: (n, 2·n_ff) (fused gate+up)
    g: wgpu::Buffer,
    u: wgpu::Buffer,
    gu: wgpu::Buffer,
    /// last: (n_embd) the last token's hidden state; logits: (n_vocab)
    last: wgpu::Buffer,
    logits: wgpu::Buffer,
    /// argmax: (u32 index, f32 value)
    best: wgpu::Buffer,
    /// mask: (n_vocab / 32) u32, the tokens `Want::ArgmaxMasked` may pick
    mask: wgpu::Buffer,
    /// Mappable copies of `best` and `logits`, kept so that reading a step back creates nothing.
    best_read: wgpu::Buffer,
    logits_read: wgpu::Buffer,
    /// A verify pass's logits: (MAX_VERIFY, n_vocab); and each position's argmax
    /// ([`MAX_VERIFY`] × 8 bytes), mappable.
    verify_logits: wgpu::Buffer,
    verify_read: wgpu::Buffer,
    /// Biases (Qwen 2), per layer: (dim) each.
    biases: Vec<[Option<wgpu::Buffer>; 3]>,
    /// A decode matvec's x quantized to 8 bits (`fast` precision): up to max(n_embd, q, n_ff).
    x8: X8,
}

/// What a verify pass read back.
enum Verified {
    Ids(Vec<u32>),
    Logits(Vec<Vec<f32>>),
}

/// A model on the GPU with its KV cache.
pub struct Model {
    pub cfg: Config,
    pub weights: Weights,
    pub cache: KvCache,
    act: Activations,
    /// RoPE of global and of sliding-window layers.
    rope_global: Rope,
    rope_local: Rope,
    /// The tokens whose keys and values are in the cache, in order.
    tokens: Vec<u32>,
    /// Host time of the last step: from the start of its encoding to the return of submit.
    pub host_s: f64,
    /// Seconds spent compiling pipelines while loading.
    pub compile_s: f64,
    /// How decode multiplies weights with activations (prefill is always exact).
    precision: Precision,
    /// Mappable copy of a verify pass's logits, made by the first verify pass that reads its
    /// logits back (sampling, log-probabilities, structured output).
    verify_logits_read: Option<wgpu::Buffer>,
}

impl Model {
    /// Loads the weights of `src` and allocates a KV cache of `ctx` positions (f32 at tier T0,
    /// f16 above). `progress(done, total)` reports bytes uploaded.
    pub async fn load<S: TensorSource>(
        gpu: &Gpu,
        src: &S,
        ctx: u32,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Model, ModelError> {
        let cfg = Config::from_gguf(src.gguf())?;
        let weights = Weights::load(gpu, &cfg, src, progress).await?;
        let cache = KvCache::new(gpu, cfg.n_layer, ctx, cfg.n_head_kv, cfg.head_dim)?;
        let f = |n: u32| u64::from(MAX_BATCH) * u64::from(n) * 4;
        let (q, kv) = (cfg.n_head * cfg.head_dim, cfg.n_head_kv * cfg.head_dim);
        // Biases (Qwen 2): one row each, added to every token's row.
        let up = |b: &Option<Vec<f32>>| b.as_ref().map(|v| gpu.storage_from("bias", v));
        let biases = weights
            .layers
            .iter()
            .map(|l| [up(&l.bq), up(&l.bk), up(&l.bv)])
            .collect();
        let act = Activations {
            ids: gpu.storage("ids", u64::from(MAX_BATCH) * 4),
            x: gpu.storage("x", f(cfg.n_embd)),
            h: gpu.storage("h", f(cfg.n_embd)),
            q: gpu.storage("q", f(q)),
            k: gpu.storage("k", f(kv)),
            v: gpu.storage("v", f(kv)),
            o: gpu.storage("o", f(q)),
            g: gpu.storage("g", f(cfg.n_ff)),
            u: gpu.storage("u", f(cfg.n_ff)),
            gu: gpu.storage("gate+up", f(2 * cfg.n_ff)),
            last: gpu.storage("last", u64::from(cfg.n_embd) * 4),
            logits: gpu.storage("logits", u64::from(cfg.n_vocab) * 4),
            best: gpu.storage("argmax", argmax::ARGMAX_OUT_BYTES),
            mask: gpu.storage("token mask", u64::from(cfg.n_vocab.div_ceil(32)) * 4),
            best_read: gpu.readback_buffer("argmax readback", argmax::ARGMAX_OUT_BYTES),
            logits_read: gpu.readback_buffer("logits readback", u64::from(cfg.n_vocab) * 4),
            verify_logits: gpu.storage(
                "verify logits",
                MAX_VERIFY as u64 * u64::from(cfg.n_vocab) * 4,
            ),
            verify_read: gpu.readback_buffer(
                "verify readback",
                MAX_VERIFY as u64 * argmax::ARGMAX_OUT_BYTES,
            ),
            biases,
            x8: X8::new(gpu, cfg.n_embd.max(q).max(cfg.n_ff)),
        };
        // LongRoPE: the long factors once the context passes the original one (llama.cpp's
        // `get_rope_factors`), the short ones (or `rope_freqs`) otherwise.
        let factors = match cfg.rope_factors {
            RopeFactors::LongRope { orig_ctx } if ctx > orig_ctx => {
                weights.rope_factors_long.clone()
            }
            _ => weights.rope_factors.clone(),
        };
        let mut model = Model {
            rope_global: cfg.rope(false, factors.clone()),
            rope_local: cfg.rope(true, factors),
            cfg,
            weights,
            cache,
            act,
            tokens: Vec::new(),
            host_s: 0.0,
            compile_s: 0.0,
            precision: Precision::Exact,
            verify_logits_read: None,
        };
        model.compile(gpu).await?;
        Ok(model)
    }

    /// Compiles every pipeline the model uses (decode and prefill, greedy and logits heads) and
    /// makes every bind group, by recording a step of each shape and preparing it unsubmitted:
    /// nothing runs on the GPU, and no request pays compile time or creates a GPU object. Sets
    /// [`compile_s`](Self::compile_s).
    async fn compile(&mut self, gpu: &Gpu) -> Result<(), ModelError> {
        let t0 = super::generate::now_s();
        let all = [Want::Argmax, Want::Logits, Want::ArgmaxMasked];
        let r = self.prepare(gpu, &all, true).await;
        self.compile_s = super::generate::now_s() - t0;
        r
    }

    /// Records, and prepares unsubmitted, a decode step at the start of the context, one at its
    /// end (the decode attention's split pass) and, with `prefill`, a prefill step, each with
    /// the heads `wants`.
    async fn prepare(
        &mut self,
        gpu: &Gpu,
        wants: &[Want],
        prefill: bool,
    ) -> Result<(), ModelError> {
        let last = self.cache.shape().ctx.saturating_sub(1);
        let mut shapes = vec![(1, 0), (1, last)];
        if prefill {
            // Every few-column pipeline (short prompts, verify passes; where the adapter runs
            // them) and, past them, the prefill kernel.
            let few = matmul::FEW_COLS
                .into_iter()
                .filter(|&n| matmul::uses_few_cols(gpu, n));
            let sizes = few.chain([matmul::MAX_FEW_COLS + 1]);
            shapes.extend(
                sizes
                    .filter(|&n| n <= self.cache.shape().ctx)
                    .map(|n| (n, 0)),
            );
        }
        let mut steps = Vec::new();
        let mut r = Ok(());
        for (n, pos0) in shapes {
            // The cache must look filled up to pos0; recording marks what the step stores.
            for layer in 0..self.cfg.n_layer {
                self.cache.mark_stored(layer, pos0);
            }
            let mut enc = Encoder::new(gpu);
            r = self.encode_step(gpu, &mut enc, n, pos0).await;
            for &want in wants {
                if r.is_ok() {
                    r = self.encode_head(gpu, &mut enc, n, want).await;
                }
            }
            if r.is_ok() && n > 1 && n as usize <= MAX_VERIFY {
                r = self.encode_verify_head(gpu, &mut enc, n).await;
            }
            self.reset();
            if r.is_err() {
                break;
            }
            steps.push(enc);
        }
        // The largest parameter arena first, so that it is not regrown (and the bind groups
        // made before dropped) by a later one.
        steps.sort_by_key(|e| std::cmp::Reverse(e.arena_len()));
        for enc in steps {
            enc.prepare();
        }
        r
    }

    /// Decode precision from the next step on; `fast` compiles its kernels now.
    pub async fn set_precision(&mut self, gpu: &Gpu, p: Precision) -> Result<(), ModelError> {
        let before = self.precision;
        self.precision = p;
        if p != before {
            let t0 = super::generate::now_s();
            let r = self
                .prepare(gpu, &[Want::Argmax, Want::Logits], false)
                .await;
            self.compile_s += super::generate::now_s() - t0;
            if let Err(e) = r {
                self.precision = before;
                return Err(e);
            }
        }
        Ok(())
    }

    /// The decode precision.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The tokens the next `Want::ArgmaxMasked` step may pick: bit `id % 32` of word `id / 32`.
    pub fn set_token_mask(&self, gpu: &Gpu, mask: &[u32]) -> Result<(), ModelError> {
        let words = self.cfg.n_vocab.div_ceil(32) as usize;
        if mask.len() != words {
            return Err(ModelError::Tensor {
                tensor: "token mask".into(),
                message: format!("{} words given, the vocabulary needs {words}", mask.len()),
            });
        }
        gpu.queue
            .write_buffer(&self.act.mask, 0, bytemuck::cast_slice(mask));
        Ok(())
    }

    /// Positions filled in the KV cache.
    pub fn pos(&self) -> u32 {
        self.cache.stored(0)
    }

    /// The tokens processed so far (their keys and values are cached).
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// Forgets the conversation.
    pub fn reset(&mut self) {
        self.cache.clear();
        self.tokens.clear();
    }

    /// Forgets every position from `n` on, keeping the first `n` tokens' cache.
    pub fn truncate(&mut self, n: usize) {
        if n < self.tokens.len() {
            self.tokens.truncate(n);
            self.cache.truncate(n as u32);
        }
    }

    /// Refuses token ids outside the vocabulary and more tokens than the context has left.
    fn check_tokens(&self, tokens: &[u32]) -> Result<(), ModelError> {
        if let Some(&id) = tokens.iter().find(|&&t| t >= self.cfg.n_vocab) {
            return Err(ModelError::BadToken {
                id,
                n_vocab: self.cfg.n_vocab,
            });
        }
        let needed = u64::from(self.pos()) + tokens.len() as u64;
        if needed > u64::from(self.cache.shape().ctx) {
            return Err(ModelError::ContextFull {
                needed,
                ctx: self.cache.shape().ctx,
            });
        }
        Ok(())
    }

    /// Runs `tokens` through the model after the positions already cached and returns the
    /// greedy token or the logits after the last one.
    pub async fn forward(
        &mut self,
        gpu: &Gpu,
        tokens: &[u32],
        want: Want,
    ) -> Result<Output, ModelError> {
        if tokens.is_empty() {
            return Err(ModelError::Tensor {
                tensor: "input".into(),
                message: "no tokens to process".into(),
            });
        }
        self.check_tokens(tokens)?;
        let chunks: Vec<&[u32]> = tokens.chunks(MAX_BATCH as usize).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let pos0 = self.pos();
            let t0 = super::generate::now_s();
            gpu.queue
                .write_buffer(&self.act.ids, 0, bytemuck::cast_slice(chunk));
            let mut enc = Encoder::new(gpu);
            self.encode_step(gpu, &mut enc, chunk.len() as u32, pos0)
                .await?;
            if i + 1 == chunks.len() {
                self.encode_head(gpu, &mut enc, chunk.len() as u32, want)
                    .await?;
                let (src, dst) = match want {
                    Want::Argmax | Want::ArgmaxMasked => (&self.act.best, &self.act.best_read),
                    Want::Logits => (&self.act.logits, &self.act.logits_read),
                };
                enc.copy_buffer_to_buffer(src, 0, dst, 0, dst.size());
            }
            enc.submit();
            self.host_s = super::generate::now_s() - t0;
            self.tokens.extend_from_slice(chunk);
        }
        let out = match want {
            Want::Argmax | Want::ArgmaxMasked => {
                let b = gpu.read_mapped(&self.act.best_read, 8).await?;
                Output::Token(argmax::decode_argmax(&b).0)
            }
            Want::Logits => {
                let b = gpu
                    .read_mapped(&self.act.logits_read, self.act.logits_read.size())
                    .await?;
                Output::Logits(bytemuck::pod_collect_to_vec(&b))
            }
        };
        gpu.check("forward")?;
        Ok(out)
    }

    /// Runs `tokens` (the last accepted token, then drafts) after the cached positions in one
    /// pass and returns the greedy token after each of them: entry i is what the model picks for
    /// the position after `tokens[i]`. The cache then holds all of `tokens`; a rejected tail is
    /// rolled back with [`truncate`](Self::truncate).
    ///
    /// The layers run as a prefill does and the head as one matmul over every position (each
    /// weight read once for all the tokens: up to `matmul::MAX_FEW_COLS` tokens by the row
    /// family's few-column kernel), then the argmax of each position on the GPU; 8 bytes per
    /// position come back.
    pub async fn forward_verify(
        &mut self,
        gpu: &Gpu,
        tokens: &[u32],
    ) -> Result<Vec<u32>, ModelError> {
        match self.verify(gpu, tokens, false).await? {
            Verified::Ids(ids) => Ok(ids),
            Verified::Logits(_) => unreachable!("ids were asked for"),
        }
    }

    /// [`forward_verify`](Self::forward_verify) that returns every position's logits
    /// (`tokens.len()` rows of n_vocab, soft-capped where the model caps them) instead of the
    /// greedy ids: for sampling, log-probabilities and structured output under drafting.
    pub async fn forward_verify_logits(
        &mut self,
        gpu: &Gpu,
        tokens: &[u32],
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        match self.verify(gpu, tokens, true).await? {
            Verified::Logits(l) => Ok(l),
            Verified::Ids(_) => unreachable!("logits were asked for"),
        }
    }

    async fn verify(
        &mut self,
        gpu: &Gpu,
        tokens: &[u32],
        logits: bool,
    ) -> Result<Verified, ModelError> {
        if tokens.is_empty() || tokens.len() > MAX_VERIFY {
            return Err(ModelError::Tensor {
                tensor: "verify input".into(),
                message: format!(
                    "{} tokens given; a verify pass takes 1 to {MAX_VERIFY}",
                    tokens.len()
                ),
            });
        }
        self.check_tokens(tokens)?;
        let n = tokens.len() as u32;
        let pos0 = self.pos();
        let t0 = super::generate::now_s();
        let row_bytes = u64::from(self.cfg.n_vocab) * 4;
        if logits && self.verify_logits_read.is_none() {
            self.verify_logits_read =
                Some(gpu.readback_buffer("verify logits readback", MAX_VERIFY as u64 * row_bytes));
        }
        gpu.queue
            .write_buffer(&self.act.ids, 0, bytemuck::cast_slice(tokens));
        let mut enc = Encoder::new(gpu);
        self.encode_step(gpu, &mut enc, n, pos0).await?;
        self.encode_verify_head(gpu, &mut enc, n).await?;
        let bytes = u64::from(n) * row_bytes;
        if let (true, Some(read)) = (logits, &self.verify_logits_read) {
            enc.copy_buffer_to_buffer(&self.act.verify_logits, 0, read, 0, bytes);
        }
        enc.submit();
        let one = argmax::ARGMAX_OUT_BYTES;
        self.host_s = super::generate::now_s() - t0;
        self.tokens.extend_from_slice(tokens);
        let out = match (logits, &self.verify_logits_read) {
            (true, Some(read)) => {
                let b = gpu.read_mapped(read, bytes).await?;
                let all: Vec<f32> = bytemuck::pod_collect_to_vec(&b);
                Verified::Logits(
                    all.chunks_exact(self.cfg.n_vocab as usize)
                        .map(<[f32]>::to_vec)
                        .collect(),
                )
            }
            _ => {
                let b = gpu
                    .read_mapped(&self.act.verify_read, u64::from(n) * one)
                    .await?;
                Verified::Ids(
                    b.chunks_exact(one as usize)
                        .map(|c| argmax::decode_argmax(c).0)
                        .collect(),
                )
            }
        };
        gpu.check("verify")?;
        Ok(out)
    }

    /// A verify pass's head: every position's logits in one pass over the head (the few-column
    /// kernel reads each block once for all of them), soft-capped (Gemma 2), then each
    /// position's argmax into `verify_read`.
    async fn encode_verify_head(
        &self,
        gpu: &Gpu,
        enc: &mut Encoder<'_>,
        n: u32,
    ) -> Result<(), ModelError> {
        let (c, a) = (&self.cfg, &self.act);
        matmul::encode(gpu, enc, self.weights.head(), &a.h, &a.verify_logits, n).await?;
        if c.final_softcap > 0.0 {
            let l = &a.verify_logits;
            act::encode_softcap(gpu, enc, l, l, n, c.n_vocab, c.final_softcap).await?;
        }
        let (one, row_bytes) = (argmax::ARGMAX_OUT_BYTES, u64::from(c.n_vocab) * 4);
        for row in 0..u64::from(n) {
            enc.copy_buffer_to_buffer(&a.verify_logits, row * row_bytes, &a.logits, 0, row_bytes);
            argmax::encode_argmax(gpu, enc, &a.logits, c.n_vocab, &a.best).await?;
            enc.copy_buffer_to_buffer(&a.best, 0, &a.verify_read, row * one, one);
        }
        Ok(())
    }

    /// y (n, rows) = W · x (n, cols): matvec for one token, matmul for several.
    async fn linear(
        gpu: &Gpu,
        enc: &mut Encoder<'_>,
        w: &GpuWeight,
        x: Input<'_>,
        y: &wgpu::Buffer,
        n: u32,
    ) -> Result<(), GpuError> {
        if n == 1 {
            matvec::encode_input(gpu, enc, w, x, y).await
        } else {
            matmul::encode(gpu, enc, w, x.f32(), y, n).await
        }
    }

    /// Where x is quantized to 8 bits for the weights `ws` (one token at `fast` precision, when
    /// any of them has an integer kernel), or `None`.
    fn x8_for(&self, ws: &[&GpuWeight], n: u32) -> Option<&X8> {
        let fast = n == 1 && self.precision == Precision::Fast;
        (fast && ws.iter().any(|w| w.ty.has_x8_kernel())).then_some(&self.act.x8)
    }

    /// `x` as the weights `ws` read it: quantized to 8 bits here when [`x8_for`](Self::x8_for)
    /// says so, once for all of them.
    async fn input<'a>(
        &'a self,
        gpu: &Gpu,
        enc: &mut Encoder<'_>,
        x: &'a wgpu::Buffer,
        ws: &[&GpuWeight],
        n: u32,
    ) -> Result<Input<'a>, GpuError> {
        match self.x8_for(ws, n) {
            Some(q) => {
                matvec::encode_quantize_x8(gpu, enc, x, ws[0].row_len, q).await?;
                Ok(Input::X8 { x, q })
            }
            None => Ok(Input::F32(x)),
        }
    }

    /// `x` as the weights `ws` read it when the step that wrote `x` also quantized it (a
    /// residual step given [`x8_for`](Self::x8_for)`(ws, n)`).
    fn quantized<'a>(&'a self, x: &'a wgpu::Buffer, ws: &[&GpuWeight], n: u32) -> Input<'a> {
        match self.x8_for(ws, n) {
            Some(q) => Input::X8 { x, q },
            None => Input::F32(x),
        }
    }

    /// Every layer for `n` tokens at positions `pos0..`, leaving the residual stream in `x`.
    async fn encode_step(
        &self,
        gpu: &Gpu,
        enc: &mut Encoder<'_>,
        n: u32,
        pos0: u32,
    ) -> Result<(), ModelError> {
        let c = &self.cfg;
        let a = &self.act;
        let w = &self.weights;
        let (e, hd, nh, nkv) = (c.n_embd, c.head_dim, c.n_head, c.n_head_kv);
        let gemma = c.arch.is_gemma();

        // x: (n, e) = token_embd[ids] · embd_scale
        if c.embd_scale != 1.0 {
            embed::encode_get_rows(gpu, enc, &w.token_embd, &a.ids, n, &a.h).await?;
            act::encode_scale(gpu, enc, &a.h, &a.x, n, e, c.embd_scale).await?;
        } else {
            embed::encode_get_rows(gpu, enc, &w.token_embd, &a.ids, n, &a.x).await?;
        }
        // h = rms_norm(x) · attn_norm of layer 0; every later pre-norm comes out of the residual
        // step before it.
        if let Some(l0) = w.layers.first() {
            norm::encode_rms_norm(gpu, enc, &a.x, Some(&l0.attn_norm), &a.h, n, e, c.eps).await?;
        }
        for (il, l) in w.layers.iter().enumerate() {
            let il32 = il as u32;
            // q: (n, nh, hd), k, v: (n, nkv, hd)
            // (Quantized for `fast` by the residual step before, except in the first layer.)
            let qkv_ws = l.qkv.weights();
            let h = if il == 0 {
                self.input(gpu, enc, &a.h, &qkv_ws, n).await?
            } else {
                self.quantized(&a.h, &qkv_ws, n)
            };
            match &l.qkv {
                // One token: q, k and v in one dispatch; several: a matmul per row range.
                Qkv::Fused { w, rows } => {
                    let ys = [&a.q, &a.k, &a.v];
                    if n > 1 || !matvec::encode_split(gpu, enc, w, h, ys, *rows).await? {
                        let mut first = 0;
                        for (y, r) in ys.into_iter().zip(*rows) {
                            matmul::encode_rows(gpu, enc, w, (first, r), h.f32(), y, n).await?;
                            first += r;
                        }
                    }
                }
                Qkv::Split { q, k, v } => {
                    Self::linear(gpu, enc, q, h, &a.q, n).await?;
                    Self::linear(gpu, enc, k, h, &a.k, n).await?;
                    Self::linear(gpu, enc, v, h, &a.v, n).await?;
                }
            }
            let [bq, bk, bv] = &a.biases[il];
            for (b, t, dim) in [
                (bq, &a.q, nh * hd),
                (bk, &a.k, nkv * hd),
                (bv, &a.v, nkv * hd),
            ] {
                if let Some(b) = b {
                    act::encode_add_bias(gpu, enc, t, b, t, n, dim).await?;
                }
            }
            // Per head, in place: QK-norm (Qwen 3, Gemma 3), then RoPE (partial, scaled, with
            // frequency factors, as the config says), q and k in one dispatch, ...
            let qk_norm = match (&l.q_norm, &l.k_norm) {
                (Some(q), Some(k)) => Some(QkNorm { q, k, eps: c.eps }),
                _ => None,
            };
            let local = c.is_local(il32);
            let r = if local {
                &self.rope_local
            } else {
                &self.rope_global
            };
            // ... and k and v stored in the cache at positions pos0.. by the same dispatch.
            let store = KvStore {
                cache: &self.cache,
                layer: il32,
                v: &a.v,
            };
            let (qn, st) = (qk_norm.as_ref(), Some(&store));
            encode_qk_rope(gpu, enc, &a.q, &a.k, qn, st, n, nh, nkv, pos0, r).await?;
            // o: (n, nh, hd) = softmax(softcap(q·kᵀ·scale), causal, window) · v over the cache
            let ac = AttnConfig {
                n_heads: nh,
                window: if local { c.window } else { 0 },
                scale: c.attn_scale,
                softcap: c.attn_softcap,
            };
            // (and o quantized for the output projection at `fast`, where attention can)
            let o_x8 = self.x8_for(&[&l.wo], n);
            let (cache, q) = (&self.cache, &a.q);
            let quantized =
                attention::attend_stored(gpu, enc, cache, il32, q, &a.o, pos0, n, &ac, o_x8)
                    .await?;
            // h: (n, e) = wo · o; x += post_attn_norm(h) (Gemma 2, 3) or h; h = rms_norm(x) · ffn_norm
            let o = if quantized {
                self.quantized(&a.o, &[&l.wo], n)
            } else {
                self.input(gpu, enc, &a.o, &[&l.wo], n).await?
            };
            Self::linear(gpu, enc, &l.wo, o, &a.h, n).await?;
            // (and h quantized for the feed-forward at `fast`)
            let (post, ffn_ws) = (l.post_attn_norm.as_ref(), l.gate_up.weights());
            let q8 = self.x8_for(&ffn_ws, n);
            norm::encode_residual_norm(gpu, enc, &a.x, &a.h, post, &l.ffn_norm, q8, n, e, c.eps)
                .await?;
            let h = self.quantized(&a.h, &ffn_ws, n);
            // Feed-forward: g, u: (n, n_ff); g = act(g) · u; h = w_down · g
            match &l.gate_up {
                // gu: (n, 2·n_ff), gate then up per token
                GateUp::Fused(w_gu) => {
                    // One token: projections and gated unit in one dispatch where the weight
                    // fits one binding.
                    if n > 1 || !matvec::encode_glu(gpu, enc, w_gu, h, &a.g, gemma).await? {
                        Self::linear(gpu, enc, w_gu, h, &a.gu, n).await?;
                        act::encode_glu_halves(gpu, enc, &a.gu, &a.g, n, c.n_ff, gemma).await?;
                    }
                }
                GateUp::Split { gate, up } => {
                    Self::linear(gpu, enc, gate, h, &a.g, n).await?;
                    Self::linear(gpu, enc, up, h, &a.u, n).await?;
                    if gemma {
                        act::encode_geglu(gpu, enc, &a.g, &a.u, &a.g, n, c.n_ff).await?;
                    } else {
                        act::encode_swiglu(gpu, enc, &a.g, &a.u, &a.g, n, c.n_ff).await?;
                    }
                }
            }
            let g = self.input(gpu, enc, &a.g, &[&l.w_down], n).await?;
            Self::linear(gpu, enc, &l.w_down, g, &a.h, n).await?;
            // x += post_ffw_norm(h) or h; h = rms_norm(x) · the next layer's attn_norm (after
            // the last layer: output_norm, the head's input)
            // (h quantized at `fast` for the next layer's q/k/v or the head)
            let (next, next_ws) = match w.layers.get(il + 1) {
                Some(l) => (&l.attn_norm, l.qkv.weights()),
                None => (&w.output_norm, vec![w.head()]),
            };
            let (post, q8) = (l.post_ffn_norm.as_ref(), self.x8_for(&next_ws, n));
            norm::encode_residual_norm(gpu, enc, &a.x, &a.h, post, next, q8, n, e, c.eps).await?;
        }
        Ok(())
    }

    /// The last token's logits (n_vocab) = output · h[n-1] (h = rms_norm(x) · output_norm from
    /// the last residual step), soft-capped (Gemma 2), and their argmax.
    async fn encode_head(
        &self,
        gpu: &Gpu,
        enc: &mut Encoder<'_>,
        n: u32,
        want: Want,
    ) -> Result<(), ModelError> {
        let (c, a, w) = (&self.cfg, &self.act, &self.weights);
        // h holds rms_norm(x) · output_norm for every token (the last residual step). One
        // token (decode): it is the last row, so no copy splits the step's compute pass.
        let last = if n == 1 {
            &a.h
        } else {
            let row = u64::from(c.n_embd) * 4;
            enc.copy_buffer_to_buffer(&a.h, u64::from(n - 1) * row, &a.last, 0, row);
            &a.last
        };
        let out = w.head();
        // One token: the last residual step quantized h for `fast`.
        let x = if n == 1 {
            self.quantized(last, &[out], 1)
        } else {
            self.input(gpu, enc, last, &[out], 1).await?
        };
        matvec::encode_input(gpu, enc, out, x, &a.logits).await?;
        // Gemma 2: logits = c·tanh(logits / c).
        if c.final_softcap > 0.0 {
            act::encode_softcap(
                gpu,
                enc,
                &a.logits,
                &a.logits,
                1,
                c.n_vocab,
                c.final_softcap,
            )
            .await?;
        }
        match want {
            Want::Argmax => argmax::encode_argmax(gpu, enc, &a.logits, c.n_vocab, &a.best).await?,
            Want::ArgmaxMasked => {
                let m = Some(&a.mask);
                argmax::encode_argmax_masked(gpu, enc, &a.logits, c.n_vocab, m, &a.best).await?
            }
            Want::Logits => {}
        }
        Ok(())
    }
}
