//! The deterministic random stream behind generated inputs (`record --random`, `fuzz`,
//! bench inputs): SplitMix64, self-contained so that recorded inputs never change with a
//! dependency's version.

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and good enough for test inputs.
/// Self-contained so that recorded inputs never change with a dependency's version.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The stream of input `k` of data set `n`: independent of the other inputs' shapes,
    /// so adding an input or changing one's dims leaves the others' values alone.
    pub fn stream(seed: u64, n: u64, k: u64) -> Self {
        let mut mix = SplitMix64::new(seed);
        let a = mix.next_u64();
        let mut mix = SplitMix64::new(a ^ n.wrapping_mul(0xD1B5_4A32_D192_ED03));
        let b = mix.next_u64();
        let mut mix = SplitMix64::new(b ^ k.wrapping_mul(0x8CB9_2BA7_2F3D_8DD7));
        SplitMix64::new(mix.next_u64())
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// `n` standard normal values (Box–Muller, both values of each pair used).
    pub fn normals(&mut self, n: usize) -> Vec<f64> {
        let mut out = Vec::with_capacity(n + 1);
        while out.len() < n {
            let u1 = 1.0 - self.unit(); // (0, 1]: ln never sees 0
            let u2 = self.unit();
            let r = (-2.0 * u1.ln()).sqrt();
            let theta = std::f64::consts::TAU * u2;
            out.push(r * theta.cos());
            out.push(r * theta.sin());
        }
        out.truncate(n);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_reference_sequence() {
        // First outputs of SplitMix64 seeded with 0 (Vigna's reference implementation).
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(r.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(r.next_u64(), 0x06c4_5d18_8009_454f);
    }

    #[test]
    fn normals_have_mean_0_and_variance_1() {
        let v = SplitMix64::new(7).normals(20_001);
        assert_eq!(v.len(), 20_001);
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64;
        assert!(mean.abs() < 0.03, "{mean}");
        assert!((var - 1.0).abs() < 0.05, "{var}");
    }
}
