//! Code generation for the hot loop, chosen when it runs.
//!
//! The default x86-64 target has only SSE2. [`dispatch`] runs a closure compiled a
//! second time with AVX2 and FMA enabled when the processor has them, so a plain
//! `cargo build --release` (and every crate that links kunta) gets 256-bit vectors
//! without `-C target-cpu`. The kernels it runs are marked `#[inline(always)]` so that
//! they are compiled into that copy.
//!
//! Rust never fuses a multiply and an add on its own, and the kernels keep their sums
//! in a fixed number of lanes added in a fixed order, so a kernel gives the same bits
//! whichever copy runs, unless it opts in to fused multiply-adds through
//! [`Kernel::run_fma`]: the Monte Carlo kernel does (about 10 % faster), so its
//! results can differ in the last bits between processors with and without FMA. On
//! one machine they are always the same, whatever the number of threads.
#![allow(unsafe_code)]

/// A kernel to run under [`dispatch`]. Implementations mark `run` `#[inline(always)]`
/// so that its body is compiled into each copy.
pub(crate) trait Kernel {
    /// What the kernel returns.
    type Output;
    /// Runs the kernel.
    fn run(self) -> Self::Output;

    /// Runs the kernel where the processor has FMA: a kernel may fuse products and
    /// sums here (see the module's note on results).
    #[inline(always)]
    fn run_fma(self) -> Self::Output
    where
        Self: Sized,
    {
        self.run()
    }
}

/// Runs `k`, compiled for AVX2 and FMA when the processor supports them.
#[inline]
pub(crate) fn dispatch<K: Kernel>(k: K) -> K::Output {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the processor supports every feature `avx2_fma` is compiled for,
            // as checked just above.
            return unsafe { avx2_fma(k) };
        }
    }
    k.run()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2_fma<K: Kernel>(k: K) -> K::Output {
    k.run_fma()
}
