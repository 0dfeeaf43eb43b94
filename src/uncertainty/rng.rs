//! kunta's own random streams: xoshiro256++ seeded through SplitMix64, with normal
//! and Poisson draws.
//!
//! They are written out here rather than taken from a crate so that a seed gives the
//! same numbers in every version of kunta's dependencies: a run is reproducible from
//! its seed, bit for bit.

/// Poisson draws for the year kernel's general step (process noise), from each
/// (area of the group, lane)'s own stream.
pub(crate) struct Poisson<'r, const L: usize>(pub(crate) &'r mut [[Rng; L]]);

impl<const L: usize> crate::projection::kernel::Draw<L> for Poisson<'_, L> {
    #[inline(always)]
    fn count(&mut self, al: usize, l: usize, e: f64) -> f64 {
        self.0[al][l].poisson(e)
    }
}

/// A xoshiro256++ generator.
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

fn splitmix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    /// A stream determined by `keys` (e.g. seed, trajectory, area): different keys
    /// give independent-looking streams.
    pub fn new(keys: &[u64]) -> Rng {
        let mut x = 0x6B75_6E74_6121_u64; // "kunta!"
        for k in keys {
            let mut y = x ^ k.wrapping_mul(0xD1B5_4A32_D192_ED03);
            x = splitmix(&mut y);
        }
        let s = [
            splitmix(&mut x),
            splitmix(&mut x),
            splitmix(&mut x),
            splitmix(&mut x),
        ];
        Rng { s }
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform on the open interval (0, 1).
    #[inline]
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
    }

    /// Standard normal (Box–Muller, one value per two uniforms).
    #[inline]
    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// Poisson with mean `lambda` (0 for `lambda ≤ 0`): multiplication for small
    /// means, Hörmann's PTRS transformed rejection from 10 up.
    pub fn poisson(&mut self, lambda: f64) -> f64 {
        if lambda.is_nan() || lambda <= 0.0 {
            return 0.0;
        }
        if lambda < 10.0 {
            let limit = (-lambda).exp();
            let mut k = 0.0;
            let mut p = self.uniform();
            while p > limit {
                k += 1.0;
                p *= self.uniform();
            }
            return k;
        }
        let slam = lambda.sqrt();
        let loglam = lambda.ln();
        let b = 0.931 + 2.53 * slam;
        let a = -0.059 + 0.02483 * b;
        let inv_alpha = 1.1239 + 1.1328 / (b - 3.4);
        let vr = 0.9277 - 3.6224 / (b - 2.0);
        loop {
            let u = self.uniform() - 0.5;
            let v = self.uniform();
            let us = 0.5 - u.abs();
            let k = ((2.0 * a / us + b) * u + lambda + 0.43).floor();
            if us >= 0.07 && v <= vr {
                return k;
            }
            if k < 0.0 || (us < 0.013 && v > us) {
                continue;
            }
            if v.ln() + inv_alpha.ln() - (a / (us * us) + b).ln()
                <= -lambda + k * loglam - ln_factorial(k)
            {
                return k;
            }
        }
    }
}

/// `ln k!` (exact sums below 16, Stirling's series above).
fn ln_factorial(k: f64) -> f64 {
    if k < 16.0 {
        (2..=(k as u32)).map(|i| f64::from(i).ln()).sum()
    } else {
        let x = k + 1.0;
        (x - 0.5) * x.ln() - x + 0.5 * std::f64::consts::TAU.ln() + 1.0 / (12.0 * x)
            - 1.0 / (360.0 * x * x * x)
            + 1.0 / (1260.0 * x.powi(5))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..4).map(|_| Rng::new(&[1, 2]).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(Rng::new(&[1, 2]).next_u64(), Rng::new(&[1, 3]).next_u64());
        assert_ne!(Rng::new(&[1, 2]).next_u64(), Rng::new(&[2, 1]).next_u64());
    }

    fn moments(draw: impl Fn(&mut Rng) -> f64, n: usize) -> (f64, f64) {
        let mut r = Rng::new(&[7]);
        let xs: Vec<f64> = (0..n).map(|_| draw(&mut r)).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        (mean, var)
    }

    #[test]
    fn normal_has_mean_0_and_variance_1() {
        let n = 200_000;
        let (m, v) = moments(Rng::normal, n);
        // Four standard errors: 4/√n for the mean, 4·√(2/n) for the variance.
        assert!(m.abs() < 4.0 / (n as f64).sqrt(), "{m}");
        assert!((v - 1.0).abs() < 4.0 * (2.0 / n as f64).sqrt(), "{v}");
    }

    #[test]
    fn poisson_has_its_mean_and_variance() {
        let n = 100_000;
        for lambda in [0.3, 4.0, 9.9, 10.0, 37.5, 2500.0] {
            let (m, v) = moments(|r| r.poisson(lambda), n);
            let se = (lambda / n as f64).sqrt();
            assert!((m - lambda).abs() < 4.0 * se, "λ {lambda}: mean {m}");
            // The sample variance's standard error is about λ·√(2/n) for large λ.
            assert!(
                (v - lambda).abs()
                    < 5.0 * (lambda + lambda * lambda * 2.0).sqrt() / (n as f64).sqrt()
                        + 0.02 * lambda,
                "λ {lambda}: variance {v}"
            );
        }
        assert_eq!(Rng::new(&[1]).poisson(0.0), 0.0);
        assert_eq!(Rng::new(&[1]).poisson(-1.0), 0.0);
    }

    #[test]
    fn ln_factorial_is_continuous_across_the_switch() {
        let exact: f64 = (2..=20).map(|i| f64::from(i).ln()).sum();
        assert!((ln_factorial(20.0) - exact).abs() < 1e-10);
        let exact: f64 = (2..=15).map(|i| f64::from(i).ln()).sum();
        assert!((ln_factorial(15.0) - exact).abs() < 1e-12);
    }
}
