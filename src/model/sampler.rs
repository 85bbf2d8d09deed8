//! Token sampling on the CPU from a logits vector: temperature, top-k, top-p, min-p, repetition
//! penalty and a seeded generator (same seed, same output). Greedy decoding (temperature 0) does
//! not come here: the GPU's argmax returns the token and 8 bytes are read back instead of logits.

/// Sampling settings; `Default` is greedy.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplerConfig {
    /// 0 = greedy.
    pub temperature: f32,
    /// Keep the k most likely tokens (0 = all).
    pub top_k: usize,
    /// Keep the smallest set whose probability reaches p (1 = all).
    pub top_p: f32,
    /// Drop tokens less likely than min_p × the most likely one (0 = none).
    pub min_p: f32,
    /// Divide positive logits (multiply negative ones) of already-seen tokens by this (1 = off).
    pub repeat_penalty: f32,
    /// How many of the latest tokens the penalty looks at.
    pub repeat_last_n: usize,
    pub seed: u64,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig {
            temperature: 0.0,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            seed: 0x5eed,
        }
    }
}

/// A seeded sampler.
pub struct Sampler {
    cfg: SamplerConfig,
    state: u64,
}

impl Sampler {
    pub fn new(cfg: SamplerConfig) -> Sampler {
        let state = cfg.seed ^ 0x9e37_79b9_7f4a_7c15;
        Sampler { cfg, state }
    }

    /// Whether this sampler is greedy (then the GPU argmax can stand in for it).
    pub fn is_greedy(&self) -> bool {
        self.cfg.temperature <= 0.0
    }

    fn next_f64(&mut self) -> f64 {
        // splitmix64: small, fast, and good enough to draw one token per step.
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Picks the next token from `logits`, given the tokens seen so far (for the penalty).
    /// Non-finite logits never win; an all-NaN vector gives token 0.
    pub fn sample(&mut self, logits: &[f32], history: &[u32]) -> u32 {
        let d = self.distribution(logits, history);
        if self.is_greedy() || d.total <= 0.0 {
            return d.ids.first().copied().unwrap_or(0);
        }
        self.draw(&d)
    }

    /// The distribution [`sample`](Self::sample) draws from: the penalty, temperature, top-k,
    /// min-p and top-p applied. Greedy: all the mass on the argmax.
    pub fn distribution(&self, logits: &[f32], history: &[u32]) -> Dist {
        let mut l: Vec<f32> = logits.to_vec();
        if self.cfg.repeat_penalty != 1.0 && self.cfg.repeat_penalty > 0.0 {
            let start = history.len().saturating_sub(self.cfg.repeat_last_n);
            let mut seen: Vec<u32> = history[start..].to_vec();
            seen.sort_unstable();
            seen.dedup();
            for id in seen {
                if let Some(v) = l.get_mut(id as usize) {
                    *v = if *v > 0.0 {
                        *v / self.cfg.repeat_penalty
                    } else {
                        *v * self.cfg.repeat_penalty
                    };
                }
            }
        }
        if self.is_greedy() {
            return Dist::point(argmax(&l));
        }
        // Candidates sorted by logit, highest first; ties by lower id.
        let mut c: Vec<(u32, f32)> = l
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .map(|(i, &v)| (i as u32, v))
            .collect();
        if c.is_empty() {
            return Dist {
                ids: vec![0],
                weight: vec![0.0],
                total: 0.0,
            };
        }
        c.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        if self.cfg.top_k > 0 && self.cfg.top_k < c.len() {
            c.truncate(self.cfg.top_k);
        }
        let t = f64::from(self.cfg.temperature);
        let max = f64::from(c[0].1);
        let mut p: Vec<f64> = c
            .iter()
            .map(|&(_, v)| ((f64::from(v) - max) / t).exp())
            .collect();
        let sum: f64 = p.iter().sum();
        p.iter_mut().for_each(|x| *x /= sum);
        let mut keep = p.len();
        if self.cfg.min_p > 0.0 {
            let floor = f64::from(self.cfg.min_p) * p[0];
            keep = keep.min(p.iter().take_while(|&&x| x >= floor).count().max(1));
        }
        if self.cfg.top_p < 1.0 {
            let mut acc = 0.0;
            let mut n = 0;
            for &x in &p[..keep] {
                acc += x;
                n += 1;
                if acc >= f64::from(self.cfg.top_p) {
                    break;
                }
            }
            keep = n.max(1);
        }
        p.truncate(keep);
        let total = p.iter().sum();
        Dist {
            ids: c[..keep].iter().map(|&(i, _)| i).collect(),
            weight: p,
            total,
        }
    }

    /// A uniform draw in [0, 1) from this sampler's generator.
    pub fn uniform(&mut self) -> f64 {
        self.next_f64()
    }

    /// Draws a token from `d`.
    pub fn draw(&mut self, d: &Dist) -> u32 {
        let mut r = self.next_f64() * d.total;
        for (i, &x) in d.weight.iter().enumerate() {
            if r < x {
                return d.ids[i];
            }
            r -= x;
        }
        d.ids.last().copied().unwrap_or(0)
    }
}

/// A distribution over a few tokens: `ids` with unnormalized `weight`s summing to `total`
/// (the sampler's candidates after its filters, most likely first).
#[derive(Clone, Debug, PartialEq)]
pub struct Dist {
    pub ids: Vec<u32>,
    pub weight: Vec<f64>,
    pub total: f64,
}

impl Dist {
    /// All the mass on `id`.
    pub fn point(id: u32) -> Dist {
        Dist {
            ids: vec![id],
            weight: vec![1.0],
            total: 1.0,
        }
    }

    /// The probability of `id`.
    pub fn prob(&self, id: u32) -> f64 {
        if self.total <= 0.0 {
            return 0.0;
        }
        self.ids
            .iter()
            .position(|&i| i == id)
            .map_or(0.0, |k| self.weight[k] / self.total)
    }

    /// max(self − q, 0), renormalized: what speculative sampling draws from after rejecting a
    /// draft that `q` proposed. `None` where nothing is left (p ≤ q everywhere: then p = q and
    /// the draft could not have been rejected).
    pub fn residual(&self, q: &Dist) -> Option<Dist> {
        let mut ids = Vec::new();
        let mut weight = Vec::new();
        for (&id, &w) in self.ids.iter().zip(&self.weight) {
            let r = w / self.total - q.prob(id);
            if r > 0.0 {
                ids.push(id);
                weight.push(r);
            }
        }
        let total: f64 = weight.iter().sum();
        (total > 0.0).then_some(Dist { ids, weight, total })
    }
}

/// Speculative sampling (Leviathan et al., Chen et al.): `draft[i]`, proposed with
/// probability `q[i]` (a point mass for a lookup draft), is accepted with probability
/// min(1, p(d)/q(d)) under the target's `p[i]`; at the first rejection the token is drawn from
/// max(p − q, 0) renormalized, and if every draft stands the next one is drawn from
/// `p[draft.len()]`. The tokens that come out are distributed exactly as sampling from `p`
/// token by token. Returns how many drafts were accepted and the token after them.
pub fn speculative_pick(
    sampler: &mut Sampler,
    p: &[Dist],
    q: &[Dist],
    draft: &[u32],
) -> (usize, u32) {
    for (i, &d) in draft.iter().enumerate() {
        if let Some(next) = judge_draft(sampler, &p[i], &q[i], d) {
            return (i, next);
        }
    }
    (draft.len(), sampler.draw(&p[draft.len()]))
}

/// One position of [`speculative_pick`]: `None` where draft `d` (proposed with probability
/// `q(d)`) stands under the target's `p`, else the token drawn in its place.
pub fn judge_draft(sampler: &mut Sampler, p: &Dist, q: &Dist, d: u32) -> Option<u32> {
    let (pd, qd) = (p.prob(d), q.prob(d));
    if qd > 0.0 && (pd >= qd || sampler.uniform() < pd / qd) {
        return None;
    }
    Some(match p.residual(q) {
        Some(r) => sampler.draw(&r),
        None => sampler.draw(p),
    })
}

/// Index of the largest finite value; ties go to the lowest index; 0 if there is none.
pub fn argmax(v: &[f32]) -> u32 {
    let mut best: Option<(usize, f32)> = None;
    for (i, &x) in v.iter().enumerate() {
        if x.is_nan() {
            continue;
        }
        if best.is_none_or(|(_, b)| x > b) {
            best = Some((i, x));
        }
    }
    best.map_or(0, |(i, _)| i as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(temperature: f32) -> SamplerConfig {
        SamplerConfig {
            temperature,
            ..SamplerConfig::default()
        }
    }

    #[test]
    fn greedy_is_argmax_with_low_index_ties_and_no_nan() {
        let mut s = Sampler::new(cfg(0.0));
        assert_eq!(s.sample(&[1.0, 3.0, 3.0, f32::NAN], &[]), 1);
        assert_eq!(argmax(&[f32::NAN, -5.0, -7.0]), 1);
    }

    #[test]
    fn same_seed_same_tokens_and_distribution_follows_temperature() {
        let logits: Vec<f32> = vec![2.0, 1.0, 0.5, 0.0, -1.0];
        let c = SamplerConfig {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            ..SamplerConfig::default()
        };
        let run = |seed| {
            let mut s = Sampler::new(SamplerConfig { seed, ..c.clone() });
            (0..4000)
                .map(|_| s.sample(&logits, &[]))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        // Frequencies within 4 standard deviations of softmax probabilities.
        let z: f64 = logits.iter().map(|&x| f64::from(x).exp()).sum();
        let draws = run(7);
        for (i, &x) in logits.iter().enumerate() {
            let p = f64::from(x).exp() / z;
            let f = draws.iter().filter(|&&t| t as usize == i).count() as f64 / 4000.0;
            let sd = (p * (1.0 - p) / 4000.0).sqrt();
            assert!((f - p).abs() < 4.0 * sd + 1e-3, "token {i}: {f} vs {p}");
        }
    }

    #[test]
    fn filters_and_penalty() {
        let logits = [5.0f32, 4.9, 0.0, -3.0];
        let mut s = Sampler::new(SamplerConfig {
            temperature: 1.0,
            top_k: 1,
            ..SamplerConfig::default()
        });
        assert!((0..50).all(|_| s.sample(&logits, &[]) == 0));
        let mut s = Sampler::new(SamplerConfig {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.5,
            ..SamplerConfig::default()
        });
        assert!((0..200).all(|_| s.sample(&logits, &[]) < 2));
        // A penalty of 100 on token 0 makes token 1 the greedy choice.
        let mut s = Sampler::new(SamplerConfig {
            repeat_penalty: 100.0,
            ..cfg(0.0)
        });
        assert_eq!(s.sample(&logits, &[0]), 1);
    }

    fn dist(w: &[f64]) -> Dist {
        Dist {
            ids: (0..w.len() as u32).collect(),
            weight: w.to_vec(),
            total: w.iter().sum(),
        }
    }

    /// Pearson's chi-square of `counts` against probabilities `p` (categories with p = 0 must
    /// have no counts: a draw there is an error, so it counts as infinite).
    fn chi_square(counts: &[usize], p: &[f64]) -> f64 {
        let n: usize = counts.iter().sum();
        let mut x2 = 0.0;
        for (&c, &pi) in counts.iter().zip(p) {
            if pi == 0.0 {
                if c > 0 {
                    return f64::INFINITY;
                }
                continue;
            }
            let e = pi * n as f64;
            x2 += (c as f64 - e).powi(2) / e;
        }
        x2
    }

    #[test]
    fn speculative_sampling_keeps_the_target_distribution() {
        // A two-token "model": p(x1) = P0, p(x2 | x1) = P1[x1], over 4 tokens (token 3 never
        // comes second after 0). Drafts: a point mass (lookup) on fixed tokens, or a draft
        // model's own distributions Q0, Q1[x1], sampled.
        let p0 = [0.5, 0.3, 0.15, 0.05];
        let p1 = [
            [0.1, 0.6, 0.3, 0.0],
            [0.25, 0.25, 0.25, 0.25],
            [0.7, 0.1, 0.1, 0.1],
            [0.05, 0.05, 0.1, 0.8],
        ];
        let q0 = [0.1, 0.2, 0.3, 0.4];
        let q1 = [0.4, 0.3, 0.2, 0.1];
        let expected: Vec<f64> = (0..16).map(|k| p0[k / 4] * p1[k / 4][k % 4]).collect();
        let n = 20_000;
        // df = 15 minus the impossible pair; 37.7 is chi-square's 0.001 quantile at df 15.
        let limit = 37.7;
        for mode in ["plain", "lookup-likely", "lookup-unlikely", "draft-model"] {
            let mut s = Sampler::new(SamplerConfig {
                temperature: 1.0,
                seed: 11,
                ..SamplerConfig::default()
            });
            let mut draft_sampler = Sampler::new(SamplerConfig {
                temperature: 1.0,
                seed: 12,
                ..SamplerConfig::default()
            });
            let mut counts = vec![0usize; 16];
            for _ in 0..n {
                let mut out: Vec<u32> = Vec::new();
                while out.len() < 2 {
                    let p_at = |prefix: &[u32]| match prefix {
                        [] => dist(&p0),
                        [a, ..] => dist(&p1[*a as usize]),
                    };
                    // Draft from where the output stands, up to the second token.
                    let (draft, q): (Vec<u32>, Vec<Dist>) = match (mode, out.len()) {
                        ("plain", _) => (vec![], vec![]),
                        ("lookup-likely", 0) => (vec![0, 1], vec![Dist::point(0), Dist::point(1)]),
                        ("lookup-unlikely", 0) => {
                            (vec![3, 2], vec![Dist::point(3), Dist::point(2)])
                        }
                        ("lookup-likely" | "lookup-unlikely", _) => (vec![1], vec![Dist::point(1)]),
                        (_, 0) => {
                            let a = draft_sampler.draw(&dist(&q0));
                            let b = draft_sampler.draw(&dist(&q1));
                            (vec![a, b], vec![dist(&q0), dist(&q1)])
                        }
                        _ => {
                            let b = draft_sampler.draw(&dist(&q1));
                            (vec![b], vec![dist(&q1)])
                        }
                    };
                    // The target's distributions after the output and each draft prefix.
                    let mut ctx = out.clone();
                    let mut p = vec![p_at(&ctx)];
                    for &d in &draft {
                        ctx.push(d);
                        p.push(p_at(&ctx));
                    }
                    let (acc, next) = speculative_pick(&mut s, &p, &q, &draft);
                    out.extend_from_slice(&draft[..acc]);
                    out.push(next);
                }
                counts[out[0] as usize * 4 + out[1] as usize] += 1;
            }
            let x2 = chi_square(&counts, &expected);
            assert!(
                x2 < limit,
                "{mode}: chi-square {x2:.1} over {n} pairs: {counts:?}"
            );
        }
        // The test can fail: accepting every draft (no p/q test) is far off.
        let mut counts = vec![0usize; 16];
        let mut s = Sampler::new(SamplerConfig {
            temperature: 1.0,
            ..SamplerConfig::default()
        });
        for _ in 0..n {
            let a = s.draw(&dist(&q0));
            let b = s.draw(&dist(&p1[a as usize]));
            counts[a as usize * 4 + b as usize] += 1;
        }
        assert!(chi_square(&counts, &expected) > 10.0 * limit);
    }

    #[test]
    fn residuals_and_probabilities() {
        let p = dist(&[2.0, 1.0, 1.0]);
        assert_eq!(p.prob(0), 0.5);
        assert_eq!(p.prob(7), 0.0);
        // A point mass on 0 removes token 0; what is left is renormalized.
        let r = p.residual(&Dist::point(0)).expect("mass left");
        assert_eq!((r.ids.clone(), r.prob(1)), (vec![1, 2], 0.5));
        // p = q leaves nothing.
        assert!(p.residual(&p).is_none());
        // The sampler's distribution is its draws' distribution, filters applied.
        let s = Sampler::new(SamplerConfig {
            temperature: 1.0,
            top_k: 2,
            top_p: 1.0,
            min_p: 0.0,
            ..SamplerConfig::default()
        });
        let d = s.distribution(&[0.0, 2.0, 1.0], &[]);
        assert_eq!(d.ids, [1, 2]);
        assert!((d.prob(1) - 1.0 / (1.0 + (-1.0f64).exp())).abs() < 1e-12);
        assert_eq!(
            Sampler::new(SamplerConfig::default()).distribution(&[0.0, 2.0], &[]),
            Dist::point(1)
        );
    }
}
