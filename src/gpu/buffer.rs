//! Weight buffers in raw GGUF block layout, split by whole rows over as many buffers as the
//! binding limit needs, and async readback that works natively and in the browser.

use wgpu::util::DeviceExt;

use super::device::Gpu;
use super::error::GpuError;
use crate::quant::GgmlType;

/// Rows `[first_row, first_row + rows)` of a weight, in a buffer (or texture) of their own.
pub struct WeightChunk {
    pub first_row: u32,
    pub rows: u32,
    pub store: WeightStore,
}

/// Texels per row of a weight texture (`TEX_WIDTH` in `shaders/common.wgsl`). WebGPU guarantees
/// 2-D textures of 8192 × 8192, so a texture holds up to 1 GiB of weights.
pub const TEX_WIDTH: u32 = 8192;

/// Bytes of one row of a weight texture (`rgba32uint`: 16 bytes per texel).
const TEX_ROW_BYTES: u64 = TEX_WIDTH as u64 * 16;

/// A weight texture of `height` rows of [`TEX_WIDTH`] `rgba32uint` texels, to be written.
pub fn weight_texture(device: &wgpu::Device, label: Option<&str>, height: u32) -> wgpu::Texture {
    device.create_texture(&wgpu::TextureDescriptor {
        label,
        size: wgpu::Extent3d {
            width: TEX_WIDTH,
            height,
            depth_or_array_layers: 1,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: wgpu::TextureFormat::Rgba32Uint,
        usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
        view_formats: &[],
    })
}

/// The most bytes one weight texture holds: [`TEX_WIDTH`] texels by the device's height limit.
fn tex_limit(gpu: &Gpu) -> u64 {
    u64::from(gpu.device.limits().max_texture_dimension_2d) * TEX_ROW_BYTES
}

/// Where a chunk's bytes live on the GPU. The kernels read either through `w1`/`w4`
/// (`shaders/common.wgsl`); which one each block type of a model gets is measured
/// ([`crate::bench::FamilyProbe`]), since some adapters load faster through textures.
pub enum WeightStore {
    /// A storage buffer, bound at binding 1 (and viewed again at 4 and 5).
    Buffer(wgpu::Buffer),
    /// An `rgba32uint` texture of [`TEX_WIDTH`] texels per row, texel i holding the buffer
    /// layout's bytes `[16i, 16i + 16)`, bound at binding 1.
    Texture {
        texture: wgpu::Texture,
        view: wgpu::TextureView,
    },
}

impl WeightStore {
    pub fn is_texture(&self) -> bool {
        matches!(self, WeightStore::Texture { .. })
    }
}

/// A 2-D weight on the GPU: `rows` rows of `row_len` elements in block format `ty`.
/// Bytes are the file's bytes; a tensor larger than one binding is split by rows.
pub struct GpuWeight {
    pub name: String,
    pub ty: GgmlType,
    pub rows: u32,
    pub row_len: u32,
    pub row_bytes: u64,
    pub chunks: Vec<WeightChunk>,
    /// Stored with rows interleaved by eight ([`ROWS8`]): block i of rows 8o..8o+7 side by side.
    pub rows8: bool,
}

/// Rows interleaved by eight, for the row kernels on adapters where adjacent lanes reading
/// adjacent bytes pays (Mesa 25's lavapipe: its SIMD lanes' loads are gathers, and eight rows'
/// blocks in one run are 2–2.5× faster to gather than eight rows apart; `examples/short_rows.rs`).
/// A repacked type's GGUF blocks are reordered before they are grouped: for every octet of rows
/// o (rows 8o..8o+7 of a chunk) and block index i, block i of those 8 rows, in row order. A
/// repacked group ([`Repack`]) then holds block i of 8 adjacent rows, which the 8 lanes of a
/// row kernel's subgroup read at once. Chunks start at a multiple of 8 rows, and a chunk's last
/// octet is stored whole (missing rows are zero). Kernels address a block through `row_base` and
/// `BLK_STRIDE` (`shaders/common.wgsl`), which know both orders.
pub const ROWS8: u64 = 8;

/// Bytes of storage a buffer of `len` bytes gets: whole 16-byte words (the kernels also view
/// weights as `vec4<u32>`) plus three spare, because unaligned runs are read as whole 16-byte
/// windows (`words9` in `shaders/common.wgsl` reads up to 48 bytes past a run's first word).
fn padded_len(len: u64) -> u64 {
    len.div_ceil(16) * 16 + 48
}

/// Blocks per repacked group: a group holds the same bytes as its 8 GGUF blocks.
const GROUP_BLOCKS: usize = 8;

/// How a block format is stored on the GPU when GGUF's layout costs the kernels loads: every
/// [`GROUP_BLOCKS`] consecutive blocks of a buffer become one group of the same size that holds
/// each field of its 8 blocks side by side, in block order. For the 32-value formats (18, 20,
/// 22, 24 and 34-byte blocks, not 16-byte aligned) the fields are GGUF's: the 8 scales (and
/// mins), then for Q5 the 8 high-bit words, then the 8 blocks' quants, so every block's quants
/// are one or two aligned `vec4` loads instead of unaligned words stitched together. The
/// K-quants' blocks are first rearranged ([`shuffle_q4_k`], [`shuffle_q5_k`],
/// [`shuffle_q6_k`]) so that each 32-value piece's quants are one aligned run.
/// `shaders/formats/*.wgsl` read these layouts.
struct Repack {
    /// GGUF bytes of one block.
    block: usize,
    /// The block's fields (after `shuffle`), in bytes; each becomes a region of 8 × its size.
    fields: &'static [usize],
    /// The field that holds Q5's high bits, stored transposed (see [`transpose_qh`]).
    qh: Option<usize>,
    /// Rewrites one GGUF block (first argument) into the order of `fields` (second).
    shuffle: Option<Shuffle>,
}

/// Rewrites one GGUF block (first argument) into another order (second).
type Shuffle = fn(&[u8], &mut [u8]);

fn repack_of(ty: GgmlType) -> Option<Repack> {
    let (block, fields, qh, shuffle): (usize, &'static [usize], Option<usize>, Option<Shuffle>) =
        match ty {
            GgmlType::Q4_0 => (18, &[2, 16], None, None),
            GgmlType::Q4_1 => (20, &[4, 16], None, None),
            GgmlType::Q5_0 => (22, &[2, 4, 16], Some(1), None),
            GgmlType::Q5_1 => (24, &[4, 4, 16], Some(1), None),
            GgmlType::Q8_0 => (34, &[2, 32], None, None),
            GgmlType::Q4_K => (144, &[144], None, Some(shuffle_q4_k)),
            GgmlType::Q5_K => (176, &[176], None, Some(shuffle_q5_k)),
            GgmlType::Q6_K => (210, &[2, 16, 128, 64], None, Some(shuffle_q6_k)),
            _ => return None,
        };
    Some(Repack {
        block,
        fields,
        qh,
        shuffle,
    })
}

/// Q4_K's block with each 32-value piece's quants in one 16-byte run: GGUF keeps pieces 2p and
/// 2p + 1 in the low and high nibbles of the same 32 bytes; here byte i of piece s holds value
/// 32s + i in its low nibble and 32s + 16 + i in its high nibble (Q4_0's order), so quant word
/// k of a piece (values 4k..4k+3) is word k's low nibbles for k < 4, word k − 4's high nibbles
/// above. The 16 header bytes (d, dmin, the packed scales and mins) are unchanged.
fn shuffle_q4_k(blk: &[u8], out: &mut [u8]) {
    out[..16].copy_from_slice(&blk[..16]);
    shuffle_k_nibbles(&blk[16..144], &mut out[16..144]);
}

/// The 128 quant bytes of a Q4_K or Q5_K block (GGUF: pieces 2p and 2p + 1 in the low and high
/// nibbles of bytes 32p..32p + 32) with each piece in one 16-byte run: byte i of piece s holds
/// value 32s + i in its low nibble and 32s + 16 + i in its high one.
fn shuffle_k_nibbles(qs: &[u8], out: &mut [u8]) {
    let nibble = |v: usize| {
        let byte = qs[32 * (v / 64) + v % 32];
        if v % 64 < 32 {
            byte & 15
        } else {
            byte >> 4
        }
    };
    for s in 0..8 {
        for i in 0..16 {
            out[16 * s + i] = nibble(32 * s + i) | nibble(32 * s + 16 + i) << 4;
        }
    }
}

/// Q5_K's block with each 32-value piece as Q5_0 stores it: the 16 header bytes unchanged, then
/// 8 words of high bits (piece s's word: bit j is value 32s + j's fifth bit, then transposed by
/// [`transpose_qh`]), then the low nibbles in [`shuffle_q4_k`]'s order. GGUF keeps bit s of
/// byte j of its 32 qh bytes for value 32s + j, so a piece's high bits were spread over 32 bytes.
fn shuffle_q5_k(blk: &[u8], out: &mut [u8]) {
    out[..16].copy_from_slice(&blk[..16]);
    let qh = &blk[16..48];
    for s in 0..8 {
        let mut h = 0u32;
        for (j, &byte) in qh.iter().enumerate() {
            h |= u32::from((byte >> s) & 1) << j;
        }
        out[16 + 4 * s..20 + 4 * s].copy_from_slice(&transpose_qh(h).to_le_bytes());
    }
    shuffle_k_nibbles(&blk[48..176], &mut out[48..176]);
}

/// Q6_K's block as d (2 bytes), the 16 scales, the low four bits of every value (16 bytes per
/// 32-value piece, in [`shuffle_q4_k`]'s nibble order), then their high two bits (8 bytes per
/// piece). GGUF's order is ql, qh, scales, d, with a piece's bits spread over 64 + 32 bytes.
/// A piece's high bits are two words H0, H1: bits 2k..2k+1 of byte b of H_m belong to value
/// 4·(4m + k) + b, so quant word i takes them as `((H[i / 4] >> 2·(i % 4)) & 0x03030303) << 4`.
fn shuffle_q6_k(blk: &[u8], out: &mut [u8]) {
    let (ql, qh) = (&blk[..128], &blk[128..192]);
    // Value v's low four and high two bits (GGUF: 128-value halves, each 64 ql and 32 qh bytes).
    let lo = |v: usize| {
        let (h, l) = (v / 128, v % 128);
        let byte = ql[64 * h + l % 64];
        if l < 64 {
            byte & 15
        } else {
            byte >> 4
        }
    };
    let hi = |v: usize| {
        let (h, l) = (v / 128, v % 128);
        (qh[32 * h + l % 32] >> (2 * (l / 32))) & 3
    };
    out[..2].copy_from_slice(&blk[208..210]);
    out[2..18].copy_from_slice(&blk[192..208]);
    for s in 0..8 {
        let v0 = 32 * s;
        for i in 0..16 {
            out[18 + 16 * s + i] = lo(v0 + i) | lo(v0 + 16 + i) << 4;
        }
        let mut h = [0u8; 8];
        for (m, word) in h.chunks_exact_mut(4).enumerate() {
            for (b, byte) in word.iter_mut().enumerate() {
                for k in 0..4 {
                    *byte |= hi(v0 + 4 * (4 * m + k) + b) << (2 * k);
                }
            }
        }
        out[146 + 8 * s..154 + 8 * s].copy_from_slice(&h);
    }
}

/// Whether `ty` is stored on the GPU in another layout than GGUF's (see [`Repack`]).
pub(crate) fn repacked(ty: GgmlType) -> bool {
    repack_of(ty).is_some()
}

/// Bytes on the GPU of `rows` rows of `row_bytes` GGUF bytes each, interleaved ([`ROWS8`]) or not.
fn chunk_stored_len(ty: GgmlType, rows: u64, row_bytes: u64, rows8: bool) -> u64 {
    if rows8 {
        stored_len(ty, rows.div_ceil(ROWS8) * ROWS8 * row_bytes)
    } else {
        stored_len(ty, rows * row_bytes)
    }
}

/// Bytes on the GPU of `len` GGUF bytes of type `ty` (a repacked last group is whole).
fn stored_len(ty: GgmlType, len: u64) -> u64 {
    match repack_of(ty) {
        Some(r) => {
            let group = (GROUP_BLOCKS * r.block) as u64;
            len.div_ceil(group) * group
        }
        None => len,
    }
}

/// Q5's high bits rearranged so that a kernel gets bit 4 of each byte of a quant word with one
/// shift and one mask: bit 8·b + k of the result is bit 4·k + b of `qh` (GGUF's bit j is the
/// fifth bit of value j). Quant word k (values 4k..4k+3) then takes its high bits as
/// `(qh' << (4 - k)) & 0x10101010` for k < 4 and `(qh' >> (k - 4)) & 0x10101010` above.
fn transpose_qh(qh: u32) -> u32 {
    let mut t = 0;
    for b in 0..4 {
        for k in 0..8 {
            t |= ((qh >> (4 * k + b)) & 1) << (8 * b + k);
        }
    }
    t
}

/// Appends the repacked group of `raw` (up to 8 whole blocks; missing blocks are zero).
fn repack_group(r: &Repack, raw: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + GROUP_BLOCKS * r.block, 0);
    let g = &mut out[start..];
    // Every block format is at most 210 bytes (Q6_K).
    let mut scratch = [0u8; 256];
    for (j, blk) in raw.chunks_exact(r.block).enumerate() {
        let blk = match r.shuffle {
            Some(f) => {
                let shuffled = &mut scratch[..r.block];
                f(blk, shuffled);
                &*shuffled
            }
            None => blk,
        };
        let (mut src, mut region) = (0, 0);
        for (f, &size) in r.fields.iter().enumerate() {
            let dst = region + j * size;
            let field = &blk[src..src + size];
            if r.qh == Some(f) {
                let qh = u32::from_le_bytes([field[0], field[1], field[2], field[3]]);
                g[dst..dst + 4].copy_from_slice(&transpose_qh(qh).to_le_bytes());
            } else {
                g[dst..dst + size].copy_from_slice(field);
            }
            src += size;
            region += GROUP_BLOCKS * size;
        }
    }
}

impl GpuWeight {
    /// Rows per chunk so that the chunk's bytes, and `out_bytes_per_row` of output per row, each fit a binding.
    pub fn rows_per_chunk(
        gpu: &Gpu,
        name: &str,
        row_bytes: u64,
        out_bytes_per_row: u64,
    ) -> Result<u64, GpuError> {
        let mut limit = gpu.caps.max_binding.saturating_sub(64);
        if gpu.caps.weight_textures != 0 {
            limit = limit.min(tex_limit(gpu).saturating_sub(64));
        }
        let per_row = row_bytes.max(out_bytes_per_row).max(1);
        let n = limit / per_row;
        if n == 0 {
            return Err(GpuError::TensorTooLarge {
                tensor: name.to_string(),
                row_bytes: per_row,
                limit: gpu.caps.max_binding,
            });
        }
        Ok(n)
    }

    /// Uploads `data` (`rows` rows of `row_len` elements of type `ty`) to the GPU.
    /// `data` may come from a memory map; it is copied in pieces, never whole.
    pub fn upload(
        gpu: &Gpu,
        name: &str,
        ty: GgmlType,
        row_len: u64,
        rows: u64,
        data: &[u8],
    ) -> Result<GpuWeight, GpuError> {
        let w = GpuWeight::allocate(gpu, name, ty, row_len, rows)?;
        if w.bytes() != data.len() as u64 {
            return Err(GpuError::Shape {
                tensor: name.to_string(),
                detail: format!(
                    "{rows} rows of {} bytes do not match {} bytes of data",
                    w.row_bytes,
                    data.len()
                ),
            });
        }
        let mut writer = WeightWriter::new(&w);
        writer.push(gpu, data)?;
        writer.finish(gpu)?;
        Ok(w)
    }

    /// Allocates the buffers of a weight (`rows` rows of `row_len` elements of type `ty`),
    /// split by rows to fit the binding limit; fill them in order with a [`WeightWriter`].
    pub fn allocate(
        gpu: &Gpu,
        name: &str,
        ty: GgmlType,
        row_len: u64,
        rows: u64,
    ) -> Result<GpuWeight, GpuError> {
        if !ty.is_supported() {
            return Err(GpuError::UnsupportedType {
                tensor: name.to_string(),
                ty,
            });
        }
        let row_bytes = crate::quant::row_bytes(ty, row_len).ok_or_else(|| GpuError::Shape {
            tensor: name.to_string(),
            detail: format!("row length {row_len} is not a whole number of {ty} blocks"),
        })?;
        let too_big = |what: &str| GpuError::Shape {
            tensor: name.to_string(),
            detail: format!("{what} exceeds the 32-bit index range of the kernels"),
        };
        row_bytes.checked_mul(rows).ok_or_else(|| too_big("size"))?;
        let rows32 = u32::try_from(rows).map_err(|_| too_big("row count"))?;
        let row_len32 = u32::try_from(row_len).map_err(|_| too_big("row length"))?;
        // The kernels address bytes with u32 inside a chunk; keep chunks below 4 GiB.
        let mut per_chunk = GpuWeight::rows_per_chunk(gpu, name, row_bytes, 0)?
            .min((u32::MAX as u64 - 8) / row_bytes.max(1));
        // Each chunk is bound whole, so its buffer (a repacked last group stored whole, and the
        // padding) must fit the binding too, not only its rows.
        let textures = gpu.caps.textures_for(ty);
        // Rows interleaved by eight where the row kernels run and the type is repacked, unless
        // fewer than 8 rows fit a binding.
        let mut rows8 = gpu.caps.rows8_for(ty) && rows >= ROWS8;
        let fits = |n: u64, rows8: bool| {
            let len = padded_len(chunk_stored_len(ty, n, row_bytes, rows8));
            len <= gpu.caps.max_binding && (!textures || len <= tex_limit(gpu))
        };
        if rows8 {
            per_chunk = per_chunk / ROWS8 * ROWS8;
            while per_chunk > ROWS8 && !fits(per_chunk, true) {
                per_chunk -= ROWS8;
            }
            if per_chunk < ROWS8 || !fits(per_chunk, true) {
                rows8 = false;
                per_chunk = GpuWeight::rows_per_chunk(gpu, name, row_bytes, 0)?
                    .min((u32::MAX as u64 - 8) / row_bytes.max(1));
            }
        }
        while !rows8 && per_chunk > 1 && !fits(per_chunk, false) {
            per_chunk -= 1;
        }
        if !fits(per_chunk, rows8) {
            return Err(GpuError::TensorTooLarge {
                tensor: name.to_string(),
                row_bytes: padded_len(stored_len(ty, row_bytes)),
                limit: gpu.caps.max_binding,
            });
        }
        let mut chunks = Vec::new();
        let mut first = 0u64;
        while first < rows {
            let n = per_chunk.min(rows - first);
            let size = padded_len(chunk_stored_len(ty, n, row_bytes, rows8));
            let store = if textures {
                let height = size.div_ceil(TEX_ROW_BYTES) as u32;
                // Counted with the buffers: GPU memory created at load.
                gpu.count_buffer(u64::from(height) * TEX_ROW_BYTES);
                let texture = weight_texture(&gpu.device, Some(name), height);
                let view = texture.create_view(&Default::default());
                WeightStore::Texture { texture, view }
            } else {
                gpu.count_buffer(size);
                WeightStore::Buffer(gpu.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(name),
                    size,
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                }))
            };
            chunks.push(WeightChunk {
                first_row: first as u32,
                rows: n as u32,
                store,
            });
            first += n;
        }
        gpu.check_now(&format!("allocating '{name}'"))?;
        Ok(GpuWeight {
            name: name.to_string(),
            ty,
            rows: rows32,
            row_len: row_len32,
            row_bytes,
            chunks,
            rows8,
        })
    }

    /// Bytes of the tensor (rows × row bytes).
    pub fn bytes(&self) -> u64 {
        self.row_bytes * u64::from(self.rows)
    }
}

/// Fills a [`GpuWeight`]'s buffers from the tensor's bytes handed over in order, in pieces of any
/// size (a memory map at once, or IndexedDB records in the browser). Writes are 4-byte aligned,
/// as WebGPU requires, with at most 3 bytes carried from one piece to the next. The 32-value
/// formats are repacked on the way (see [`Repack`]): whole groups of 8 blocks are rearranged and
/// staged, at most one group's bytes are carried.
pub struct WeightWriter<'a> {
    w: &'a GpuWeight,
    chunk: usize,
    /// Bytes written to the current chunk's buffer (a multiple of 4).
    off: u64,
    carry: Vec<u8>,
    /// Repacked types: GGUF bytes of the current chunk received so far, and repacked bytes
    /// waiting to be written.
    raw_in: u64,
    staged: Vec<u8>,
    /// Interleaved weights ([`ROWS8`]): one octet of rows in [`ROWS8`] order, and a group's GGUF
    /// blocks gathered from it.
    octet: Vec<u8>,
    /// Where the current chunk's bytes go.
    sink: ChunkSink,
}

/// Writes a chunk's bytes, which arrive in order, to its storage: a buffer at their offset, a
/// texture in whole rows (the rest kept until more arrives or the chunk ends).
#[derive(Default)]
struct ChunkSink {
    /// Textures: bytes not yet written (less than a row between calls), and the row they start at.
    tex: Vec<u8>,
    tex_row: u32,
}

impl ChunkSink {
    /// Writes `bytes` at byte `off` of `chunk`'s storage.
    fn put(&mut self, gpu: &Gpu, chunk: &WeightChunk, off: u64, bytes: &[u8]) {
        match &chunk.store {
            WeightStore::Buffer(b) => gpu.queue.write_buffer(b, off, bytes),
            WeightStore::Texture { texture, .. } => {
                debug_assert_eq!(
                    off,
                    u64::from(self.tex_row) * TEX_ROW_BYTES + self.tex.len() as u64
                );
                self.tex.extend_from_slice(bytes);
                let rows = self.tex.len() as u64 / TEX_ROW_BYTES;
                if rows > 0 {
                    self.write_rows(gpu, texture, rows as u32);
                }
            }
        }
    }

    /// Writes the first `rows` rows of `self.tex` at row `self.tex_row` and drops them.
    fn write_rows(&mut self, gpu: &Gpu, texture: &wgpu::Texture, rows: u32) {
        let n = rows as usize * TEX_ROW_BYTES as usize;
        gpu.queue.write_texture(
            wgpu::TexelCopyTextureInfo {
                texture,
                mip_level: 0,
                origin: wgpu::Origin3d {
                    x: 0,
                    y: self.tex_row,
                    z: 0,
                },
                aspect: wgpu::TextureAspect::All,
            },
            &self.tex[..n],
            wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(TEX_ROW_BYTES as u32),
                rows_per_image: None,
            },
            wgpu::Extent3d {
                width: TEX_WIDTH,
                height: rows,
                depth_or_array_layers: 1,
            },
        );
        self.tex.drain(..n);
        self.tex_row += rows;
    }

    /// The chunk's last bytes are in: a texture's partial last row goes out zero-filled.
    fn end_chunk(&mut self, gpu: &Gpu, chunk: &WeightChunk) {
        if let WeightStore::Texture { texture, .. } = &chunk.store {
            if !self.tex.is_empty() {
                self.tex.resize(TEX_ROW_BYTES as usize, 0);
                self.write_rows(gpu, texture, 1);
            }
            self.tex_row = 0;
        }
    }
}

impl<'a> WeightWriter<'a> {
    pub fn new(w: &'a GpuWeight) -> WeightWriter<'a> {
        WeightWriter {
            w,
            chunk: 0,
            off: 0,
            carry: Vec::with_capacity(4),
            raw_in: 0,
            staged: Vec::new(),
            octet: Vec::new(),
            sink: ChunkSink::default(),
        }
    }

    /// The chunk the next bytes go to; an error once every chunk is full.
    fn current(&self) -> Result<&'a WeightChunk, GpuError> {
        self.w
            .chunks
            .get(self.chunk)
            .ok_or_else(|| GpuError::Shape {
                tensor: self.w.name.clone(),
                detail: format!("more than its {} bytes of data", self.w.bytes()),
            })
    }

    /// [`push`](Self::push) for a repacked type.
    fn push_repacked(&mut self, gpu: &Gpu, r: &Repack, mut bytes: &[u8]) -> Result<(), GpuError> {
        const PIECE: usize = 4 << 20;
        // What is carried until it is whole: a group of 8 blocks, or with rows interleaved
        // (ROWS8) an octet of rows, which becomes row_bytes / block groups.
        let group = if self.w.rows8 {
            ROWS8 as usize * self.w.row_bytes as usize
        } else {
            GROUP_BLOCKS * r.block
        };
        while !bytes.is_empty() {
            let chunk = self.current()?;
            let len = self.chunk_len(self.chunk);
            let room = (len - self.raw_in) as usize;
            let (mut now, rest) = bytes.split_at(room.min(bytes.len()));
            bytes = rest;
            self.raw_in += now.len() as u64;
            while !now.is_empty() {
                let n = (group - self.carry.len()).min(now.len());
                self.carry.extend_from_slice(&now[..n]);
                now = &now[n..];
                if self.carry.len() == group {
                    self.repack_carry(r);
                }
                if self.staged.len() >= PIECE {
                    self.sink.put(gpu, chunk, self.off, &self.staged);
                    self.off += self.staged.len() as u64;
                    self.staged.clear();
                }
            }
            if self.raw_in == len {
                // The chunk is complete: its last group (or octet) goes out whole, zero-filled.
                if !self.carry.is_empty() {
                    self.repack_carry(r);
                }
                if !self.staged.is_empty() {
                    self.sink.put(gpu, chunk, self.off, &self.staged);
                    self.staged.clear();
                }
                self.sink.end_chunk(gpu, chunk);
                self.chunk += 1;
                self.off = 0;
                self.raw_in = 0;
            }
        }
        Ok(())
    }

    /// Repacks the carried GGUF bytes: one group of up to 8 blocks, or with rows interleaved an
    /// octet of up to 8 rows (missing rows zero), block i of each row side by side.
    fn repack_carry(&mut self, r: &Repack) {
        if self.w.rows8 {
            let rb = self.w.row_bytes as usize;
            self.carry.resize(ROWS8 as usize * rb, 0);
            for i in 0..rb / r.block {
                self.octet.clear();
                for row in 0..ROWS8 as usize {
                    let at = row * rb + i * r.block;
                    self.octet.extend_from_slice(&self.carry[at..at + r.block]);
                }
                repack_group(r, &self.octet, &mut self.staged);
            }
        } else {
            repack_group(r, &self.carry, &mut self.staged);
        }
        self.carry.clear();
    }

    fn chunk_len(&self, i: usize) -> u64 {
        self.w
            .chunks
            .get(i)
            .map_or(0, |c| u64::from(c.rows) * self.w.row_bytes)
    }

    /// Writes the next `bytes` of the tensor.
    pub fn push(&mut self, gpu: &Gpu, mut bytes: &[u8]) -> Result<(), GpuError> {
        if let Some(r) = repack_of(self.w.ty) {
            return self.push_repacked(gpu, &r, bytes);
        }
        // Staged in pieces so a large tensor from a memory map never needs one big heap copy.
        const PIECE: usize = 16 << 20;
        while !bytes.is_empty() {
            let chunk = self.current()?;
            let len = self.chunk_len(self.chunk);
            let room = len - self.off - self.carry.len() as u64;
            let (mut now, rest) = bytes.split_at((room as usize).min(bytes.len()));
            bytes = rest;
            if !self.carry.is_empty() {
                let n = (4 - self.carry.len()).min(now.len());
                self.carry.extend_from_slice(&now[..n]);
                now = &now[n..];
                if self.carry.len() == 4 {
                    self.sink.put(gpu, chunk, self.off, &self.carry);
                    self.off += 4;
                    self.carry.clear();
                }
            }
            let whole = now.len() / 4 * 4;
            let mut done = 0;
            while done < whole {
                let n = PIECE.min(whole - done);
                self.sink.put(gpu, chunk, self.off, &now[done..done + n]);
                self.off += n as u64;
                done += n;
            }
            self.carry.extend_from_slice(&now[whole..]);
            if self.off + self.carry.len() as u64 == len {
                // The chunk is full: its last bytes go out zero-padded to a word.
                if !self.carry.is_empty() {
                    self.carry.resize(4, 0);
                    self.sink.put(gpu, chunk, self.off, &self.carry);
                    self.carry.clear();
                }
                self.sink.end_chunk(gpu, chunk);
                self.chunk += 1;
                self.off = 0;
            }
        }
        Ok(())
    }

    /// Checks that every byte of the tensor arrived.
    pub fn finish(self, gpu: &Gpu) -> Result<(), GpuError> {
        if self.chunk < self.w.chunks.len() {
            let in_chunk = if repacked(self.w.ty) {
                self.raw_in
            } else {
                self.off + self.carry.len() as u64
            };
            let done: u64 = (0..self.chunk).map(|i| self.chunk_len(i)).sum::<u64>() + in_chunk;
            return Err(GpuError::Shape {
                tensor: self.w.name.clone(),
                detail: format!(
                    "only {done} of its {} bytes of data arrived",
                    self.w.bytes()
                ),
            });
        }
        gpu.check_now(&format!("uploading '{}'", self.w.name))
    }
}

impl Gpu {
    /// A storage buffer holding `data`.
    pub fn storage_from(&self, label: &str, data: &[f32]) -> wgpu::Buffer {
        self.count_buffer(std::mem::size_of_val(data) as u64);
        self.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: bytemuck::cast_slice(data),
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_DST
                    | wgpu::BufferUsages::COPY_SRC,
            })
    }

    /// An uninitialized storage buffer of `bytes` bytes that can be read back.
    pub fn storage(&self, label: &str, bytes: u64) -> wgpu::Buffer {
        let size = bytes.max(4).div_ceil(4) * 4;
        self.count_buffer(size);
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_DST
                | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        })
    }

    /// What the engine has created on this device so far (buffers, bind groups, pipelines) and
    /// recorded (passes, dispatches, submits): the per-token cost of a step is the difference.
    pub fn counts(&self) -> crate::gpu::GpuCounts {
        self.step_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .counts
    }

    /// Counts a buffer of `bytes` bytes about to be created.
    pub(crate) fn count_buffer(&self, bytes: u64) {
        self.count(|c| {
            c.buffers += 1;
            c.buffer_bytes += bytes;
        });
    }

    pub(crate) fn count(&self, f: impl FnOnce(&mut crate::gpu::GpuCounts)) {
        f(&mut self
            .step_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .counts);
    }

    /// Waits for submitted work natively; in the browser the event loop drives the GPU.
    pub fn wait(&self) -> Result<(), GpuError> {
        #[cfg(not(target_arch = "wasm32"))]
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GpuError::DeviceLost(self.lost_reason().unwrap_or(e.to_string())))?;
        Ok(())
    }

    /// Resolves when everything submitted so far has run (natively it also drives the device;
    /// in the browser the event loop does): what timing a submission waits for.
    pub async fn done(&self) -> Result<(), GpuError> {
        let (tx, rx) = futures_channel::oneshot::channel();
        self.queue.on_submitted_work_done(move || {
            let _ = tx.send(());
        });
        self.wait()?;
        if rx.await.is_err() {
            return Err(self.explain(GpuError::Readback(
                "the GPU dropped its work-done callback".into(),
            )));
        }
        self.check("wait")
    }

    /// Copies `bytes` bytes from the start of `src` back to the CPU.
    pub async fn read_bytes(&self, src: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>, GpuError> {
        let size = bytes.div_ceil(4) * 4;
        self.count_buffer(size.max(4));
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: size.max(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(src, 0, &staging, 0, size);
        self.queue.submit([enc.finish()]);
        self.read_mapped(&staging, bytes).await
    }

    /// A `MAP_READ` buffer that the caller can keep and copy into each step (no buffer created
    /// per read): `bytes` rounded up to 4.
    pub fn readback_buffer(&self, label: &str, bytes: u64) -> wgpu::Buffer {
        let size = bytes.div_ceil(4).max(1) * 4;
        self.count_buffer(size);
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// Maps `staging` (a [`readback_buffer`](Self::readback_buffer) whose copy was submitted),
    /// returns its first `bytes` bytes and unmaps it.
    pub async fn read_mapped(
        &self,
        staging: &wgpu::Buffer,
        bytes: u64,
    ) -> Result<Vec<u8>, GpuError> {
        let size = bytes.div_ceil(4) * 4;
        let (tx, rx) = futures_channel::oneshot::channel();
        staging
            .slice(..size)
            .map_async(wgpu::MapMode::Read, move |r| {
                let _ = tx.send(r);
            });
        self.wait()?;
        let mapped = match rx.await {
            Ok(r) => r.map_err(|e| GpuError::Readback(e.to_string())),
            Err(_) => Err(GpuError::Readback("the map callback was dropped".into())),
        };
        if let Err(e) = mapped {
            // In a browser a lost device fails the map before its `lost` promise settles (a
            // later task): give it a few tasks so the error names the loss.
            #[cfg(target_arch = "wasm32")]
            for _ in 0..20 {
                if self.lost_reason().is_some() {
                    break;
                }
                next_task().await;
            }
            return Err(self.explain(e));
        }
        self.check("readback")?;
        let view = staging
            .slice(..size)
            .get_mapped_range()
            .map_err(|e| self.explain(GpuError::Readback(e.to_string())))?;
        let out = view[..bytes as usize].to_vec();
        drop(view);
        staging.unmap();
        Ok(out)
    }

    /// Reads `n` f32 values from the start of `src`.
    pub async fn read_f32(&self, src: &wgpu::Buffer, n: usize) -> Result<Vec<f32>, GpuError> {
        let bytes = self.read_bytes(src, n as u64 * 4).await?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }
}

/// Resolves in a later task of the event loop (`setTimeout(0)`), not a microtask.
#[cfg(target_arch = "wasm32")]
async fn next_task() {
    use wasm_bindgen::JsCast;
    let p = js_sys::Promise::new(&mut |resolve, _| {
        let g = js_sys::global();
        let timer = js_sys::Reflect::get(&g, &"setTimeout".into())
            .ok()
            .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
        match timer {
            Some(f) => {
                let _ = f.call2(&g, &resolve, &wasm_bindgen::JsValue::from(0));
            }
            None => {
                let _ = resolve.call0(&wasm_bindgen::JsValue::NULL);
            }
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(p).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernels' extraction (`q5_words` in shaders/common.wgsl) applied to a transposed qh
    /// gives every value's fifth bit at bit 4 of its byte.
    #[test]
    fn transposed_qh_matches_the_kernels_extraction() {
        let mut x = 0x9e37_79b9_u32;
        for _ in 0..1000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let t = transpose_qh(x);
            for k in 0..8u32 {
                let word = if k < 4 {
                    (t << (4 - k)) & 0x1010_1010
                } else {
                    (t >> (k - 4)) & 0x1010_1010
                };
                for b in 0..4u32 {
                    let got = (word >> (8 * b + 4)) & 1;
                    assert_eq!(got, (x >> (4 * k + b)) & 1, "qh {x:#x} value {}", 4 * k + b);
                }
            }
        }
    }

    /// (d · scale, dmin · min) of piece s of the Q4_K/Q5_K block at byte b: d and dmin read from
    /// the repacked group `g`, the 6-bit scale and min from the GGUF bytes (gguf's
    /// get_scale_min_k4).
    fn dl_ml_k4(g: &[u8], raw: &[u8], b: usize, s: usize) -> (f32, f32) {
        let sc = &raw[b + 4..b + 16];
        let (scale, min) = if s < 4 {
            (sc[s] & 63, sc[s + 4] & 63)
        } else {
            (
                (sc[s + 4] & 15) | ((sc[s - 4] >> 6) << 4),
                (sc[s + 4] >> 4) | ((sc[s] >> 6) << 4),
            )
        };
        (
            f16_at(g, b) * f32::from(scale),
            f16_at(g, b + 2) * f32::from(min),
        )
    }

    /// Random bytes for `n` blocks of `ty`, with every f16 field (d, dmin) a small normal number.
    fn random_blocks(ty: GgmlType, n: usize, halves: &[usize], seed: u32) -> Vec<u8> {
        let block = repack_of(ty).expect("repacked").block;
        let mut x = seed;
        let mut raw: Vec<u8> = (0..n * block)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        for (j, blk) in raw.chunks_exact_mut(block).enumerate() {
            for &at in halves {
                let h = half::f16::from_f32(0.01 + 0.003 * (j + at) as f32);
                blk[at..at + 2].copy_from_slice(&h.to_le_bytes());
            }
        }
        raw
    }

    /// The byte at `at` of a repacked buffer and the f16 there.
    fn f16_at(g: &[u8], at: usize) -> f32 {
        half::f16::from_le_bytes([g[at], g[at + 1]]).to_f32()
    }

    fn word_at(g: &[u8], at: usize) -> u32 {
        u32::from_le_bytes([g[at], g[at + 1], g[at + 2], g[at + 3]])
    }

    /// Reads every value of `n` random blocks of `ty` back from their repacked group with `read`
    /// (the format file's steps: `read(group, raw, block, piece, v)` for value v of the piece)
    /// and compares it bit for bit with the CPU dequantization.
    fn assert_reads_back(
        ty: GgmlType,
        n: usize,
        halves: &[usize],
        read: impl Fn(&[u8], &[u8], usize, usize, usize) -> f32,
    ) {
        let r = repack_of(ty).expect("repacked");
        let raw = random_blocks(ty, n, halves, 7 + n as u32);
        let mut want = vec![0f32; n * 256];
        crate::quant::dequantize(ty, &raw, &mut want).expect("valid blocks");
        let mut g = Vec::new();
        repack_group(&r, &raw, &mut g);
        assert_eq!(
            g.len(),
            GROUP_BLOCKS * r.block,
            "a partial group is stored whole"
        );
        for j in 0..n {
            for s in 0..8 {
                for v in 0..32 {
                    let at = 256 * j + 32 * s + v;
                    let got = read(&g, &raw, j, s, v);
                    assert_eq!(
                        got.to_bits(),
                        want[at].to_bits(),
                        "{ty} block {j} value {}",
                        at % 256
                    );
                }
            }
        }
    }

    /// Byte `v % 4` of quant word `v / 4` (values 4i..4i+3 of a piece are word i's bytes).
    fn byte_of(word: u32, v: usize) -> u32 {
        (word >> (8 * (v % 4))) & 0xff
    }

    /// The Q6_K kernel's reading of a repacked group (`q6_k_piece` in shaders/formats/q6_k.wgsl,
    /// step by step) gives gguf's values, for every block of a partial group.
    #[test]
    fn repacked_q6_k_reads_back_as_gguf() {
        assert_reads_back(GgmlType::Q6_K, 5, &[208], |g, _, j, s, v| {
            let d = f16_at(g, 2 * j);
            let sw = word_at(g, (16 + 16 * j + 2 * s) & !3);
            let sh = (s as u32 & 1) * 16;
            let dl = [
                d * (((sw << (24 - sh)) as i32) >> 24) as f32,
                d * (((sw << (16 - sh)) as i32) >> 24) as f32,
            ];
            let i = v / 4;
            let lo = word_at(g, 144 + 128 * j + 16 * s + 4 * (i % 4)) >> (4 * (i / 4));
            let h = word_at(g, 1168 + 64 * j + 8 * s + 4 * (i / 4));
            let q = (lo & 0x0f0f_0f0f) | (((h >> (2 * (i % 4))) & 0x0303_0303) << 4);
            dl[i / 4] * (byte_of(q, v) as i32 - 32) as f32
        });
    }

    /// Likewise for Q4_K (`q4_k_words` and `dl_ml_k4`): shuffled quants, header unchanged.
    #[test]
    fn shuffled_q4_k_reads_back_as_gguf() {
        assert_reads_back(GgmlType::Q4_K, 3, &[0, 2], |g, raw, j, s, v| {
            let b = 144 * j;
            let (dl, ml) = dl_ml_k4(g, raw, b, s);
            let i = v / 4;
            let q = (word_at(g, b + 16 + 16 * s + 4 * (i % 4)) >> (4 * (i / 4))) & 0x0f0f_0f0f;
            dl * byte_of(q, v) as f32 - ml
        });
    }

    /// Likewise for Q5_K (`q5_words` and `dl_ml_k4`).
    #[test]
    fn shuffled_q5_k_reads_back_as_gguf() {
        assert_reads_back(GgmlType::Q5_K, 2, &[0, 2], |g, raw, j, s, v| {
            let b = 176 * j;
            let (dl, ml) = dl_ml_k4(g, raw, b, s);
            let qh = word_at(g, b + 16 + 4 * s);
            let i = (v / 4) as u32;
            let w = word_at(g, b + 48 + 16 * s + 4 * (v / 4 % 4));
            let q = if i < 4 {
                (w & 0x0f0f_0f0f) | ((qh << (4 - i)) & 0x1010_1010)
            } else {
                ((w >> 4) & 0x0f0f_0f0f) | ((qh >> (i - 4)) & 0x1010_1010)
            };
            dl * byte_of(q, v) as f32 - ml
        });
    }

    /// A repacked group holds each block's fields where the format files read them.
    #[test]
    fn repacked_groups_put_fields_side_by_side() {
        let r = repack_of(GgmlType::Q5_0).expect("Q5_0 is repacked");
        let raw: Vec<u8> = (0..8 * 22).map(|i| i as u8).collect();
        let mut out = Vec::new();
        repack_group(&r, &raw[..3 * 22], &mut out);
        assert_eq!(out.len(), 176, "a partial group is stored whole");
        for j in 0..3 {
            let blk = &raw[22 * j..22 * (j + 1)];
            assert_eq!(&out[2 * j..2 * j + 2], &blk[..2], "d of block {j}");
            let qh = u32::from_le_bytes([blk[2], blk[3], blk[4], blk[5]]);
            assert_eq!(
                &out[16 + 4 * j..20 + 4 * j],
                &transpose_qh(qh).to_le_bytes()
            );
            assert_eq!(
                &out[48 + 16 * j..64 + 16 * j],
                &blk[6..22],
                "qs of block {j}"
            );
        }
        assert!(
            out[48 + 48..].iter().all(|&b| b == 0),
            "missing blocks are zero"
        );
        assert_eq!(stored_len(GgmlType::Q5_0, 440), 528);
        assert_eq!(stored_len(GgmlType::Q4_K, 144), 1152);
        assert_eq!(stored_len(GgmlType::Q3_K, 110), 110);
    }
}
