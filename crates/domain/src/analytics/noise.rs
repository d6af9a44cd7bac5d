//! Exact integer noise for differential privacy: the discrete Laplace (two-sided geometric)
//! distribution, sampled with integer arithmetic only.
//!
//! Hand-written on purpose. Floating-point Laplace samplers leak through the gaps between the
//! doubles they can return (Mironov 2012), which is how the OpenDP, Google and IBM libraries
//! have all had to be fixed; the `opendp` crate keeps its mechanisms behind an unvetted
//! `contrib` feature, and no other maintained crate samples a discrete Laplace exactly. The
//! method is Canonne, Kamath and Steinke, "The Discrete Gaussian for Differential Privacy"
//! (NeurIPS 2020), algorithms 1 and 2: Bernoulli trials with rational probabilities, each
//! decided by a uniform integer drawn by rejection, so every probability is exact. It is short,
//! and the unit tests below check its distribution against the exact probabilities.
//!
//! Floating point appears only in [`Scale::ci95`] and [`Scale::threshold`], which compute
//! published parameters from public inputs (ε, δ, the bound on contributions), never a sample.

/// A source of uniformly random 64-bit words: the operating system's randomness in the service,
/// a seeded generator in tests.
pub trait RandomWords {
    /// The next word.
    fn next_u64(&mut self) -> u64;
}

/// The sampler's only failure: an intermediate product would not fit 128 bits. It needs
/// parameters far outside what [`crate::analytics`] accepts, or a run of trials with
/// probability below 2⁻¹⁰⁰.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the noise parameters are out of range")]
pub struct OutOfRange;

/// A uniform integer in `[0, n)`, `n ≥ 1`, without modulo bias: draws below `2¹²⁸ mod n` are
/// rejected, so what is left is a whole number of copies of `[0, n)`.
fn uniform(rng: &mut dyn RandomWords, n: u128) -> u128 {
    let floor = n.wrapping_neg() % n;
    loop {
        let r = (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64());
        if r >= floor {
            return r % n;
        }
    }
}

/// True with probability `num / den` exactly (`num ≤ den`, `den ≥ 1`).
fn bernoulli(rng: &mut dyn RandomWords, num: u128, den: u128) -> bool {
    uniform(rng, den) < num
}

/// True with probability `exp(-num/den)` for `0 ≤ num/den ≤ 1` (CKS algorithm 1, first case):
/// the parity of the first `k` at which a Bernoulli(γ/k) trial fails.
fn bernoulli_exp_at_most_one(
    rng: &mut dyn RandomWords,
    num: u128,
    den: u128,
) -> Result<bool, OutOfRange> {
    let mut k: u128 = 1;
    loop {
        let d = den.checked_mul(k).ok_or(OutOfRange)?;
        if !bernoulli(rng, num, d) {
            return Ok(k % 2 == 1);
        }
        k += 1;
    }
}

/// True with probability `exp(-num/den)` for any `num/den ≥ 0` (CKS algorithm 1): one
/// Bernoulli(e⁻¹) per whole unit, then the fractional rest.
fn bernoulli_exp(rng: &mut dyn RandomWords, num: u128, den: u128) -> Result<bool, OutOfRange> {
    let mut rest = num;
    while rest > den {
        if !bernoulli_exp_at_most_one(rng, 1, 1)? {
            return Ok(false);
        }
        rest -= den;
    }
    bernoulli_exp_at_most_one(rng, rest, den)
}

/// The scale of a discrete Laplace distribution, `t / s` (both ≥ 1): `P(x) ∝ exp(-|x|·s/t)`.
/// For a release with sensitivity Δ and privacy ε it is Δ/ε.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scale {
    /// Numerator of the scale.
    pub t: u128,
    /// Denominator of the scale.
    pub s: u128,
}

impl Scale {
    /// The scale Δ/ε for ε in thousandths (`epsilon_milli`, at least 1) and sensitivity Δ
    /// (at least 1).
    pub fn new(sensitivity: u64, epsilon_milli: u32) -> Result<Self, OutOfRange> {
        if sensitivity == 0 || epsilon_milli == 0 {
            return Err(OutOfRange);
        }
        Ok(Self {
            t: u128::from(sensitivity) * 1000,
            s: u128::from(epsilon_milli),
        })
    }

    /// One draw of the discrete Laplace distribution of this scale (CKS algorithm 2): a
    /// geometric magnitude made from a uniform remainder and a Bernoulli(e⁻¹) run, a fair sign,
    /// and negative zero rejected so that zero is not counted twice.
    pub fn sample(self, rng: &mut dyn RandomWords) -> Result<i64, OutOfRange> {
        let Scale { t, s } = self;
        loop {
            let u = uniform(rng, t);
            if !bernoulli_exp(rng, u, t)? {
                continue;
            }
            let mut v: u128 = 0;
            while bernoulli_exp(rng, 1, 1)? {
                v += 1;
            }
            let x = t.checked_mul(v).and_then(|tv| tv.checked_add(u));
            let y = x.ok_or(OutOfRange)? / s;
            let negative = bernoulli(rng, 1, 2);
            if negative && y == 0 {
                continue;
            }
            let y = i64::try_from(y).map_err(|_| OutOfRange)?;
            return Ok(if negative { -y } else { y });
        }
    }

    /// `ln p = -s/t`, where `p` is the ratio between the probabilities of neighbouring values
    /// (kept as a logarithm: for a wide scale `p` itself rounds to 1).
    fn ln_ratio(self) -> f64 {
        -(self.s as f64) / (self.t as f64)
    }

    /// The half-width `k` of the 95 % interval: the smallest `k` with `P(|X| > k) ≤ 0.05`,
    /// where `P(|X| > k) = 2·p^(k+1)/(1+p)`. Closed form, then at most two steps each way to
    /// correct rounding: no loop that a wide scale could make endless.
    pub fn ci95(self) -> u64 {
        let ln_p = self.ln_ratio();
        let p = ln_p.exp();
        let target = (0.025 * (1.0 + p)).ln();
        let passes = |k: f64| ln_p * (k + 1.0) <= target;
        let mut k = (target / ln_p - 1.0).ceil().max(0.0);
        for _ in 0..2 {
            if k > 0.0 && passes(k - 1.0) {
                k -= 1.0;
            }
        }
        for _ in 0..2 {
            if !passes(k) {
                k += 1.0;
            }
        }
        k.min(u64::MAX as f64) as u64
    }

    /// The smallest threshold `τ` such that, when every customer contributes at most
    /// `contributions` rows, the groups one customer alone could create are released (noisy
    /// count `≥ τ`) with probability at most `delta` in total (DP partition selection).
    ///
    /// With `P(X ≥ j) = p^j/(1+p)` for `j ≥ 1`, a customer's `m` groups holding `c₁…c_m` rows
    /// (`Σc ≤ C`) pass with probability at most `Σ p^(τ-cᵢ)/(1+p)`, a convex function of the
    /// `cᵢ` whose maximum is at a vertex: one group of `C-m+1` rows and `m-1` of one row each.
    pub fn threshold(self, contributions: u32, delta: f64) -> u64 {
        let ln_p = self.ln_ratio();
        let p = ln_p.exp();
        let c = f64::from(contributions.max(1));
        let worst = |tau: f64| {
            (1..=contributions.max(1))
                .map(|m| {
                    let m = f64::from(m);
                    ((ln_p * (tau - c + m - 1.0)).exp() + (m - 1.0) * (ln_p * (tau - 1.0)).exp())
                        / (1.0 + p)
                })
                .fold(0.0, f64::max)
        };
        // `worst` falls as τ grows: the smallest τ > C that passes, by doubling then bisection.
        let base = u64::from(contributions.max(1)) + 1;
        let passes = |tau: u64| worst(tau as f64) <= delta;
        if passes(base) {
            return base;
        }
        let (mut lo, mut step) = (base, 1u64);
        while !passes(base + step) {
            lo = base + step;
            step = step.saturating_mul(2);
            if step > 1 << 50 {
                return u64::MAX;
            }
        }
        let mut hi = base + step;
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if passes(mid) { hi = mid } else { lo = mid }
        }
        hi
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// SplitMix64: a seeded stand-in for the operating system's randomness in tests.
    pub(crate) struct Seeded(pub(crate) u64);

    impl RandomWords for Seeded {
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
    }

    /// Pearson's χ² of `draws` samples against the exact discrete Laplace probabilities, with
    /// the values beyond ±`edge` pooled into one tail cell.
    fn chi_square(scale: Scale, draws: usize, edge: i64, seed: u64) -> (f64, usize) {
        let mut rng = Seeded(seed);
        let width = (2 * edge + 1) as usize;
        let mut seen = vec![0u64; width + 1];
        for _ in 0..draws {
            let x = scale.sample(&mut rng).unwrap();
            let cell = if x.abs() > edge {
                width
            } else {
                (x + edge) as usize
            };
            seen[cell] += 1;
        }
        let p = scale.ln_ratio().exp();
        let mass = |x: i64| (1.0 - p) / (1.0 + p) * p.powi(x.unsigned_abs() as i32);
        let mut chi = 0.0;
        let mut inside = 0.0;
        for (cell, &n) in seen.iter().enumerate().take(width) {
            let e = mass(cell as i64 - edge) * draws as f64;
            inside += e;
            chi += (n as f64 - e).powi(2) / e;
        }
        let tail = draws as f64 - inside;
        chi += (seen[width] as f64 - tail).powi(2) / tail;
        (chi, width) // degrees of freedom: cells − 1
    }

    #[test]
    fn discrete_laplace_matches_its_exact_distribution() {
        // Scale 2 (ε = 0.5, Δ = 1) and scale 0.8 (ε = 1.25), 10⁶ draws each. The χ² critical
        // values at α = 0.001 are 59.7 for 29 degrees of freedom and 37.7 for 15.
        let (chi, df) = chi_square(Scale::new(1, 500).unwrap(), 1_000_000, 14, 7);
        assert_eq!(df, 29);
        assert!(chi < 59.7, "χ² = {chi} for scale 2");
        let (chi, df) = chi_square(Scale::new(1, 1250).unwrap(), 1_000_000, 7, 11);
        assert_eq!(df, 15);
        assert!(chi < 37.7, "χ² = {chi} for scale 0.8");
    }

    #[test]
    fn a_biased_sampler_would_fail_the_test() {
        // The same statistic against the wrong scale rejects: the test has power.
        let mut rng = Seeded(3);
        let wrong = Scale::new(1, 400).unwrap();
        let right = Scale::new(1, 500).unwrap();
        let draws = 200_000;
        let mut seen = [0u64; 3];
        for _ in 0..draws {
            let x = wrong.sample(&mut rng).unwrap();
            if x.abs() <= 1 {
                seen[(x + 1) as usize] += 1;
            }
        }
        let p = right.ln_ratio().exp();
        let e0 = (1.0 - p) / (1.0 + p) * draws as f64;
        assert!((seen[1] as f64 - e0).abs() > 10.0 * e0.sqrt());
    }

    #[test]
    fn uniform_covers_its_range_evenly() {
        let mut rng = Seeded(5);
        let mut seen = [0u32; 3];
        for _ in 0..30_000 {
            seen[uniform(&mut rng, 3) as usize] += 1;
        }
        assert!(
            seen.iter().all(|&n| (9_500..10_500).contains(&n)),
            "{seen:?}"
        );
    }

    #[test]
    fn the_interval_holds_95_percent() {
        let scale = Scale::new(1, 1000).unwrap();
        let k = scale.ci95();
        // p = e⁻¹: 2p^(k+1)/(1+p) ≤ 0.05 first at k = 3.
        assert_eq!(k, 3);
        let mut rng = Seeded(9);
        let inside = (0..100_000)
            .filter(|_| scale.sample(&mut rng).unwrap().abs() <= k as i64)
            .count();
        assert!(inside >= 95_000, "{inside}");
        assert_eq!(Scale::new(1, 10).unwrap().ci95(), 300);
    }

    #[test]
    fn the_threshold_bounds_what_one_customer_can_reveal() {
        let scale = Scale::new(1, 1000).unwrap();
        let tau = scale.threshold(1, 1e-6);
        let p = scale.ln_ratio().exp();
        // One customer, one row: released with probability P(1 + X ≥ τ) = p^(τ-1)/(1+p).
        assert!(p.powf(tau as f64 - 1.0) / (1.0 + p) <= 1e-6);
        assert!(
            p.powf(tau as f64 - 2.0) / (1.0 + p) > 1e-6,
            "τ = {tau} is not the smallest"
        );
        // More rows per customer need a higher bar.
        let wide = Scale::new(5, 1000).unwrap();
        assert!(wide.threshold(5, 1e-6) > tau);
    }

    #[test]
    fn a_wide_scale_ends_rather_than_spinning() {
        // Δ/ε of 10¹⁷: p rounds to 1 in floating point; the interval is still finite.
        let wide = Scale {
            t: 100_000_000_000_000_000_000,
            s: 1000,
        };
        let k = wide.ci95();
        assert!(k > 100_000_000_000_000_000, "{k}");
        assert!(wide.threshold(100, 1e-6) > 0);
    }

    #[test]
    fn parameters_out_of_range_are_refused() {
        assert_eq!(Scale::new(0, 1), Err(OutOfRange));
        assert_eq!(Scale::new(1, 0), Err(OutOfRange));
    }
}
