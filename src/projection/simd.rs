//! Code generation for the hot loops, chosen when they run.
//!
//! The default x86-64 target has only SSE2. [`dispatch`] runs a kernel compiled a
//! second time with AVX2 enabled when the processor has it, so a plain
//! `cargo build --release` (and every crate that links kunta) gets 256-bit vectors
//! without `-C target-cpu`. The kernels it runs are marked `#[inline(always)]` so that
//! they are compiled into that copy.
//!
//! Rust never fuses a multiply and an add on its own, and the kernels keep their sums
//! in a fixed number of lanes added in a fixed order, so both copies give the same
//! bits: a seed's results are the same on every x86-64 processor. Setting the
//! environment variable `KUNTA_SIMD=off` runs the plain copy on any processor (the
//! tests use it to compare the two copies byte for byte).
#![allow(unsafe_code)]

/// A kernel to run under [`dispatch`]. Implementations mark `run` `#[inline(always)]`
/// so that its body is compiled into each copy.
pub(crate) trait Kernel {
    /// What the kernel returns.
    type Output;
    /// Runs the kernel.
    fn run(self) -> Self::Output;
}

/// Whether the AVX2 copy may run: the processor has AVX2 and `KUNTA_SIMD` is not
/// `off`. Read once.
#[cfg(target_arch = "x86_64")]
fn avx2() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| {
        std::env::var("KUNTA_SIMD").map_or(true, |v| !v.eq_ignore_ascii_case("off"))
            && std::arch::is_x86_feature_detected!("avx2")
    })
}

/// Runs `k`, compiled for AVX2 when the processor supports it.
#[inline]
pub(crate) fn dispatch<K: Kernel>(k: K) -> K::Output {
    #[cfg(target_arch = "x86_64")]
    {
        if avx2() {
            // SAFETY: the processor supports every feature `with_avx2` is compiled
            // for, as checked by `avx2`.
            return unsafe { with_avx2(k) };
        }
    }
    k.run()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn with_avx2<K: Kernel>(k: K) -> K::Output {
    k.run()
}
