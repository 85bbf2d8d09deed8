//! Shader assembly: WGSL lives in `shaders/*.wgsl`; a pipeline's source is a header
//! (`enable` directives), `params.wgsl`, `common.wgsl`, one block-format file and one op file, passed through a
//! tiny line preprocessor (`#if FLAG` / `#else` / `#endif`, nestable). Flags come from the
//! [`PipelineKey`](super::PipelineKey), so every variant is an explicit, lintable WGSL file.

use super::pipeline::{Op, PipelineKey};
use super::Tier;
use crate::quant::GgmlType;

const PARAMS: &str = include_str!("../../shaders/params.wgsl");
const COMMON: &str = include_str!("../../shaders/common.wgsl");
const ACT_FNS: &str = include_str!("../../shaders/act_fns.wgsl");
const X8: &str = include_str!("../../shaders/x8.wgsl");
const MATVEC_IO: &str = include_str!("../../shaders/matvec_io.wgsl");

fn format_source(ty: GgmlType) -> Option<&'static str> {
    Some(match ty {
        GgmlType::F32 => include_str!("../../shaders/formats/f32.wgsl"),
        GgmlType::F16 => include_str!("../../shaders/formats/f16.wgsl"),
        GgmlType::BF16 => include_str!("../../shaders/formats/bf16.wgsl"),
        GgmlType::Q4_0 => include_str!("../../shaders/formats/q4_0.wgsl"),
        GgmlType::Q4_1 => include_str!("../../shaders/formats/q4_1.wgsl"),
        GgmlType::Q5_0 => include_str!("../../shaders/formats/q5_0.wgsl"),
        GgmlType::Q5_1 => include_str!("../../shaders/formats/q5_1.wgsl"),
        GgmlType::Q8_0 => include_str!("../../shaders/formats/q8_0.wgsl"),
        GgmlType::Q2_K => include_str!("../../shaders/formats/q2_k.wgsl"),
        GgmlType::Q3_K => include_str!("../../shaders/formats/q3_k.wgsl"),
        GgmlType::Q4_K => include_str!("../../shaders/formats/q4_k.wgsl"),
        GgmlType::Q5_K => include_str!("../../shaders/formats/q5_k.wgsl"),
        GgmlType::Q6_K => include_str!("../../shaders/formats/q6_k.wgsl"),
        _ => return None,
    })
}

/// A hash (FNV-1a) of every weight kernel's source: what a cached measurement of the kernels
/// (the kernel family) is only valid for.
pub fn kernels_hash() -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    if no_weight_loads() {
        // Measured choices of kernels that read no weights are not the real kernels' choices.
        h ^= 0x6e6f_6c6f_6164_7321;
    }
    let ops = [
        Op::Dequant,
        Op::MatvecRow,
        Op::MatvecWg,
        Op::MatmulRow,
        Op::MatmulTiled,
        Op::MatmulFew,
    ];
    let formats = GgmlType::SUPPORTED.into_iter().filter_map(format_source);
    for src in [PARAMS, COMMON, ACT_FNS, X8, MATVEC_IO]
        .into_iter()
        .chain([crate::ops::matvec::ROWS_RULE])
        .chain(ops.into_iter().map(op_source))
        .chain(formats)
    {
        for b in src.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

fn op_source(op: Op) -> &'static str {
    match op {
        Op::Dequant => include_str!("../../shaders/dequant.wgsl"),
        op if op.is_matvec_row() => include_str!("../../shaders/matvec_row.wgsl"),
        op if op.is_matvec_wg() => include_str!("../../shaders/matvec_wg.wgsl"),
        Op::MatmulRow => include_str!("../../shaders/matmul_row.wgsl"),
        Op::MatmulTiled => include_str!("../../shaders/matmul_tiled.wgsl"),
        Op::MatmulFew => include_str!("../../shaders/matmul_few.wgsl"),
        Op::ReadBandwidth => include_str!("../../shaders/read_bandwidth.wgsl"),
        Op::AluPeak => include_str!("../../shaders/alu_peak.wgsl"),
        Op::GetRows => include_str!("../../shaders/get_rows.wgsl"),
        _ => unreachable!("every matvec op is matched above"),
    }
}

/// The `enable` directives a shader of `tier` starts with (`subgroups`: it uses subgroup
/// builtins below T2, to share x's loads). Natively, naga enables subgroup
/// builtins with the device feature and rejects `enable subgroups;`; in the browser the WGSL goes
/// to the browser's compiler as it is, and WGSL requires the directive there.
pub fn enables(tier: Tier, subgroups: bool) -> String {
    let mut header = String::new();
    if tier >= Tier::T1 {
        header.push_str("enable f16;\n");
    }
    if (tier >= Tier::T2 || subgroups) && cfg!(target_arch = "wasm32") {
        header.push_str("enable subgroups;\n");
    }
    header
}

/// Runs the line preprocessor over `src` with the given flags defined.
///
/// Lines `#if FLAG`, `#if !FLAG`, `#else`, `#endif` select text; everything else is copied.
/// Unbalanced directives are a programming error in a shipped shader and are caught by tests.
pub fn preprocess(src: &str, flags: &[&str]) -> String {
    let mut out = String::with_capacity(src.len());
    // Stack of (this branch active, parent active).
    let mut stack: Vec<(bool, bool)> = Vec::new();
    let mut active = true;
    for line in src.lines() {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix("#if ") {
            let rest = rest.trim();
            let (neg, name) = match rest.strip_prefix('!') {
                Some(n) => (true, n.trim()),
                None => (false, rest),
            };
            let cond = flags.contains(&name) != neg;
            stack.push((cond, active));
            active = active && cond;
        } else if t.starts_with("#else") {
            if let Some(top) = stack.last_mut() {
                top.0 = !top.0;
                active = top.1 && top.0;
            }
        } else if t.starts_with("#endif") {
            if let Some((_, parent)) = stack.pop() {
                active = parent;
            }
        } else if active {
            out.push_str(line);
        }
        // Dropped lines stay as blank lines so error messages keep the file's line numbers.
        out.push('\n');
    }
    out
}

/// `WISP_MEASURE=no-weight-loads`, a measurement for developers: every weight kernel makes its
/// weight words up from their index instead of loading them (`NO_LOADS` in `common.wgsl`), so
/// `wisp bench` times a step's arithmetic, x's loads and dispatches without the weights' loads.
/// Generated text is meaningless then; `wisp bench` says so. Read once per process.
pub fn no_weight_loads() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("WISP_MEASURE").is_ok_and(|v| v.trim() == "no-weight-loads"))
}

/// The full WGSL source of a pipeline.
pub fn shader_source(key: &PipelineKey) -> Option<String> {
    source_with(key, no_weight_loads())
}

/// [`shader_source`], with the weight kernels' loads replaced (`no_loads`) or not.
fn source_with(key: &PipelineKey, no_loads: bool) -> Option<String> {
    let mut flags: Vec<&str> = Vec::new();
    let header = enables(key.tier, key.share_x > 0);
    if key.tex && !key.op.reads_weights() {
        return None;
    }
    if no_loads && key.op.reads_weights() {
        flags.push("NO_LOADS");
    } else if key.tex {
        flags.push("TEX");
    } else if key.tier >= Tier::T1 {
        // The weights viewed as f16 pairs.
        flags.push("WH");
    }
    if key.tier >= Tier::T2 {
        flags.push("SUBGROUPS");
    }
    if key.rows8 {
        if !key.op.reads_weights() || !super::buffer::repacked(key.ty) {
            return None;
        }
        flags.push("ROWS8");
    }
    match key.share_x {
        0 => {}
        4 | 8 if key.op.is_row() => flags.push("SHARE_X"),
        _ => return None,
    }
    match key.op.glu() {
        Some(true) => flags.extend(["GLU", "GELU"]),
        Some(false) => flags.extend(["GLU", "SILU"]),
        None => {}
    }
    if key.split {
        if key.op.glu().is_some() || !(key.op.is_matvec_row() || key.op.is_matvec_wg()) {
            return None;
        }
        flags.push("SPLIT");
    }
    // `fast` precision: the format's `xdot32` and the integer dot product it uses.
    let x8 = if key.op.is_x8() {
        if !key.ty.has_x8_kernel() {
            return None;
        }
        flags.push("X8");
        if key.dot4 {
            flags.push("DOT4");
        }
        X8
    } else {
        ""
    };
    let act = if flags.contains(&"GLU") { ACT_FNS } else { "" };
    let full = match key.op {
        Op::ReadBandwidth | Op::AluPeak => format!("{header}{PARAMS}\n{}", op_source(key.op)),
        op if op.is_matvec_row() => format!(
            "{header}{PARAMS}\n{COMMON}\n{x8}\n{}\nconst ROWS: u32 = {}u;\nconst ROW_GROUP: u32 = {}u;\n{}\n{MATVEC_IO}\n{act}",
            format_source(key.ty)?,
            key.lanes.max(1),
            crate::ops::matvec::ROW_GROUP,
            op_source(key.op)
        ),
        op if op.is_matvec_wg() => format!(
            "{header}{PARAMS}\n{COMMON}\n{x8}\n{}\n{}\n{MATVEC_IO}\n{act}",
            format_source(key.ty)?,
            op_source(key.op)
        ),
        _ => format!(
            "{header}{PARAMS}\n{COMMON}\n{}\n{}",
            format_source(key.ty)?,
            op_source(key.op)
        ),
    };
    // x shared by `share_x` lanes (8 or 4) in SHARE_STEPS loads: literals, so that the loops
    // are unrolled and the broadcasts' lane ids are constants.
    let full = preprocess(&full, &flags);
    let full = if key.tex {
        full.replace("TEX_WIDTH", &format!("{}u", super::buffer::TEX_WIDTH))
    } else {
        full
    };
    // The few-column kernel's column count (one of matmul::FEW_COLS), a literal so that its
    // loops are unrolled.
    let full = if key.op == Op::MatmulFew {
        if !crate::ops::matmul::FEW_COLS.contains(&key.lanes) {
            return None;
        }
        full.replace("FEW_COLS", &format!("{}u", key.lanes))
    } else {
        full
    };
    let full = match key.share_x {
        0 => full,
        n => full
            .replace("SHARE_LANES", &format!("{n}u"))
            .replace("SHARE_STEPS", &format!("{}u", 8 / n)),
    };
    Some(unroll(&full))
}

/// Loops longer than this stay loops.
const MAX_UNROLL: u32 = 16;

/// Unrolls every `for (var i = 0u; i < Nu; i++) { … }` with a literal bound N of at most
/// [`MAX_UNROLL`] whose body neither assigns `i` nor leaves the loop: each copy is a block
/// `{ const i = Ku; … }`.
///
/// Why: with a constant index, the 32-value pieces (`V32`, `Q32`) and the words they are cut
/// from become plain registers. LLVM (lavapipe, and real GPUs' compilers) unrolls such loops
/// itself, but SwiftShader's Subzero JIT does not: it keeps each array in memory, indexes it per
/// lane, and first copies every indexed `let` array to a local variable. On SwiftShader this
/// doubles or triples every weight kernel. Loops bounded by a named constant (the row kernel's
/// `ROWS`) stay loops: unrolling them too made code four times larger to compile and slower
/// to run.
pub fn unroll(src: &str) -> String {
    let mut out = String::with_capacity(src.len() * 2);
    let mut rest = src;
    while let Some(at) = rest.find("for (var ") {
        let (before, from) = rest.split_at(at);
        out.push_str(before);
        match unrollable(from) {
            Some((var, n, body, len)) => {
                // Inner loops first: the body is unrolled before it is copied.
                let body = unroll(body);
                for k in 0..n {
                    out.push_str(&format!("{{ const {var} = {k}u;{body}}}"));
                }
                rest = &from[len..];
            }
            None => {
                out.push_str("for (var ");
                rest = &from["for (var ".len()..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// For text starting with `for (var `: (variable, trip count, body without its braces, length of
/// the whole loop) when the loop can be unrolled.
fn unrollable(s: &str) -> Option<(&str, u32, &str, usize)> {
    let close = s.find(')')?;
    let head = &s["for (var ".len()..close];
    let mut parts = head.split(';').map(str::trim);
    let (var, init) = parts.next()?.split_once('=')?;
    let var = var.trim();
    if init.trim() != "0u" {
        return None;
    }
    let (cv, bound) = parts.next()?.split_once('<')?;
    if cv.trim() != var || parts.next()? != format!("{var}++") {
        return None;
    }
    let bound = bound.trim();
    let n: u32 = bound.strip_suffix('u')?.parse().ok()?;
    if n == 0 || n > MAX_UNROLL {
        return None;
    }
    let open = close + s[close..].find('{')?;
    if !s[close + 1..open].trim().is_empty() {
        return None;
    }
    let mut depth = 0usize;
    let mut end = None;
    for (i, c) in s[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    end = Some(open + i);
                    break;
                }
            }
            _ => {}
        }
    }
    let end = end?;
    let body = &s[open + 1..end];
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let assigns_var = body.match_indices(var).any(|(i, _)| {
        let before = body[..i].chars().next_back().is_some_and(is_ident);
        let after = &body[i + var.len()..];
        !before
            && !after.starts_with(is_ident)
            && ["++", "--", "+=", "-=", "= ", "=\t"].iter().any(|op| {
                after.trim_start().starts_with(op) && !after.trim_start().starts_with("==")
            })
    });
    let leaves = ["break", "continue", "return"].iter().any(|w| {
        body.match_indices(w).any(|(i, _)| {
            !body[..i].chars().next_back().is_some_and(is_ident)
                && !body[i + w.len()..].starts_with(is_ident)
        })
    });
    if assigns_var || leaves {
        return None;
    }
    Some((var, n, body, end + 1))
}

#[cfg(test)]
mod tests {
    use super::{preprocess, unroll};

    #[test]
    fn preprocessor_selects_branches() {
        let src = "a\n#if X\nb\n#if !Y\nc\n#else\nd\n#endif\n#else\ne\n#endif\nf\n";
        let only = |s: String| {
            s.lines()
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join("")
        };
        assert_eq!(only(preprocess(src, &["X"])), "abcf");
        assert_eq!(only(preprocess(src, &["X", "Y"])), "abdf");
        assert_eq!(only(preprocess(src, &[])), "aef");
    }

    #[test]
    fn unroll_copies_constant_loops_only() {
        let src =
            "for (var r = 0u; r < 2u; r++) { for (var i = 0u; i < 2u; i++) { a[r] += b[i]; } }";
        assert_eq!(
            unroll(src),
            "{ const r = 0u; { const i = 0u; a[r] += b[i]; }{ const i = 1u; a[r] += b[i]; } }\
             { const r = 1u; { const i = 0u; a[r] += b[i]; }{ const i = 1u; a[r] += b[i]; } }"
        );
        // Kept as loops: a bound that is not a literal, too many trips, a body that leaves the
        // loop or assigns the variable, a step other than ++.
        for kept in [
            "for (var i = 0u; i < ROWS; i++) { a += 1.0; }",
            "for (var i = 0u; i < n; i++) { a += 1.0; }",
            "for (var i = 0u; i < 64u; i++) { a += 1.0; }",
            "for (var i = 0u; i < 4u; i++) { if (a > 1.0) { break; } }",
            "for (var i = 0u; i < 4u; i++) { i += 1u; }",
            "for (var i = 0u; i < 4u; i += 2u) { a += 1.0; }",
        ] {
            assert_eq!(unroll(kept), kept);
        }
    }
}

/// Every shader variant parses and validates with naga (the WGSL front end wgpu uses), on every
/// tier, without needing a GPU. Catches WGSL errors before any adapter sees them.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod naga_tests {
    use super::shader_source;
    use crate::gpu::{Op, PipelineKey, Tier};
    use crate::quant::GgmlType;
    use wgpu::naga;

    #[test]
    fn every_variant_validates() {
        let ops = [
            Op::Dequant,
            Op::MatvecRow,
            Op::MatvecWg,
            Op::MatvecRowGeglu,
            Op::MatvecRowSwiglu,
            Op::MatvecWgGeglu,
            Op::MatvecWgSwiglu,
            Op::MatvecRowX8,
            Op::MatvecRowX8Geglu,
            Op::MatvecRowX8Swiglu,
            Op::MatvecWgX8,
            Op::MatvecWgX8Geglu,
            Op::MatvecWgX8Swiglu,
            Op::MatmulRow,
            Op::MatmulTiled,
            Op::MatmulFew,
            Op::ReadBandwidth,
        ];
        let mut failures = Vec::new();
        for tier in [Tier::T0, Tier::T1, Tier::T2] {
            for op in ops {
                for (ty, dot4, split) in GgmlType::SUPPORTED.into_iter().flat_map(|t| {
                    [false, true]
                        .into_iter()
                        .flat_map(move |d| [(t, d, false), (t, d, true)])
                }) {
                    if dot4 && !op.is_x8() {
                        continue;
                    }
                    for (share_x, tex, rows8) in [
                        (0, false, false),
                        (4, false, false),
                        (8, false, false),
                        (0, true, false),
                        (4, true, false),
                        (8, false, true),
                        (0, false, true),
                        (4, true, true),
                    ] {
                        let key = PipelineKey {
                            op,
                            ty,
                            tier,
                            lanes: 8,
                            dot4,
                            split,
                            share_x,
                            tex,
                            rows8,
                        };
                        if rows8 && (!op.reads_weights() || !crate::gpu::buffer::repacked(ty)) {
                            assert!(shader_source(&key).is_none(), "rows8 {op:?} {ty}");
                            continue;
                        }
                        if share_x > 0 && !op.is_row() {
                            assert!(shader_source(&key).is_none(), "share_x {op:?} {tier:?}");
                            continue;
                        }
                        if tex && op == Op::ReadBandwidth {
                            assert!(shader_source(&key).is_none(), "tex {op:?}");
                            continue;
                        }
                        let plain_matvec =
                            op.glu().is_none() && (op.is_matvec_row() || op.is_matvec_wg());
                        if split && !plain_matvec {
                            assert!(shader_source(&key).is_none(), "split {op:?} {ty}");
                            continue;
                        }
                        if op.is_x8() && !ty.has_x8_kernel() {
                            assert!(shader_source(&key).is_none(), "{op:?} {ty}");
                            continue;
                        }
                        let src = shader_source(&key).expect("supported type has a shader");
                        let module = match naga::front::wgsl::parse_str(&src) {
                            Ok(m) => m,
                            Err(e) => {
                                failures.push(format!(
                                    "{op:?} {ty} {tier:?} split {split} share_x {share_x} tex {tex} rows8 {rows8}: {}",
                                    e.emit_to_string(&src)
                                ));
                                continue;
                            }
                        };
                        let caps = naga::valid::Capabilities::SHADER_FLOAT16
                            | naga::valid::Capabilities::SHADER_FLOAT16_IN_FLOAT32
                            | naga::valid::Capabilities::SUBGROUP;
                        let mut v =
                            naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps);
                        v.subgroup_stages(naga::valid::ShaderStages::COMPUTE);
                        v.subgroup_operations(naga::valid::SubgroupOperationSet::all());
                        if let Err(e) = v.validate(&module) {
                            failures.push(format!(
                                "{op:?} {ty} {tier:?} split {split} share_x {share_x} tex {tex} rows8 {rows8}: {}",
                                e.emit_to_string(&src)
                            ));
                        }
                    }
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    /// `WISP_MEASURE=no-weight-loads`: the weight kernels validate with their weight words made
    /// up, and read no weight binding (storage or texture).
    #[test]
    fn no_weight_loads_variants_validate_and_load_no_weights() {
        let mut failures = Vec::new();
        for (op, ty, tex, rows8) in [
            (Op::MatvecRow, GgmlType::Q4_K, false, false),
            (Op::MatvecRowX8Geglu, GgmlType::Q5_0, true, false),
            (Op::MatvecRowSwiglu, GgmlType::Q4_1, false, true),
            (Op::MatvecWg, GgmlType::Q6_K, false, false),
            (Op::MatmulRow, GgmlType::Q8_0, false, true),
            (Op::Dequant, GgmlType::F16, false, false),
        ] {
            for tier in [Tier::T0, Tier::T1, Tier::T2] {
                let key = PipelineKey {
                    op,
                    ty,
                    tier,
                    lanes: 2,
                    dot4: false,
                    split: false,
                    share_x: if op.is_row() && tier == Tier::T2 {
                        8
                    } else {
                        0
                    },
                    tex,
                    rows8,
                };
                let src = super::source_with(&key, true).expect("a source");
                for load in ["W[", "W4[", "WH[", "textureLoad(WT"] {
                    if src.contains(load) {
                        failures.push(format!("{op:?} {ty} {tier:?}: loads {load}"));
                    }
                }
                let module = naga::front::wgsl::parse_str(&src).expect("parses");
                let caps = naga::valid::Capabilities::SHADER_FLOAT16
                    | naga::valid::Capabilities::SHADER_FLOAT16_IN_FLOAT32
                    | naga::valid::Capabilities::SUBGROUP;
                let mut v = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps);
                v.subgroup_stages(naga::valid::ShaderStages::COMPUTE);
                v.subgroup_operations(naga::valid::SubgroupOperationSet::all());
                if let Err(e) = v.validate(&module) {
                    failures.push(format!("{op:?} {ty} {tier:?}: {}", e.emit_to_string(&src)));
                }
                // The real kernel does load its weights.
                let real = super::source_with(&key, false).expect("a source");
                assert!(
                    ["W[", "W4[", "WH[", "textureLoad(WT"]
                        .iter()
                        .any(|l| real.contains(l)),
                    "{op:?} {ty}: the real kernel loads weights"
                );
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}
