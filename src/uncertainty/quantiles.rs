//! Summaries of the trajectories: the mean and exact quantiles (type 7) of every
//! output cell. `Selector` buckets a cell's values by their leading bits and orders
//! only the buckets that hold a wanted order statistic.

#![allow(clippy::needless_range_loop)]

/// Mean and quantiles of one output over the trajectories, cell by cell.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Summary {
    /// Mean of each cell.
    pub mean: Vec<f64>,
    /// Per quantile level, the quantile of each cell.
    pub q: Vec<Vec<f64>>,
}

impl Summary {
    /// A summary of `cells` cells at `levels` quantile levels, all 0.
    pub fn zeros(cells: usize, levels: usize) -> Summary {
        Summary {
            mean: vec![0.0; cells],
            q: vec![vec![0.0; cells]; levels],
        }
    }
}

/// The mean and the quantiles (type 7: linear between order statistics, as R's
/// default and numpy's) of `values`.
pub fn summarise(values: &mut [f64], levels: &[f64]) -> (f64, Vec<f64>) {
    let mut q = vec![0.0; levels.len()];
    let mean = Selector::default().summarise(values, levels, &mut q);
    (mean, q)
}

/// The summary of each whole row of `nt` values of `rows` (none when `nt` is 0): the
/// rows' means and quantiles at `levels`, as [`summarise`] gives them, with one set
/// of buffers for all the rows.
pub fn summarise_rows(rows: &[f64], nt: usize, levels: &[f64]) -> Summary {
    let cells = rows.len().checked_div(nt).unwrap_or(0);
    if cells == 0 {
        return Summary::zeros(0, levels.len());
    }
    let stride = 1 + levels.len();
    let mut packed = vec![0.0; cells * stride];
    Selector::default().summarise_rows(&rows[..cells * nt], nt, nt, levels, &mut packed);
    let mut sm = Summary::zeros(cells, levels.len());
    for (k, p) in packed.chunks_exact(stride).enumerate() {
        super::gather::set_packed(&mut sm, k, p);
    }
    sm
}

/// Exact order statistics of many small sets of numbers, with reusable buffers.
///
/// The values are counted into buckets of equal width between their minimum and
/// maximum; the bucket of a value is a monotone function of it, so every value of a
/// lower bucket is at most every value of a higher one and the counts tell which
/// bucket holds each wanted order statistic. Only the values of those few buckets are
/// then collected and ordered. Sets with a value that is not finite fall back to
/// selection on integer keys.
#[derive(Debug, Default)]
pub(super) struct Selector {
    pub(super) bucket: Vec<u16>,
    /// The number of values in each bucket (four histograms while they are counted).
    pub(super) counts: Vec<u32>,
    /// Per bucket: 1 if it holds a wanted rank, 0 if not.
    pub(super) kept: Vec<u8>,
    /// The buckets that hold a wanted rank, ascending.
    pub(super) kept_ids: Vec<u16>,
    /// The kept values as integer keys that sort like them ([`sort_key`]).
    pub(super) collected: Vec<i64>,
    pub(super) keys: Vec<i64>,
    /// The wanted ranks, ascending, and their positions among the collected values.
    pub(super) want: Vec<usize>,
    /// Per level, the places in `want` of the two order statistics its quantile lies
    /// between; with the set size and levels they were worked out for.
    pub(super) level_ranks: Vec<[usize; 2]>,
    pub(super) planned_n: usize,
    pub(super) planned_levels: Vec<f64>,
    pub(super) at: Vec<usize>,
    /// Per level, the order statistics its quantile lies between.
    pub(super) pairs: Vec<[f64; 2]>,
}

impl Selector {
    /// Summarises the first `nt` values of each row of `rows` (rows `row` values
    /// apart, the last possibly cut to `nt`) into `packed`, `1 + levels` values a
    /// row: the mean, then the quantiles.
    pub(super) fn summarise_rows(
        &mut self,
        rows: &[f64],
        row: usize,
        nt: usize,
        levels: &[f64],
        packed: &mut [f64],
    ) {
        crate::projection::simd_dispatch(Rows {
            sel: self,
            rows,
            row,
            nt,
            levels,
            packed,
        });
    }

    /// Returns the mean of `v` and writes its quantiles at `levels` into `q`.
    #[inline(always)]
    pub(super) fn summarise(&mut self, v: &[f64], levels: &[f64], q: &mut [f64]) -> f64 {
        let [m] = moments([v]);
        self.summarise_with(v, m, levels, q)
    }

    /// [`Selector::summarise`] of `v` whose [`moments`] are `m`.
    #[inline(always)]
    fn summarise_with(&mut self, v: &[f64], m: Moments, levels: &[f64], q: &mut [f64]) -> f64 {
        if v.is_empty() {
            q.fill(f64::NAN);
            return f64::NAN;
        }
        self.pairs.resize(levels.len(), [0.0; 2]);
        let mut pairs = std::mem::take(&mut self.pairs);
        let (mean, order) = self.order_stats_with(v, m, levels, &mut pairs);
        match order {
            Order::Pairs => type7(v.len(), levels, &pairs, |x| x, q),
            Order::Constant(x) => q.fill(x),
            Order::NotFinite => {
                let mut copy = v.to_vec();
                let (_, qs) = summarise_keys(&mut copy, levels, &mut self.keys);
                q.copy_from_slice(&qs);
            }
        }
        self.pairs = pairs;
        mean
    }

    /// The mean of `v` (not empty), and per level of `levels` the two order
    /// statistics its type-7 quantile lies between, `[x₍⌊h⌋₎, x₍⌊h⌋+1₎]` (the first
    /// twice where the quantile is the first alone), into `pairs` ([`Order::Pairs`];
    /// the pairs are untouched otherwise). As the order statistics of any function of the values that is
    /// nondecreasing are the function's of theirs, [`type7`] then gives the quantiles
    /// of such a function exactly as if its values had been summarised.
    #[inline(always)]
    pub(super) fn order_stats(
        &mut self,
        v: &[f64],
        levels: &[f64],
        pairs: &mut [[f64; 2]],
    ) -> (f64, Order) {
        let [m] = moments([v]);
        self.order_stats_with(v, m, levels, pairs)
    }

    /// [`Selector::order_stats`] of `v` whose [`moments`] are `m`.
    #[inline(always)]
    fn order_stats_with(
        &mut self,
        v: &[f64],
        Moments { sum, min, max }: Moments,
        levels: &[f64],
        pairs: &mut [[f64; 2]],
    ) -> (f64, Order) {
        let n = v.len();
        let mean = sum / n as f64;
        if !(sum.is_finite() && min.is_finite() && max.is_finite()) {
            return (mean, Order::NotFinite);
        }
        if min == max {
            return (mean, Order::Constant(min));
        }
        self.plan_ranks(n, levels);
        // Buckets 0..=nb: the value's distance from the minimum in widths, rounded to
        // the nearest integer by adding 1.5·2⁵² (whose last place is 1) and reading
        // the low bits. Every step is monotone, so the bucket is too. About two values
        // a bucket: fewer to order than with four, for a longer count.
        let nb = (n / 2).next_power_of_two().clamp(16, 4096);
        let scale = nb as f64 / (max - min);
        if !scale.is_finite() {
            return (mean, Order::NotFinite);
        }
        const ROUND: f64 = 6_755_399_441_055_744.0;
        let nb = nb + 1;
        // A plain loop over two slices, which the compiler turns into vectors.
        self.bucket.resize(n, 0);
        for (b, x) in self.bucket.iter_mut().zip(v) {
            *b = ((x - min) * scale + ROUND).to_bits() as u16;
        }
        // Counted in four histograms, a value in four to each, added at the end: a
        // run of values in one bucket then does not make each count wait on the
        // one before it.
        self.counts.clear();
        self.counts.resize(4 * nb, 0);
        {
            let (c0, rest) = self.counts.split_at_mut(nb);
            let (c1, rest) = rest.split_at_mut(nb);
            let (c2, c3) = rest.split_at_mut(nb);
            let quads = self.bucket[..n].chunks_exact(4);
            for b in quads.remainder() {
                c0[usize::from(*b)] += 1;
            }
            for b in quads {
                c0[usize::from(b[0])] += 1;
                c1[usize::from(b[1])] += 1;
                c2[usize::from(b[2])] += 1;
                c3[usize::from(b[3])] += 1;
            }
            for i in 0..nb {
                c0[i] += c1[i] + c2[i] + c3[i];
            }
        }
        let sums = &self.counts[..nb];
        // Which buckets hold a wanted rank, and where those ranks fall among the
        // collected values (kept buckets in order, each in its own stretch). The
        // ranks ascend, so a rank's bucket is a new one or the last one kept.
        self.kept.clear();
        self.kept.resize(nb, 0);
        self.kept_ids.clear();
        self.at.clear();
        let (mut b, mut below, mut kept, mut start) = (0usize, 0usize, 0usize, 0usize);
        for &r in &self.want {
            // Eight buckets at a time while all eight lie below the rank, then one by
            // one: a walk of one add a bucket waits on each add before it.
            while let Some(eight) = sums.get(b..b + 8) {
                let s = eight.iter().sum::<u32>() as usize;
                if below + s > r {
                    break;
                }
                below += s;
                b += 8;
            }
            while below + sums[b] as usize <= r {
                below += sums[b] as usize;
                b += 1;
            }
            if self.kept[b] == 0 {
                self.kept[b] = 1;
                self.kept_ids.push(b as u16);
                start = kept;
                kept += sums[b] as usize;
            }
            self.at.push(start + (r - below));
        }
        // The values of kept buckets, in any order.
        self.collected.clear();
        // Eight places more, which the AVX-512 collect may write over.
        self.collected.resize(kept + 8, 0);
        let (bucket, col) = (&self.bucket[..n], &mut self.collected[..]);
        let len = collect(v, bucket, &self.kept, &self.kept_ids, col);
        debug_assert_eq!(len, kept);
        // Every value of a kept bucket is at most every value of a later one, so a
        // wanted rank's position among the collected values in order is its position
        // in its bucket plus the sizes of the kept buckets before it.
        // Sorted whole even when they are many (a cell of few distinct values, such
        // as teaching groups, keeps long runs of one value): the standard sort finds
        // such runs, and was faster than selecting the wanted ranks one by one.
        let values = &mut self.collected[..kept];
        sort_keys(values);
        let at = &self.at;
        for (pair, [lo, hi]) in pairs.iter_mut().zip(&self.level_ranks) {
            *pair = [values[at[*lo]], values[at[*hi]]].map(from_sort_key);
        }
        (mean, Order::Pairs)
    }

    /// The order statistics `levels` need of `n` values, ascending, into `want` —
    /// ⌊h⌋, and ⌊h⌋ + 1 to interpolate — and per level the places in `want` of the
    /// two its quantile lies between (the first twice where it is the first alone),
    /// into `level_ranks`; kept from one set to the next of the same size and levels.
    #[inline(always)]
    fn plan_ranks(&mut self, n: usize, levels: &[f64]) {
        if self.planned_n == n && self.planned_levels == levels {
            return;
        }
        wanted_ranks(n, levels, &mut self.want);
        let place = |r: usize| self.want.binary_search(&r).expect("a wanted rank");
        self.level_ranks = levels.iter().map(|p| rank_pair(n, *p).map(place)).collect();
        self.planned_n = n;
        self.planned_levels.clear();
        self.planned_levels.extend_from_slice(levels);
    }
}

/// The two order statistics (ranks from 0) that the type-7 quantile at level `p` of
/// `n` values lies between: `⌊h⌋` and `⌊h⌋ + 1`, `h = (n − 1)·p`; `⌊h⌋` twice where
/// the quantile is that order statistic alone.
#[inline(always)]
fn rank_pair(n: usize, p: f64) -> [usize; 2] {
    let h = (n - 1) as f64 * p;
    let r = h.floor() as usize;
    if h > r as f64 && r + 1 < n {
        [r, r + 1]
    } else {
        [r; 2]
    }
}

/// Every order statistic `levels` need of `n` values ([`rank_pair`]), ascending and
/// each once, into `want`.
fn wanted_ranks(n: usize, levels: &[f64], want: &mut Vec<usize>) {
    want.clear();
    want.extend(levels.iter().flat_map(|p| rank_pair(n, *p)));
    want.sort_unstable();
    want.dedup();
}

/// What [`Selector::order_stats`] found of a set of values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Order {
    /// The pairs of order statistics are written.
    Pairs,
    /// Every value is this one (numerically: zeros of both signs count as one):
    /// every quantile is it.
    Constant(f64),
    /// A value (or the spread) is not finite: the values are to be summarised by
    /// [`summarise_keys`].
    NotFinite,
}

/// The type-7 quantiles at `levels` of `n` values (`g` of each) from their order
/// statistics' `pairs` ([`Selector::order_stats`]), into `q`: linear between the two,
/// `g(lo) + frac · (g(hi) − g(lo))`.
#[inline(always)]
pub(super) fn type7(
    n: usize,
    levels: &[f64],
    pairs: &[[f64; 2]],
    g: impl Fn(f64) -> f64,
    q: &mut [f64],
) {
    for ((out, &p), [lo, hi]) in q.iter_mut().zip(levels).zip(pairs) {
        let h = (n - 1) as f64 * p;
        let r = h.floor() as usize;
        let frac = h - r as f64;
        let v_lo = g(*lo);
        *out = if frac > 0.0 && r + 1 < n {
            v_lo + frac * (g(*hi) - v_lo)
        } else {
            v_lo
        };
    }
}

/// The sum of `g` of each value of `v`, in the order [`Selector::summarise`] adds
/// the values for their mean (four running sums, a value in four to each, then the
/// rest), so that `sum_of(v, g) / n` is the mean of `g`'s values to the bit.
#[inline(always)]
pub(super) fn sum_of(v: &[f64], g: impl Fn(f64) -> f64) -> f64 {
    let mut s = [0.0; 4];
    let chunks = v.chunks_exact(4);
    let rest = chunks.remainder();
    for c in chunks {
        for l in 0..4 {
            s[l] += g(c[l]);
        }
    }
    let mut sum = (s[0] + s[1]) + (s[2] + s[3]);
    for x in rest {
        sum += g(*x);
    }
    sum
}

/// The sum, minimum and maximum of a set of values.
#[derive(Debug, Clone, Copy)]
pub(super) struct Moments {
    sum: f64,
    min: f64,
    max: f64,
}

/// The [`Moments`] of each of `R` sets of values of one length: the sum in four
/// running sums (a value in four to each, added pairwise at the end, then the rest
/// one by one), the least and the greatest likewise in four. With AVX the four are
/// one register and the `R` sets' registers side by side, so that no sum waits on
/// the one before it; the same bits either way.
#[inline(always)]
fn moments<const R: usize>(v: [&[f64]; R]) -> [Moments; R] {
    let n = v.first().map_or(0, |x| x.len());
    assert!(v.iter().all(|x| x.len() == n), "sets of one length");
    let whole = n / 4 * 4;
    let lanes: [([f64; 4], [f64; 4], [f64; 4]); R] = {
        #[cfg(target_arch = "x86_64")]
        if crate::projection::simd_avx2() {
            // SAFETY: the processor has AVX, as `simd_avx2` checked.
            #[allow(unsafe_code)]
            unsafe {
                moments_avx(v, whole)
            }
        } else {
            moments_lanes(v, whole)
        }
        #[cfg(not(target_arch = "x86_64"))]
        moments_lanes(v, whole)
    };
    std::array::from_fn(|r| {
        let (s, lo, hi) = &lanes[r];
        let (mut sum, mut min, mut max) = ((s[0] + s[1]) + (s[2] + s[3]), lo[0], hi[0]);
        for l in 1..4 {
            min = min.min(lo[l]);
            max = max.max(hi[l]);
        }
        for x in &v[r][whole..] {
            sum += x;
            min = min.min(*x);
            max = max.max(*x);
        }
        Moments { sum, min, max }
    })
}

/// The four running sums, least and greatest values of each set's first `whole`
/// values (a multiple of four), lane `l` over the values `l`, `l + 4`, …
#[inline(always)]
fn moments_lanes<const R: usize>(
    v: [&[f64]; R],
    whole: usize,
) -> [([f64; 4], [f64; 4], [f64; 4]); R] {
    std::array::from_fn(|r| {
        let (mut s, mut lo, mut hi) = ([0.0; 4], [f64::INFINITY; 4], [f64::NEG_INFINITY; 4]);
        for c in v[r][..whole].chunks_exact(4) {
            for l in 0..4 {
                s[l] += c[l];
                lo[l] = if c[l] < lo[l] { c[l] } else { lo[l] };
                hi[l] = if c[l] > hi[l] { c[l] } else { hi[l] };
            }
        }
        (s, lo, hi)
    })
}

/// [`moments_lanes`] with AVX: a set's four lanes are a register (`vminpd x, lo` is
/// `x < lo ? x : lo`, as there), the sets side by side.
///
/// # Safety
/// The processor must have AVX; every set holds at least `whole` values.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
#[target_feature(enable = "avx")]
unsafe fn moments_avx<const R: usize>(
    v: [&[f64]; R],
    whole: usize,
) -> [([f64; 4], [f64; 4], [f64; 4]); R] {
    use std::arch::x86_64::{
        _mm256_add_pd, _mm256_loadu_pd, _mm256_max_pd, _mm256_min_pd, _mm256_set1_pd,
        _mm256_setzero_pd, _mm256_storeu_pd,
    };
    let v: [&[f64]; R] = std::array::from_fn(|r| &v[r][..whole]);
    let mut s = [_mm256_setzero_pd(); R];
    let mut lo = [_mm256_set1_pd(f64::INFINITY); R];
    let mut hi = [_mm256_set1_pd(f64::NEG_INFINITY); R];
    for i in (0..whole).step_by(4) {
        for r in 0..R {
            let c = &v[r][i..i + 4];
            // SAFETY: `c` is four values; an unaligned load.
            let x = unsafe { _mm256_loadu_pd(c.as_ptr()) };
            s[r] = _mm256_add_pd(s[r], x);
            lo[r] = _mm256_min_pd(x, lo[r]);
            hi[r] = _mm256_max_pd(x, hi[r]);
        }
    }
    std::array::from_fn(|r| {
        let mut out = ([0.0; 4], [0.0; 4], [0.0; 4]);
        // SAFETY: each array is four values; unaligned stores.
        unsafe {
            _mm256_storeu_pd(out.0.as_mut_ptr(), s[r]);
            _mm256_storeu_pd(out.1.as_mut_ptr(), lo[r]);
            _mm256_storeu_pd(out.2.as_mut_ptr(), hi[r]);
        }
        out
    })
}

/// The most kept buckets [`collect_avx512`] compares a value's bucket with.
const MAX_KEPT_IDS: usize = 16;

/// Writes the [`sort_key`]s of the values of `v` whose bucket is kept (`flags`, by
/// bucket; `ids`, the kept buckets) into `col`, in any order; returns how many. With
/// AVX-512, 32 buckets are compared with each kept one at a time; otherwise eight
/// values' flags are read together. Only the kept values (a few in a hundred) are
/// copied. `col` holds eight places more than are kept (the AVX-512 collect stores
/// eight keys at a time).
#[inline(always)]
fn collect(v: &[f64], bucket: &[u16], flags: &[u8], ids: &[u16], col: &mut [i64]) -> usize {
    #[cfg(target_arch = "x86_64")]
    if flags.len() <= BITMAP_BUCKETS && crate::projection::simd_avx512() {
        // SAFETY: the processor has AVX512F, AVX512BW and POPCNT, as `simd_avx512` checked;
        // every bucket is below `BITMAP_BUCKETS`.
        #[allow(unsafe_code)]
        return unsafe { collect_bitmap(v, bucket, ids, col) };
    }
    #[cfg(target_arch = "x86_64")]
    if ids.len() <= MAX_KEPT_IDS && crate::projection::simd_avx512() {
        // SAFETY: the processor has AVX512F, AVX512BW and POPCNT, as `simd_avx512` checked.
        #[allow(unsafe_code)]
        return unsafe { collect_avx512(v, bucket, ids, col) };
    }
    let mut len = 0;
    let (vc, bc) = (v.chunks_exact(8), bucket.chunks_exact(8));
    let (vr, br) = (vc.remainder(), bc.remainder());
    for (xs, bs) in vc.zip(bc) {
        let mut m = 0u32;
        for (j, b) in bs.iter().enumerate() {
            m |= u32::from(flags[usize::from(*b)]) << j;
        }
        while m != 0 {
            col[len] = sort_key(xs[m.trailing_zeros() as usize]);
            len += 1;
            m &= m - 1;
        }
    }
    for (x, b) in vr.iter().zip(br) {
        if flags[usize::from(*b)] != 0 {
            col[len] = sort_key(*x);
            len += 1;
        }
    }
    len
}

/// The most buckets [`collect_bitmap`] looks up: a bit each in 64 words of 16.
const BITMAP_BUCKETS: usize = 1024;

/// [`collect`] with AVX-512 for buckets below [`BITMAP_BUCKETS`]: whether each of 32
/// buckets is kept is looked up at once in a bitmap of the kept buckets (its word
/// picked by a permutation, its bit by a shift), however many are kept.
///
/// # Safety
/// The processor must have AVX512F, AVX512BW and POPCNT; every bucket is below
/// [`BITMAP_BUCKETS`].
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
#[target_feature(enable = "avx512f,avx512bw,popcnt")]
unsafe fn collect_bitmap(v: &[f64], bucket: &[u16], ids: &[u16], col: &mut [i64]) -> usize {
    use std::arch::x86_64::{
        __m512i, _mm512_and_si512, _mm512_loadu_si512, _mm512_permutex2var_epi16,
        _mm512_set1_epi16, _mm512_srli_epi16, _mm512_srlv_epi16, _mm512_test_epi16_mask,
    };
    let mut words = [0u16; BITMAP_BUCKETS / 16];
    for id in ids {
        words[usize::from(*id) / 16] |= 1 << (id % 16);
    }
    // SAFETY: `words` is 128 bytes, two unaligned 64-byte loads.
    let (lo, hi) = unsafe {
        let at = words.as_ptr().cast::<__m512i>();
        (_mm512_loadu_si512(at), _mm512_loadu_si512(at.add(1)))
    };
    let (fifteen, one) = (_mm512_set1_epi16(15), _mm512_set1_epi16(1));
    // Word `b / 16` of the bitmap (of 64: the permutation reads six bits), then its
    // bit `b % 16`.
    let mask = |b| {
        let w = _mm512_permutex2var_epi16(lo, _mm512_srli_epi16::<4>(b), hi);
        _mm512_test_epi16_mask(_mm512_srlv_epi16(w, _mm512_and_si512(b, fifteen)), one)
    };
    let kept = |b: u16| words[usize::from(b) / 16] >> (b % 16) & 1 != 0;
    // SAFETY: the processor has AVX512F, AVX512BW and POPCNT, as the caller's.
    unsafe { collect_by_32(v, bucket, col, mask, kept) }
}

/// [`collect`] with AVX-512: each 32 buckets compared with every kept bucket at once.
///
/// # Safety
/// The processor must have AVX512F, AVX512BW and POPCNT; `ids` holds at most
/// [`MAX_KEPT_IDS`] buckets.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
#[target_feature(enable = "avx512f,avx512bw,popcnt")]
unsafe fn collect_avx512(v: &[f64], bucket: &[u16], ids: &[u16], col: &mut [i64]) -> usize {
    use std::arch::x86_64::{_mm512_cmpeq_epi16_mask, _mm512_set1_epi16};
    let mut wanted = [_mm512_set1_epi16(0); MAX_KEPT_IDS];
    for (w, id) in wanted.iter_mut().zip(ids) {
        *w = _mm512_set1_epi16(*id as i16);
    }
    let wanted = &wanted[..ids.len()];
    let mask = |b| {
        let mut m = 0u32;
        for w in wanted {
            m |= _mm512_cmpeq_epi16_mask(b, *w);
        }
        m
    };
    // SAFETY: the processor has AVX512F, AVX512BW and POPCNT, as the caller's.
    unsafe { collect_by_32(v, bucket, col, mask, |b| ids.contains(&b)) }
}

/// The pass both AVX-512 collects make: 32 buckets at a time, `mask` telling which
/// are kept (bit `j` for the bucket `j` of the 32), the [`sort_key`]s of their values
/// written into `col` without a branch on the mask: each eight values' keys are
/// compressed to the kept ones and stored whole at the next free place (the next
/// store writes over the rest), so `col` holds eight places more than are kept. The
/// last fewer than 32 buckets by `kept`. Returns how many.
///
/// # Safety
/// The processor must have AVX512F, AVX512BW and POPCNT.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
#[target_feature(enable = "avx512f,avx512bw,popcnt")]
#[inline]
unsafe fn collect_by_32(
    v: &[f64],
    bucket: &[u16],
    col: &mut [i64],
    mask: impl Fn(std::arch::x86_64::__m512i) -> u32,
    kept: impl Fn(u16) -> bool,
) -> usize {
    use std::arch::x86_64::{
        __m512i, _mm512_loadu_si512, _mm512_maskz_compress_epi64, _mm512_srai_epi64,
        _mm512_srli_epi64, _mm512_storeu_si512, _mm512_xor_si512,
    };
    let n = v.len().min(bucket.len());
    let mut len = 0;
    let mut i = 0;
    while i + 32 <= n {
        // SAFETY: `bucket[i..i + 32]` is in bounds (64 bytes); an unaligned load.
        let b = unsafe { _mm512_loadu_si512(bucket.as_ptr().add(i).cast::<__m512i>()) };
        let mut m = mask(b);
        // SAFETY: an empty assembly block that only names a register. It keeps the
        // mask in a general register, where its bytes are shifted out: the compiler
        // would otherwise store it and read its bytes back as a vector, a read that
        // waits for the store.
        unsafe { std::arch::asm!("/* {m:e} */", m = inout(reg) m, options(pure, nomem, nostack)) };
        for j in 0..4 {
            let m8 = m as u8;
            m >>= 8;
            assert!(len + 8 <= col.len(), "room for eight keys");
            let at = i + 8 * j;
            // SAFETY: `v[at..at + 8]` is in bounds (at + 8 <= i + 32 <= n),
            // `col[len..len + 8]` too (just checked); unaligned loads and stores.
            unsafe {
                let x = _mm512_loadu_si512(v.as_ptr().add(at).cast::<__m512i>());
                // sort_key: the bits, the magnitude's flipped where the sign is set.
                let key = _mm512_xor_si512(x, _mm512_srli_epi64::<1>(_mm512_srai_epi64::<63>(x)));
                let packed = _mm512_maskz_compress_epi64(m8, key);
                _mm512_storeu_si512(col.as_mut_ptr().add(len).cast::<__m512i>(), packed);
            }
            len += m8.count_ones() as usize;
        }
        i += 32;
    }
    for j in i..n {
        if kept(bucket[j]) {
            col[len] = sort_key(v[j]);
            len += 1;
        }
    }
    len
}

/// The most keys [`sort_by_rank`] sorts: four registers of eight.
const RANK_SORT: usize = 32;

/// Sorts `v` ascending: with AVX-512 and at most [`RANK_SORT`] keys (the usual
/// collection: a few buckets of a few values) by each key's rank, otherwise by the
/// standard sort. The same order either way.
#[inline(always)]
fn sort_keys(v: &mut [i64]) {
    #[cfg(target_arch = "x86_64")]
    if v.len() <= RANK_SORT && crate::projection::simd_avx512() {
        // SAFETY: the processor has AVX512F, as `simd_avx512` checked; `v` holds at
        // most `RANK_SORT` keys.
        #[allow(unsafe_code)]
        unsafe {
            match v.len() {
                0..=1 => {}
                2..=8 => sort_by_rank::<1>(v),
                9..=16 => sort_by_rank::<2>(v),
                17..=24 => sort_by_rank::<3>(v),
                _ => sort_by_rank::<4>(v),
            }
        }
        return;
    }
    v.sort_unstable();
}

/// Sorts the (at most `8R`) keys of `v` by rank, without a branch on the keys: key
/// `i`'s place is the number of keys below it plus the number of keys equal to it
/// before it in `v`, counted in `R` registers of eight lanes (lane `l` of register
/// `r` for key `8r + l`) against each key in turn, then each key is written at its
/// place.
///
/// # Safety
/// The processor must have AVX512F; `v` holds at most `8R` keys.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn sort_by_rank<const R: usize>(v: &mut [i64]) {
    use std::arch::x86_64::{
        __m512i, _mm512_loadu_si512, _mm512_mask_add_epi64, _mm512_mask_cmple_epi64_mask,
        _mm512_mask_cmplt_epi64_mask, _mm512_set1_epi64, _mm512_setzero_si512, _mm512_storeu_si512,
    };
    let k = v.len();
    assert!(
        k <= 8 * R && R <= RANK_SORT / 8,
        "at most eight keys a register"
    );
    let mut keys = [i64::MAX; RANK_SORT];
    keys[..k].copy_from_slice(v);
    // SAFETY: `keys` holds `8R` values and more; unaligned loads.
    let regs: [__m512i; R] =
        std::array::from_fn(|r| unsafe { _mm512_loadu_si512(keys.as_ptr().add(8 * r).cast()) });
    let one = _mm512_set1_epi64(1);
    let mut rank = [_mm512_setzero_si512(); R];
    for (j, &key) in v.iter().enumerate() {
        let x = _mm512_set1_epi64(key);
        // The keys after key `j` (bit `i` for key `i`): key `j` counts for them where
        // it is at most theirs, for the others where it is below.
        let after = !0u64 << (j + 1);
        for r in 0..R {
            let later = (after >> (8 * r)) as u8;
            let m = _mm512_mask_cmple_epi64_mask(later, x, regs[r])
                | _mm512_mask_cmplt_epi64_mask(!later, x, regs[r]);
            rank[r] = _mm512_mask_add_epi64(rank[r], m, rank[r], one);
        }
    }
    let mut places = [0i64; RANK_SORT];
    for r in 0..R {
        // SAFETY: `places` holds `8R` values and more; unaligned stores.
        unsafe { _mm512_storeu_si512(places.as_mut_ptr().add(8 * r).cast(), rank[r]) };
    }
    // The places of the `k` keys are `0..k`, each once.
    let mut sorted = [0i64; RANK_SORT];
    for (key, place) in keys[..k].iter().zip(&places) {
        sorted[*place as usize % RANK_SORT] = *key;
    }
    v.copy_from_slice(&sorted[..k]);
}

/// [`Selector::summarise_rows`] as a kernel, so that its passes over the values are
/// compiled for AVX-512 or AVX2 where the processor has it (the same bits either way).
struct Rows<'s, 'v> {
    sel: &'s mut Selector,
    rows: &'v [f64],
    row: usize,
    nt: usize,
    levels: &'v [f64],
    packed: &'v mut [f64],
}

impl crate::projection::Kernel for Rows<'_, '_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let (stride, nt) = (1 + self.levels.len(), self.nt);
        let mut rows = self.rows.chunks(self.row).map(|r| &r[..nt]);
        let mut packed = self.packed.chunks_exact_mut(stride);
        // Four rows' moments at a time (their running sums side by side), then each
        // row's order statistics.
        loop {
            let four: [_; 4] = std::array::from_fn(|_| rows.next());
            let [Some(a), Some(b), Some(c), Some(d)] = four else {
                for (v, p) in four.into_iter().flatten().zip(&mut packed) {
                    p[0] = self.sel.summarise(v, self.levels, &mut p[1..]);
                }
                break;
            };
            for (v, m) in [a, b, c, d].into_iter().zip(moments([a, b, c, d])) {
                let Some(p) = packed.next() else { return };
                p[0] = self.sel.summarise_with(v, m, self.levels, &mut p[1..]);
            }
        }
    }
}

/// An integer that sorts as `f64::total_cmp` orders `v` (any value, NaN included,
/// has its place): integers sort faster than numbers by a comparison function.
#[inline(always)]
pub(super) fn sort_key(v: f64) -> i64 {
    let b = v.to_bits() as i64;
    b ^ (((b >> 63) as u64) >> 1) as i64
}

/// The number whose [`sort_key`] is `k`.
#[inline(always)]
pub(super) fn from_sort_key(k: i64) -> f64 {
    f64::from_bits((k ^ (((k >> 63) as u64) >> 1) as i64) as u64)
}

/// As [`summarise`] by selection on integer keys that sort like the numbers (any
/// value, NaN included, has its place).
pub(super) fn summarise_keys(
    values: &mut [f64],
    levels: &[f64],
    keys: &mut Vec<i64>,
) -> (f64, Vec<f64>) {
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n as f64;
    keys.clear();
    keys.extend(values.iter().map(|v| sort_key(*v)));
    // Every order statistic the levels need, found together: select the middle one,
    // then recurse into each side.
    let mut want = Vec::with_capacity(2 * levels.len());
    wanted_ranks(n, levels, &mut want);
    multi_select_by(keys, &want, 0, &i64::cmp);
    let pairs: Vec<[f64; 2]> = levels
        .iter()
        .map(|p| rank_pair(n, *p).map(|r| from_sort_key(keys[r])))
        .collect();
    let mut out = vec![0.0; levels.len()];
    type7(n, levels, &pairs, |x| x, &mut out);
    (mean, out)
}

/// Puts the elements of `v` at the positions `want` (ascending, relative to `v` plus
/// `offset`) where a full sort by `cmp` would put them: selects the middle one, then
/// recurses into each side.
pub(super) fn multi_select_by<T>(
    v: &mut [T],
    want: &[usize],
    offset: usize,
    cmp: &impl Fn(&T, &T) -> std::cmp::Ordering,
) {
    if want.is_empty() || v.is_empty() {
        return;
    }
    let mid = want.len() / 2;
    let k = want[mid] - offset;
    v.select_nth_unstable_by(k, cmp);
    let (left, right) = v.split_at_mut(k);
    multi_select_by(left, &want[..mid], offset, cmp);
    multi_select_by(&mut right[1..], &want[mid + 1..], offset + k + 1, cmp);
}

#[cfg(test)]
mod tests;
