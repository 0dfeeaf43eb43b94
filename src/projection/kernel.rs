//! The year kernel: MODEL.md §2 for `L` trajectories side by side in the lanes of
//! `[f64; L]` — births, deaths, movers of every flow form, closed internal systems,
//! the guard against negative populations and the components — with expected counts
//! or, with process noise, Poisson draws.
//!
//! It is the one place the projection year is written. The deterministic run
//! ([`super::project`]) takes it with one lane, each flow's multiplier its own
//! scenario lever and the fertility and mortality multipliers 1; the Monte Carlo
//! run (`crate::uncertainty`) with eight lanes, one trajectory each, and each
//! lane's multipliers. A group of areas is stepped together: one area where areas
//! are independent, every area where a closed internal system or an alignment
//! couples them (and in [`super::project_year`]).
//!
//! - [`step`]: a year with expected counts. With no closed system and at most two
//!   flows of each form it takes the ages pass specialised by the number of flows of
//!   each form ([`FastFlows`], the speed of the common case); otherwise
//!   [`step_general`];
//! - [`step_general`]: any shape of flows, closed internal systems pooled first,
//!   every count drawn by a [`Draw`]: [`Expected`] (the projection) or, in the
//!   Monte Carlo run, `uncertainty`'s Poisson draws (process noise).
//!
//! Births ([`births_fast`]) and the closed systems' pools are each written once;
//! the newborns' deaths, the survivors and the guard against a negative count (kept
//! at 0, the shortfall reported as unmet out-migration) twice, in the specialised
//! pass and the general step. `projection`'s tests hold the deterministic run against hand-computed years
//! and the balancing equation; `uncertainty`'s zero-spread matrix holds every path
//! against it.
//!
//! Every sum is taken in a fixed order and `a · b + c` is never fused ([`fma`]), so
//! a lane's bits do not depend on the lane count, the processor or the threads.

#![allow(clippy::needless_range_loop)]

use super::{lane, Direction, Flat, FlowValues, YearRates};

/// `L` values side by side, one per trajectory.
pub(crate) type V<const L: usize> = [f64; L];

/// What every group's step needs of the run's rates, worked out once.
pub(crate) struct YearKernel<'a> {
    /// Ages `0..=ω`.
    pub(crate) n: usize,
    /// The number of migration flows.
    pub(crate) nf: usize,
    /// Per year slot, its rates where it is projected.
    pub(crate) rates: &'a [Option<YearRates>],
    /// Per year slot, per flow given as counts, the sum over indices per `(row, sex)`.
    pub(crate) count_sums: Vec<Vec<Vec<f64>>>,
    /// Per year slot: what every group needs of its rates.
    pub(crate) plans: Vec<Option<YearPlan>>,
    /// Per projected year slot: its rate arrays as flat slices.
    pub(crate) flat: Vec<Option<YearFlat<'a>>>,
    /// Whether the steps keep the components (and the general step each flow's
    /// movers).
    pub(crate) sums: bool,
    /// Whether the steps keep each flow's movers (in `mv`, see [`mv_at`]).
    pub(crate) movers: bool,
}

impl<'a> YearKernel<'a> {
    /// The kernel of the year slots `rates` for ages `0..n` and `nf` migration flows;
    /// `sums`: keep the components; `movers`: keep each flow's movers too.
    pub(crate) fn new(
        rates: &'a [Option<YearRates>],
        n: usize,
        nf: usize,
        sums: bool,
        movers: bool,
    ) -> YearKernel<'a> {
        YearKernel {
            n,
            nf,
            rates,
            count_sums: rates
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
            plans: rates
                .iter()
                .map(|y| y.as_ref().map(|y| YearPlan::new(y, n)))
                .collect(),
            flat: rates
                .iter()
                .map(|y| y.as_ref().map(YearFlat::new))
                .collect(),
            sums: sums || movers,
            movers,
        }
    }

    /// Year slot `k`'s rate arrays as flat slices (a projected year has them).
    #[inline(always)]
    pub(crate) fn flat_of(&self, k: usize) -> &YearFlat<'a> {
        self.flat[k]
            .as_ref()
            .expect("a projected year has its rates")
    }
}

/// What every group needs of a projected year's rates, worked out once.
pub(crate) struct YearPlan {
    /// Out-rate flows without destinations (indices into the year's flows).
    pub(crate) rates: Vec<usize>,
    /// Count flows with their directions.
    pub(crate) counts: Vec<(usize, Direction)>,
    /// Out-rate flows with destinations: the closed internal systems.
    pub(crate) closed: Vec<usize>,
    /// Per `(row of q, sex)`: the largest death probability of an age (before the
    /// year's improvement factor and the lanes' multipliers).
    pub(crate) qmax: Vec<f64>,
    /// Per fertility row: the ages with a fertility rate other than 0.
    pub(crate) fertile: Vec<std::ops::Range<usize>>,
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
    pub(crate) fn fast(&self) -> bool {
        self.closed.is_empty() && self.rates.len() <= 2 && self.counts.len() <= 2
    }
}

/// A projected year's rate arrays as flat slices.
pub(crate) struct YearFlat<'r> {
    pub(crate) q: Flat<'r>,
    /// Fertility by `(row, age)`, rows of `fert_w`.
    pub(crate) fert: &'r [f64],
    pub(crate) fert_rows: usize,
    pub(crate) fert_w: usize,
    /// Each flow's values.
    pub(crate) flows: Vec<Flat<'r>>,
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

/// Per-lane multipliers of a year: fertility, mortality and each flow's (times the
/// flow's own lever multiplier of the year).
pub(crate) struct LaneYear<const L: usize> {
    pub(crate) mf: V<L>,
    pub(crate) mq: V<L>,
    pub(crate) mm: Vec<V<L>>,
}

impl<const L: usize> LaneYear<L> {
    /// Multipliers of 1 for `nf` flows.
    pub(crate) fn ones(nf: usize) -> LaneYear<L> {
        LaneYear {
            mf: [1.0; L],
            mq: [1.0; L],
            mm: vec![[1.0; L]; nf],
        }
    }
}

/// Where the movers of flow `f` (or, with `arrivals`, its closed system's
/// arrivals) in (area, sex) position `i` of a group are kept.
#[inline(always)]
pub(crate) fn mv_at(nf: usize, i: usize, f: usize, arrivals: bool) -> usize {
    (i * nf + f) * 2 + usize::from(arrivals)
}

/// The components of a year by `(area, sex)`: births, deaths, in_migration,
/// out_migration, unmet_out_migration and net_migration.
pub const COMPONENTS: usize = 6;

/// Sets a cell's net migration, `in − out + Σ net flows`, from its other components
/// and its net flows' movers.
#[inline(always)]
pub(crate) fn set_net<const L: usize>(c: &mut [V<L>; COMPONENTS], net_flows: &V<L>) {
    for l in 0..L {
        c[5][l] = c[2][l] - c[3][l] + net_flows[l];
    }
}

/// `a · b + c` with two roundings, never fused: the kernels give the same bits on
/// every x86-64 processor, with or without FMA.
#[inline(always)]
pub(crate) fn fma(a: f64, b: f64, c: f64) -> f64 {
    a * b + c
}

/// `Σ w[i] · p[i]` per lane, in four running sums (added pairwise at the end) so
/// that consecutive terms do not wait on each other.
#[inline(always)]
pub(crate) fn dot_lanes<const L: usize>(w: &[f64], p: &[V<L>]) -> V<L> {
    let n = w.len().min(p.len());
    let (w, p) = (&w[..n], &p[..n]);
    let mut acc = [[0.0; L]; 4];
    let (wc, pc) = (w.chunks_exact(4), p.chunks_exact(4));
    let (wr, pr) = (wc.remainder(), pc.remainder());
    for (wq, pq) in wc.zip(pc) {
        for j in 0..4 {
            for l in 0..L {
                acc[j][l] = fma(pq[j][l], wq[j], acc[j][l]);
            }
        }
    }
    for (j, (wv, pv)) in wr.iter().zip(pr).enumerate() {
        for l in 0..L {
            acc[j][l] = fma(pv[l], *wv, acc[j][l]);
        }
    }
    let mut sum = [0.0; L];
    for l in 0..L {
        sum[l] = (acc[0][l] + acc[1][l]) + (acc[2][l] + acc[3][l]);
    }
    sum
}

/// The array of flow `f`, counts or rates.
#[inline(always)]
pub(crate) fn flow_values(r: &YearRates, f: usize) -> &ndarray::Array3<f64> {
    match &r.flows[f].values {
        FlowValues::Counts(v) | FlowValues::OutRates(v) => v,
    }
}

/// Births per lane in area `a` (position `al` in the group) from its women.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn births_fast<const L: usize>(
    r: &YearRates,
    fl: &YearFlat<'_>,
    plan: &YearPlan,
    ly: &LaneYear<L>,
    cur: &[V<L>],
    n: usize,
    al: usize,
    a: usize,
) -> V<L> {
    let row = if fl.fert_rows == 1 { 0 } else { a };
    let f = &fl.fert[row * fl.fert_w..(row + 1) * fl.fert_w];
    let level = r.fertility_factor.get(a).copied().unwrap_or(1.0);
    let fertile = plan.fertile[row].clone();
    let women = &cur[al * 2 * n..al * 2 * n + n];
    let mut b = dot_lanes(&f[fertile.clone()], &women[fertile]);
    for l in 0..L {
        b[l] *= level * ly.mf[l];
    }
    b
}

/// Newborns of sex `s` per lane and their deaths in the birth year, (born, deaths),
/// with the newborns' death probability `qb`.
#[inline(always)]
pub(crate) fn newborns<const L: usize>(
    r: &YearRates,
    qb: f64,
    qfm: &V<L>,
    s: usize,
    b: &V<L>,
) -> (V<L>, V<L>) {
    let share = if s == 1 {
        r.boys_share
    } else {
        1.0 - r.boys_share
    };
    let (mut born, mut bd) = ([0.0; L], [0.0; L]);
    for l in 0..L {
        born[l] = b[l] * share;
        bd[l] = (born[l] * (qb * qfm[l])).min(born[l]);
    }
    (born, bd)
}

/// The flows of one (area, sex) for the specialised pass: `NR` out-rate flows with
/// their lanes' multipliers and `NC` count flows with signed multipliers (negative
/// for flows out), each by index `0..=ω + 1`.
pub(crate) struct FastFlows<'f, const L: usize, const NR: usize, const NC: usize> {
    pub(crate) rates: [&'f [f64]; NR],
    pub(crate) rm: [V<L>; NR],
    pub(crate) counts: [&'f [f64]; NC],
    pub(crate) cm: [V<L>; NC],
}

impl<const L: usize, const NR: usize, const NC: usize> FastFlows<'_, L, NR, NC> {
    /// Survivors of ages `0..ω` of one (area, sex) per lane, written one age up into
    /// `out`; returns the open group's own survivors and the newborns' (`newborn` is
    /// the year's births after birth-year deaths). Adds deaths, leavers and the
    /// shortfall to `sums` when `comp`; caps deaths at the population when `clamp`.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(crate) fn run(
        &self,
        comp: bool,
        clamp: bool,
        p: &[V<L>],
        q: &[f64],
        qfm: &V<L>,
        newborn: &V<L>,
        out: &mut [V<L>],
        sums: &mut [V<L>; 3],
    ) -> (V<L>, V<L>) {
        match (comp, clamp) {
            (false, false) => self.pass::<false, false>(p, q, qfm, newborn, out, sums),
            (false, true) => self.pass::<false, true>(p, q, qfm, newborn, out, sums),
            (true, false) => self.pass::<true, false>(p, q, qfm, newborn, out, sums),
            (true, true) => self.pass::<true, true>(p, q, qfm, newborn, out, sums),
        }
    }

    #[inline(always)]
    pub(crate) fn pass<const COMP: bool, const CLAMP: bool>(
        &self,
        p: &[V<L>],
        q: &[f64],
        qfm: &V<L>,
        newborn: &V<L>,
        out: &mut [V<L>],
        sums: &mut [V<L>; 3],
    ) -> (V<L>, V<L>) {
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
                if L > 1 {
                    std::hint::black_box(());
                }
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
    pub(crate) fn pass_in_place<const CLAMP: bool>(
        &self,
        p: &mut [V<L>],
        q: &[f64],
        qfm: &V<L>,
        newborn: &V<L>,
    ) -> (V<L>, V<L>) {
        let n = p.len();
        let q = &q[..=n];
        let rates: [&[f64]; NR] = std::array::from_fn(|j| &self.rates[j][..=n]);
        let counts: [&[f64]; NC] = std::array::from_fn(|j| &self.counts[j][..=n]);
        let mul = (self.rm, self.cm);
        let mut sums = [[0.0; L]; 3];
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
                if L > 1 {
                    std::hint::black_box(());
                }
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
    pub(crate) fn cell<const COMP: bool, const CLAMP: bool, const DIE: bool>(
        (rm, cm): &([V<L>; NR], [V<L>; NC]),
        rates: &[&[f64]; NR],
        counts: &[&[f64]; NC],
        q: &[f64],
        qfm: &V<L>,
        i: usize,
        pi: &V<L>,
        sums: &mut [V<L>; 3],
    ) -> V<L> {
        let mut rc = [0.0; L];
        if NR > 0 {
            for l in 0..L {
                rc[l] = rates[0][i] * rm[0][l];
            }
            for j in 1..NR {
                for l in 0..L {
                    rc[l] += rates[j][i] * rm[j][l];
                }
            }
        }
        let mut cn = [0.0; L];
        if NC > 0 {
            for l in 0..L {
                cn[l] = counts[0][i] * cm[0][l];
            }
            for j in 1..NC {
                for l in 0..L {
                    cn[l] += counts[j][i] * cm[j][l];
                }
            }
        }
        let mut x = [0.0; L];
        if !COMP && DIE && NR > 0 {
            // `max(p · (1 − qq − rc) + cn, 0)`: the survivors' factor built from the
            // rates first, so that each lane takes four multiplications, not five.
            for l in 0..L {
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
        for l in 0..L {
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
pub(crate) fn step<const L: usize>(
    kx: &YearKernel<'_>,
    k: usize,
    r: &YearRates,
    ly: &LaneYear<L>,
    group: &std::ops::Range<usize>,
    cur: &mut [V<L>],
    next: &mut [V<L>],
    scratch: &mut GeneralScratch<L>,
    comp: &mut [[V<L>; COMPONENTS]],
    mv: &mut [V<L>],
) -> bool {
    let (n, w, nf, zero) = (kx.n, kx.n + 1, kx.nf, [0.0; L]);
    let qfm = death_factors(r, ly);
    let plan = kx.plans[k].as_ref().expect("a projected year has a plan");
    if plan.fast() {
        let fl = kx.flat_of(k);
        let mut qfm_max = 0.0f64;
        for l in 0..L {
            qfm_max = qfm_max.max(qfm[l]);
        }
        let comp_on = kx.sums;
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
                for l in 0..L {
                    newborn[l] = born[l] - bd[l];
                }
                let mut sums = [zero; 3];
                macro_rules! go {
                    ($nr:literal, $nc:literal) => {{
                        let flows = FastFlows::<L, $nr, $nc> {
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
                    let m = count_movers(kx, k, r, ly, f, a, s);
                    let dst = &mut counted[direction as usize];
                    for l in 0..L {
                        dst[l] += m[l];
                    }
                }
                let c = &mut comp[al * 2 + s];
                c[0] = born;
                for l in 0..L {
                    c[1][l] = sums[0][l] + bd[l];
                    c[2][l] = counted[0][l];
                    c[3][l] = counted[1][l] + sums[1][l];
                }
                c[4] = sums[2];
                set_net(c, &counted[2]);
                if kx.movers {
                    let at = (al * 2 + s) * nf * 2;
                    crate::projection::simd_dispatch(FlowMovers {
                        kx,
                        k,
                        r,
                        ly,
                        a,
                        s,
                        p,
                        base: &newborn,
                        leavers: (plan.rates.len() == 1).then(|| (plan.rates[0], sums[1])),
                        mv: &mut mv[at..],
                    });
                }
            }
        }
        // Without sums the step was made in place.
        return !comp_on;
    }
    // Other shapes: compiled apart, so that the common pass stays small.
    crate::projection::simd_dispatch(GeneralStep {
        kx,
        k,
        r,
        ly,
        group,
        cur,
        next,
        scratch,
        comp,
        mv,
    });
    false
}

/// How the general step turns an expected count into a count: as it is (the
/// projection), or as a Poisson draw (process noise).
pub(crate) trait Draw<const L: usize> {
    /// The count of lane `l` in the group's area `al` whose expected value is `e`.
    fn count(&mut self, al: usize, l: usize, e: f64) -> f64;
}

/// Expected values: the projection itself.
pub(crate) struct Expected;

impl<const L: usize> Draw<L> for Expected {
    #[inline(always)]
    fn count(&mut self, _: usize, _: usize, e: f64) -> f64 {
        e
    }
}

/// The general year step ([`step_general`]) with expected counts, as a kernel of
/// its own.
pub(crate) struct GeneralStep<'g, 'a, const L: usize> {
    pub(crate) kx: &'g YearKernel<'a>,
    pub(crate) k: usize,
    pub(crate) r: &'g YearRates,
    pub(crate) ly: &'g LaneYear<L>,
    pub(crate) group: &'g std::ops::Range<usize>,
    pub(crate) cur: &'g [V<L>],
    pub(crate) next: &'g mut [V<L>],
    pub(crate) scratch: &'g mut GeneralScratch<L>,
    pub(crate) comp: &'g mut [[V<L>; COMPONENTS]],
    pub(crate) mv: &'g mut [V<L>],
}

impl<const L: usize> crate::projection::Kernel for GeneralStep<'_, '_, L> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        step_general(
            self.kx,
            self.k,
            self.r,
            self.ly,
            self.group,
            self.cur,
            self.next,
            self.scratch,
            self.comp,
            self.mv,
            &mut Expected,
        );
    }
}

/// `m += x`, lane by lane.
#[inline(always)]
fn add_lanes<const L: usize>(m: &mut V<L>, x: &V<L>) {
    for l in 0..L {
        m[l] += x[l];
    }
}

/// A flow's numbers in one (area, sex) of the general step, by index.
#[derive(Clone, Copy)]
enum FlowLane<'f> {
    /// Counts, and the flow's direction.
    Counts(&'f [f64], Direction),
    /// Out-rates.
    OutRates(&'f [f64]),
    /// A closed internal system: its destination shares and its place among the
    /// year's closed systems.
    Closed(&'f [f64], usize),
}

/// The general step's working space, kept from year to year.
#[derive(Default)]
pub(crate) struct GeneralScratch<const L: usize> {
    /// Newborns and their deaths in the birth year by (area, sex).
    born: Vec<[V<L>; 2]>,
    /// Movers of each closed system by (system, area, sex, index).
    movers: Vec<V<L>>,
    /// The closed systems' pools by (system, sex, index).
    pool: Vec<V<L>>,
}

/// One year step of a group of areas for any shape of flows (closed internal
/// systems, any number of flows of each form), every count drawn by `draw`: the
/// expected values, or Poisson draws around them (process noise). The draws are
/// taken in this order: per area of the group and sex, the newborns and their deaths
/// in the birth year; per closed system, area, sex and index, its movers; then per
/// area, sex and index, the deaths and each other flow's movers in the order of the
/// flows. Each flow's movers (and a closed system's arrivals) are kept in `mv` when
/// `kx.sums`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) fn step_general<const L: usize, D: Draw<L>>(
    kx: &YearKernel<'_>,
    k: usize,
    r: &YearRates,
    ly: &LaneYear<L>,
    group: &std::ops::Range<usize>,
    cur: &[V<L>],
    next: &mut [V<L>],
    scratch: &mut GeneralScratch<L>,
    comp: &mut [[V<L>; COMPONENTS]],
    mv: &mut [V<L>],
    draw: &mut D,
) {
    let n = kx.n;
    let w = n + 1;
    let qf = r.q_factor;
    let share = [1.0 - r.boys_share, r.boys_share];
    let zero: V<L> = [0.0; L];
    let plan = kx.plans[k].as_ref().expect("a projected year has a plan");
    let ga = group.len();
    let GeneralScratch { born, movers, pool } = scratch;
    // Births from the women at the start of the year; newborns of each sex and
    // their deaths in the birth year.
    born.clear();
    for (al, a) in group.clone().enumerate() {
        let b = births_fast(r, kx.flat_of(k), plan, ly, cur, n, al, a);
        for s in 0..2 {
            let qb = lane(&r.q, a, s)[n] * qf;
            let (mut bs, mut bd) = (zero, zero);
            for l in 0..L {
                bs[l] = draw.count(al, l, b[l] * share[s]);
                bd[l] = draw
                    .count(al, l, (bs[l] * qb * ly.mq[l]).min(bs[l]))
                    .min(bs[l]);
            }
            born.push([bs, bd]);
        }
    }
    // Closed internal systems: every area's movers first, pooled per sex and index.
    let closed = &plan.closed;
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
                    let [bs, bd] = born[al * 2 + s];
                    for i in 0..w {
                        let mut m = zero;
                        for l in 0..L {
                            let base = if i < n {
                                cur[(al * 2 + s) * n + i][l]
                            } else {
                                bs[l] - bd[l]
                            };
                            m[l] = draw.count(al, l, ly.mm[f][l] * rl[i] * base);
                        }
                        movers[((ci * ga + al) * 2 + s) * w + i] = m;
                        let p = &mut pool[(ci * 2 + s) * w + i];
                        for l in 0..L {
                            p[l] += m[l];
                        }
                    }
                }
            }
        }
    }
    let (keep, nf) = (kx.sums, kx.nf);
    let mut lanes: Vec<FlowLane<'_>> = Vec::with_capacity(r.flows.len());
    let mut fm: Vec<[V<L>; 2]> = Vec::with_capacity(r.flows.len());
    for (al, a) in group.clone().enumerate() {
        for s in 0..2 {
            let q = lane(&r.q, a, s);
            let (mut deaths, mut unmet, mut inm, mut outm, mut netm) =
                (zero, zero, zero, zero, zero);
            let out = &mut next[(al * 2 + s) * n..(al * 2 + s + 1) * n];
            let p_lane = &cur[(al * 2 + s) * n..(al * 2 + s + 1) * n];
            let [bs, bd] = born[al * 2 + s];
            // The flows' lanes of this (area, sex).
            lanes.clear();
            let mut ci = 0;
            for fl in &r.flows {
                lanes.push(match (&fl.values, &fl.destinations) {
                    (FlowValues::Counts(c), _) => {
                        FlowLane::Counts(&lane(c, a, s)[..w], fl.direction)
                    }
                    (FlowValues::OutRates(_), Some(d)) => {
                        ci += 1;
                        FlowLane::Closed(&lane(d, a, s)[..w], ci - 1)
                    }
                    (FlowValues::OutRates(rt), None) => FlowLane::OutRates(&lane(rt, a, s)[..w]),
                });
            }
            // Movers of each flow and arrivals of each closed system.
            fm.clear();
            fm.resize(r.flows.len(), [zero; 2]);
            for i in 0..w {
                // The base of index i: the population of age i at the start, or the
                // year's newborns (their deaths in the birth year already drawn).
                let (p, d) = if i < n {
                    let p = p_lane[i];
                    let mut d = zero;
                    for l in 0..L {
                        let expected = (p[l] * q[i] * qf * ly.mq[l]).min(p[l]);
                        d[l] = draw.count(al, l, expected).min(p[l]);
                    }
                    (p, d)
                } else {
                    (bs, bd)
                };
                let (mut leave, mut arr) = (zero, zero);
                // Counts in, out and net.
                let mut counted = [zero; 3];
                for (f, fl) in lanes.iter().enumerate() {
                    match *fl {
                        FlowLane::Counts(c, direction) => {
                            // A net count: its sign times a count of its size.
                            let c = c[i];
                            let dst = &mut counted[direction as usize];
                            let mut x = zero;
                            for l in 0..L {
                                x[l] = c.signum() * draw.count(al, l, ly.mm[f][l] * c.abs());
                                dst[l] += x[l];
                            }
                            add_lanes(&mut fm[f][0], &x);
                        }
                        FlowLane::Closed(dest, ci) => {
                            let m = movers[((ci * ga + al) * 2 + s) * w + i];
                            let dv = dest[i];
                            let pl = pool[(ci * 2 + s) * w + i];
                            let mut x = zero;
                            for l in 0..L {
                                leave[l] += m[l];
                                x[l] = dv * pl[l];
                                arr[l] += x[l];
                            }
                            add_lanes(&mut fm[f][0], &m);
                            add_lanes(&mut fm[f][1], &x);
                        }
                        FlowLane::OutRates(rt) => {
                            let rv = rt[i];
                            let mut x = zero;
                            for l in 0..L {
                                let base = p[l] - if i < n { 0.0 } else { d[l] };
                                x[l] = draw.count(al, l, ly.mm[f][l] * rv * base);
                                leave[l] += x[l];
                            }
                            add_lanes(&mut fm[f][0], &x);
                        }
                    }
                }
                let mut x = zero;
                let [cin, cout, cnet] = counted;
                for l in 0..L {
                    x[l] = p[l] - d[l] + cin[l] - cout[l] + cnet[l] + arr[l] - leave[l];
                    deaths[l] += d[l];
                    inm[l] += cin[l] + arr[l];
                    outm[l] += cout[l] + leave[l];
                    netm[l] += cnet[l];
                    // The guard: a negative count is kept at 0, the shortfall unmet.
                    unmet[l] += if x[l] < 0.0 { -x[l] } else { 0.0 };
                    x[l] = if x[l] > 0.0 { x[l] } else { 0.0 };
                }
                // Survivors of age i are age i + 1 at the end; the open group keeps
                // its own; newborns are age 0.
                if i == n {
                    if n == 1 {
                        for l in 0..L {
                            out[0][l] += x[l];
                        }
                    } else {
                        out[0] = x;
                    }
                } else if i + 1 < n {
                    out[i + 1] = x;
                } else if n > 1 {
                    for l in 0..L {
                        out[n - 1][l] += x[l];
                    }
                } else {
                    out[0] = x;
                }
            }
            if keep {
                for (f, m) in fm.iter().enumerate() {
                    for (arrivals, m) in [false, true].into_iter().zip(m) {
                        mv[mv_at(nf, al * 2 + s, f, arrivals)] = *m;
                    }
                }
            }
            let c = &mut comp[al * 2 + s];
            c[0] = bs;
            c[1] = deaths;
            c[2] = inm;
            c[3] = outm;
            c[4] = unmet;
            set_net(c, &netm);
        }
    }
}

/// The lanes' factors on the year's death probabilities: the improvement factor
/// times each lane's mortality multiplier.
#[inline(always)]
pub(crate) fn death_factors<const L: usize>(r: &YearRates, ly: &LaneYear<L>) -> V<L> {
    ly.mq.map(|m| r.q_factor * m)
}

/// Movers per lane of count flow `f` in (area `a`, sex `s`): its counts summed over
/// the indices, times the lanes' multipliers.
#[inline(always)]
pub(crate) fn count_movers<const L: usize>(
    kx: &YearKernel<'_>,
    k: usize,
    r: &YearRates,
    ly: &LaneYear<L>,
    f: usize,
    a: usize,
    s: usize,
) -> V<L> {
    let c = flow_values(r, f);
    let row = if c.dim().0 == 1 { 0 } else { a };
    let total = kx.count_sums[k][f][row * 2 + s];
    ly.mm[f].map(|m| m * total)
}

/// Puts the newborns' survivors `x0` at age 0 and adds the open group's own
/// survivors `open` to the oldest age (the same place when there is one age).
#[inline(always)]
pub(crate) fn place_ends<const L: usize>(out: &mut [V<L>], x0: &V<L>, open: &V<L>) {
    let n = out.len();
    if n == 1 {
        for l in 0..L {
            out[0][l] = x0[l] + open[l];
        }
    } else {
        out[0] = *x0;
        for l in 0..L {
            out[n - 1][l] += open[l];
        }
    }
}

/// [`flow_movers`] run through [`crate::projection::simd_dispatch`], so that it is
/// compiled for the wide copies as the age pass is: it runs only when each flow's
/// movers are asked for (`kx.movers`), and when it was kept out of line with
/// `#[inline(never)]` its sums ran on SSE2 (6 % of a national Monte Carlo run).
struct FlowMovers<'g, 'a, const L: usize> {
    kx: &'g YearKernel<'a>,
    k: usize,
    r: &'g YearRates,
    ly: &'g LaneYear<L>,
    a: usize,
    s: usize,
    p: &'g [V<L>],
    base: &'g V<L>,
    leavers: Option<(usize, V<L>)>,
    mv: &'g mut [V<L>],
}

impl<const L: usize> crate::projection::Kernel for FlowMovers<'_, '_, L> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let FlowMovers {
            kx,
            k,
            r,
            ly,
            a,
            s,
            p,
            base,
            leavers,
            mv,
        } = self;
        flow_movers(kx, k, r, ly, a, s, p, base, leavers, mv);
    }
}

/// Movers of each flow of (area `a`, sex `s`) in the specialised pass (no closed
/// system) from the population at the start `p` and the newborns `base` (as the
/// projection counts them), into `mv` (by flow, then movers and arrivals). Where the
/// pass has one out-rate flow, its `leavers` (the flow and the pass's sum of its
/// leavers, out-migration's component) are its movers.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) fn flow_movers<const L: usize>(
    kx: &YearKernel<'_>,
    k: usize,
    r: &YearRates,
    ly: &LaneYear<L>,
    a: usize,
    s: usize,
    p: &[V<L>],
    base: &V<L>,
    leavers: Option<(usize, V<L>)>,
    mv: &mut [V<L>],
) {
    let (n, zero) = (kx.n, [0.0; L]);
    for (f, fl) in r.flows.iter().enumerate() {
        let m = &ly.mm[f];
        mv[mv_at(kx.nf, 0, f, false)] = match &fl.values {
            FlowValues::Counts(_) => count_movers(kx, k, r, ly, f, a, s),
            FlowValues::OutRates(_) if leavers.is_some_and(|(g, _)| g == f) => {
                leavers.map_or(zero, |(_, x)| x)
            }
            FlowValues::OutRates(rt) => {
                let rl = lane(rt, a, s);
                let d = dot_lanes(&rl[..n], p);
                let mut x = zero;
                for l in 0..L {
                    x[l] = m[l] * (d[l] + rl[n] * base[l]);
                }
                x
            }
        };
    }
}

#[cfg(test)]
mod tests;
