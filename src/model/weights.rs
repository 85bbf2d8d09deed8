//! The model's weights on the GPU: matrices in their GGUF block format, vectors (norms, biases)
//! as f32. Every tensor's shape is checked against the configuration, with an error naming it.

use std::sync::Arc;

use super::config::{Config, RopeFactors};
use super::ModelError;
use crate::gguf::{Gguf, TensorInfo};
use crate::gpu::{Gpu, GpuWeight, WeightWriter};
use crate::quant::{self, GgmlType};

/// Where tensor bytes come from: a memory map natively, IndexedDB records in the browser.
/// Tensors are read in file order, so a source that holds one record at a time never re-reads.
#[allow(async_fn_in_trait)] // Used single-threaded (wasm) or blocked on (native): no Send bound.
pub trait TensorSource {
    /// The parsed header.
    fn gguf(&self) -> &Gguf;
    /// Hands the raw bytes of tensor `t` to `sink` in order, in one or more pieces, so that no
    /// whole tensor needs to sit in memory.
    async fn read_tensor(
        &self,
        t: &TensorInfo,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), ModelError>,
    ) -> Result<(), ModelError>;
}

#[cfg(not(target_arch = "wasm32"))]
impl TensorSource for crate::gguf::GgufFile {
    fn gguf(&self) -> &Gguf {
        crate::gguf::GgufFile::gguf(self)
    }
    async fn read_tensor(
        &self,
        t: &TensorInfo,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), ModelError>,
    ) -> Result<(), ModelError> {
        sink(self.tensor_data(t)?)
    }
}

/// One transformer block's weights. Shapes are (rows, row length), i.e. (out, in).
pub struct LayerWeights {
    /// attn_norm: (n_embd)
    pub attn_norm: wgpu::Buffer,
    /// wq: (n_head·head_dim, n_embd), wk and wv: (n_head_kv·head_dim, n_embd).
    pub qkv: Qkv,
    /// q/k/v biases (Qwen 2, optional elsewhere), kept on the CPU: the forward pass uploads them repeated per token.
    /// (n_head·head_dim), (n_head_kv·head_dim)
    pub bq: Option<Vec<f32>>,
    pub bk: Option<Vec<f32>>,
    pub bv: Option<Vec<f32>>,
    /// QK-norm weights (Qwen 3, Gemma 3): (head_dim)
    pub q_norm: Option<wgpu::Buffer>,
    pub k_norm: Option<wgpu::Buffer>,
    /// wo: (n_embd, n_head·head_dim)
    pub wo: GpuWeight,
    /// post_attention_norm (Gemma 2, 3): (n_embd)
    pub post_attn_norm: Option<wgpu::Buffer>,
    /// ffn_norm: (n_embd)
    pub ffn_norm: wgpu::Buffer,
    /// The gate and up projections (each (n_ff, n_embd)).
    pub gate_up: GateUp,
    /// w_down: (n_embd, n_ff)
    pub w_down: GpuWeight,
    /// post_ffw_norm (Gemma 2, 3): (n_embd)
    pub post_ffn_norm: Option<wgpu::Buffer>,
}

/// The attention input projections of a layer.
pub enum Qkv {
    /// One weight of q rows, then k rows, then v rows (`rows` of each): Phi-3's `attn_qkv` as
    /// stored, or q, k and v of one block type concatenated at load, when together they fit one
    /// binding. Decode runs it as one matvec with three outputs, prefill as three matmuls over
    /// its row ranges.
    Fused { w: GpuWeight, rows: [u32; 3] },
    /// Separate weights: different block types, or too large for one binding together.
    Split {
        q: GpuWeight,
        k: GpuWeight,
        v: GpuWeight,
    },
}

impl Qkv {
    /// The weights (one, or three).
    pub fn weights(&self) -> Vec<&GpuWeight> {
        match self {
            Qkv::Fused { w, .. } => vec![w],
            Qkv::Split { q, k, v } => vec![q, k, v],
        }
    }
}

/// The feed-forward input projections of a layer.
pub enum GateUp {
    /// One (2·n_ff, n_embd) weight, gate rows then up rows: Phi-3's `ffn_up` as stored, or
    /// `ffn_gate` and `ffn_up` of one block type concatenated at load, so that one matvec (or
    /// matmul) computes both.
    Fused(GpuWeight),
    /// Separate weights of different block types.
    Split { gate: GpuWeight, up: GpuWeight },
}

impl GateUp {
    /// The weights, in order.
    pub fn weights(&self) -> Vec<&GpuWeight> {
        match self {
            GateUp::Fused(w) => vec![w],
            GateUp::Split { gate, up } => vec![gate, up],
        }
    }

    fn bytes(&self) -> u64 {
        let m = |w: &GpuWeight| w.row_bytes * u64::from(w.rows);
        match self {
            GateUp::Fused(w) => m(w),
            GateUp::Split { gate, up } => m(gate) + m(up),
        }
    }
}

/// All weights of a model.
pub struct Weights {
    /// token_embd: (n_vocab, n_embd)
    pub token_embd: GpuWeight,
    pub layers: Vec<LayerWeights>,
    /// output_norm: (n_embd)
    pub output_norm: wgpu::Buffer,
    /// output: (n_vocab, n_embd); `None` when tied to `token_embd`.
    pub output: Option<GpuWeight>,
    /// RoPE frequency factors (n_rot / 2): `rope_freqs.weight`, or LongRoPE's short factors.
    pub rope_factors: Option<Arc<[f32]>>,
    /// LongRoPE's long factors (n_rot / 2), for contexts past the original one.
    pub rope_factors_long: Option<Arc<[f32]>>,
    /// Bytes of weights uploaded.
    pub bytes: u64,
}

struct Loader<'a, S: TensorSource> {
    gpu: &'a Gpu,
    src: &'a S,
    done: u64,
    total: u64,
    progress: &'a mut dyn FnMut(u64, u64),
}

impl<S: TensorSource> Loader<'_, S> {
    fn info(&self, name: &str) -> Result<TensorInfo, ModelError> {
        self.src
            .gguf()
            .tensor(name)
            .cloned()
            .ok_or_else(|| ModelError::MissingTensor(name.to_string()))
    }

    fn advance(&mut self, bytes: u64) {
        self.done += bytes;
        (self.progress)(self.done, self.total);
    }

    /// The tensor `name`, checked to be a matrix of `rows` rows of `cols` values.
    fn matrix_info(&self, name: &str, rows: u32, cols: u32) -> Result<TensorInfo, ModelError> {
        let t = self.info(name)?;
        if t.dims.len() != 2 || t.row_len() != u64::from(cols) || t.rows() != u64::from(rows) {
            return Err(ModelError::Shape {
                tensor: name.to_string(),
                expected: format!("[{cols}, {rows}]"),
                got: format!("{:?}", t.dims),
            });
        }
        Ok(t)
    }

    /// A matrix of `rows` rows of `cols` values, kept in its block format.
    async fn matrix(&mut self, name: &str, rows: u32, cols: u32) -> Result<GpuWeight, ModelError> {
        let t = self.matrix_info(name, rows, cols)?;
        let w = GpuWeight::allocate(self.gpu, name, t.ty, t.row_len(), t.rows())?;
        let mut writer = WeightWriter::new(&w);
        let gpu = self.gpu;
        self.src
            .read_tensor(&t, &mut |piece| Ok(writer.push(gpu, piece)?))
            .await?;
        writer.finish(gpu)?;
        self.advance(t.n_bytes);
        Ok(w)
    }

    /// A fused matrix of `parts.iter().sum()` rows of `cols` values, split by rows into one
    /// weight per part in order (Phi-3's `attn_qkv` and gate+up `ffn_up`). Rows are whole
    /// blocks, so the split is a byte split; the tensor is read once.
    async fn split_matrix(
        &mut self,
        name: &str,
        parts: &[(&str, u32)],
        cols: u32,
    ) -> Result<Vec<GpuWeight>, ModelError> {
        let t = self.info(name)?;
        let rows: u64 = parts.iter().map(|&(_, r)| u64::from(r)).sum();
        if t.dims.len() != 2 || t.row_len() != u64::from(cols) || t.rows() != rows {
            return Err(ModelError::Shape {
                tensor: name.to_string(),
                expected: format!("[{cols}, {rows}]"),
                got: format!("{:?}", t.dims),
            });
        }
        let mut ws = Vec::with_capacity(parts.len());
        for &(part, r) in parts {
            let w = GpuWeight::allocate(
                self.gpu,
                &format!("{name} ({part})"),
                t.ty,
                t.row_len(),
                u64::from(r),
            )?;
            ws.push(w);
        }
        let sizes: Vec<u64> = ws.iter().map(|w| w.row_bytes * u64::from(w.rows)).collect();
        let gpu = self.gpu;
        {
            let mut writers: Vec<WeightWriter> = ws.iter().map(WeightWriter::new).collect();
            let (mut part, mut left) = (0usize, sizes[0]);
            self.src
                .read_tensor(&t, &mut |mut piece| {
                    while !piece.is_empty() {
                        while left == 0 {
                            part += 1;
                            left = *sizes.get(part).ok_or_else(|| ModelError::Tensor {
                                tensor: name.to_string(),
                                message: "more bytes than its shape holds".into(),
                            })?;
                        }
                        let n = piece.len().min(left as usize);
                        writers[part].push(gpu, &piece[..n])?;
                        left -= n as u64;
                        piece = &piece[n..];
                    }
                    Ok(())
                })
                .await?;
            for w in writers {
                w.finish(gpu)?;
            }
        }
        self.advance(t.n_bytes);
        Ok(ws)
    }

    /// Whether `rows` rows of `cols` values of block type `ty` fit one binding (a fused weight
    /// that runs in one dispatch).
    fn fits_one_binding(
        &self,
        name: &str,
        ty: GgmlType,
        cols: u32,
        rows: u32,
    ) -> Result<bool, ModelError> {
        let Some(row_bytes) = crate::quant::row_bytes(ty, u64::from(cols)) else {
            return Ok(false);
        };
        Ok(GpuWeight::rows_per_chunk(self.gpu, name, row_bytes, 0)? >= u64::from(rows))
    }

    /// The block type that matrices `names` can share: their own when they agree, else Q8_0
    /// when each is Q8_0 or widens to it without changing a value (Q4_0, Q5_0).
    fn common_type(&self, names: &[&str]) -> Result<Option<GgmlType>, ModelError> {
        let mut tys = Vec::with_capacity(names.len());
        for n in names {
            tys.push(self.info(n)?.ty);
        }
        if tys.iter().all(|&t| t == tys[0]) {
            return Ok(Some(tys[0]));
        }
        let q8 = GgmlType::Q8_0;
        Ok(tys.iter().all(|&t| quant::widens_to(t, q8)).then_some(q8))
    }

    /// Matrices, each `(name, rows)` of `cols` values, concatenated by rows into one weight of
    /// block type `ty` as they stream in (gate and up, or q, k and v, as one projection). A part
    /// of another type is widened to `ty` on the way, every value unchanged
    /// ([`quant::widen`](crate::quant::widen)).
    async fn concat_matrix(
        &mut self,
        parts: &[(&str, u32)],
        cols: u32,
        ty: GgmlType,
    ) -> Result<GpuWeight, ModelError> {
        let mut infos = Vec::with_capacity(parts.len());
        for &(name, rows) in parts {
            infos.push(self.matrix_info(name, rows, cols)?);
        }
        let total: u64 = parts.iter().map(|p| u64::from(p.1)).sum();
        let names: Vec<&str> = parts.iter().map(|p| p.0).collect();
        let w = GpuWeight::allocate(self.gpu, &names.join("+"), ty, u64::from(cols), total)?;
        let mut writer = WeightWriter::new(&w);
        let gpu = self.gpu;
        for t in &infos {
            if t.ty == ty {
                self.src
                    .read_tensor(t, &mut |piece| Ok(writer.push(gpu, piece)?))
                    .await?;
            } else {
                // Whole blocks are widened; a block split between pieces waits in `carry`.
                let (mut carry, mut wide) = (Vec::new(), Vec::new());
                let bad = |e: quant::QuantError| ModelError::Tensor {
                    tensor: t.name.clone(),
                    message: e.to_string(),
                };
                self.src
                    .read_tensor(t, &mut |piece| {
                        carry.extend_from_slice(piece);
                        wide.clear();
                        let used = quant::widen(t.ty, ty, &carry, &mut wide).map_err(bad)?;
                        carry.drain(..used);
                        Ok(writer.push(gpu, &wide)?)
                    })
                    .await?;
                if !carry.is_empty() {
                    return Err(ModelError::Tensor {
                        tensor: t.name.clone(),
                        message: format!("{} bytes after its last whole block", carry.len()),
                    });
                }
            }
            // A device lost during this part stops the load here, not parts later.
            gpu.check_now(&format!("uploading '{}'", t.name))?;
            self.advance(t.n_bytes);
        }
        writer.finish(gpu)?;
        Ok(w)
    }

    /// A vector of `n` values, dequantized to f32 on the CPU (norms and biases are small).
    async fn vector(&mut self, name: &str, n: u32) -> Result<wgpu::Buffer, ModelError> {
        let v = self.host_vector(name, n).await?;
        Ok(self.gpu.storage_from(name, &v))
    }

    /// A vector of `n` values as f32 on the CPU.
    async fn host_vector(&mut self, name: &str, n: u32) -> Result<Vec<f32>, ModelError> {
        let t = self.info(name)?;
        if t.n_elements != u64::from(n) {
            return Err(ModelError::Shape {
                tensor: name.to_string(),
                expected: format!("[{n}]"),
                got: format!("{:?}", t.dims),
            });
        }
        let mut data = Vec::with_capacity(t.n_bytes as usize);
        self.src
            .read_tensor(&t, &mut |piece| {
                data.extend_from_slice(piece);
                Ok(())
            })
            .await?;
        let v = quant::dequantize_vec(t.ty, &data, n as usize).map_err(|e| ModelError::Tensor {
            tensor: name.to_string(),
            message: e.to_string(),
        })?;
        self.advance(t.n_bytes);
        Ok(v)
    }

    async fn optional_host_vector(
        &mut self,
        name: &str,
        n: u32,
    ) -> Result<Option<Vec<f32>>, ModelError> {
        if self.src.gguf().tensor(name).is_none() {
            return Ok(None);
        }
        self.host_vector(name, n).await.map(Some)
    }
}

impl Weights {
    /// The output projection: `output`, or the tied `token_embd`.
    pub fn head(&self) -> &GpuWeight {
        self.output.as_ref().unwrap_or(&self.token_embd)
    }

    /// Weight bytes one decoded token reads: every layer matrix, the output matrix (the
    /// embedding when tied) and one embedding row. Norm vectors (f32, a few KiB) are left out.
    pub fn decode_bytes(&self) -> u64 {
        let m = |w: &GpuWeight| w.row_bytes * u64::from(w.rows);
        let layers: u64 = self
            .layers
            .iter()
            .map(|l| {
                l.qkv
                    .weights()
                    .into_iter()
                    .chain([&l.wo, &l.w_down])
                    .map(m)
                    .sum::<u64>()
                    + l.gate_up.bytes()
            })
            .sum();
        layers + m(self.output.as_ref().unwrap_or(&self.token_embd)) + self.token_embd.row_bytes
    }

    /// Uploads every weight `cfg` needs from `src`, calling `progress(bytes_done, bytes_total)`.
    pub async fn load<S: TensorSource>(
        gpu: &Gpu,
        cfg: &Config,
        src: &S,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Weights, ModelError> {
        let total = src.gguf().tensors.iter().map(|t| t.n_bytes).sum();
        let mut l = Loader {
            gpu,
            src,
            done: 0,
            total,
            progress,
        };
        let (e, q, kv, ff) = (
            cfg.n_embd,
            cfg.n_head * cfg.head_dim,
            cfg.n_head_kv * cfg.head_dim,
            cfg.n_ff,
        );
        let token_embd = l.matrix("token_embd.weight", cfg.n_vocab, e).await?;
        let qk_norm = cfg.arch.has_qk_norm();
        let gemma = cfg.arch.is_gemma();
        let mut layers = Vec::with_capacity(cfg.n_layer as usize);
        for il in 0..cfg.n_layer {
            let n = |s: &str| format!("blk.{il}.{s}");
            let attn_norm = l.vector(&n("attn_norm.weight"), e).await?;
            let rows = [q, kv, kv];
            let qkv = if cfg.fused_qkv {
                let name = n("attn_qkv.weight");
                if l.fits_one_binding(&name, l.info(&name)?.ty, e, q + 2 * kv)? {
                    Qkv::Fused {
                        w: l.matrix(&name, q + 2 * kv, e).await?,
                        rows,
                    }
                } else {
                    let parts = [("q", q), ("k", kv), ("v", kv)];
                    let mut w = l.split_matrix(&name, &parts, e).await?.into_iter();
                    match (w.next(), w.next(), w.next()) {
                        (Some(q), Some(k), Some(v)) => Qkv::Split { q, k, v },
                        _ => unreachable!("split_matrix returns one weight per part"),
                    }
                }
            } else {
                let names = [n("attn_q.weight"), n("attn_k.weight"), n("attn_v.weight")];
                let refs = [names[0].as_str(), &names[1], &names[2]];
                let ty = l.common_type(&refs)?;
                let fits = match ty {
                    Some(ty) => l.fits_one_binding(&names[0], ty, e, q + 2 * kv)?,
                    None => false,
                };
                if let (Some(ty), true) = (ty, fits) {
                    let parts = [(refs[0], q), (refs[1], kv), (refs[2], kv)];
                    Qkv::Fused {
                        w: l.concat_matrix(&parts, e, ty).await?,
                        rows,
                    }
                } else {
                    Qkv::Split {
                        q: l.matrix(&names[0], q, e).await?,
                        k: l.matrix(&names[1], kv, e).await?,
                        v: l.matrix(&names[2], kv, e).await?,
                    }
                }
            };
            let (bq, bk, bv) = (
                l.optional_host_vector(&n("attn_q.bias"), q).await?,
                l.optional_host_vector(&n("attn_k.bias"), kv).await?,
                l.optional_host_vector(&n("attn_v.bias"), kv).await?,
            );
            let (q_norm, k_norm) = if qk_norm {
                (
                    Some(l.vector(&n("attn_q_norm.weight"), cfg.head_dim).await?),
                    Some(l.vector(&n("attn_k_norm.weight"), cfg.head_dim).await?),
                )
            } else {
                (None, None)
            };
            let wo = l.matrix(&n("attn_output.weight"), e, q).await?;
            let post_attn_norm = if gemma {
                Some(l.vector(&n("post_attention_norm.weight"), e).await?)
            } else {
                None
            };
            let ffn_norm = l.vector(&n("ffn_norm.weight"), e).await?;
            let gate_up = if cfg.fused_gate_up {
                // ggml_swiglu on the fused row: silu(first half) · second half.
                GateUp::Fused(l.matrix(&n("ffn_up.weight"), 2 * ff, e).await?)
            } else {
                let (gn, un) = (n("ffn_gate.weight"), n("ffn_up.weight"));
                if let Some(ty) = l.common_type(&[&gn, &un])? {
                    GateUp::Fused(l.concat_matrix(&[(&gn, ff), (&un, ff)], e, ty).await?)
                } else {
                    GateUp::Split {
                        gate: l.matrix(&gn, ff, e).await?,
                        up: l.matrix(&un, ff, e).await?,
                    }
                }
            };
            let w_down = l.matrix(&n("ffn_down.weight"), e, ff).await?;
            let post_ffn_norm = if gemma {
                Some(l.vector(&n("post_ffw_norm.weight"), e).await?)
            } else {
                None
            };
            layers.push(LayerWeights {
                attn_norm,
                qkv,
                bq,
                bk,
                bv,
                q_norm,
                k_norm,
                wo,
                post_attn_norm,
                ffn_norm,
                gate_up,
                w_down,
                post_ffn_norm,
            });
        }
        let half = cfg.n_rot / 2;
        let (rope_factors, rope_factors_long) = match cfg.rope_factors {
            RopeFactors::None => (None, None),
            RopeFactors::Freqs => (Some(l.host_vector("rope_freqs.weight", half).await?), None),
            RopeFactors::LongRope { .. } => (
                Some(l.host_vector("rope_factors_short.weight", half).await?),
                Some(l.host_vector("rope_factors_long.weight", half).await?),
            ),
        };
        let output_norm = l.vector("output_norm.weight", e).await?;
        let output = if cfg.tied_output {
            None
        } else {
            Some(l.matrix("output.weight", cfg.n_vocab, e).await?)
        };
        gpu.check_now("loading weights")?;
        Ok(Weights {
            token_embd,
            layers,
            rope_factors: rope_factors.map(Into::into),
            rope_factors_long: rope_factors_long.map(Into::into),
            output_norm,
            output,
            bytes: l.done,
        })
    }
}
