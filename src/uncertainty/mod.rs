//! Uncertainty: Monte Carlo trajectories of the projection and their summaries
//! (MODEL.md §5).
//!
//! Each trajectory is the projection of MODEL.md §2 with yearly multipliers on the
//! fertility level, the mortality level and every migration flow, drawn from a
//! log-normal AR(1) process, and optionally with process noise: deaths, births and
//! movers drawn as Poisson counts around their expected values. Trajectories are not
//! stored: areas (or, with a closed internal system, the whole municipality) are run
//! one at a time for every trajectory, the outputs of that area are summarised into a
//! mean and quantiles, and only the summaries are kept.
//!
//! # Reproducibility
//! A trajectory's multipliers come from a random stream keyed by `(seed, trajectory)`
//! and its process noise in area `a` from one keyed by `(seed, trajectory, a)`. Work
//! is split among threads by blocks of trajectories, and every block's numbers are
//! the same whichever thread computes it, so the output is identical bit for bit
//! for any number of threads.
//!
//! # The kernel
//! Eight trajectories run side by side in the lanes of `[f64; 8]` (two AVX registers
//! where the processor has AVX2, chosen at run time): the ages are the inner loop, so
//! births, the open group and the service sums are plain vertical adds, and an area's
//! state (2 × 101 ages × 8 lanes, 13 kB) stays in the L1 cache. The age pass is
//! specialised by the number of flows of each form (`FastFlows`). Closures are kept
//! out of the kernel: they are compiled outside the AVX2 copy.
//!
//! # Quantiles
//! Exact, of type 7: see `Selector` (bucketing, then ordering only the buckets that
//! hold a wanted order statistic).

// The kernels index lanes (`l in 0..LANES`) across several arrays at once: that is
// what the compiler turns into vector instructions.
#![allow(clippy::needless_range_loop)]

mod rng;

pub use rng::Rng;

use crate::population::Population;
use crate::projection::{
    lane, resolve, Direction, Flat, FlowValues, ProjectionError, ProjectionInputs, YearRates,
};
use crate::services::{
    segment_growth, service_fixed, year_values_lanes, Service, ServiceError, Weights, RESOURCES,
};
use ndarray::{Array2, ArrayView3};
use rayon::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Trajectories run side by side in one block.
pub const LANES: usize = 8;
type V = [f64; LANES];

/// A log-normal AR(1) process of yearly multipliers: `z_y = ar · z_{y−1} + sd · ε_y`
/// with `z` = 0 in the base year and `ε` standard normal; the multiplier is `e^z`
/// (its median is 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ar1 {
    /// Standard deviation of the yearly innovation of `ln` multiplier.
    pub sd: f64,
    /// Persistence: 1 is a random walk (uncertainty grows with the horizon), 0 makes
    /// every year independent.
    pub ar: f64,
}

impl Ar1 {
    /// Defaults for the fertility level: 4 % a year, persistent.
    pub const FERTILITY: Ar1 = Ar1 { sd: 0.04, ar: 0.9 };
    /// Defaults for the mortality level: 2 % a year, persistent.
    pub const MORTALITY: Ar1 = Ar1 { sd: 0.02, ar: 0.9 };
    /// Defaults for each migration flow: 15 % a year, half of it carried to the next.
    pub const MIGRATION: Ar1 = Ar1 { sd: 0.15, ar: 0.5 };
    /// No uncertainty.
    pub const NONE: Ar1 = Ar1 { sd: 0.0, ar: 0.0 };
}

/// The settings of a Monte Carlo run (`[uncertainty]` in a scenario).
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// Number of trajectories.
    pub trajectories: usize,
    /// Seed of every random stream.
    pub seed: u64,
    /// Fertility level multipliers.
    pub fertility: Ar1,
    /// Mortality level multipliers.
    pub mortality: Ar1,
    /// Multipliers of each migration flow (independent of each other).
    pub migration: Ar1,
    /// Deaths, births and movers drawn as Poisson counts around their expected values.
    pub process_noise: bool,
    /// Quantile levels, each in (0, 1), ascending.
    pub quantiles: Vec<f64>,
    /// The age groups of the population summaries.
    pub age_groups: AgeGroups,
}

/// The age groups the population is summarised by (MODEL.md §5): sums of single
/// years, because a planner reads the 7–12-year-olds, not each age.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgeGroups {
    /// These groups, in this order.
    Groups(Vec<AgeGroup>),
    /// Every single year of age, then all ages.
    SingleYears,
}

impl Default for AgeGroups {
    /// The planning groups 0–6, 7–12, 13–15, 16–18, 19–64, 65–74, 75+ and all ages.
    fn default() -> AgeGroups {
        let g = |lo, hi| AgeGroup { lo, hi };
        AgeGroups::Groups(vec![
            g(0, Some(6)),
            g(7, Some(12)),
            g(13, Some(15)),
            g(16, Some(18)),
            g(19, Some(64)),
            g(65, Some(74)),
            g(75, None),
            g(0, None),
        ])
    }
}

impl AgeGroups {
    /// The groups as ranges of age positions `lo..hi` for a population whose ages
    /// are `0..n` (the last the open group), with their labels. A group reaching past
    /// the top age stops at it.
    pub fn resolve(&self, n: usize) -> Vec<(std::ops::Range<usize>, String)> {
        let all = AgeGroup { lo: 0, hi: None };
        let groups: Vec<AgeGroup> = match self {
            AgeGroups::Groups(g) => g.clone(),
            AgeGroups::SingleYears => (0..n as u16)
                .map(|x| AgeGroup { lo: x, hi: Some(x) })
                .chain(std::iter::once(all))
                .collect(),
        };
        groups
            .iter()
            .map(|g| {
                let lo = usize::from(g.lo).min(n);
                let hi = g.hi.map_or(n, |h| (usize::from(h) + 1).min(n)).max(lo);
                (lo..hi, g.label())
            })
            .collect()
    }
}

/// Ages `lo..=hi`, or `lo` and over (up to the open top group) where `hi` is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgeGroup {
    /// The youngest age.
    pub lo: u16,
    /// The oldest age, or none for the top group.
    pub hi: Option<u16>,
}

impl AgeGroup {
    /// The group's label: `0-6`, `75+`, `all` (every age), `5` (one year).
    pub fn label(&self) -> String {
        match self.hi {
            None if self.lo == 0 => "all".into(),
            None => format!("{}+", self.lo),
            Some(h) if h == self.lo => h.to_string(),
            Some(h) => format!("{}-{h}", self.lo),
        }
    }

    /// Reads a label as [`AgeGroup::label`] writes it (`7-12`, `75+`, `all`, `5`);
    /// `None` for anything else or a group whose oldest age is below its youngest.
    pub fn parse(text: &str) -> Option<AgeGroup> {
        let t = text.trim();
        let age = |s: &str| s.trim().parse::<u16>().ok();
        if t.eq_ignore_ascii_case("all") {
            return Some(AgeGroup { lo: 0, hi: None });
        }
        if let Some(lo) = t.strip_suffix('+') {
            return age(lo).map(|lo| AgeGroup { lo, hi: None });
        }
        match t.split_once('-') {
            Some((lo, hi)) => {
                let (lo, hi) = (age(lo)?, age(hi)?);
                (hi >= lo).then_some(AgeGroup { lo, hi: Some(hi) })
            }
            None => age(t).map(|x| AgeGroup { lo: x, hi: Some(x) }),
        }
    }
}

/// The default quantile levels.
pub const QUANTILES: [f64; 5] = [0.05, 0.25, 0.5, 0.75, 0.95];

/// The column name of quantile level `q`: `p05` for 0.05, `p2_5` for 0.025.
pub fn quantile_name(q: f64) -> String {
    let pct = q * 100.0;
    if (pct - pct.round()).abs() < 1e-9 {
        format!("p{:02}", pct.round() as i64)
    } else {
        format!("p{}", format!("{pct}").replace('.', "_"))
    }
}

impl Default for Spec {
    fn default() -> Spec {
        Spec {
            trajectories: 1000,
            seed: 42,
            fertility: Ar1::FERTILITY,
            mortality: Ar1::MORTALITY,
            migration: Ar1::MIGRATION,
            process_noise: false,
            quantiles: QUANTILES.to_vec(),
            age_groups: AgeGroups::default(),
        }
    }
}

/// Which summaries to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Want {
    /// Population by area, sex (female, male, both), age group and year.
    pub population: bool,
    /// Components by area, sex and projected year.
    pub components: bool,
    /// Movers of each migration flow by area, sex and projected year (and a closed
    /// system's arrivals).
    pub migration: bool,
    /// Demand of every service.
    pub demand: bool,
    /// Resources and costs of every service.
    pub costs: bool,
}

impl Want {
    /// The demand of every service alone: the fast path, where a service's demand
    /// is summed straight from each trajectory's population.
    pub const DEMAND: Want = Want {
        population: false,
        components: false,
        migration: false,
        demand: true,
        costs: false,
    };
}

/// Alignment of the areas to control totals in every trajectory (MODEL.md §4), as
/// [`crate::projection::align`] does for the deterministic run: after each aligned
/// year, every trajectory's children of a parent are multiplied by
/// `control / Σ children` per sex and age (or share out the control where they are
/// all 0). As in the deterministic run the alignment is of the outputs: the
/// population and the services are taken from the aligned population, the next
/// year is projected from the unaligned one, and the components are the
/// projection's own.
///
/// Every trajectory meets the same control totals, so the intervals describe how the
/// parents' populations are spread over their areas, not the uncertainty of the
/// control forecast itself.
#[derive(Debug, Clone, Copy)]
pub struct AlignTo<'a> {
    /// Parent position (in `control`) of each area.
    pub parent_of: &'a [usize],
    /// Control population by `(year slot, parent, sex, age)`; only the year slots of
    /// `slots` are read.
    pub control: ndarray::ArrayView4<'a, f64>,
    /// The year slots aligned (ascending, none of them the base year).
    pub slots: &'a [usize],
}

/// What a block needs of an alignment.
struct AlignCtx<'a> {
    to: AlignTo<'a>,
    /// Per year slot, its position among the aligned slots.
    slot_of: Vec<Option<usize>>,
    /// The areas of each parent, in area order.
    children: Vec<Vec<usize>>,
    /// Each area's total population in the base year.
    base_totals: Vec<f64>,
}

/// Mean and quantiles of one output over the trajectories, cell by cell.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Summary {
    /// Mean of each cell.
    pub mean: Vec<f64>,
    /// Per quantile level, the quantile of each cell.
    pub q: Vec<Vec<f64>>,
}

impl Summary {
    fn zeros(cells: usize, levels: usize) -> Summary {
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

/// Exact order statistics of many small sets of numbers, with reusable buffers.
///
/// The values are counted into buckets of equal width between their minimum and
/// maximum; the bucket of a value is a monotone function of it, so every value of a
/// lower bucket is at most every value of a higher one and the counts tell which
/// bucket holds each wanted order statistic. Only the values of those few buckets are
/// then collected and ordered. Sets with a value that is not finite fall back to
/// selection on integer keys.
#[derive(Debug, Default)]
struct Selector {
    bucket: Vec<u16>,
    /// The number of values in each bucket.
    counts: Vec<u32>,
    /// Per bucket: 1 if it holds a wanted rank, 0 if not.
    kept: Vec<u8>,
    /// The kept values as integer keys that sort like them ([`sort_key`]).
    collected: Vec<i64>,
    keys: Vec<i64>,
    /// The wanted ranks, ascending, and their positions among the collected values.
    want: Vec<usize>,
    at: Vec<usize>,
}

impl Selector {
    /// Summarises each row of `nt` values of `rows` into `packed`, `1 + levels` values
    /// a row: the mean, then the quantiles.
    fn summarise_rows(&mut self, rows: &[f64], nt: usize, levels: &[f64], packed: &mut [f64]) {
        let stride = 1 + levels.len();
        for (row, p) in rows.chunks_exact(nt).zip(packed.chunks_exact_mut(stride)) {
            p[0] = self.summarise(row, levels, &mut p[1..]);
        }
    }

    /// Returns the mean of `v` and writes its quantiles at `levels` into `q`.
    fn summarise(&mut self, v: &[f64], levels: &[f64], q: &mut [f64]) -> f64 {
        let n = v.len();
        if n == 0 {
            q.fill(f64::NAN);
            return f64::NAN;
        }
        let (mut s, mut lo, mut hi) = ([0.0; 4], [f64::INFINITY; 4], [f64::NEG_INFINITY; 4]);
        let chunks = v.chunks_exact(4);
        let rest = chunks.remainder();
        for c in chunks {
            for l in 0..4 {
                s[l] += c[l];
                lo[l] = if c[l] < lo[l] { c[l] } else { lo[l] };
                hi[l] = if c[l] > hi[l] { c[l] } else { hi[l] };
            }
        }
        let (mut sum, mut min, mut max) = ((s[0] + s[1]) + (s[2] + s[3]), lo[0], hi[0]);
        for l in 1..4 {
            min = min.min(lo[l]);
            max = max.max(hi[l]);
        }
        for x in rest {
            sum += x;
            min = min.min(*x);
            max = max.max(*x);
        }
        let mean = sum / n as f64;
        if !(sum.is_finite() && min.is_finite() && max.is_finite()) {
            let mut copy = v.to_vec();
            let (_, qs) = summarise_keys(&mut copy, levels, &mut self.keys);
            q.copy_from_slice(&qs);
            return mean;
        }
        if min == max {
            q.fill(min);
            return mean;
        }
        // The order statistics the levels need: ⌊h⌋, and ⌊h⌋ + 1 to interpolate.
        self.want.clear();
        for &p in levels {
            let h = (n - 1) as f64 * p;
            let r = h.floor() as usize;
            self.want.push(r);
            if h > r as f64 && r + 1 < n {
                self.want.push(r + 1);
            }
        }
        self.want.sort_unstable();
        self.want.dedup();
        // Buckets 0..=nb: the value's distance from the minimum in widths, rounded to
        // the nearest integer by adding 1.5·2⁵² (whose last place is 1) and reading
        // the low bits. Every step is monotone, so the bucket is too.
        let nb = (n / 4).next_power_of_two().clamp(16, 4096);
        let scale = nb as f64 / (max - min);
        if !scale.is_finite() {
            let mut copy = v.to_vec();
            let (_, qs) = summarise_keys(&mut copy, levels, &mut self.keys);
            q.copy_from_slice(&qs);
            return mean;
        }
        const ROUND: f64 = 6_755_399_441_055_744.0;
        let nb = nb + 1;
        self.bucket.clear();
        self.bucket.extend(
            v.iter()
                .map(|x| ((x - min) * scale + ROUND).to_bits() as u16),
        );
        self.counts.clear();
        self.counts.resize(nb, 0);
        let sums = &mut self.counts[..];
        for b in &self.bucket {
            sums[usize::from(*b)] += 1;
        }
        // Which buckets hold a wanted rank, and where those ranks fall among the
        // collected values (kept buckets in order, each in its own stretch). The
        // ranks ascend, so a rank's bucket is a new one or the last one kept.
        self.kept.clear();
        self.kept.resize(nb, 0);
        self.at.clear();
        let (mut b, mut below, mut kept, mut start) = (0usize, 0usize, 0usize, 0usize);
        for &r in &self.want {
            while below + sums[b] as usize <= r {
                below += sums[b] as usize;
                b += 1;
            }
            if self.kept[b] == 0 {
                self.kept[b] = 1;
                start = kept;
                kept += sums[b] as usize;
            }
            self.at.push(start + (r - below));
        }
        // The values of kept buckets, in any order: eight values' flags are read
        // together, and only the kept ones (a few in a hundred) are copied.
        let flags = &self.kept[..];
        self.collected.clear();
        self.collected.resize(kept, 0);
        let (col, mut len) = (&mut self.collected[..], 0usize);
        let (vc, bc) = (v.chunks_exact(8), self.bucket[..n].chunks_exact(8));
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
        debug_assert_eq!(len, kept);
        // Every value of a kept bucket is at most every value of a later one, so a
        // wanted rank's position among the collected values in order is its position
        // in its bucket plus the sizes of the kept buckets before it.
        let values = &mut self.collected[..kept];
        if kept <= 128 {
            values.sort_unstable();
        } else {
            multi_select_by(values, &self.at, 0, &i64::cmp);
        }
        let (want, at) = (&self.want, &self.at);
        let stat = |r: usize| -> f64 {
            let j = want.binary_search(&r).expect("a wanted rank");
            from_sort_key(values[at[j]])
        };
        for (out, &p) in q.iter_mut().zip(levels) {
            let h = (n - 1) as f64 * p;
            let r = h.floor() as usize;
            let v_lo = stat(r);
            let frac = h - r as f64;
            *out = if frac > 0.0 && r + 1 < n {
                v_lo + frac * (stat(r + 1) - v_lo)
            } else {
                v_lo
            };
        }
        mean
    }
}

/// An integer that sorts as `f64::total_cmp` orders `v` (any value, NaN included,
/// has its place): integers sort faster than numbers by a comparison function.
#[inline(always)]
fn sort_key(v: f64) -> i64 {
    let b = v.to_bits() as i64;
    b ^ (((b >> 63) as u64) >> 1) as i64
}

/// The number whose [`sort_key`] is `k`.
#[inline(always)]
fn from_sort_key(k: i64) -> f64 {
    f64::from_bits((k ^ (((k >> 63) as u64) >> 1) as i64) as u64)
}

/// As [`summarise`] by selection on integer keys that sort like the numbers (any
/// value, NaN included, has its place).
fn summarise_keys(values: &mut [f64], levels: &[f64], keys: &mut Vec<i64>) -> (f64, Vec<f64>) {
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n as f64;
    keys.clear();
    keys.extend(values.iter().map(|v| sort_key(*v)));
    let back = from_sort_key;
    // Every order statistic the levels need (⌊h⌋, and ⌊h⌋ + 1 to interpolate),
    // found together: select the middle one, then recurse into each side.
    let mut want: Vec<usize> = Vec::with_capacity(2 * levels.len());
    for &p in levels {
        let h = (n - 1) as f64 * p;
        let lo = h.floor() as usize;
        want.push(lo);
        if h > lo as f64 && lo + 1 < n {
            want.push(lo + 1);
        }
    }
    want.sort_unstable();
    want.dedup();
    multi_select_by(keys, &want, 0, &i64::cmp);
    let out = levels
        .iter()
        .map(|&p| {
            let h = (n - 1) as f64 * p;
            let lo = h.floor() as usize;
            let v_lo = back(keys[lo]);
            let frac = h - lo as f64;
            if frac > 0.0 && lo + 1 < n {
                v_lo + frac * (back(keys[lo + 1]) - v_lo)
            } else {
                v_lo
            }
        })
        .collect();
    (mean, out)
}

/// Puts the elements of `v` at the positions `want` (ascending, relative to `v` plus
/// `offset`) where a full sort by `cmp` would put them: selects the middle one, then
/// recurses into each side.
fn multi_select_by<T>(
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

/// The summaries of one service: demand by `(segment, area, year)`, each resource and
/// each cost component by `(area, year)`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSummary {
    /// Demand by `(segment, area, year)`.
    pub demand: Summary,
    /// Resources the service defines, in the order floor_area_m2, groups,
    /// weekly_hours, teacher_fte, staff_fte, by `(area, year)`.
    pub resources: Vec<(&'static str, Summary)>,
    /// Costs by component (units, premises, staff, fixed, overhead, total), by
    /// `(area, year)`.
    pub costs: Vec<Summary>,
    /// Demand of all areas and segments, by year.
    pub total_demand: Summary,
    /// Total cost of all areas, by year (when costs are asked for).
    pub total_cost: Summary,
    /// Present value of the total cost (one cell), when costs are asked for.
    pub present_value: Summary,
    /// Per unit of [`ServiceInput::units`], in that order (empty when neither demand
    /// nor costs are asked for).
    pub units: Vec<UnitSummary>,
}

/// The summaries of one unit of the service network (MODEL.md §9), by year.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitSummary {
    /// Demand sent to the unit, `Σ_a demand[a] · share[a]`.
    pub demand: Summary,
    /// `demand / capacity`; not a number in a year the unit has no places.
    pub utilisation: Summary,
    /// `max(0, demand − capacity · (1 − spare_target))`.
    pub shortage: Summary,
    /// The floor area the demand needs, when costs are asked for and the service has a
    /// floor area.
    pub floor_area_need_m2: Option<Summary>,
    /// The share of trajectories with a shortage above 0.
    pub p_shortage: Vec<f64>,
}

/// The result of a Monte Carlo run.
#[derive(Debug, Clone, PartialEq)]
pub struct McResult {
    /// The number of trajectories run.
    pub trajectories: usize,
    /// The seed they were drawn with.
    pub seed: u64,
    /// The quantile levels.
    pub levels: Vec<f64>,
    /// Years from the base year.
    pub years: Vec<i32>,
    /// Population by `(area, sex, age group, year)`, if asked for: the sexes are
    /// female, male and both, the groups those of [`McResult::age_groups`].
    pub population: Option<Summary>,
    /// The labels of the population's age groups (`0-6`, …, `75+`, `all`).
    pub age_groups: Vec<String>,
    /// Components (births, deaths, in_migration, out_migration, unmet_out_migration,
    /// net_migration; see [`COMPONENTS`])
    /// by `(area, sex, projected year)`, if asked for.
    pub components: Option<Vec<Summary>>,
    /// The year slots that were projected (the components' years).
    pub projected: Vec<usize>,
    /// Movers by `(area, sex, projected year)`, one summary per row of
    /// `migration_rows`, if asked for.
    pub migration: Option<Vec<Summary>>,
    /// The rows of the migration summaries: (flow, whether the closed system's
    /// arrivals rather than the flow's own movers), in the order of the flows.
    pub migration_rows: Vec<(usize, bool)>,
    /// Per service, in the order given.
    pub services: Vec<ServiceSummary>,
    /// With an alignment: its factors by `(parent, sex, age, aligned year)`, the
    /// years in the order of [`AlignTo::slots`]; `NaN` in a trajectory where the
    /// children were all 0 and the control was shared out.
    pub alignment: Option<Summary>,
}

/// Why a Monte Carlo run failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum McError {
    /// The projection's inputs.
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    /// A service.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// A setting out of range.
    #[error("uncertainty: {0}")]
    Spec(String),
    /// More trajectories than fit in [`TRAJECTORY_MEMORY`].
    #[error("uncertainty: {trajectories} trajectories cannot run: this scenario's multipliers and sums per trajectory allow at most {limit} within kunta's limit of 8 GiB")]
    Trajectories {
        /// The number asked for.
        trajectories: usize,
        /// The most this scenario can run.
        limit: usize,
    },
}

/// A service with what the run needs of it.
pub struct ServiceInput<'a> {
    /// The service.
    pub service: &'a Service,
    /// Shares of a fixed cost per service by `(area, year)`: each area's share of the
    /// deterministic run's demand. Under uncertainty a per-service fixed cost is
    /// carried by the areas in these shares.
    pub fixed_shares: Option<&'a Array2<f64>>,
    /// Discount rate of the present value.
    pub discount_rate: f64,
    /// The units of the service's network, each with its share of every area's
    /// demand (see [`crate::network`]); each gets a [`UnitSummary`].
    pub units: Vec<UnitInput<'a>>,
}

/// A unit of the service network and its catchment.
#[derive(Debug, Clone, Copy)]
pub struct UnitInput<'a> {
    /// The unit.
    pub unit: &'a crate::network::Unit,
    /// Each area's share of the service's demand going to the unit.
    pub shares: &'a [f64],
}

/// The multipliers of every trajectory by year slot: fertility, mortality, flows.
struct Multipliers {
    /// `(trajectory, slot)`.
    fert: Vec<f64>,
    mort: Vec<f64>,
    /// `(trajectory, flow, slot)`.
    flows: Vec<f64>,
    ny: usize,
    nf: usize,
}

impl Multipliers {
    fn new(spec: &Spec, ny: usize, nf: usize) -> Multipliers {
        let n = spec.trajectories;
        let mut m = Multipliers {
            fert: vec![1.0; n * ny],
            mort: vec![1.0; n * ny],
            flows: vec![1.0; n * nf * ny],
            ny,
            nf,
        };
        let path = |rng: &mut Rng, p: Ar1, out: &mut [f64]| {
            let mut z = 0.0;
            out[0] = 1.0;
            for o in &mut out[1..] {
                z = p.ar * z + p.sd * rng.normal();
                *o = z.exp();
            }
        };
        // Each trajectory from its own stream, so in parallel with the same numbers.
        let flow_len = (nf * ny).max(1);
        let mut none = Vec::new();
        let flows: &mut [f64] = if nf == 0 {
            none.resize(n, 0.0);
            &mut none
        } else {
            &mut m.flows
        };
        m.fert
            .par_chunks_mut(ny)
            .zip(m.mort.par_chunks_mut(ny))
            .zip(flows.par_chunks_mut(flow_len))
            .enumerate()
            .for_each(|(t, ((fert, mort), flows))| {
                let mut rng = Rng::new(&[spec.seed, t as u64, 0]);
                path(&mut rng, spec.fertility, fert);
                path(&mut rng, spec.mortality, mort);
                for f in 0..nf {
                    path(&mut rng, spec.migration, &mut flows[f * ny..(f + 1) * ny]);
                }
            });
        m
    }

    fn get(&self, v: &[f64], t: usize, k: usize) -> f64 {
        v.get(t * self.ny + k).copied().unwrap_or(1.0)
    }

    fn flow(&self, t: usize, f: usize, k: usize) -> f64 {
        self.flows
            .get((t * self.nf + f) * self.ny + k)
            .copied()
            .unwrap_or(1.0)
    }
}

/// Where one block of trajectories writes, per cell and lane.
struct BlockOut<'o> {
    /// Population by `(cell, lane)`, cells `(area, sex, age group, year)` of the group.
    pop: &'o mut [f64],
    /// Components by `(component, cell, lane)`, cells `(area, sex, projected year)`.
    comps: &'o mut [f64],
    /// Movers by `(row, cell, lane)`, cells `(area, sex, projected year)`.
    mig: &'o mut [f64],
    /// Alignment factors by `(cell, lane)`, cells `(parent, sex, age, aligned year)`.
    align: &'o mut [f64],
    /// Per service: by `(cell, lane)`, cells demand `(segment, area, year)`, then
    /// resources `(resource, area, year)`, then costs `(component, area, year)`.
    services: Vec<&'o mut [f64]>,
    /// From one cell's lanes to the next.
    stride: usize,
    /// Working space: demand by `(segment, age)` per lane.
    scratch: Vec<V>,
}

/// Everything a block needs.
struct Ctx<'a> {
    spec: &'a Spec,
    want: Want,
    known: &'a [Option<ArrayView3<'a, f64>>],
    rates: &'a [Option<YearRates>],
    years: &'a [i32],
    n: usize,
    /// Every block's lane multipliers by `(block, year slot, j)`, `j` the fertility
    /// level, the mortality level, then each flow (times its own multiplier of the
    /// year): they do not depend on the area, so they are worked out once.
    lane_mult: Vec<V>,
    services: &'a [ServiceInput<'a>],
    weights: &'a [Weights],
    /// Per service, when only demand is wanted: how its demand cells are summed.
    demand: Vec<Option<DemandPlan<'a>>>,
    /// The age segments of the services summed as [`Sexes::Level`].
    level: LevelPlan,
    /// Per service: `(j, r)` when its demand is `r` times service `j`'s in every
    /// area, year and trajectory (see [`aliases`]); it then has no cells of its own.
    alias: Vec<Option<(usize, f64)>>,
    /// Which resources each service has (floor, groups, hours, teachers, staff).
    has: Vec<[bool; 5]>,
    projected: &'a [usize],
    /// Per year slot, per flow given as counts, the sum over indices per
    /// `(row, sex)`.
    count_sums: Vec<Vec<Vec<f64>>>,
    /// Per year slot: what every block needs of its rates, worked out once.
    plans: Vec<Option<YearPlan>>,
    /// Per projected year slot: its rate arrays as flat slices.
    flat: Vec<Option<YearFlat<'a>>>,
    /// The number of migration flows.
    nf: usize,
    /// The rows of the migration output: (flow, arrivals of its closed system).
    mig_rows: Vec<(usize, bool)>,
    /// The alignment, if any.
    align: Option<AlignCtx<'a>>,
    /// The population's age groups as ranges of ages.
    groups: Vec<std::ops::Range<usize>>,
    /// Per service and year slot: each segment's growth factors.
    grow: Vec<Vec<Vec<[f64; 4]>>>,
    /// Per service and year slot: the fixed cost per service and its overhead.
    fixed: Vec<Vec<(f64, f64)>>,
}

/// What every block needs of a projected year's rates, worked out once.
struct YearPlan {
    /// Out-rate flows without destinations (indices into the year's flows).
    rates: Vec<usize>,
    /// Count flows with their directions.
    counts: Vec<(usize, Direction)>,
    /// Out-rate flows with destinations: the closed internal systems.
    closed: Vec<usize>,
    /// Per `(row of q, sex)`: the largest death probability of an age (before the
    /// year's improvement factor and the lanes' multipliers).
    qmax: Vec<f64>,
    /// Per fertility row: the ages with a fertility rate other than 0.
    fertile: Vec<std::ops::Range<usize>>,
}

/// Year slot `k`'s rate arrays as flat slices (a projected year has them).
fn flat_of<'c>(ctx: &'c Ctx<'_>, k: usize) -> &'c YearFlat<'c> {
    ctx.flat[k]
        .as_ref()
        .expect("a projected year has its rates")
}

/// A projected year's rate arrays as flat slices.
struct YearFlat<'r> {
    q: Flat<'r>,
    /// Fertility by `(row, age)`, rows of `fert_w`.
    fert: &'r [f64],
    fert_rows: usize,
    fert_w: usize,
    /// Each flow's values.
    flows: Vec<Flat<'r>>,
}

impl<'r> YearFlat<'r> {
    fn new(r: &'r YearRates) -> YearFlat<'r> {
        let (fert_rows, fert_w) = r.fertility.dim();
        YearFlat {
            q: Flat::new(&r.q),
            fert: r
                .fertility
                .as_slice()
                .expect("rate arrays are in standard layout"),
            fert_rows,
            fert_w,
            flows: (0..r.flows.len())
                .map(|f| Flat::new(flow_values(r, f)))
                .collect(),
        }
    }
}

impl YearPlan {
    fn new(r: &YearRates, n: usize) -> YearPlan {
        let mut plan = YearPlan {
            rates: Vec::new(),
            counts: Vec::new(),
            closed: Vec::new(),
            qmax: Vec::new(),
            fertile: Vec::new(),
        };
        for (f, fl) in r.flows.iter().enumerate() {
            match (&fl.values, &fl.destinations) {
                (FlowValues::Counts(_), _) => plan.counts.push((f, fl.direction)),
                (FlowValues::OutRates(_), None) => plan.rates.push(f),
                (FlowValues::OutRates(_), Some(_)) => plan.closed.push(f),
            }
        }
        let w = r.q.dim().2;
        let q = r.q.as_slice().expect("rate arrays are in standard layout");
        plan.qmax = q
            .chunks_exact(w)
            .map(|l| l[..n].iter().fold(0.0, |m: f64, x| m.max(*x)))
            .collect();
        plan.fertile = r
            .fertility
            .rows()
            .into_iter()
            .map(|row| {
                let lo = row.iter().position(|f| *f != 0.0).unwrap_or(0);
                let hi = row.iter().rposition(|f| *f != 0.0).map_or(0, |h| h + 1);
                lo..hi.max(lo)
            })
            .collect();
        plan
    }

    /// Whether the specialised pass runs the year: no closed system and at most two
    /// flows of each form.
    fn fast(&self) -> bool {
        self.closed.is_empty() && self.rates.len() <= 2 && self.counts.len() <= 2
    }
}

/// Which sexes a demand sum takes in an (area, year).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Sexes {
    /// Both, with the same weights: one sum over `P_female + P_male`.
    Alike,
    Female,
    Male,
    /// Both, with their own weights.
    Both,
    /// Both, with one weight at every age and row (a constant coverage): the weight
    /// times the population of the service's ages, summed from age segments shared
    /// by all such services ([`LevelPlan`]).
    Level,
}

/// Age segments shared by the services whose demand is a weight times the
/// population of their ages ([`Sexes::Level`]): the ages of every such service, cut
/// at every service's first and last age. Each segment's population (both sexes) is
/// summed once an area and year, and each service's sum is its segments', so that
/// services over the same or nested ages (day care, pre-primary and child health;
/// home care and round-the-clock care) sum each age once.
#[derive(Debug, Default)]
struct LevelPlan {
    /// The segments, `start..end` of ages, ascending.
    segments: Vec<(usize, usize)>,
    /// Per service: its segments `first..end`, when it can be `Level`.
    of: Vec<Option<(usize, usize)>>,
}

impl LevelPlan {
    fn new(services: &[ServiceInput<'_>], plans: &[Option<DemandPlan<'_>>]) -> LevelPlan {
        let ranges: Vec<Option<(usize, usize)>> = services
            .iter()
            .zip(plans)
            .map(|(s, p)| {
                let p = p.as_ref()?;
                p.sexes.contains(&Sexes::Level).then(|| {
                    let lo = usize::from(s.service.ages.0);
                    (lo, lo + p.ages)
                })
            })
            .collect();
        let mut cuts: Vec<usize> = ranges
            .iter()
            .flatten()
            .flat_map(|(a, b)| [*a, *b])
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        let segments: Vec<(usize, usize)> = cuts
            .windows(2)
            .map(|w| (w[0], w[1]))
            .filter(|(a, b)| ranges.iter().flatten().any(|(lo, hi)| lo <= a && b <= hi))
            .collect();
        let of = ranges
            .iter()
            .map(|r| {
                r.map(|(lo, hi)| {
                    let first = segments.iter().position(|s| s.0 == lo).unwrap_or(0);
                    let end = segments
                        .iter()
                        .rposition(|s| s.1 == hi)
                        .map_or(first, |e| e + 1);
                    (first, end)
                })
            })
            .collect();
        LevelPlan { segments, of }
    }
}

/// For each service summed as [`Sexes::Level`] in every area and year: an earlier
/// such service over the same ages, with the same area rows, whose weight is a fixed
/// multiple `r` of its own in every area and year (home care and round-the-clock care
/// of the over-75s with constant coverages). The service's demand is then `r` times
/// that service's in every trajectory, so its quantiles are `r` times that service's
/// (`r ≥ 0` keeps them in order) and it is neither summed nor summarised again.
fn aliases(
    services: &[ServiceInput<'_>],
    plans: &[Option<DemandPlan<'_>>],
) -> Vec<Option<(usize, f64)>> {
    // The weight of a Level plan in each (area row, year).
    let level = |p: &DemandPlan<'_>| -> Option<Vec<f64>> {
        p.sexes.iter().all(|s| *s == Sexes::Level).then(|| {
            p.w.chunks_exact(2 * p.rows * p.ages)
                .map(|c| c[0])
                .collect()
        })
    };
    let levels: Vec<Option<Vec<f64>>> = plans.iter().map(|p| p.as_ref().and_then(level)).collect();
    let mut out: Vec<Option<(usize, f64)>> = vec![None; services.len()];
    for j in 0..services.len() {
        let (Some(wj), Some(pj)) = (&levels[j], &plans[j]) else {
            continue;
        };
        out[j] = (0..j).filter(|i| out[*i].is_none()).find_map(|i| {
            let (wi, pi) = (levels[i].as_ref()?, plans[i].as_ref()?);
            let same = services[i].service.ages.0 == services[j].service.ages.0
                && pi.ages == pj.ages
                && wi.len() == wj.len();
            if !same || !wi.iter().all(|w| *w > 0.0) {
                return None;
            }
            let r = wj[0] / wi[0];
            let fits = wi
                .iter()
                .zip(wj)
                .all(|(a, b)| (r * a - b).abs() <= 1e-14 * b.abs());
            (r >= 0.0 && r.is_finite() && fits).then_some((i, r))
        });
    }
    out
}

/// `Σ (a[i] + b[i])` per lane, four running sums: [`dot_pair`] with weights of 1
/// gives the same bits, but its multiply-adds take the pipes the age pass is bound by
/// (measured about 1 % more CPU time on the Monte Carlo workload).
#[inline(always)]
fn sum_pair(a: &[V], b: &[V]) -> V {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [[0.0; LANES]; 4];
    let (ac, bc) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ar, br) = (ac.remainder(), bc.remainder());
    for (aq, bq) in ac.zip(bc) {
        for j in 0..4 {
            for l in 0..LANES {
                acc[j][l] += aq[j][l] + bq[j][l];
            }
        }
    }
    for (j, (av, bv)) in ar.iter().zip(br).enumerate() {
        for l in 0..LANES {
            acc[j][l] += av[l] + bv[l];
        }
    }
    std::array::from_fn(|l| (acc[0][l] + acc[1][l]) + (acc[2][l] + acc[3][l]))
}

/// How a service's demand cells are summed when only demand is wanted: one cell per
/// row of weights by `(row, area, year)`. The rows are the segments, or, for a
/// service whose segments take fixed shares ([`crate::services::Split`]), the
/// coverage alone: the segments' summaries are then the row's times their shares.
struct DemandPlan<'w> {
    /// The service's weights, for their area rows ([`Weights::area_row`]).
    weights: &'w Weights,
    /// By `(area row, year, sex, row, age − age_min)`.
    w: &'w [f64],
    rows: usize,
    ages: usize,
    /// Per `(area row, year)`.
    sexes: Vec<Sexes>,
    /// The segments' shares by `(area row, year, segment)` when split.
    shares: Option<ndarray::ArrayView3<'w, f64>>,
}

impl<'w> DemandPlan<'w> {
    /// The row of the weights that holds area position `a`.
    fn row(&self, a: usize) -> usize {
        self.weights.area_row(a)
    }

    /// The segments' shares in area position `a` and year slot `k`, when split.
    fn shares_at(&self, a: usize, k: usize) -> Option<ndarray::ArrayView1<'_, f64>> {
        let sh = self.shares.as_ref()?;
        Some(sh.slice(ndarray::s![self.row(a), k, ..]))
    }

    fn new(weights: &'w Weights) -> DemandPlan<'w> {
        let (w, shares) = match &weights.split {
            Some(sp) => (&sp.coverage, Some(sp.shares.view())),
            None => (&weights.w, None),
        };
        let (na, ny, _, rows, ages) = w.dim();
        let w = w.as_slice().expect("weights are in standard layout");
        let sexes = w
            .chunks_exact(2 * rows * ages)
            .map(|cell| {
                let (f, m) = cell.split_at(rows * ages);
                if f.iter().zip(m).all(|(x, y)| x.to_bits() == y.to_bits()) {
                    if rows == 1 && f.iter().all(|x| x.to_bits() == f[0].to_bits()) {
                        Sexes::Level
                    } else {
                        Sexes::Alike
                    }
                } else if m.iter().all(|x| *x == 0.0) {
                    Sexes::Female
                } else if f.iter().all(|x| *x == 0.0) {
                    Sexes::Male
                } else {
                    Sexes::Both
                }
            })
            .collect::<Vec<_>>();
        debug_assert_eq!(sexes.len(), na * ny);
        DemandPlan {
            weights,
            w,
            rows,
            ages,
            sexes,
            shares,
        }
    }
}

/// One service's demand alone in one area of a group, resolved for a block (its
/// [`DemandPlan`] cut to the area): the weights and which sexes it sums, by year,
/// and where its cells lie.
struct DemandJob<'w> {
    /// By `(year, sex, row, age − age_min)`.
    w: &'w [f64],
    /// By year.
    sexes: &'w [Sexes],
    lo: usize,
    ages: usize,
    rows: usize,
    /// Cell `(row, area, year)` of the service is `row · per + first + year`.
    per: usize,
    first: usize,
    /// The service's position, and where the area's state starts in the group's.
    service: usize,
    state: usize,
}

impl DemandJob<'_> {
    /// For service `service`, whose ages start at `lo`, in area `a`, position `al` in
    /// a group of `ga` (`n` ages, `ny` year slots).
    #[allow(clippy::too_many_arguments)]
    fn new<'p>(
        plan: &'p DemandPlan<'_>,
        service: usize,
        a: usize,
        al: usize,
        ga: usize,
        lo: u16,
        n: usize,
        ny: usize,
    ) -> DemandJob<'p> {
        let ra = plan.row(a);
        let size = 2 * plan.rows * plan.ages * ny;
        DemandJob {
            w: &plan.w[ra * size..(ra + 1) * size],
            sexes: &plan.sexes[ra * ny..(ra + 1) * ny],
            lo: usize::from(lo),
            ages: plan.ages,
            rows: plan.rows,
            per: ga * ny,
            first: al * ny,
            service,
            state: al * 2 * n,
        }
    }

    /// Each row's sum in year slot `k` from the area's state `cur` (ages `0..n` of
    /// each sex) into its cell of `dst`.
    #[inline(always)]
    fn sums(&self, k: usize, n: usize, cur: &[V], dst: &mut [f64]) {
        let (rows, ni, lo) = (self.rows, self.ages, self.lo);
        let per_year = 2 * rows * ni;
        let (w0, w1) = self.w[k * per_year..(k + 1) * per_year].split_at(rows * ni);
        let (c0, c1) = (&cur[lo..lo + ni], &cur[n + lo..n + lo + ni]);
        let sexes = self.sexes[k];
        for g in 0..rows {
            let (w0, w1) = (&w0[g * ni..(g + 1) * ni], &w1[g * ni..(g + 1) * ni]);
            let sum = match sexes {
                Sexes::Alike | Sexes::Level => dot_pair(w0, c0, c1),
                Sexes::Female => dot_lanes(w0, c0),
                Sexes::Male => dot_lanes(w1, c1),
                Sexes::Both => {
                    let (f, m) = (dot_lanes(w0, c0), dot_lanes(w1, c1));
                    std::array::from_fn(|l| f[l] + m[l])
                }
            };
            let at = (g * self.per + self.first + k) * LANES;
            dst[at..at + LANES].copy_from_slice(&sum);
        }
    }
}

impl Ctx<'_> {
    fn service_cells(&self, i: usize, ga: usize) -> usize {
        if self.alias[i].is_some() {
            return 0;
        }
        let ny = self.years.len();
        let ng = self.services[i].service.segments.len();
        let nr = self.has[i].iter().filter(|h| **h).count();
        match &self.demand[i] {
            Some(plan) => plan.rows * ga * ny,
            None => (ng + nr + 6) * ga * ny,
        }
    }

    fn services_wanted(&self) -> bool {
        self.want.demand || self.want.costs
    }

    /// Whether the steps keep components and movers.
    fn sums_wanted(&self) -> bool {
        self.want.components || self.want.migration
    }
}

/// Runs `spec.trajectories` trajectories of the projection of `pop` from `base_year`
/// to `end_year` and summarises the outputs `want` asks for. `progress` is called
/// with (blocks done, blocks in all) as the run goes on.
///
/// # Errors
/// [`McError`] if the projection's rates cannot be resolved, a service's parameters
/// have no value for a cell, or a setting is out of range.
#[allow(clippy::too_many_arguments)]
pub fn run(
    pop: &Population,
    base_year: i32,
    end_year: i32,
    inputs: Option<&ProjectionInputs>,
    spec: &Spec,
    services: &[ServiceInput<'_>],
    want: Want,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<McResult, McError> {
    run_aligned(
        pop, base_year, end_year, inputs, spec, services, want, None, progress,
    )
}

/// As [`run`], with the areas aligned to control totals in every trajectory when
/// `align` is given (see [`AlignTo`]); the result then holds the alignment factors'
/// summaries.
///
/// # Errors
/// As [`run`], and [`McError::Spec`] for an alignment whose shapes do not fit the
/// population.
#[allow(clippy::too_many_arguments)]
pub fn run_aligned(
    pop: &Population,
    base_year: i32,
    end_year: i32,
    inputs: Option<&ProjectionInputs>,
    spec: &Spec,
    services: &[ServiceInput<'_>],
    want: Want,
    align: Option<&AlignTo<'_>>,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<McResult, McError> {
    if spec.trajectories == 0 {
        return Err(McError::Spec("trajectories must be at least 1".into()));
    }
    if !spec.quantiles.iter().all(|q| *q > 0.0 && *q < 1.0)
        || spec.quantiles.windows(2).any(|w| w[0] >= w[1])
    {
        return Err(McError::Spec(
            "quantiles must lie strictly between 0 and 1, in ascending order".into(),
        ));
    }
    for (name, p) in [
        ("fertility", spec.fertility),
        ("mortality", spec.mortality),
        ("migration", spec.migration),
    ] {
        if !(p.sd >= 0.0 && p.sd.is_finite() && (-1.0..=1.0).contains(&p.ar)) {
            return Err(McError::Spec(format!(
                "{name}: the spread must be 0 or more and the persistence between -1 and 1"
            )));
        }
    }
    if inputs.is_some_and(|i| i.flows.len() > MAX_FLOWS) {
        return Err(McError::Spec(format!(
            "at most {MAX_FLOWS} migration flows can run under uncertainty"
        )));
    }
    let r = resolve(pop, base_year, end_year, inputs)?;
    let (na, n) = (pop.areas().len(), pop.n_ages());
    if services
        .iter()
        .flat_map(|s| &s.units)
        .any(|u| u.shares.len() != na)
    {
        return Err(McError::Spec(
            "a unit's catchment needs one share per area of the population".into(),
        ));
    }
    let ny = r.years.len();
    let align = match align {
        None => None,
        Some(to) => {
            let (cy, parents, cs, cx) = to.control.dim();
            if to.parent_of.len() != na
                || to.parent_of.iter().any(|p| *p >= parents)
                || cy != ny
                || cs != 2
                || cx != n
                || to.slots.iter().any(|k| *k == 0 || *k >= ny)
            {
                return Err(McError::Spec(
                    "the alignment does not fit the population: one parent per area, \
                     control by (year, parent, sex, age) over the projection's years"
                        .into(),
                ));
            }
            let mut slot_of = vec![None; ny];
            for (j, k) in to.slots.iter().enumerate() {
                slot_of[*k] = Some(j);
            }
            let mut children = vec![Vec::new(); parents];
            for (a, p) in to.parent_of.iter().enumerate() {
                children[*p].push(a);
            }
            let base_totals = (0..na)
                .map(|a| {
                    r.known[0]
                        .as_ref()
                        .map_or(0.0, |b| b.slice(ndarray::s![a, .., ..]).sum())
                })
                .collect();
            Some(AlignCtx {
                // The view shortened to the run's own borrows (views are invariant).
                to: AlignTo {
                    parent_of: to.parent_of,
                    control: to.control.reborrow(),
                    slots: to.slots,
                },
                slot_of,
                children,
                base_totals,
            })
        }
    };
    let nf = inputs.map_or(0, |i| i.flows.len());
    let closed = r
        .year_rates
        .iter()
        .flatten()
        .any(|y| y.flows.iter().any(|f| f.destinations.is_some()));
    // Areas are independent unless a closed internal system or an alignment couples
    // them.
    let groups: Vec<std::ops::Range<usize>> = if closed || align.is_some() {
        std::iter::once(0..na).collect()
    } else {
        (0..na).map(|a| a..a + 1).collect()
    };
    // Refused before anything is allocated.
    let shares: Vec<&[f64]> = services
        .iter()
        .flat_map(|s| &s.units)
        .map(|u| u.shares)
        .collect();
    let limit = trajectory_limit(na, ny, nf, services.len(), &shares, groups.len() == 1);
    if spec.trajectories > limit {
        return Err(McError::Trajectories {
            trajectories: spec.trajectories,
            limit,
        });
    }
    let age_groups = spec.age_groups.resolve(n);
    let npg = 3 * age_groups.len();
    // Resolved in parallel; the first service's error in order is the one reported.
    let weights = services
        .par_iter()
        .map(|s| {
            crate::services::check_teaching(s.service)?;
            Weights::new(s.service, na, &r.years, n - 1)
        })
        .collect::<Vec<_>>()
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let mult = Multipliers::new(spec, ny, nf);
    let projected: Vec<usize> = (1..ny).filter(|k| r.year_rates[*k].is_some()).collect();
    let demand: Vec<Option<DemandPlan<'_>>> = weights
        .iter()
        .map(|w| (!want.costs).then(|| DemandPlan::new(w)))
        .collect();
    let ctx = Ctx {
        spec,
        want,
        known: &r.known,
        rates: &r.year_rates,
        years: &r.years,
        n,
        lane_mult: {
            let nb = spec.trajectories.div_ceil(LANES);
            let mut v = vec![[1.0; LANES]; nb * ny * (2 + nf)];
            for b in 0..nb {
                for k in 0..ny {
                    let Some(yr) = &r.year_rates[k] else { continue };
                    let at = (b * ny + k) * (2 + nf);
                    for l in 0..LANES {
                        // The last block's spare lanes repeat the last trajectory.
                        let t = (b * LANES + l).min(spec.trajectories - 1);
                        v[at][l] = mult.get(&mult.fert, t, k);
                        v[at + 1][l] = mult.get(&mult.mort, t, k);
                        for (f, fl) in yr.flows.iter().enumerate() {
                            v[at + 2 + f][l] = mult.flow(t, f, k) * fl.multiplier;
                        }
                    }
                }
            }
            v
        },
        services,
        weights: &weights,
        level: LevelPlan::new(services, &demand),
        alias: aliases(services, &demand),
        demand,
        has: services.iter().map(|s| s.service.resources()).collect(),
        projected: &projected,
        count_sums: r
            .year_rates
            .iter()
            .map(|yr| {
                yr.as_ref().map_or_else(Vec::new, |yr| {
                    yr.flows
                        .iter()
                        .map(|f| match &f.values {
                            FlowValues::Counts(c) => c
                                .as_slice()
                                .expect("standard layout")
                                .chunks_exact(c.dim().2)
                                .map(|l| l.iter().sum())
                                .collect(),
                            FlowValues::OutRates(_) => Vec::new(),
                        })
                        .collect()
                })
            })
            .collect(),
        plans: r
            .year_rates
            .iter()
            .map(|y| y.as_ref().map(|y| YearPlan::new(y, n)))
            .collect(),
        flat: r
            .year_rates
            .iter()
            .map(|y| y.as_ref().map(YearFlat::new))
            .collect(),
        nf,
        mig_rows: inputs.map_or_else(Vec::new, |i| {
            i.flows
                .iter()
                .enumerate()
                .flat_map(|(f, fl)| {
                    std::iter::once((f, false))
                        .chain(fl.destinations.is_some().then_some((f, true)))
                })
                .collect()
        }),
        align,
        groups: age_groups.iter().map(|(r, _)| r.clone()).collect(),
        grow: services
            .iter()
            .map(|s| {
                r.years
                    .iter()
                    .map(|y| segment_growth(s.service, *y, base_year))
                    .collect()
            })
            .collect(),
        fixed: services
            .iter()
            .map(|s| {
                r.years
                    .iter()
                    .map(|y| service_fixed(s.service, *y, base_year))
                    .collect()
            })
            .collect(),
    };
    let nt = spec.trajectories;
    let nb = nt.div_ceil(LANES);
    // Groups run at once, one a thread (at most `SLOTS`): a lone group has the
    // whole memory budget, groups running at once share it. The sums do not depend
    // on it: every group's totals are added in group order.
    let chunk = if groups.len() == 1 {
        1
    } else {
        rayon::current_num_threads().clamp(1, SLOTS)
    };
    let passes = |ga: usize| {
        let cells = Layout::new(&ctx, ga).cells;
        cells.div_ceil(window(cells, nt, chunk)).max(1)
    };
    let total: usize = groups.iter().map(|g| nb * passes(g.len())).sum();
    let done = AtomicUsize::new(0);
    let levels = &spec.quantiles;
    let nl = levels.len();
    let nyp = projected.len();
    let mut population = want.population.then(|| Summary::zeros(na * npg * ny, nl));
    let mut components = want
        .components
        .then(|| vec![Summary::zeros(na * 2 * nyp, nl); COMPONENTS]);
    let mut migration = want
        .migration
        .then(|| vec![Summary::zeros(na * 2 * nyp, nl); ctx.mig_rows.len()]);
    let mut alignment = ctx
        .align
        .as_ref()
        .map(|al| Summary::zeros(al.children.len() * 2 * n * al.to.slots.len(), nl));
    let mut svc: Vec<ServiceSummary> = services
        .iter()
        .enumerate()
        .map(|(i, s)| ServiceSummary {
            demand: Summary::zeros(s.service.segments.len() * na * ny, nl),
            resources: RESOURCES
                .iter()
                .zip(ctx.has[i])
                .filter(|(_, h)| *h && want.costs)
                .map(|(r, _)| (*r, Summary::zeros(na * ny, nl)))
                .collect(),
            costs: if want.costs {
                vec![Summary::zeros(na * ny, nl); 6]
            } else {
                Vec::new()
            },
            total_demand: Summary::default(),
            total_cost: Summary::default(),
            present_value: Summary::default(),
            units: Vec::new(),
        })
        .collect();
    // Every unit's place among all services' units.
    let unit_base: Vec<usize> = services
        .iter()
        .scan(0, |at, s| {
            let b = *at;
            *at += s.units.len();
            Some(b)
        })
        .collect();
    let n_units = services.iter().map(|s| s.units.len()).sum::<usize>();
    // Per service: demand and total cost by (year, trajectory), summed over areas.
    let (tot_d, tot_c) = (ctx.services_wanted(), want.costs);
    let sized = |on: bool| if on { vec![0.0; ny * nt] } else { Vec::new() };
    let mut totals: Vec<(Vec<f64>, Vec<f64>)> = services
        .iter()
        .map(|_| (sized(tot_d), sized(tot_c)))
        .collect();
    let stride = 1 + nl;
    // One group: its blocks (in parallel when it is the only group) write their lanes
    // into the slot's buffer, by (block, cell, lane); then each cell's values are
    // gathered over the trajectories and summarised, packed `stride` values a cell
    // (mean, then the quantiles), and every service's demand and total cost summed
    // over the group's cells by (year, trajectory).
    let run_group = |g: &std::ops::Range<usize>, parallel: bool, slot: &mut Slot| {
        let ga = g.len();
        let lay = Layout::new(&ctx, ga);
        // Every block writes its lanes of every cell into its own part, by (cell,
        // lane): a block's part stays in the cache while it runs. Where every
        // trajectory's cells would not fit in the memory budget, the cells are taken a
        // window at a time and the (reproducible) blocks are run again for each: a
        // block then writes into a scratch part and only the window's cells are kept.
        let per_block = lay.cells * LANES;
        let win = window(lay.cells, nt, chunk);
        // Per service: the slot's demand and total cost by (year, trajectory), summed
        // over the groups it has run, in their order, and in cell order over each
        // group's demand cells `(segment, area, year)` and total-cost cells `(area,
        // year)`.
        slot.tots.resize_with(services.len(), Default::default);
        let mut to_total: Vec<Option<Total>> = vec![None; lay.cells];
        for (i, (d, cost)) in slot.tots.iter_mut().enumerate() {
            let ng = services[i].service.segments.len();
            let nres = ctx.has[i].iter().filter(|h| **h).count();
            let (off, per) = (lay.services[i], ga * ny);
            // Cells run (block, area, year): the year is fastest.
            let mut mark = |from: usize, cells: usize, cost: bool, scale: &dyn Fn(usize) -> f64| {
                for c in from..from + cells {
                    to_total[c] = Some(Total {
                        service: i,
                        cost,
                        year: (c - from) % ny,
                        scale: scale(c - from),
                    });
                }
            };
            if tot_d && ctx.alias[i].is_some() {
                // Its totals are its source's times the ratio, at the end.
                continue;
            }
            if tot_d {
                // This group's alone: its cells add to it.
                d.clear();
                d.resize(ny * nt, 0.0);
                let plan = ctx.demand[i].as_ref();
                let rows = plan.map_or(ng, |p| p.rows);
                match plan.filter(|p| p.shares.is_some()) {
                    // One row by (area, year): the segments' demand is its times their shares.
                    Some(p) => mark(off, per, false, &|c| {
                        p.shares_at(g.start + c / ny, c % ny)
                            .map_or(0.0, |sh| sh.sum())
                    }),
                    None => mark(off, rows * per, false, &|_| 1.0),
                }
            }
            if tot_c {
                cost.clear();
                cost.resize(ny * nt, 0.0);
                mark(off + (ng + nres + 5) * per, per, true, &|_| 1.0);
            }
        }
        // Per unit: the slot's demand and floor area need by (year, trajectory), from
        // the service's demand cells and floor-area cells of the areas it serves, in
        // cell order.
        slot.units.resize_with(n_units, Default::default);
        let mut unit_adds: Vec<UnitAdd> = Vec::new();
        for (i, s) in services.iter().enumerate() {
            if s.units.is_empty() || !ctx.services_wanted() {
                continue;
            }
            let ng = s.service.segments.len();
            // An aliased service's demand is read from its source's cells.
            let (src, ratio) = ctx.alias[i].unwrap_or((i, 1.0));
            let (off, per) = (lay.services[src], ga * ny);
            let plan = ctx.demand[i].as_ref();
            let rows = plan.map_or(ng, |p| p.rows);
            let split = plan.filter(|p| p.shares.is_some());
            let floor = want.costs && ctx.has[i][0];
            for (j, u) in s.units.iter().enumerate() {
                let target = unit_base[i] + j;
                // Only the units the group sends demand to hold sums in this slot.
                if u.shares[g.clone()].iter().all(|sh| *sh == 0.0) {
                    continue;
                }
                let (d, f) = &mut slot.units[target];
                d.resize(ny * nt, 0.0);
                if floor {
                    f.resize(ny * nt, 0.0);
                }
                for al in 0..ga {
                    let share = u.shares[g.start + al];
                    if share == 0.0 {
                        continue;
                    }
                    let mut add = |row: usize, floor: bool, k: usize, scale: f64| {
                        unit_adds.push(UnitAdd {
                            cell: off + row * per + al * ny + k,
                            target,
                            floor,
                            year: k,
                            scale,
                        });
                    };
                    let share = share * ratio;
                    for k in 0..ny {
                        match split {
                            Some(p) => {
                                let sum = p.shares_at(g.start + al, k).map_or(0.0, |sh| sh.sum());
                                add(0, false, k, share * sum);
                            }
                            None => (0..rows).for_each(|r| add(r, false, k, share)),
                        }
                        if floor {
                            add(ng, true, k, share);
                        }
                    }
                }
            }
        }
        unit_adds.sort_by_key(|a| a.cell);
        // Cells are gathered a tile at a time: each block's lanes of the tile's cells
        // lie together (a short run the prefetcher follows), and the tile's rows
        // (256 kB) stay in the L2 cache while they are summarised.
        slot.packed.resize(lay.cells * stride, 0.0);
        let mut next = 0;
        for w0 in (0..lay.cells).step_by(win) {
            let wc = win.min(lay.cells - w0);
            let kept = wc * LANES;
            if slot.blocks.len() < nb * kept {
                // Every cell of every block is written, so the buffer is only grown.
                slot.blocks.resize(nb * kept, 0.0);
            }
            let blocks = &mut slot.blocks[..nb * kept];
            let whole = wc == lay.cells;
            let block = |(state, scratch): &mut (BlockState, Vec<f64>),
                         (b, chunk): (usize, &mut [f64])| {
                let out: &mut [f64] = if whole {
                    chunk
                } else {
                    scratch.resize(per_block, 0.0);
                    scratch
                };
                crate::projection::simd_dispatch(BlockRun {
                    ctx: &ctx,
                    group: g.clone(),
                    t0: b * LANES,
                    lay: &lay,
                    out,
                    state,
                });
                if !whole {
                    chunk.copy_from_slice(&scratch[w0 * LANES..w0 * LANES + kept]);
                }
                progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
            };
            if parallel {
                blocks
                    .par_chunks_mut(kept)
                    .enumerate()
                    .for_each_init(|| (BlockState::default(), Vec::new()), block);
            } else {
                let mut state = (
                    std::mem::take(&mut slot.state),
                    std::mem::take(&mut slot.scratch),
                );
                blocks
                    .chunks_mut(kept)
                    .enumerate()
                    .for_each(|x| block(&mut state, x));
                (slot.state, slot.scratch) = state;
            }
            let blocks = &slot.blocks[..nb * kept];
            let packed = &mut slot.packed[w0 * stride..(w0 + wc) * stride];
            if parallel {
                packed
                    .par_chunks_mut(TILE * stride)
                    .enumerate()
                    .for_each_init(
                        || (Vec::new(), Selector::default()),
                        |(tile, sel), (t, packed)| {
                            let tc = packed.len() / stride;
                            gather_tile(blocks, wc, t * TILE, tc, nt, tile);
                            sel.summarise_rows(tile, nt, levels, packed);
                        },
                    );
                // The totals after, in cell order.
                let tile = &mut slot.vals;
                for c0 in (w0..w0 + wc).step_by(TILE) {
                    let tc = TILE.min(w0 + wc - c0);
                    let to_units = unit_adds.get(next).is_some_and(|a| a.cell < c0 + tc);
                    if to_units || to_total[c0..c0 + tc].iter().any(Option::is_some) {
                        gather_tile(blocks, wc, c0 - w0, tc, nt, tile);
                        next = add_tile(
                            &mut slot.tots,
                            &mut slot.units,
                            &to_total,
                            &unit_adds,
                            next,
                            c0,
                            tile,
                            nt,
                        );
                    }
                }
            } else {
                let (tile, sel) = (&mut slot.vals, &mut slot.sel);
                for (t, packed) in packed.chunks_mut(TILE * stride).enumerate() {
                    let (c0, tc) = (w0 + t * TILE, packed.len() / stride);
                    gather_tile(blocks, wc, c0 - w0, tc, nt, tile);
                    sel.summarise_rows(tile, nt, levels, packed);
                    next = add_tile(
                        &mut slot.tots,
                        &mut slot.units,
                        &to_total,
                        &unit_adds,
                        next,
                        c0,
                        tile,
                        nt,
                    );
                }
            }
        }
    };
    let set = |sm: &mut Summary, cell: usize, packed: &[f64]| set_scaled(sm, cell, packed, 1.0);
    // Independent areas run in parallel, `chunk` at a time so that their outputs
    // stay small, each in a slot whose buffers are reused, and are put in place in
    // order; a single coupled group runs its blocks in parallel instead. Each group's
    // totals and units' sums are added in group order, so the sums do not depend on
    // the threads. With more threads than slots, each slot's blocks run in parallel
    // too.
    let nested = rayon::current_num_threads() > SLOTS;
    let whole = |v: &mut [f64], cells: usize| -> Summary {
        let mut sm = Summary::zeros(cells, nl);
        for (k, chunk) in v.chunks_exact_mut(nt).enumerate().take(cells) {
            let (mean, q) = summarise(chunk, levels);
            sm.mean[k] = mean;
            for (dst, v) in sm.q.iter_mut().zip(q) {
                dst[k] = v;
            }
        }
        sm
    };
    // Per unit: the groups still to send it demand, its sums over the groups done
    // (by year and trajectory: demand, floor area need), and its summary once no
    // group is left, so that only the units still open hold a row per trajectory.
    let unit_of: Vec<(usize, usize)> = services
        .iter()
        .enumerate()
        .flat_map(|(i, s)| (0..s.units.len()).map(move |j| (i, j)))
        .collect();
    let mut unit_left: Vec<usize> = unit_of
        .iter()
        .map(|&(i, j)| {
            let shares = services[i].units[j].shares;
            groups
                .iter()
                .filter(|g| shares[(*g).clone()].iter().any(|sh| *sh != 0.0))
                .count()
        })
        .collect();
    let mut unit_sums: Vec<(Vec<f64>, Vec<f64>)> = vec![Default::default(); n_units];
    let mut unit_done: Vec<Option<UnitSummary>> = vec![None; n_units];
    let finish_unit = |u: usize, mut d: Vec<f64>, f: Vec<f64>| -> UnitSummary {
        let (i, j) = unit_of[u];
        let unit = services[i].units[j].unit;
        d.resize(ny * nt, 0.0);
        let floor = want.costs && ctx.has[i][0];
        let year = |k: usize| r.years[k];
        let per_traj = |g: &dyn Fn(f64, i32) -> f64| -> Vec<f64> {
            d.chunks_exact(nt)
                .enumerate()
                .flat_map(|(k, row)| row.iter().map(move |v| g(*v, year(k))))
                .collect()
        };
        let mut util = per_traj(&|v, y| unit.utilisation(v, y));
        let mut short = per_traj(&|v, y| unit.shortage(v, y));
        let p_shortage = short
            .chunks_exact(nt)
            .map(|row| row.iter().filter(|v| **v > 0.0).count() as f64 / nt as f64)
            .collect();
        UnitSummary {
            utilisation: whole(&mut util, ny),
            shortage: whole(&mut short, ny),
            floor_area_need_m2: floor.then(|| {
                let mut f = f;
                f.resize(ny * nt, 0.0);
                whole(&mut f, ny)
            }),
            p_shortage,
            demand: whole(&mut d, ny),
        }
    };
    let mut slots: Vec<Slot> = (0..chunk.min(groups.len()))
        .map(|_| Slot::default())
        .collect();
    for gs in groups.chunks(chunk) {
        let slots = &mut slots[..gs.len()];
        if gs.len() == 1 {
            run_group(&gs[0], true, &mut slots[0]);
        } else {
            slots
                .par_iter_mut()
                .zip(gs)
                .for_each(|(slot, g)| run_group(g, nested, slot));
        }
        for (g, o) in gs.iter().zip(slots.iter_mut()) {
            // The group's totals and units' sums, added in group order; a unit no
            // group is left to send demand to is summarised and its sums dropped.
            for ((d, c), (od, oc)) in totals.iter_mut().zip(&o.tots) {
                for (v, part) in [(&mut *d, od), (&mut *c, oc)] {
                    v.iter_mut().zip(part).for_each(|(x, y)| *x += y);
                }
            }
            for (u, part) in o.units.iter_mut().enumerate() {
                if part.0.is_empty() {
                    continue;
                }
                let (od, of) = std::mem::take(part);
                let (d, f) = &mut unit_sums[u];
                for (v, part) in [(d, od), (f, of)] {
                    if v.is_empty() {
                        *v = part;
                    } else {
                        v.iter_mut().zip(&part).for_each(|(x, y)| *x += y);
                    }
                }
                unit_left[u] -= 1;
                if unit_left[u] == 0 {
                    let (d, f) = std::mem::take(&mut unit_sums[u]);
                    unit_done[u] = Some(finish_unit(u, d, f));
                }
            }
            let ga = g.len();
            let lay = Layout::new(&ctx, ga);
            let packed = |at: usize, cells: usize| {
                o.packed[at * stride..(at + cells) * stride].chunks_exact(stride)
            };
            if let Some(ps) = &mut population {
                let offset = g.start * npg * ny;
                for (c, p) in packed(lay.pop, ga * npg * ny).enumerate() {
                    set(ps, offset + c, p);
                }
            }
            if let Some(cs) = &mut components {
                let (offset, per) = (g.start * 2 * nyp, ga * 2 * nyp);
                for (j, comp) in cs.iter_mut().enumerate() {
                    for (c, p) in packed(lay.comps + j * per, per).enumerate() {
                        set(comp, offset + c, p);
                    }
                }
            }
            if let Some(ms) = &mut migration {
                let (offset, per) = (g.start * 2 * nyp, ga * 2 * nyp);
                for (r, row) in ms.iter_mut().enumerate() {
                    for (c, p) in packed(lay.mig + r * per, per).enumerate() {
                        set(row, offset + c, p);
                    }
                }
            }
            if let Some(sm) = &mut alignment {
                // The one group holds every area: its cells are the whole table's.
                for (c, p) in packed(lay.align, sm.mean.len()).enumerate() {
                    set(sm, c, p);
                }
            }
            if ctx.services_wanted() {
                for (i, s) in svc.iter_mut().enumerate() {
                    let ng = services[i].service.segments.len();
                    let nres = s.resources.len();
                    let per = ga * ny;
                    let plan = ctx.demand[i].as_ref();
                    if let (Some((src, ratio)), Some(plan)) = (ctx.alias[i], plan) {
                        // Its source's one row of demand `(area, year)`, times the
                        // ratio (and the segments' shares).
                        for (c, p) in packed(lay.services[src], per).enumerate() {
                            let cell = (g.start + c / ny) * ny + c % ny;
                            match plan.shares_at(g.start + c / ny, c % ny) {
                                Some(sh) => {
                                    for (seg, share) in sh.iter().enumerate() {
                                        let at = seg * na * ny + cell;
                                        set_scaled(&mut s.demand, at, p, ratio * share);
                                    }
                                }
                                None => set_scaled(&mut s.demand, cell, p, ratio),
                            }
                        }
                        continue;
                    }
                    let cells = ctx.service_cells(i, ga);
                    for (c, p) in packed(lay.services[i], cells).enumerate() {
                        // Cells: demand (g, a, k), resources (r, a, k), costs (c, a, k);
                        // or a split service's one row of demand (a, k).
                        let (block, rest) = (c / per, c % per);
                        let (al, k) = (rest / ny, rest % ny);
                        let cell = (g.start + al) * ny + k;
                        if let Some(sh) = plan.and_then(|pl| pl.shares_at(g.start + al, k)) {
                            for (seg, share) in sh.iter().enumerate() {
                                set_scaled(&mut s.demand, seg * na * ny + cell, p, *share);
                            }
                        } else if block < ng {
                            set(&mut s.demand, block * na * ny + cell, p);
                        } else if block < ng + nres {
                            set(&mut s.resources[block - ng].1, cell, p);
                        } else {
                            set(&mut s.costs[block - ng - nres], cell, p);
                        }
                    }
                }
            }
        }
    }
    // An aliased service's totals are its source's times the ratio.
    if tot_d {
        for (i, a) in ctx.alias.iter().enumerate() {
            if let Some((src, ratio)) = *a {
                let d: Vec<f64> = totals[src].0.iter().map(|v| ratio * v).collect();
                totals[i].0 = d;
            }
        }
    }
    // Units no group sends demand to: no demand in any trajectory.
    if ctx.services_wanted() {
        for (u, done) in unit_done.iter_mut().enumerate() {
            if done.is_none() {
                let (d, f) = std::mem::take(&mut unit_sums[u]);
                *done = Some(finish_unit(u, d, f));
            }
        }
    }
    for (u, done) in unit_done.into_iter().enumerate() {
        if let Some(sm) = done {
            svc[unit_of[u].0].units.push(sm);
        }
    }
    for (i, (d, c)) in totals.iter_mut().enumerate() {
        if want.costs {
            let rate = services[i].discount_rate;
            let mut pv: Vec<f64> = (0..nt)
                .map(|t| {
                    (0..ny)
                        .map(|k| {
                            c[k * nt + t]
                                * crate::services::discount_factor(rate, r.years[k], base_year)
                        })
                        .sum()
                })
                .collect();
            svc[i].present_value = whole(&mut pv, 1);
            svc[i].total_cost = whole(c, ny);
        }
        if ctx.services_wanted() {
            svc[i].total_demand = whole(d, ny);
        }
    }
    let migration_rows = ctx.mig_rows.clone();
    Ok(McResult {
        trajectories: spec.trajectories,
        seed: spec.seed,
        levels: levels.clone(),
        years: r.years.clone(),
        population,
        age_groups: age_groups.into_iter().map(|(_, l)| l).collect(),
        components,
        projected,
        migration,
        migration_rows,
        services: svc,
        alignment,
    })
}

/// The most memory a Monte Carlo run holds in rows of one value per trajectory
/// (multipliers, sums over areas, open units' sums, the windows of cells): 8 GiB on
/// any machine, so that a scenario is run or refused alike everywhere. A count of
/// trajectories above it is refused before anything is allocated.
pub const TRAJECTORY_MEMORY: usize = 8 << 30;

/// Bytes a run holds per trajectory whatever the windows: the multipliers (drawn and
/// by lane), every service's demand and cost totals (all groups' and each running
/// group's), the units whose groups are not all done (their sums, the groups'
/// parts and the summary's copies) and a window of a tile of cells per running
/// group.
fn bytes_per_trajectory(ny: usize, nf: usize, services: usize, open: usize, chunk: usize) -> usize {
    let values = 2 * (2 + nf) * ny + 2 * ny * services * (1 + chunk) + 6 * ny * open + TILE * chunk;
    values * std::mem::size_of::<f64>()
}

/// The most trajectories a run can take within [`TRAJECTORY_MEMORY`]: for `areas`
/// areas, `years` year slots (the base year too), `flows` migration flows,
/// `services` services and units with these shares of each area's demand, the
/// areas run as one group when `coupled` (a closed internal system or an alignment)
/// and one by one otherwise. The same on any machine and with any threads.
pub fn trajectory_limit(
    areas: usize,
    years: usize,
    flows: usize,
    services: usize,
    unit_shares: &[&[f64]],
    coupled: bool,
) -> usize {
    let groups: Vec<std::ops::Range<usize>> = if coupled {
        std::iter::once(0..areas).collect()
    } else {
        (0..areas).map(|a| a..a + 1).collect()
    };
    // Groups counted as running `SLOTS` at a time, the most there can be.
    let most = if groups.len() == 1 { 1 } else { SLOTS };
    let open = most_open_units(unit_shares, &groups, most);
    TRAJECTORY_MEMORY / bytes_per_trajectory(years, flows, services, open, most).max(1)
}

/// The most units whose sums are held at once: a unit's sums are kept from the
/// first group that sends it demand until the last, groups running `chunk` at a time.
fn most_open_units(
    unit_shares: &[&[f64]],
    groups: &[std::ops::Range<usize>],
    chunk: usize,
) -> usize {
    let spans: Vec<(usize, usize)> = unit_shares
        .iter()
        .filter_map(|shares| {
            let sends = |g: &std::ops::Range<usize>| {
                shares
                    .get(g.clone())
                    .is_some_and(|s| s.iter().any(|v| *v != 0.0))
            };
            let first = groups.iter().position(sends)? / chunk;
            let last = groups.iter().rposition(sends)? / chunk;
            Some((first, last))
        })
        .collect();
    (0..groups.len().div_ceil(chunk.max(1)))
        .map(|c| spans.iter().filter(|(a, b)| *a <= c && c <= *b).count())
        .max()
        .unwrap_or(0)
}

/// Groups of areas run at once, each in a slot whose buffers are reused.
const SLOTS: usize = 8;

/// Cells summarised together (their rows stay in the L2 cache).
const TILE: usize = 32;

/// The memory the trajectories' values of the groups running at once may take.
const MEMORY_BUDGET: usize = 256 << 20;

/// How many of a group's `cells` are kept at a time over `nt` trajectories: all of
/// them when every trajectory's values fit in the memory budget (shared by the
/// `sharing` groups running at once), else a window of whole tiles, for which the
/// blocks are run again. At least one cell.
fn window(cells: usize, nt: usize, sharing: usize) -> usize {
    let budget = MEMORY_BUDGET / sharing.max(1);
    let fit = budget / (nt.div_ceil(LANES) * LANES * std::mem::size_of::<f64>());
    if fit >= cells {
        cells.max(1)
    } else {
        (fit / TILE * TILE).max(TILE)
    }
}

/// Puts a cell's packed summary (the mean, then the quantiles) times `scale` (0 or
/// more, so that the quantiles stay in order) in place.
fn set_scaled(sm: &mut Summary, cell: usize, packed: &[f64], scale: f64) {
    sm.mean[cell] = scale * packed[0];
    for (q, v) in sm.q.iter_mut().zip(&packed[1..]) {
        q[cell] = scale * v;
    }
}

/// The buffers of one group's run, reused from group to group.
#[derive(Default)]
struct Slot {
    /// Every block's lanes by `(block, cell, lane)`, cells as in [`Layout`].
    blocks: Vec<f64>,
    /// Per cell: the mean, then the quantiles.
    packed: Vec<f64>,
    /// Per service: the group's demand and total cost by (year, trajectory).
    tots: Vec<(Vec<f64>, Vec<f64>)>,
    /// Per unit (all services' in order): the demand and the floor area need by
    /// (year, trajectory); the floor area's is empty when not summed.
    units: Vec<(Vec<f64>, Vec<f64>)>,
    /// A tile of cells' values over the trajectories, a row per cell.
    vals: Vec<f64>,
    /// The state of the blocks run one after another.
    state: BlockState,
    /// A block's lanes of every cell, when only a window of them is kept.
    scratch: Vec<f64>,
    sel: Selector,
}

/// A cell that adds to a service's totals by (year, trajectory).
#[derive(Debug, Clone, Copy)]
struct Total {
    service: usize,
    /// The total cost rather than the demand.
    cost: bool,
    year: usize,
    /// What the cell's values are multiplied by: the sum of the segments' shares for
    /// the demand of a split service, 1 otherwise.
    scale: f64,
}

/// A cell that adds to a unit's sums by (year, trajectory).
#[derive(Debug, Clone, Copy)]
struct UnitAdd {
    cell: usize,
    /// The unit among all services' units.
    target: usize,
    /// To the floor area need rather than the demand.
    floor: bool,
    year: usize,
    /// The area's share of the unit times the cell's own scale (see [`Total`]).
    scale: f64,
}

/// Adds a gathered tile of cells from `c0` (a row of `nt` values each) to the service
/// totals and the units they go to; returns where the next tile's unit adds start.
#[allow(clippy::too_many_arguments)]
fn add_tile(
    tots: &mut [(Vec<f64>, Vec<f64>)],
    units: &mut [(Vec<f64>, Vec<f64>)],
    to_total: &[Option<Total>],
    adds: &[UnitAdd],
    next: usize,
    c0: usize,
    tile: &[f64],
    nt: usize,
) -> usize {
    let tc = tile.len() / nt;
    for j in 0..tc {
        add_total(tots, to_total[c0 + j], &tile[j * nt..(j + 1) * nt]);
    }
    add_units(units, adds, next, c0, tc, tile, nt)
}

/// Adds the tile `c0..c0 + tc`'s cells to the units they go to, from `adds[next..]`
/// (sorted by cell); returns where the next tile's adds start.
fn add_units(
    units: &mut [(Vec<f64>, Vec<f64>)],
    adds: &[UnitAdd],
    mut next: usize,
    c0: usize,
    tc: usize,
    tile: &[f64],
    nt: usize,
) -> usize {
    while let Some(a) = adds.get(next).filter(|a| a.cell < c0 + tc) {
        let v = &tile[(a.cell - c0) * nt..(a.cell - c0 + 1) * nt];
        let (d, f) = &mut units[a.target];
        let row = if a.floor { f } else { d };
        row[a.year * nt..(a.year + 1) * nt]
            .iter_mut()
            .zip(v)
            .for_each(|(x, y)| *x += a.scale * y);
        next += 1;
    }
    next
}

/// Adds a cell's values over the trajectories `v` to the totals it belongs to.
fn add_total(tots: &mut [(Vec<f64>, Vec<f64>)], t: Option<Total>, v: &[f64]) {
    let Some(t) = t else { return };
    let (d, c) = &mut tots[t.service];
    let row = if t.cost { c } else { d };
    let nt = v.len();
    let dst = &mut row[t.year * nt..(t.year + 1) * nt];
    if t.scale == 1.0 {
        dst.iter_mut().zip(v).for_each(|(x, y)| *x += y);
    } else {
        dst.iter_mut().zip(v).for_each(|(x, y)| *x += t.scale * y);
    }
}

/// The values over the trajectories of cells `c0..c0 + tc`, gathered from blocks
/// laid out by `(block, cell, lane)` into `tile`, a row of `nt` per cell.
fn gather_tile(blocks: &[f64], cells: usize, c0: usize, tc: usize, nt: usize, tile: &mut Vec<f64>) {
    tile.resize(tc * nt, 0.0);
    for b in 0..nt.div_ceil(LANES) {
        let (t0, m) = (b * LANES, LANES.min(nt - b * LANES));
        let src = &blocks[(b * cells + c0) * LANES..(b * cells + c0 + tc) * LANES];
        for (j, lanes) in src.chunks_exact(LANES).enumerate() {
            let dst = &mut tile[j * nt + t0..j * nt + t0 + m];
            // Whole blocks as fixed-size copies (a call to `memcpy` each otherwise).
            if let (Ok(d), Ok(l)) = (
                <&mut [f64; LANES]>::try_from(&mut *dst),
                <&[f64; LANES]>::try_from(lanes),
            ) {
                *d = *l;
            } else {
                dst.copy_from_slice(&lanes[..m]);
            }
        }
    }
}

/// Where a group's outputs lie among its cells: the population `(area, sex, age,
/// year)`, the components `(component, area, sex, projected year)`, then each
/// movers `(row, area, sex, projected year)`, then each service's cells (see
/// [`Ctx::service_cells`]); every part is empty unless asked for.
struct Layout {
    cells: usize,
    pop: usize,
    comps: usize,
    /// Movers by `(row, area, sex, projected year)`.
    mig: usize,
    /// Alignment factors by `(parent, sex, age, aligned year)`.
    align: usize,
    /// Where each service's cells start.
    services: Vec<usize>,
}

impl Layout {
    fn new(ctx: &Ctx<'_>, ga: usize) -> Layout {
        let (n, ny, nyp) = (ctx.n, ctx.years.len(), ctx.projected.len());
        let pop = 0;
        let mut at = if ctx.want.population {
            ga * 3 * ctx.groups.len() * ny
        } else {
            0
        };
        let comps = at;
        if ctx.want.components {
            at += COMPONENTS * ga * 2 * nyp;
        }
        let mig = at;
        if ctx.want.migration {
            at += ctx.mig_rows.len() * ga * 2 * nyp;
        }
        let align = at;
        if let Some(al) = &ctx.align {
            at += al.children.len() * 2 * n * al.to.slots.len();
        }
        let services = (0..ctx.services.len())
            .map(|i| {
                let o = at;
                if ctx.services_wanted() {
                    at += ctx.service_cells(i, ga);
                }
                o
            })
            .collect();
        Layout {
            cells: at,
            pop,
            comps,
            mig,
            align,
            services,
        }
    }
}

/// One block of trajectories through every year for a group of areas, writing its
/// lanes of cell `c` of `lay` at `out[c · LANES..][..LANES]`.
struct BlockRun<'c, 'a> {
    ctx: &'c Ctx<'a>,
    group: std::ops::Range<usize>,
    t0: usize,
    lay: &'c Layout,
    out: &'c mut [f64],
    state: &'c mut BlockState,
}

/// A block's state before and after a year step, by `(area, sex, age)`, kept from
/// block to block: every cell is written before it is read (the base year is given),
/// so the buffers are neither zeroed nor allocated again.
#[derive(Default)]
struct BlockState {
    cur: Vec<V>,
    next: Vec<V>,
}

impl crate::projection::Kernel for BlockRun<'_, '_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        if self.ctx.spec.process_noise {
            run_block::<true>(self);
        } else {
            run_block::<false>(self);
        }
    }
}

/// Per-lane multipliers of a year.
struct LaneYear {
    mf: V,
    mq: V,
    /// Per flow, its multiplier times the flow's own (lever) multiplier.
    mm: Vec<V>,
}

#[inline(always)]
fn run_block<const NOISE: bool>(run: BlockRun<'_, '_>) {
    let BlockRun {
        ctx,
        group,
        t0,
        lay,
        out,
        state,
    } = run;
    let stride = LANES;
    let (n, ny) = (ctx.n, ctx.years.len());
    let ga = group.len();
    let nyp = ctx.projected.len();
    let lanes_t: [usize; LANES] = std::array::from_fn(|l| (t0 + l).min(ctx.spec.trajectories - 1));
    let mut rngs: Vec<[Rng; LANES]> = if NOISE {
        group
            .clone()
            .map(|a| {
                std::array::from_fn(|l| Rng::new(&[ctx.spec.seed, lanes_t[l] as u64, 1, a as u64]))
            })
            .collect()
    } else {
        Vec::new()
    };
    // The parts of `out`: population, components, then each service.
    let mut bounds = vec![lay.pop, lay.comps, lay.mig, lay.align];
    bounds.extend(&lay.services);
    bounds.push(lay.cells);
    let mut parts = Vec::with_capacity(bounds.len() - 1);
    let mut rest = out;
    for w in bounds.windows(2) {
        let (mine, more) = std::mem::take(&mut rest).split_at_mut((w[1] - w[0]) * stride);
        parts.push(mine);
        rest = more;
    }
    let mut parts = parts.into_iter();
    let (pop, comps, mig, align) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let mut out = BlockOut {
        pop,
        comps,
        mig,
        align,
        services: parts.collect(),
        stride,
        scratch: Vec::new(),
    };
    // Demand alone: each (area, service)'s sums resolved once for the block.
    let jobs: Vec<DemandJob<'_>> = if ctx.demand.iter().all(Option::is_some) {
        group
            .clone()
            .enumerate()
            .flat_map(|(al, a)| {
                ctx.services
                    .iter()
                    .zip(ctx.demand.iter().flatten())
                    .enumerate()
                    .filter(|(i, _)| ctx.alias[*i].is_none())
                    .map(move |(i, (s, plan))| {
                        DemandJob::new(plan, i, a, al, ga, s.service.ages.0, n, ny)
                    })
            })
            .collect()
    } else {
        Vec::new()
    };
    state.cur.resize(ga * 2 * n, [0.0; LANES]);
    state.next.resize(ga * 2 * n, [0.0; LANES]);
    let (mut cur, mut next) = (&mut state.cur, &mut state.next);
    let nfl = ctx
        .rates
        .iter()
        .flatten()
        .map(|r| r.flows.len())
        .max()
        .unwrap_or(0);
    // Scratch: births by area, newborns by (area, sex), closed-system movers by
    // (flow, area, sex, index) and pools by (flow, sex, index).
    let mut births: Vec<V> = vec![[0.0; LANES]; ga];
    let mut movers: Vec<V> = Vec::new();
    let mut pool: Vec<V> = Vec::new();
    let mut comp: Vec<[V; COMPONENTS]> = vec![[[0.0; LANES]; COMPONENTS]; ga * 2];
    // Movers by (area, sex, flow) and a closed system's arrivals: `mv_at`.
    let nf = ctx.nf;
    let mut mv: Vec<V> = if ctx.sums_wanted() {
        vec![[0.0; LANES]; ga * 2 * nf * 2]
    } else {
        Vec::new()
    };
    let mut ly = LaneYear {
        mf: [1.0; LANES],
        mq: [1.0; LANES],
        mm: vec![[1.0; LANES]; nfl],
    };
    for k in 0..ny {
        if let Some(given) = &ctx.known[k] {
            for (al, a) in group.clone().enumerate() {
                for s in 0..2 {
                    for x in 0..n {
                        next[(al * 2 + s) * n + x] = [given[[a, s, x]]; LANES];
                    }
                }
            }
        } else if let Some(r) = &ctx.rates[k] {
            let at = ((t0 / LANES) * ny + k) * (2 + ctx.nf);
            ly.mf = ctx.lane_mult[at];
            ly.mq = ctx.lane_mult[at + 1];
            for f in 0..r.flows.len() {
                ly.mm[f] = ctx.lane_mult[at + 2 + f];
            }
            if NOISE {
                step_noisy(
                    ctx,
                    k,
                    r,
                    &ly,
                    &group,
                    cur,
                    next,
                    &mut births,
                    &mut movers,
                    &mut pool,
                    &mut comp,
                    &mut mv,
                    &mut rngs,
                );
            } else if step_fast(
                ctx, k, r, &ly, &group, cur, next, &mut pool, &mut comp, &mut mv,
            ) {
                // The step was made in place: `cur` is the new state.
                std::mem::swap(&mut cur, &mut next);
            }
            if ctx.want.migration {
                let kp = ctx.projected.iter().position(|p| *p == k).unwrap_or(0);
                let per = ga * 2 * nyp;
                for (row, &(f, arrivals)) in ctx.mig_rows.iter().enumerate() {
                    for i in 0..ga * 2 {
                        let cell = row * per + i * nyp + kp;
                        let v = &mv[mv_at(nf, i, f, arrivals)];
                        out.mig[cell * out.stride..cell * out.stride + LANES].copy_from_slice(v);
                    }
                }
            }
            if ctx.want.components {
                let kp = ctx.projected.iter().position(|p| *p == k).unwrap_or(0);
                let per = ga * 2 * nyp;
                for (i, c) in comp.iter().enumerate() {
                    for (j, v) in c.iter().enumerate() {
                        let cell = j * per + i * nyp + kp;
                        out.comps[cell * out.stride..cell * out.stride + LANES].copy_from_slice(v);
                    }
                }
            }
        }
        std::mem::swap(&mut cur, &mut next);
        // One call of `observe` (it is inlined: a second would double the kernel).
        let state: &[V] = match ctx.align.as_ref().and_then(|al| Some((al, al.slot_of[k]?))) {
            Some((al, j)) => {
                // `next` is free until the next year: it takes the aligned copy.
                align_lanes(al, j, k, n, cur, next, &mut out);
                next
            }
            None => cur,
        };
        observe(ctx, &group, &jobs, k, state, &mut out);
    }
}

/// Aligns a block's state `cur` (every area, by `(area, sex, age)`) of year slot `k`,
/// aligned year `j`, into `aligned`, per lane as [`crate::projection::align`] does,
/// and writes the factors' lanes into `out.align`.
#[inline(never)]
fn align_lanes(
    al: &AlignCtx<'_>,
    j: usize,
    k: usize,
    n: usize,
    cur: &[V],
    aligned: &mut [V],
    out: &mut BlockOut<'_>,
) {
    aligned.copy_from_slice(cur);
    let na = al.to.parent_of.len();
    let nslots = al.to.slots.len();
    let total = |a: usize| -> V {
        let mut t = [0.0; LANES];
        for v in &cur[a * 2 * n..(a + 1) * 2 * n] {
            for l in 0..LANES {
                t[l] += v[l];
            }
        }
        t
    };
    // Each area's total this year, where the control is shared out (worked out when
    // first needed; the base year's are in `al`).
    let mut totals: Option<Vec<V>> = None;
    for (p, children) in al.children.iter().enumerate() {
        for s in 0..2 {
            for x in 0..n {
                let target = al.to.control[[k, p, s, x]];
                let mut sum = [0.0; LANES];
                for a in children {
                    for l in 0..LANES {
                        sum[l] += cur[(a * 2 + s) * n + x][l];
                    }
                }
                let mut f = [1.0; LANES];
                for l in 0..LANES {
                    if sum[l] > 0.0 {
                        f[l] = target / sum[l];
                        for a in children {
                            aligned[(a * 2 + s) * n + x][l] *= f[l];
                        }
                    } else if target != 0.0 {
                        f[l] = f64::NAN;
                        let tot = totals.get_or_insert_with(|| (0..na).map(total).collect());
                        let shares = crate::projection::shared_out(
                            target,
                            children.iter().map(|a| tot[*a][l]).collect(),
                            || children.iter().map(|a| al.base_totals[*a]).collect(),
                        );
                        for (a, v) in children.iter().zip(shares) {
                            aligned[(a * 2 + s) * n + x][l] = v;
                        }
                    }
                }
                let cell = ((p * 2 + s) * n + x) * nslots + j;
                out.align[cell * out.stride..cell * out.stride + LANES].copy_from_slice(&f);
            }
        }
    }
}

/// Where the movers of flow `f` (or, with `arrivals`, its closed system's
/// arrivals) in (area, sex) position `i` of a group are kept.
#[inline(always)]
fn mv_at(nf: usize, i: usize, f: usize, arrivals: bool) -> usize {
    (i * nf + f) * 2 + usize::from(arrivals)
}

/// Records year slot `k`'s state: the population, and each service's demand,
/// resources and costs per lane.
#[inline(always)]
fn observe(
    ctx: &Ctx<'_>,
    group: &std::ops::Range<usize>,
    jobs: &[DemandJob<'_>],
    k: usize,
    cur: &[V],
    out: &mut BlockOut<'_>,
) {
    let (n, ny) = (ctx.n, ctx.years.len());
    let ga = group.len();
    if ctx.want.population {
        // By (area, sex, group): female, male, then both; each group summed from its
        // youngest age up.
        let ng = ctx.groups.len();
        for al in 0..ga {
            for (j, r) in ctx.groups.iter().enumerate() {
                let mut both = [0.0; LANES];
                for s in 0..2 {
                    let lanes = &cur[(al * 2 + s) * n..(al * 2 + s + 1) * n];
                    let mut sum = [0.0; LANES];
                    for v in &lanes[r.clone()] {
                        for l in 0..LANES {
                            sum[l] += v[l];
                        }
                    }
                    for l in 0..LANES {
                        both[l] += sum[l];
                    }
                    let cell = ((al * 3 + s) * ng + j) * ny + k;
                    out.pop[cell * out.stride..cell * out.stride + LANES].copy_from_slice(&sum);
                }
                let cell = ((al * 3 + 2) * ng + j) * ny + k;
                out.pop[cell * out.stride..cell * out.stride + LANES].copy_from_slice(&both);
            }
        }
    }
    if !ctx.services_wanted() {
        return;
    }
    if !jobs.is_empty() {
        // Demand alone: each area's jobs in turn, after its segments' sums.
        let lv = &ctx.level;
        let mut seg = [[0.0; LANES]; 16];
        for area_jobs in jobs.chunks(jobs.len() / ga) {
            let state = &cur[area_jobs[0].state..area_jobs[0].state + 2 * n];
            let (f, m) = state.split_at(n);
            let ns = lv.segments.len().min(seg.len());
            for (o, &(a, b)) in seg.iter_mut().zip(&lv.segments[..ns]) {
                *o = sum_pair(&f[a..b], &m[a..b]);
            }
            for job in area_jobs {
                match lv.of[job.service].filter(|(_, e)| *e <= ns) {
                    Some((first, end)) if job.sexes[k] == Sexes::Level => {
                        let mut sum = [0.0; LANES];
                        for v in &seg[first..end] {
                            for l in 0..LANES {
                                sum[l] += v[l];
                            }
                        }
                        let c = job.w[k * 2 * job.ages];
                        let at = (job.first + k) * LANES;
                        let dst = &mut out.services[job.service][at..at + LANES];
                        for l in 0..LANES {
                            dst[l] = c * sum[l];
                        }
                    }
                    _ => job.sums(k, n, state, out.services[job.service]),
                }
            }
        }
        return;
    }
    let per = ga * ny;
    let stride = out.stride;
    for (i, s) in ctx.services.iter().enumerate() {
        let sv = s.service;
        let lo = usize::from(sv.ages.0);
        let dst = &mut *out.services[i];
        let d = &mut out.scratch;
        let w = ctx.weights[i]
            .w
            .as_slice()
            .expect("weights are in standard layout");
        let (ng, ni) = (sv.segments.len(), ctx.weights[i].w.dim().4);
        for (al, a) in group.clone().enumerate() {
            let at = |block: usize| (block * per + al * ny + k) * stride;
            // By (segment, age), zeroed here.
            d.clear();
            d.resize(ng * ni, [0.0; LANES]);
            for sx in 0..2 {
                let base = ((ctx.weights[i].area_row(a) * ny + k) * 2 + sx) * ng * ni;
                let ws = &w[base..base + ng * ni];
                let p = &cur[(al * 2 + sx) * n + lo..(al * 2 + sx) * n + lo + ni];
                for (dg, wg) in d.chunks_exact_mut(ni).zip(ws.chunks_exact(ni)) {
                    for ((o, wv), p) in dg.iter_mut().zip(wg).zip(p) {
                        for l in 0..LANES {
                            o[l] += p[l] * wv;
                        }
                    }
                }
            }
            for (g, dg) in d.chunks_exact(ni).enumerate() {
                let mut sum = [0.0; LANES];
                for v in dg {
                    for l in 0..LANES {
                        sum[l] += v[l];
                    }
                }
                dst[at(g)..at(g) + LANES].copy_from_slice(&sum);
            }
            let (grow, (fixed, overhead)) = (&ctx.grow[i][k], ctx.fixed[i][k]);
            let share = s.fixed_shares.map_or(0.0, |f| f[[a, k]]);
            let has = ctx.has[i];
            let nres = has.iter().filter(|h| **h).count();
            let v = year_values_lanes(sv, d, grow);
            let mut r = 0;
            for (h, val) in has.iter().zip(&v.resources) {
                if *h {
                    dst[at(ng + r)..at(ng + r) + LANES].copy_from_slice(val);
                    r += 1;
                }
            }
            let mut costs = v.costs;
            let mut total = [0.0; LANES];
            for l in 0..LANES {
                costs[3][l] += fixed * share;
                costs[4][l] += overhead * share;
                for c in &costs {
                    total[l] += c[l];
                }
            }
            for (c, val) in costs.iter().chain(std::iter::once(&total)).enumerate() {
                dst[at(ng + nres + c)..at(ng + nres + c) + LANES].copy_from_slice(val);
            }
        }
    }
}

/// The components of a year by `(area, sex)`: births, deaths, in_migration,
/// out_migration, unmet_out_migration and net_migration.
pub const COMPONENTS: usize = 6;

/// Sets a cell's net migration, `in − out + Σ net flows`, from its other components
/// and its net flows' movers.
#[inline(always)]
fn set_net(c: &mut [V; COMPONENTS], net_flows: &V) {
    for l in 0..LANES {
        c[5][l] = c[2][l] - c[3][l] + net_flows[l];
    }
}

/// The most migration flows a Monte Carlo run takes.
pub const MAX_FLOWS: usize = 16;

/// The flows of one (area, sex) in a year, with their lane multipliers.
struct FlowLanes<'f> {
    /// Out-rates by index and their multipliers.
    rates: &'f [(&'f [f64], V)],
    /// Counts by index and their signed multipliers.
    counts: &'f [(&'f [f64], V)],
    /// Destination shares by index and the closed system's position in `pool`.
    closed: &'f [(&'f [f64], usize)],
    pool: &'f [V],
    s: usize,
    w: usize,
}

impl FlowLanes<'_> {
    /// At index `i`: the combined out-rate, the net count and the arrivals per lane
    /// (`ARR`: of closed systems; 0 without).
    #[inline(always)]
    fn at<const ARR: bool>(&self, i: usize) -> (V, V, V) {
        let (mut rc, mut cn, mut arr) = ([0.0; LANES], [0.0; LANES], [0.0; LANES]);
        for (r, m) in self.rates {
            for l in 0..LANES {
                rc[l] += m[l] * r[i];
            }
        }
        for (c, m) in self.counts {
            for l in 0..LANES {
                cn[l] += m[l] * c[i];
            }
        }
        if ARR {
            for (d, ci) in self.closed {
                let p = &self.pool[(ci * 2 + self.s) * self.w + i];
                for l in 0..LANES {
                    arr[l] += d[i] * p[l];
                }
            }
        }
        (rc, cn, arr)
    }
}

/// `a · b + c` with two roundings, never fused: the kernels give the same bits on
/// every x86-64 processor, with or without FMA.
#[inline(always)]
fn fma(a: f64, b: f64, c: f64) -> f64 {
    a * b + c
}

/// `Σ w[i] · p[i]` per lane, in four running sums (added pairwise at the end) so
/// that consecutive terms do not wait on each other.
#[inline(always)]
fn dot_lanes(w: &[f64], p: &[V]) -> V {
    let n = w.len().min(p.len());
    let (w, p) = (&w[..n], &p[..n]);
    let mut acc = [[0.0; LANES]; 4];
    let (wc, pc) = (w.chunks_exact(4), p.chunks_exact(4));
    let (wr, pr) = (wc.remainder(), pc.remainder());
    for (wq, pq) in wc.zip(pc) {
        for j in 0..4 {
            for l in 0..LANES {
                acc[j][l] = fma(pq[j][l], wq[j], acc[j][l]);
            }
        }
    }
    for (j, (wv, pv)) in wr.iter().zip(pr).enumerate() {
        for l in 0..LANES {
            acc[j][l] = fma(pv[l], *wv, acc[j][l]);
        }
    }
    let mut sum = [0.0; LANES];
    for l in 0..LANES {
        sum[l] = (acc[0][l] + acc[1][l]) + (acc[2][l] + acc[3][l]);
    }
    sum
}

/// `Σ w[i] · (a[i] + b[i])` per lane, as [`dot_lanes`].
#[inline(always)]
fn dot_pair(w: &[f64], a: &[V], b: &[V]) -> V {
    let n = w.len().min(a.len()).min(b.len());
    let (w, a, b) = (&w[..n], &a[..n], &b[..n]);
    let mut acc = [[0.0; LANES]; 4];
    let (wc, ac, bc) = (w.chunks_exact(4), a.chunks_exact(4), b.chunks_exact(4));
    let (wr, ar, br) = (wc.remainder(), ac.remainder(), bc.remainder());
    for ((wq, aq), bq) in wc.zip(ac).zip(bc) {
        for j in 0..4 {
            for l in 0..LANES {
                acc[j][l] = fma(aq[j][l] + bq[j][l], wq[j], acc[j][l]);
            }
        }
    }
    for (j, ((wv, av), bv)) in wr.iter().zip(ar).zip(br).enumerate() {
        for l in 0..LANES {
            acc[j][l] = fma(av[l] + bv[l], *wv, acc[j][l]);
        }
    }
    let mut sum = [0.0; LANES];
    for l in 0..LANES {
        sum[l] = (acc[0][l] + acc[1][l]) + (acc[2][l] + acc[3][l]);
    }
    sum
}

/// The array of flow `f`, counts or rates.
#[inline(always)]
fn flow_values(r: &YearRates, f: usize) -> &ndarray::Array3<f64> {
    match &r.flows[f].values {
        FlowValues::Counts(v) | FlowValues::OutRates(v) => v,
    }
}

/// Births per lane in area `a` (position `al` in the group) from its women.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn births_fast(
    r: &YearRates,
    fl: &YearFlat<'_>,
    plan: &YearPlan,
    ly: &LaneYear,
    cur: &[V],
    n: usize,
    al: usize,
    a: usize,
) -> V {
    let row = if fl.fert_rows == 1 { 0 } else { a };
    let f = &fl.fert[row * fl.fert_w..(row + 1) * fl.fert_w];
    let level = r.fertility_factor.get(a).copied().unwrap_or(1.0);
    let fertile = plan.fertile[row].clone();
    let women = &cur[al * 2 * n..al * 2 * n + n];
    let mut b = dot_lanes(&f[fertile.clone()], &women[fertile]);
    for l in 0..LANES {
        b[l] *= level * ly.mf[l];
    }
    b
}

/// Newborns of sex `s` per lane and their deaths in the birth year: (born, deaths).
#[inline(always)]
fn newborns_fast(r: &YearRates, qfm: &V, n: usize, a: usize, s: usize, b: &V) -> (V, V) {
    newborns(r, lane(&r.q, a, s)[n], qfm, s, b)
}

/// As [`newborns_fast`], with the newborns' death probability `qb` of sex `s`.
#[inline(always)]
fn newborns(r: &YearRates, qb: f64, qfm: &V, s: usize, b: &V) -> (V, V) {
    let share = if s == 1 {
        r.boys_share
    } else {
        1.0 - r.boys_share
    };
    let (mut born, mut bd) = ([0.0; LANES], [0.0; LANES]);
    for l in 0..LANES {
        born[l] = b[l] * share;
        bd[l] = (born[l] * (qb * qfm[l])).min(born[l]);
    }
    (born, bd)
}

/// The survivors of one index per lane; adds to the lane sums.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn survive_lanes(
    p: &V,
    d: &V,
    rc: &V,
    cn: &V,
    arr: &V,
    deaths: &mut V,
    leave: &mut V,
    arrived: &mut V,
    unmet: &mut V,
) -> V {
    let mut x = [0.0; LANES];
    for l in 0..LANES {
        let lv = rc[l] * p[l];
        let v = p[l] - d[l] + cn[l] + arr[l] - lv;
        let kept = if v > 0.0 { v } else { 0.0 };
        deaths[l] += d[l];
        leave[l] += lv;
        arrived[l] += arr[l];
        unmet[l] += kept - v;
        x[l] = kept;
    }
    x
}

/// The running sums of a lane pass.
struct Sums<'s> {
    deaths: &'s mut V,
    leave: &'s mut V,
    arrived: &'s mut V,
    unmet: &'s mut V,
}

/// Survivors of ages `0..ω` of one (area, sex) per lane, written one age up into
/// `out`; returns the open group's own survivors. `COMP`: keep the sums; `ARR`: add
/// arrivals of closed systems.
#[inline(always)]
fn ages_pass<const COMP: bool, const ARR: bool>(
    flows: &FlowLanes<'_>,
    p: &[V],
    q: &[f64],
    qfm: &V,
    out: &mut [V],
    sums: &mut Sums<'_>,
) -> V {
    let n = p.len();
    let mut open = [0.0; LANES];
    for i in 0..n {
        let (rc, cn, arr) = flows.at::<ARR>(i);
        let pi = &p[i];
        let mut x = [0.0; LANES];
        for l in 0..LANES {
            let dv = pi[l] * (q[i] * qfm[l]);
            let d = if dv < pi[l] { dv } else { pi[l] };
            let lv = rc[l] * pi[l];
            let v = pi[l] - d + cn[l] + arr[l] - lv;
            let kept = if v > 0.0 { v } else { 0.0 };
            if COMP {
                sums.deaths[l] += d;
                sums.leave[l] += lv;
                sums.arrived[l] += arr[l];
                sums.unmet[l] += kept - v;
            }
            x[l] = kept;
        }
        if i + 1 < n {
            out[i + 1] = x;
        } else {
            open = x;
        }
    }
    open
}

/// The flows of one (area, sex) for the specialised pass: `NR` out-rate flows with
/// their lanes' multipliers and `NC` count flows with signed multipliers (negative
/// for flows out), each by index `0..=ω + 1`.
struct FastFlows<'f, const NR: usize, const NC: usize> {
    rates: [&'f [f64]; NR],
    rm: [V; NR],
    counts: [&'f [f64]; NC],
    cm: [V; NC],
}

impl<const NR: usize, const NC: usize> FastFlows<'_, NR, NC> {
    /// Survivors of ages `0..ω` of one (area, sex) per lane, written one age up into
    /// `out`; returns the open group's own survivors and the newborns' (`newborn` is
    /// the year's births after birth-year deaths). Adds deaths, leavers and the
    /// shortfall to `sums` when `comp`; caps deaths at the population when `clamp`.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn run(
        &self,
        comp: bool,
        clamp: bool,
        p: &[V],
        q: &[f64],
        qfm: &V,
        newborn: &V,
        out: &mut [V],
        sums: &mut [V; 3],
    ) -> (V, V) {
        match (comp, clamp) {
            (false, false) => self.pass::<false, false>(p, q, qfm, newborn, out, sums),
            (false, true) => self.pass::<false, true>(p, q, qfm, newborn, out, sums),
            (true, false) => self.pass::<true, false>(p, q, qfm, newborn, out, sums),
            (true, true) => self.pass::<true, true>(p, q, qfm, newborn, out, sums),
        }
    }

    #[inline(always)]
    fn pass<const COMP: bool, const CLAMP: bool>(
        &self,
        p: &[V],
        q: &[f64],
        qfm: &V,
        newborn: &V,
        out: &mut [V],
        sums: &mut [V; 3],
    ) -> (V, V) {
        let n = p.len();
        let (q, out) = (&q[..=n], &mut out[..n]);
        let rates: [&[f64]; NR] = std::array::from_fn(|j| &self.rates[j][..=n]);
        let counts: [&[f64]; NC] = std::array::from_fn(|j| &self.counts[j][..=n]);
        // The multipliers as locals: the barrier below makes the compiler reload
        // whatever it reads through `self` at every age.
        let mul = (self.rm, self.cm);
        {
            // Ages 0..ω − 1, every slice cut to exactly their number so that the loop
            // has no bounds checks.
            let m = n - 1;
            let (qm, pm, om) = (&q[..m], &p[..m], &mut out[1..n]);
            let rm: [&[f64]; NR] = std::array::from_fn(|j| &rates[j][..m]);
            let cm: [&[f64]; NC] = std::array::from_fn(|j| &counts[j][..m]);
            for i in 0..m {
                om[i] = Self::cell::<COMP, CLAMP, true>(&mul, &rm, &cm, qm, qfm, i, &pm[i], sums);
                // The lanes are the vector: keep the compiler from vectorising over ages
                // instead (with a transpose per age), which it finds cheaper on paper.
                std::hint::black_box(());
            }
        }
        let open =
            Self::cell::<COMP, CLAMP, true>(&mul, &rates, &counts, q, qfm, n - 1, &p[n - 1], sums);
        let born =
            Self::cell::<COMP, CLAMP, false>(&mul, &rates, &counts, q, qfm, n, newborn, sums);
        (open, born)
    }

    /// [`Self::pass`] without sums, in place: `p` becomes the survivors, one age up,
    /// the oldest first, so that a block's state is one buffer, not two (it stays in
    /// the L1 cache with the rates and the outputs). The open group's and the
    /// newborns' survivors are returned, not placed.
    #[inline(always)]
    fn pass_in_place<const CLAMP: bool>(
        &self,
        p: &mut [V],
        q: &[f64],
        qfm: &V,
        newborn: &V,
    ) -> (V, V) {
        let n = p.len();
        let q = &q[..=n];
        let rates: [&[f64]; NR] = std::array::from_fn(|j| &self.rates[j][..=n]);
        let counts: [&[f64]; NC] = std::array::from_fn(|j| &self.counts[j][..=n]);
        let mul = (self.rm, self.cm);
        let mut sums = [[0.0; LANES]; 3];
        let open = Self::cell::<false, CLAMP, true>(
            &mul,
            &rates,
            &counts,
            q,
            qfm,
            n - 1,
            &p[n - 1],
            &mut sums,
        );
        {
            let m = n - 1;
            let qm = &q[..m];
            let rm: [&[f64]; NR] = std::array::from_fn(|j| &rates[j][..m]);
            let cm: [&[f64]; NC] = std::array::from_fn(|j| &counts[j][..m]);
            let p = &mut p[..n];
            for i in (0..m).rev() {
                p[i + 1] =
                    Self::cell::<false, CLAMP, true>(&mul, &rm, &cm, qm, qfm, i, &p[i], &mut sums);
                std::hint::black_box(());
            }
        }
        let born =
            Self::cell::<false, CLAMP, false>(&mul, &rates, &counts, q, qfm, n, newborn, &mut sums);
        (open, born)
    }

    /// One index: `v = p − d + Σ counts − Σ rates · p` per lane, kept at 0 or more
    /// (`DIE`: with deaths `d`; the newborns' are taken off before).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn cell<const COMP: bool, const CLAMP: bool, const DIE: bool>(
        (rm, cm): &([V; NR], [V; NC]),
        rates: &[&[f64]; NR],
        counts: &[&[f64]; NC],
        q: &[f64],
        qfm: &V,
        i: usize,
        pi: &V,
        sums: &mut [V; 3],
    ) -> V {
        let mut rc = [0.0; LANES];
        if NR > 0 {
            for l in 0..LANES {
                rc[l] = rates[0][i] * rm[0][l];
            }
            for j in 1..NR {
                for l in 0..LANES {
                    rc[l] += rates[j][i] * rm[j][l];
                }
            }
        }
        let mut cn = [0.0; LANES];
        if NC > 0 {
            for l in 0..LANES {
                cn[l] = counts[0][i] * cm[0][l];
            }
            for j in 1..NC {
                for l in 0..LANES {
                    cn[l] += counts[j][i] * cm[j][l];
                }
            }
        }
        let mut x = [0.0; LANES];
        if !COMP && DIE && NR > 0 {
            // `max(p · (1 − qq − rc) + cn, 0)`: the survivors' factor built from the
            // rates first, so that each lane takes four multiplications, not five.
            for l in 0..LANES {
                let mut f = if CLAMP {
                    let qq = q[i] * qfm[l];
                    1.0 - if qq < 1.0 { qq } else { 1.0 }
                } else {
                    fma(-q[i], qfm[l], 1.0)
                };
                for j in 0..NR {
                    f = fma(-rates[j][i], rm[j][l], f);
                }
                let v = if NC > 0 {
                    fma(pi[l], f, cn[l])
                } else {
                    pi[l] * f
                };
                x[l] = if v > 0.0 { v } else { 0.0 };
            }
            return x;
        }
        for l in 0..LANES {
            let mut v = pi[l];
            if DIE {
                let mut qq = q[i] * qfm[l];
                if CLAMP {
                    qq = if qq < 1.0 { qq } else { 1.0 };
                }
                // `v − p·qq`.
                v = fma(-qq, pi[l], v);
                if COMP {
                    sums[0][l] += pi[l] * qq;
                }
            }
            if NC > 0 {
                v += cn[l];
            }
            if NR > 0 {
                let lv = rc[l] * pi[l];
                v = fma(-rc[l], pi[l], v);
                if COMP {
                    sums[1][l] += lv;
                }
            }
            let kept = if v > 0.0 { v } else { 0.0 };
            if COMP {
                sums[2][l] += kept - v;
            }
            x[l] = kept;
        }
        x
    }
}

/// One year step of a block for a group of areas without process noise: MODEL.md §2
/// per lane with the lanes' multipliers. The rates of an (area, sex) are first
/// combined per lane into a few arrays; the pass over the ages is then a handful of
/// vertical vector operations per age.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn step_fast(
    ctx: &Ctx<'_>,
    k: usize,
    r: &YearRates,
    ly: &LaneYear,
    group: &std::ops::Range<usize>,
    cur: &mut [V],
    next: &mut [V],
    pool: &mut Vec<V>,
    comp: &mut [[V; COMPONENTS]],
    mv: &mut [V],
) -> bool {
    let (n, w, nf, zero) = (ctx.n, ctx.n + 1, ctx.nf, [0.0; LANES]);
    let qfm = death_factors(r, ly);
    let plan = ctx.plans[k].as_ref().expect("a projected year has a plan");
    if plan.fast() {
        let fl = ctx.flat[k]
            .as_ref()
            .expect("a projected year has its rates");
        let mut qfm_max = 0.0f64;
        for l in 0..LANES {
            qfm_max = qfm_max.max(qfm[l]);
        }
        let comp_on = ctx.sums_wanted();
        for (al, a) in group.clone().enumerate() {
            let b = births_fast(r, fl, plan, ly, cur, n, al, a);
            let q_row = if r.q.dim().0 == 1 { 0 } else { a };
            for s in 0..2 {
                let q = &fl.q.lane(a, s)[..w];
                let (born, bd) = newborns(r, q[n], &qfm, s, &b);
                // Deaths need no cap at the population when no lane's risk reaches 1.
                let clamp = plan.qmax[q_row * 2 + s] * qfm_max > 1.0;
                let cells = (al * 2 + s) * n..(al * 2 + s + 1) * n;
                let mut newborn = zero;
                for l in 0..LANES {
                    newborn[l] = born[l] - bd[l];
                }
                let mut sums = [zero; 3];
                macro_rules! go {
                    ($nr:literal, $nc:literal) => {{
                        let flows = FastFlows::<$nr, $nc> {
                            rates: std::array::from_fn(|j| {
                                &fl.flows[plan.rates[j]].lane(a, s)[..w]
                            }),
                            rm: std::array::from_fn(|j| ly.mm[plan.rates[j]]),
                            counts: std::array::from_fn(|j| {
                                &fl.flows[plan.counts[j].0].lane(a, s)[..w]
                            }),
                            cm: std::array::from_fn(|j| {
                                let (f, direction) = plan.counts[j];
                                let sign = direction.sign();
                                ly.mm[f].map(|m| sign * m)
                            }),
                        };
                        if comp_on {
                            let (p, out) = (&cur[cells.clone()], &mut next[cells.clone()]);
                            flows.run(true, clamp, p, q, &qfm, &newborn, out, &mut sums)
                        } else if clamp {
                            // In place: every area's next state from its own alone.
                            flows.pass_in_place::<true>(&mut cur[cells.clone()], q, &qfm, &newborn)
                        } else {
                            flows.pass_in_place::<false>(&mut cur[cells.clone()], q, &qfm, &newborn)
                        }
                    }};
                }
                let (open, x0) = match (plan.rates.len(), plan.counts.len()) {
                    (0, 0) => go!(0, 0),
                    (0, 1) => go!(0, 1),
                    (0, _) => go!(0, 2),
                    (1, 0) => go!(1, 0),
                    (1, 1) => go!(1, 1),
                    (1, _) => go!(1, 2),
                    (_, 0) => go!(2, 0),
                    (_, 1) => go!(2, 1),
                    (_, _) => go!(2, 2),
                };
                if !comp_on {
                    place_ends(&mut cur[cells], &x0, &open);
                    continue;
                }
                place_ends(&mut next[cells.clone()], &x0, &open);
                let p = &cur[cells];
                let mut counted = [zero; 3];
                for &(f, direction) in &plan.counts {
                    let m = count_movers(ctx, k, r, ly, f, a, s);
                    let dst = &mut counted[direction as usize];
                    for l in 0..LANES {
                        dst[l] += m[l];
                    }
                }
                let c = &mut comp[al * 2 + s];
                c[0] = born;
                for l in 0..LANES {
                    c[1][l] = sums[0][l] + bd[l];
                    c[2][l] = counted[0][l];
                    c[3][l] = counted[1][l] + sums[1][l];
                }
                c[4] = sums[2];
                set_net(c, &counted[2]);
                if ctx.want.migration {
                    let at = (al * 2 + s) * nf * 2;
                    flow_movers(ctx, k, r, ly, a, s, p, &newborn, &[], &mut mv[at..]);
                }
            }
        }
        // Without sums the step was made in place.
        return !comp_on;
    }
    // Other shapes: compiled apart, so that the common pass stays small.
    crate::projection::simd_dispatch(GeneralStep {
        ctx,
        k,
        r,
        ly,
        group,
        cur,
        next,
        pool,
        comp,
        mv,
    });
    false
}

/// The general year step ([`step_general`]) as a kernel of its own.
struct GeneralStep<'g, 'a> {
    ctx: &'g Ctx<'a>,
    k: usize,
    r: &'g YearRates,
    ly: &'g LaneYear,
    group: &'g std::ops::Range<usize>,
    cur: &'g [V],
    next: &'g mut [V],
    pool: &'g mut Vec<V>,
    comp: &'g mut [[V; COMPONENTS]],
    mv: &'g mut [V],
}

impl crate::projection::Kernel for GeneralStep<'_, '_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        step_general(
            self.ctx, self.k, self.r, self.ly, self.group, self.cur, self.next, self.pool,
            self.comp, self.mv,
        );
    }
}

/// One year step of a block for any shape of flows (closed systems, more than two
/// flows of a form), without process noise.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn step_general(
    ctx: &Ctx<'_>,
    k: usize,
    r: &YearRates,
    ly: &LaneYear,
    group: &std::ops::Range<usize>,
    cur: &[V],
    next: &mut [V],
    pool: &mut Vec<V>,
    comp: &mut [[V; COMPONENTS]],
    mv: &mut [V],
) {
    let (n, w, nf, zero) = (ctx.n, ctx.n + 1, ctx.nf, [0.0; LANES]);
    let qfm = death_factors(r, ly);
    let plan = ctx.plans[k].as_ref().expect("a projected year has a plan");
    let closed = &plan.closed;
    if !closed.is_empty() {
        // Every area's movers of each closed system, pooled per sex and index.
        pool.clear();
        pool.resize(closed.len() * 2 * w, zero);
        for (al, a) in group.clone().enumerate() {
            let b = births_fast(r, flat_of(ctx, k), plan, ly, cur, n, al, a);
            for s in 0..2 {
                let (born, bd) = newborns_fast(r, &qfm, n, a, s, &b);
                let p = &cur[(al * 2 + s) * n..(al * 2 + s + 1) * n];
                for (ci, &f) in closed.iter().enumerate() {
                    let FlowValues::OutRates(rates) = &r.flows[f].values else {
                        continue;
                    };
                    let rl = lane(rates, a, s);
                    let m = &ly.mm[f];
                    let dst = &mut pool[(ci * 2 + s) * w..(ci * 2 + s + 1) * w];
                    for i in 0..n {
                        for l in 0..LANES {
                            dst[i][l] += m[l] * rl[i] * p[i][l];
                        }
                    }
                    for l in 0..LANES {
                        dst[n][l] += m[l] * rl[n] * (born[l] - bd[l]);
                    }
                }
            }
        }
    }
    for (al, a) in group.clone().enumerate() {
        let b = births_fast(r, flat_of(ctx, k), plan, ly, cur, n, al, a);
        for s in 0..2 {
            let q = &lane(&r.q, a, s)[..w];
            let (born, bd) = newborns_fast(r, &qfm, n, a, s, &b);
            // The flows of this (area, sex): rates and signed counts with their lane
            // multipliers, arrivals of closed systems with their pools.
            let empty: &[f64] = &[];
            let mut rates = [(empty, zero); MAX_FLOWS];
            let mut counts = [(empty, zero); MAX_FLOWS];
            let mut closed = [(empty, 0usize); MAX_FLOWS];
            let (mut nr, mut nc, mut nd) = (0, 0, 0);
            let mut counted = [zero; 3];
            let mut ci = 0;
            for (f, fl) in r.flows.iter().enumerate() {
                let m = ly.mm[f];
                match &fl.values {
                    FlowValues::Counts(c) => {
                        let movers = count_movers(ctx, k, r, ly, f, a, s);
                        let sign = fl.direction.sign();
                        let dst = &mut counted[fl.direction as usize];
                        let mut signed = zero;
                        for l in 0..LANES {
                            dst[l] += movers[l];
                            signed[l] = sign * m[l];
                        }
                        counts[nc] = (&lane(c, a, s)[..w], signed);
                        nc += 1;
                    }
                    FlowValues::OutRates(rt) => {
                        rates[nr] = (&lane(rt, a, s)[..w], m);
                        nr += 1;
                        if let Some(dest) = &fl.destinations {
                            closed[nd] = (&lane(dest, a, s)[..w], ci);
                            nd += 1;
                            ci += 1;
                        }
                    }
                }
            }
            let p = &cur[(al * 2 + s) * n..(al * 2 + s + 1) * n];
            let out = &mut next[(al * 2 + s) * n..(al * 2 + s + 1) * n];
            let (mut deaths, mut leave, mut unmet, mut arrived) = (zero, zero, zero, zero);
            let flows = FlowLanes {
                rates: &rates[..nr],
                counts: &counts[..nc],
                closed: &closed[..nd],
                pool,
                s,
                w,
            };
            // Survivors of ages 0..ω−1 move one age up; ω keeps its own. The pass is
            // compiled without the sums when no components are asked for and without
            // arrivals when there is no closed system.
            let mut sums = Sums {
                deaths: &mut deaths,
                leave: &mut leave,
                arrived: &mut arrived,
                unmet: &mut unmet,
            };
            let open = match (ctx.sums_wanted(), nd > 0) {
                (true, true) => ages_pass::<true, true>(&flows, p, q, &qfm, out, &mut sums),
                (true, false) => ages_pass::<true, false>(&flows, p, q, &qfm, out, &mut sums),
                (false, true) => ages_pass::<false, true>(&flows, p, q, &qfm, out, &mut sums),
                (false, false) => ages_pass::<false, false>(&flows, p, q, &qfm, out, &mut sums),
            };
            // Newborns: out-rates at the birth index apply after birth-year deaths.
            let mut base = zero;
            for l in 0..LANES {
                base[l] = born[l] - bd[l];
                deaths[l] += bd[l];
            }
            if ctx.want.migration {
                let at = (al * 2 + s) * nf * 2;
                flow_movers(ctx, k, r, ly, a, s, p, &base, pool, &mut mv[at..]);
            }
            let (rc, cn, arr) = flows.at::<true>(n);
            let x = survive_lanes(
                &base,
                &zero,
                &rc,
                &cn,
                &arr,
                &mut deaths,
                &mut leave,
                &mut arrived,
                &mut unmet,
            );
            place_ends(out, &x, &open);
            let c = &mut comp[al * 2 + s];
            c[0] = born;
            c[1] = deaths;
            for l in 0..LANES {
                c[2][l] = counted[0][l] + arrived[l];
                c[3][l] = counted[1][l] + leave[l];
            }
            c[4] = unmet;
            set_net(c, &counted[2]);
        }
    }
}

/// The lanes' factors on the year's death probabilities: the improvement factor
/// times each lane's mortality multiplier.
#[inline(always)]
fn death_factors(r: &YearRates, ly: &LaneYear) -> V {
    ly.mq.map(|m| r.q_factor * m)
}

/// Movers per lane of count flow `f` in (area `a`, sex `s`): its counts summed over
/// the indices, times the lanes' multipliers.
#[inline(always)]
fn count_movers(
    ctx: &Ctx<'_>,
    k: usize,
    r: &YearRates,
    ly: &LaneYear,
    f: usize,
    a: usize,
    s: usize,
) -> V {
    let c = flow_values(r, f);
    let row = if c.dim().0 == 1 { 0 } else { a };
    let total = ctx.count_sums[k][f][row * 2 + s];
    ly.mm[f].map(|m| m * total)
}

/// Puts the newborns' survivors `x0` at age 0 and adds the open group's own
/// survivors `open` to the oldest age (the same place when there is one age).
#[inline(always)]
fn place_ends(out: &mut [V], x0: &V, open: &V) {
    let n = out.len();
    if n == 1 {
        for l in 0..LANES {
            out[0][l] = x0[l] + open[l];
        }
    } else {
        out[0] = *x0;
        for l in 0..LANES {
            out[n - 1][l] += open[l];
        }
    }
}

/// Movers of each flow of (area `a`, sex `s`) from the population at the start `p`
/// and the newborns `base` (as the projection counts them), and each closed
/// system's arrivals from its `pool`, into `mv` (by flow, then movers and arrivals).
/// Kept out of line: it runs only when components or migration are asked for.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn flow_movers(
    ctx: &Ctx<'_>,
    k: usize,
    r: &YearRates,
    ly: &LaneYear,
    a: usize,
    s: usize,
    p: &[V],
    base: &V,
    pool: &[V],
    mv: &mut [V],
) {
    let (n, w, zero) = (ctx.n, ctx.n + 1, [0.0; LANES]);
    let mut ci = 0;
    for (f, fl) in r.flows.iter().enumerate() {
        let m = &ly.mm[f];
        match &fl.values {
            FlowValues::Counts(_) => {
                mv[mv_at(ctx.nf, 0, f, false)] = count_movers(ctx, k, r, ly, f, a, s);
            }
            FlowValues::OutRates(rt) => {
                let rl = lane(rt, a, s);
                let d = dot_lanes(&rl[..n], p);
                let mut x = zero;
                for l in 0..LANES {
                    x[l] = m[l] * (d[l] + rl[n] * base[l]);
                }
                mv[mv_at(ctx.nf, 0, f, false)] = x;
                if let Some(dest) = &fl.destinations {
                    let at = (ci * 2 + s) * w;
                    mv[mv_at(ctx.nf, 0, f, true)] =
                        dot_lanes(&lane(dest, a, s)[..w], &pool[at..at + w]);
                    ci += 1;
                }
            }
        }
    }
}

/// One year step of a block for a group of areas: MODEL.md §2 per lane, with the
/// lanes' multipliers and Poisson draws of births, deaths and movers (process noise).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn step_noisy(
    ctx: &Ctx<'_>,
    k: usize,
    r: &YearRates,
    ly: &LaneYear,
    group: &std::ops::Range<usize>,
    cur: &[V],
    next: &mut [V],
    births: &mut [V],
    movers: &mut Vec<V>,
    pool: &mut Vec<V>,
    comp: &mut [[V; COMPONENTS]],
    mv: &mut [V],
    rngs: &mut [[Rng; LANES]],
) {
    let n = ctx.n;
    let w = n + 1;
    let qf = r.q_factor;
    let share = [1.0 - r.boys_share, r.boys_share];
    let zero: V = [0.0; LANES];
    let plan = ctx.plans[k].as_ref().expect("a projected year has a plan");
    // Births from the women at the start of the year.
    for (al, a) in group.clone().enumerate() {
        births[al] = births_fast(r, flat_of(ctx, k), plan, ly, cur, n, al, a);
    }
    // Newborns of each sex after birth-year deaths, and their Poisson draws.
    let mut born = vec![[zero; 2]; group.len()];
    let mut born_deaths = vec![[zero; 2]; group.len()];
    for (al, a) in group.clone().enumerate() {
        for s in 0..2 {
            let qb = lane(&r.q, a, s)[n] * qf;
            for l in 0..LANES {
                let bs = rngs[al][l].poisson(births[al][l] * share[s]);
                let bd = rngs[al][l].poisson((bs * qb * ly.mq[l]).min(bs)).min(bs);
                born[al][s][l] = bs;
                born_deaths[al][s][l] = bd;
            }
        }
    }
    // Closed internal systems: every area's movers first, pooled per sex and index.
    let closed: Vec<usize> = (0..r.flows.len())
        .filter(|f| r.flows[*f].destinations.is_some())
        .collect();
    let ga = group.len();
    if !closed.is_empty() {
        movers.clear();
        movers.resize(closed.len() * ga * 2 * w, zero);
        pool.clear();
        pool.resize(closed.len() * 2 * w, zero);
        for (ci, &f) in closed.iter().enumerate() {
            let FlowValues::OutRates(rates) = &r.flows[f].values else {
                continue;
            };
            for (al, a) in group.clone().enumerate() {
                for s in 0..2 {
                    let rl = lane(rates, a, s);
                    for i in 0..w {
                        let mut m = zero;
                        for l in 0..LANES {
                            let base = if i < n {
                                cur[(al * 2 + s) * n + i][l]
                            } else {
                                born[al][s][l] - born_deaths[al][s][l]
                            };
                            m[l] = rngs[al][l].poisson(ly.mm[f][l] * rl[i] * base);
                        }
                        movers[((ci * ga + al) * 2 + s) * w + i] = m;
                        let p = &mut pool[(ci * 2 + s) * w + i];
                        for l in 0..LANES {
                            p[l] += m[l];
                        }
                    }
                }
            }
        }
    }
    for (al, a) in group.clone().enumerate() {
        for s in 0..2 {
            let q = lane(&r.q, a, s);
            let (mut deaths, mut unmet, mut inm, mut outm, mut netm) =
                (zero, zero, zero, zero, zero);
            let out = &mut next[(al * 2 + s) * n..(al * 2 + s + 1) * n];
            let p_lane = &cur[(al * 2 + s) * n..(al * 2 + s + 1) * n];
            // Movers of each flow and arrivals of each closed system, as drawn.
            let keep = ctx.sums_wanted();
            let nf = ctx.nf;
            if keep {
                for f in 0..nf {
                    for arrivals in [false, true] {
                        mv[mv_at(nf, al * 2 + s, f, arrivals)] = zero;
                    }
                }
            }
            let mut add_mv = |f: usize, arrivals: bool, x: &V| {
                if keep {
                    let m = &mut mv[mv_at(nf, al * 2 + s, f, arrivals)];
                    for l in 0..LANES {
                        m[l] += x[l];
                    }
                }
            };
            for i in 0..w {
                // The base of index i: the population of age i at the start, or the
                // year's newborns after birth-year deaths.
                let (p, d) = if i < n {
                    let p = p_lane[i];
                    let mut d = zero;
                    for l in 0..LANES {
                        let expected = (p[l] * q[i] * qf * ly.mq[l]).min(p[l]);
                        d[l] = rngs[al][l].poisson(expected).min(p[l]);
                    }
                    (p, d)
                } else {
                    (born[al][s], born_deaths[al][s])
                };
                let (mut leave, mut arr) = (zero, zero);
                // Counts in, out and net.
                let mut counted = [zero; 3];
                let mut ci = 0;
                for (f, fl) in r.flows.iter().enumerate() {
                    match &fl.values {
                        FlowValues::Counts(c) => {
                            // Each count flow drawn on its own; a net count as its
                            // sign times a Poisson draw of its size.
                            let c = lane(c, a, s)[i];
                            let dst = &mut counted[fl.direction as usize];
                            let mut x = zero;
                            for l in 0..LANES {
                                x[l] = c.signum() * rngs[al][l].poisson(ly.mm[f][l] * c.abs());
                                dst[l] += x[l];
                            }
                            add_mv(f, false, &x);
                        }
                        FlowValues::OutRates(rt) => {
                            if let Some(dest) = &fl.destinations {
                                let m = movers[((ci * ga + al) * 2 + s) * w + i];
                                let dv = lane(dest, a, s)[i];
                                let pl = pool[(ci * 2 + s) * w + i];
                                let mut x = zero;
                                for l in 0..LANES {
                                    leave[l] += m[l];
                                    x[l] = dv * pl[l];
                                    arr[l] += x[l];
                                }
                                add_mv(f, false, &m);
                                add_mv(f, true, &x);
                                ci += 1;
                            } else {
                                let rv = lane(rt, a, s)[i];
                                let mut x = zero;
                                for l in 0..LANES {
                                    let base = p[l] - if i < n { 0.0 } else { d[l] };
                                    x[l] = rngs[al][l].poisson(ly.mm[f][l] * rv * base);
                                    leave[l] += x[l];
                                }
                                add_mv(f, false, &x);
                            }
                        }
                    }
                }
                let mut x = zero;
                for l in 0..LANES {
                    let [cin, cout, cnet] = counted;
                    x[l] = p[l] - d[l] + cin[l] - cout[l] + cnet[l] + arr[l] - leave[l];
                    deaths[l] += d[l];
                    inm[l] += cin[l] + arr[l];
                    outm[l] += cout[l] + leave[l];
                    netm[l] += cnet[l];
                    unmet[l] += if x[l] < 0.0 { -x[l] } else { 0.0 };
                    x[l] = if x[l] > 0.0 { x[l] } else { 0.0 };
                }
                // Survivors of age i are age i + 1 at the end; the open group keeps
                // its own; newborns are age 0.
                let dst = if i == n {
                    0
                } else if i + 1 < n {
                    i + 1
                } else {
                    n - 1
                };
                if i + 1 == n && n > 1 {
                    for l in 0..LANES {
                        out[dst][l] += x[l];
                    }
                } else if i == n && n == 1 {
                    for l in 0..LANES {
                        out[0][l] += x[l];
                    }
                } else {
                    out[dst] = x;
                }
            }
            let c = &mut comp[al * 2 + s];
            c[0] = born[al][s];
            c[1] = deaths;
            c[2] = inm;
            c[3] = outm;
            c[4] = unmet;
            set_net(c, &netm);
        }
    }
}

#[cfg(test)]
mod tests;
