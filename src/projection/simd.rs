//! Code generation for the hot loops, chosen when they run.
//!
//! The default x86-64 target has only SSE2. [`dispatch`] runs a kernel compiled
//! again for AVX-512 (512-bit vectors: the eight lanes of a Monte Carlo block in
//! one register) or for AVX2 (256-bit) when the processor has it, so a plain
//! `cargo build --release` (and every crate that links kunta) gets wide vectors
//! without `-C target-cpu`. The kernels it runs are marked `#[inline(always)]` so that
//! they are compiled into each copy.
//!
//! Rust never fuses a multiply and an add on its own, and the kernels keep their sums
//! in a fixed number of lanes added in a fixed order, so every copy gives the same
//! bits: a seed's results are the same on every x86-64 processor. The environment
//! variable `KUNTA_SIMD` caps the copy: `off` runs the plain one on any processor,
//! `avx2` the AVX2 one at most, anything else (`on`) none (the tests use them to
//! compare the copies byte for byte).
#![allow(unsafe_code)]

/// A kernel to run under [`dispatch`]. Implementations mark `run` `#[inline(always)]`
/// so that its body is compiled into each copy.
pub(crate) trait Kernel {
    /// What the kernel returns.
    type Output;
    /// Runs the kernel.
    fn run(self) -> Self::Output;
}

/// The copies of a kernel, widest last.
#[cfg(target_arch = "x86_64")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Width {
    Plain,
    Avx2,
    Avx512,
}

/// The widest copy the processor runs, capped by `KUNTA_SIMD` (`off`: the plain
/// copy; `avx2`: AVX2 at most; unset or any other value: no cap). Read once.
#[cfg(target_arch = "x86_64")]
fn widest() -> Width {
    static ON: std::sync::OnceLock<Width> = std::sync::OnceLock::new();
    *ON.get_or_init(|| {
        let cap = match std::env::var("KUNTA_SIMD") {
            Ok(v) if v.eq_ignore_ascii_case("off") => Width::Plain,
            Ok(v) if v.eq_ignore_ascii_case("avx2") => Width::Avx2,
            _ => Width::Avx512,
        };
        // Every feature `with_avx512` and the summaries' AVX-512 passes turn on, those
        // AVX512F implies too (AVX2, FMA, F16C, POPCNT), so that a virtual machine
        // hiding one of them gets the AVX2 copy.
        let has = if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
            && std::arch::is_x86_feature_detected!("avx512dq")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && std::arch::is_x86_feature_detected!("f16c")
            && std::arch::is_x86_feature_detected!("popcnt")
        {
            Width::Avx512
        } else if std::arch::is_x86_feature_detected!("avx2") {
            Width::Avx2
        } else {
            Width::Plain
        };
        has.min(cap)
    })
}

/// Whether the AVX-512 copy runs (the processor has it and `KUNTA_SIMD` does not cap
/// it): for a kernel's own AVX-512 instructions, behind this check.
#[inline]
pub(crate) fn avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    return widest() == Width::Avx512;
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Whether the AVX2 copy or a wider one runs (the processor has AVX2 and
/// `KUNTA_SIMD` does not turn it off): for a kernel's own AVX instructions, behind
/// this check.
#[inline]
pub(crate) fn avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    return widest() >= Width::Avx2;
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Runs `k`, compiled for AVX-512 or AVX2 when the processor supports it.
#[inline]
pub(crate) fn dispatch<K: Kernel>(k: K) -> K::Output {
    #[cfg(target_arch = "x86_64")]
    match widest() {
        // SAFETY: the processor supports every feature `with_avx512` is compiled
        // for, as checked by `widest`.
        Width::Avx512 => return unsafe { with_avx512(k) },
        // SAFETY: likewise for `with_avx2`.
        Width::Avx2 => return unsafe { with_avx2(k) },
        Width::Plain => {}
    }
    k.run()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn with_avx2<K: Kernel>(k: K) -> K::Output {
    k.run()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,avx512f,avx512vl,avx512dq,avx512bw")]
unsafe fn with_avx512<K: Kernel>(k: K) -> K::Output {
    k.run()
}

/// Copies `v` into `dst` with streaming stores, which write past the caches, where
/// `dst` starts on a 16-byte boundary and holds whole pairs of values; as a plain copy
/// otherwise. The values are the same either way. For buffers written once and read
/// back only after much else has been written (a Monte Carlo block's cells): their
/// lines are then not first read into the cache, and they do not push out what is
/// in it. The writing thread calls [`stream_fence`] before the values are handed
/// to another thread (or read back).
#[inline(always)]
pub(crate) fn stream_copy(dst: &mut [f64], v: &[f64]) {
    assert_eq!(dst.len(), v.len());
    #[cfg(target_arch = "x86_64")]
    if dst.len() == 8 && dst.as_ptr().addr().is_multiple_of(64) && avx512() {
        // SAFETY: the processor has AVX512F, as `avx512` checked; `dst` is eight
        // values from a 64-byte boundary and `v` eight values.
        unsafe { stream_line(dst.as_mut_ptr(), v.as_ptr()) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if dst.len().is_multiple_of(2) && dst.as_ptr().addr().is_multiple_of(16) {
        use std::arch::x86_64::{_mm_loadu_pd, _mm_stream_pd};
        for (d, s) in dst.chunks_exact_mut(2).zip(v.chunks_exact(2)) {
            // SAFETY: `d` is two values from a 16-byte aligned address and `s` two
            // values; SSE2 is part of every x86-64 processor.
            unsafe { _mm_stream_pd(d.as_mut_ptr(), _mm_loadu_pd(s.as_ptr())) };
        }
        return;
    }
    dst.copy_from_slice(v);
}

/// One cache line of eight values, `v` into `dst`, in one streaming store: in the
/// AVX-512 copy, a block's cell (held in one register) is so written whole.
///
/// # Safety
/// The processor must have AVX512F; `dst` is eight values from a 64-byte boundary,
/// `v` eight values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn stream_line(dst: *mut f64, v: *const f64) {
    use std::arch::x86_64::{_mm512_loadu_pd, _mm512_stream_pd};
    // SAFETY: as the caller's.
    unsafe { _mm512_stream_pd(dst, _mm512_loadu_pd(v)) };
}

/// Makes every [`stream_copy`] before it visible before any store after it, so that
/// a thread that sees the later stores (a block done) sees the values too.
#[inline(always)]
pub(crate) fn stream_fence() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE2 is part of every x86-64 processor.
    unsafe {
        std::arch::x86_64::_mm_sfence()
    };
}

/// Asks for the cache lines of `v` to be brought into the cache ahead of their use:
/// a hint, with no effect on any value.
#[inline(always)]
pub(crate) fn prefetch(v: &[f64]) {
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
    #[cfg(target_arch = "x86_64")]
    for line in v.chunks(8) {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: a prefetch reads nothing and cannot fault; SSE is part of every
        // x86-64 processor.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(line.as_ptr().cast()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_copy_copies_at_any_alignment_and_length() {
        let v: Vec<f64> = (0..9).map(|i| i as f64 * 1.5 - 2.0).collect();
        // From a 64-byte boundary, so that offset 0 with eight values is one line
        // (one AVX-512 store where the processor has it) and offset 8 another.
        #[repr(align(64))]
        struct Lines([f64; 32]);
        let mut lines = Lines([0.0; 32]);
        let buf = &mut lines.0;
        for off in [0, 1, 2, 3, 8] {
            for len in [0, 1, 2, 7, 8, 9] {
                buf.fill(f64::NAN);
                stream_copy(&mut buf[off..off + len], &v[..len]);
                stream_fence();
                assert_eq!(
                    &buf[off..off + len],
                    &v[..len],
                    "offset {off}, length {len}"
                );
                assert!(buf[..off]
                    .iter()
                    .chain(&buf[off + len..])
                    .all(|x| x.is_nan()));
            }
        }
    }
}
