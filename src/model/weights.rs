//! The model's weights on the GPU: matrices in their GGUF block format, vectors (norms, biases)
//! as f32. Every tensor's shape is checked against the configuration, with an error naming it.

use super::config::{Arch, Config};
use super::ModelError;
use crate::gguf::{Gguf, TensorInfo};
use crate::gpu::{Gpu, GpuWeight, WeightWriter};
use crate::quant;

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
    /// wq: (n_head·head_dim, n_embd)
    pub wq: GpuWeight,
    /// wk, wv: (n_head_kv·head_dim, n_embd)
    pub wk: GpuWeight,
    pub wv: GpuWeight,
    /// q/k/v biases (Qwen 2), kept on the CPU: the forward pass uploads them repeated per token.
    /// (n_head·head_dim), (n_head_kv·head_dim)
    pub bq: Option<Vec<f32>>,
    pub bk: Option<Vec<f32>>,
    pub bv: Option<Vec<f32>>,
    /// QK-norm weights (Qwen 3, Gemma 3): (head_dim)
    pub q_norm: Option<wgpu::Buffer>,
    pub k_norm: Option<wgpu::Buffer>,
    /// wo: (n_embd, n_head·head_dim)
    pub wo: GpuWeight,
    /// post_attention_norm (Gemma 3): (n_embd)
    pub post_attn_norm: Option<wgpu::Buffer>,
    /// ffn_norm: (n_embd)
    pub ffn_norm: wgpu::Buffer,
    /// w_gate, w_up: (n_ff, n_embd)
    pub w_gate: GpuWeight,
    pub w_up: GpuWeight,
    /// w_down: (n_embd, n_ff)
    pub w_down: GpuWeight,
    /// post_ffw_norm (Gemma 3): (n_embd)
    pub post_ffn_norm: Option<wgpu::Buffer>,
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

    /// A matrix of `rows` rows of `cols` values, kept in its block format.
    async fn matrix(&mut self, name: &str, rows: u32, cols: u32) -> Result<GpuWeight, ModelError> {
        let t = self.info(name)?;
        if t.dims.len() != 2 || t.row_len() != u64::from(cols) || t.rows() != u64::from(rows) {
            return Err(ModelError::Shape {
                tensor: name.to_string(),
                expected: format!("[{cols}, {rows}]"),
                got: format!("{:?}", t.dims),
            });
        }
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
    /// Weight bytes one decoded token reads: every layer matrix, the output matrix (the
    /// embedding when tied) and one embedding row. Norm vectors (f32, a few KiB) are left out.
    pub fn decode_bytes(&self) -> u64 {
        let m = |w: &GpuWeight| w.row_bytes * u64::from(w.rows);
        let layers: u64 = self
            .layers
            .iter()
            .map(|l| {
                [&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down]
                    .into_iter()
                    .map(m)
                    .sum::<u64>()
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
        let qk_norm = matches!(cfg.arch, Arch::Qwen3 | Arch::Gemma3);
        let gemma = cfg.arch == Arch::Gemma3;
        let mut layers = Vec::with_capacity(cfg.n_layer as usize);
        for il in 0..cfg.n_layer {
            let n = |s: &str| format!("blk.{il}.{s}");
            let layer = LayerWeights {
                attn_norm: l.vector(&n("attn_norm.weight"), e).await?,
                wq: l.matrix(&n("attn_q.weight"), q, e).await?,
                wk: l.matrix(&n("attn_k.weight"), kv, e).await?,
                wv: l.matrix(&n("attn_v.weight"), kv, e).await?,
                bq: l.optional_host_vector(&n("attn_q.bias"), q).await?,
                bk: l.optional_host_vector(&n("attn_k.bias"), kv).await?,
                bv: l.optional_host_vector(&n("attn_v.bias"), kv).await?,
                q_norm: if qk_norm {
                    Some(l.vector(&n("attn_q_norm.weight"), cfg.head_dim).await?)
                } else {
                    None
                },
                k_norm: if qk_norm {
                    Some(l.vector(&n("attn_k_norm.weight"), cfg.head_dim).await?)
                } else {
                    None
                },
                wo: l.matrix(&n("attn_output.weight"), e, q).await?,
                post_attn_norm: if gemma {
                    Some(l.vector(&n("post_attention_norm.weight"), e).await?)
                } else {
                    None
                },
                ffn_norm: l.vector(&n("ffn_norm.weight"), e).await?,
                w_gate: l.matrix(&n("ffn_gate.weight"), ff, e).await?,
                w_up: l.matrix(&n("ffn_up.weight"), ff, e).await?,
                w_down: l.matrix(&n("ffn_down.weight"), e, ff).await?,
                post_ffn_norm: if gemma {
                    Some(l.vector(&n("post_ffw_norm.weight"), e).await?)
                } else {
                    None
                },
            };
            layers.push(layer);
        }
        let output_norm = l.vector("output_norm.weight", e).await?;
        let output = if cfg.tied_output {
            None
        } else {
            Some(l.matrix("output.weight", cfg.n_vocab, e).await?)
        };
        gpu.check("loading weights")?;
        Ok(Weights {
            token_embd,
            layers,
            output_norm,
            output,
            bytes: l.done,
        })
    }
}
