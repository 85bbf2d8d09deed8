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
            return argmax(&l);
        }
        // Candidates sorted by logit, highest first; ties by lower id.
        let mut c: Vec<(u32, f32)> = l
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .map(|(i, &v)| (i as u32, v))
            .collect();
        if c.is_empty() {
            return 0;
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
        let total: f64 = p[..keep].iter().sum();
        let mut r = self.next_f64() * total;
        for (i, &x) in p[..keep].iter().enumerate() {
            if r < x {
                return c[i].0;
            }
            r -= x;
        }
        c[keep - 1].0
    }
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
}
