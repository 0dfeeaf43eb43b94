//! The year kernel of the trajectories: MODEL.md §2 for eight trajectories side by
//! side in the lanes of `[f64; 8]` — births, deaths, movers of every flow form,
//! closed internal systems, the guard against negative populations and the
//! components — with expected counts or, with process noise, Poisson draws.

#![allow(clippy::needless_range_loop)]

use super::*;

/// The components of a year by `(area, sex)`: births, deaths, in_migration,
/// out_migration, unmet_out_migration and net_migration.
pub const COMPONENTS: usize = 6;

/// Sets a cell's net migration, `in − out + Σ net flows`, from its other components
/// and its net flows' movers.
#[inline(always)]
pub(super) fn set_net(c: &mut [V; COMPONENTS], net_flows: &V) {
    for l in 0..LANES {
        c[5][l] = c[2][l] - c[3][l] + net_flows[l];
    }
}

/// The most migration flows a Monte Carlo run takes.
pub const MAX_FLOWS: usize = 16;

/// The flows of one (area, sex) in a year, with their lane multipliers.
pub(super) struct FlowLanes<'f> {
    /// Out-rates by index and their multipliers.
    pub(super) rates: &'f [(&'f [f64], V)],
    /// Counts by index and their signed multipliers.
    pub(super) counts: &'f [(&'f [f64], V)],
    /// Destination shares by index and the closed system's position in `pool`.
    pub(super) closed: &'f [(&'f [f64], usize)],
    pub(super) pool: &'f [V],
    pub(super) s: usize,
    pub(super) w: usize,
}

impl FlowLanes<'_> {
    /// At index `i`: the combined out-rate, the net count and the arrivals per lane
    /// (`ARR`: of closed systems; 0 without).
    #[inline(always)]
    pub(super) fn at<const ARR: bool>(&self, i: usize) -> (V, V, V) {
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
pub(super) fn fma(a: f64, b: f64, c: f64) -> f64 {
    a * b + c
}

/// `Σ w[i] · p[i]` per lane, in four running sums (added pairwise at the end) so
/// that consecutive terms do not wait on each other.
#[inline(always)]
pub(super) fn dot_lanes(w: &[f64], p: &[V]) -> V {
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

/// The array of flow `f`, counts or rates.
#[inline(always)]
pub(super) fn flow_values(r: &YearRates, f: usize) -> &ndarray::Array3<f64> {
    match &r.flows[f].values {
        FlowValues::Counts(v) | FlowValues::OutRates(v) => v,
    }
}

/// Births per lane in area `a` (position `al` in the group) from its women.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn births_fast(
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
pub(super) fn newborns_fast(r: &YearRates, qfm: &V, n: usize, a: usize, s: usize, b: &V) -> (V, V) {
    newborns(r, lane(&r.q, a, s)[n], qfm, s, b)
}

/// As [`newborns_fast`], with the newborns' death probability `qb` of sex `s`.
#[inline(always)]
pub(super) fn newborns(r: &YearRates, qb: f64, qfm: &V, s: usize, b: &V) -> (V, V) {
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
pub(super) fn survive_lanes(
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
pub(super) struct Sums<'s> {
    pub(super) deaths: &'s mut V,
    pub(super) leave: &'s mut V,
    pub(super) arrived: &'s mut V,
    pub(super) unmet: &'s mut V,
}

/// Survivors of ages `0..ω` of one (area, sex) per lane, written one age up into
/// `out`; returns the open group's own survivors. `COMP`: keep the sums; `ARR`: add
/// arrivals of closed systems.
#[inline(always)]
pub(super) fn ages_pass<const COMP: bool, const ARR: bool>(
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
pub(super) struct FastFlows<'f, const NR: usize, const NC: usize> {
    pub(super) rates: [&'f [f64]; NR],
    pub(super) rm: [V; NR],
    pub(super) counts: [&'f [f64]; NC],
    pub(super) cm: [V; NC],
}

impl<const NR: usize, const NC: usize> FastFlows<'_, NR, NC> {
    /// Survivors of ages `0..ω` of one (area, sex) per lane, written one age up into
    /// `out`; returns the open group's own survivors and the newborns' (`newborn` is
    /// the year's births after birth-year deaths). Adds deaths, leavers and the
    /// shortfall to `sums` when `comp`; caps deaths at the population when `clamp`.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(super) fn run(
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
    pub(super) fn pass<const COMP: bool, const CLAMP: bool>(
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
    pub(super) fn pass_in_place<const CLAMP: bool>(
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
    pub(super) fn cell<const COMP: bool, const CLAMP: bool, const DIE: bool>(
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
pub(super) fn step_fast(
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
pub(super) struct GeneralStep<'g, 'a> {
    pub(super) ctx: &'g Ctx<'a>,
    pub(super) k: usize,
    pub(super) r: &'g YearRates,
    pub(super) ly: &'g LaneYear,
    pub(super) group: &'g std::ops::Range<usize>,
    pub(super) cur: &'g [V],
    pub(super) next: &'g mut [V],
    pub(super) pool: &'g mut Vec<V>,
    pub(super) comp: &'g mut [[V; COMPONENTS]],
    pub(super) mv: &'g mut [V],
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
pub(super) fn step_general(
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
pub(super) fn death_factors(r: &YearRates, ly: &LaneYear) -> V {
    ly.mq.map(|m| r.q_factor * m)
}

/// Movers per lane of count flow `f` in (area `a`, sex `s`): its counts summed over
/// the indices, times the lanes' multipliers.
#[inline(always)]
pub(super) fn count_movers(
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
pub(super) fn place_ends(out: &mut [V], x0: &V, open: &V) {
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
pub(super) fn flow_movers(
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
pub(super) fn step_noisy(
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
