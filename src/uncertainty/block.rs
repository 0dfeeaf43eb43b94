//! One block of eight trajectories through every year for a group of areas: the
//! year kernel's step (`crate::projection::kernel`), the net migration rate's
//! shock, the alignment of each aligned year, and what is observed of each year,
//! written where [`Layout`] puts the group's cells.

use super::rng::Poisson;
use super::*;
use crate::projection::kernel::{mv_at, step, step_general, GeneralScratch, LaneYear};

/// Where one block of trajectories writes, per cell and lane.
pub(super) struct BlockOut<'o> {
    /// Population by `(cell, lane)`, cells `(year, area, sex, age group)` of the group.
    pub(super) pop: &'o mut [f64],
    /// Components by `(cell, lane)`, cells `(projected year, area, sex, component)`.
    pub(super) comps: &'o mut [f64],
    /// Movers by `(cell, lane)`, cells `(projected year, area, sex, row)`.
    pub(super) mig: &'o mut [f64],
    /// Alignment factors by `(cell, lane)`, cells `(aligned year, parent, sex, age)`.
    pub(super) align: &'o mut [f64],
    /// Per service: by `(cell, lane)`, cells demand `(segment, area, year)`, then
    /// resources `(resource, area, year)`, then costs `(component, area, year)`.
    pub(super) services: Vec<&'o mut [f64]>,
    /// From one cell's lanes to the next.
    pub(super) stride: usize,
    /// Whether the cells are written with streaming stores, past the caches: where
    /// they are read back only once every block of the group is done.
    pub(super) stream: bool,
    /// Working space: demand by `(segment, age)` per lane, for a service with a
    /// teaching model (its grades); empty otherwise.
    pub(super) scratch: Vec<V>,
    /// Working space: demand by segment per lane.
    pub(super) totals: Vec<V>,
    /// Working space: each age group's female and male sums per lane.
    pub(super) group_sums: Vec<[V; 2]>,
}

/// Where a group's outputs lie among its cells: the population `(year, area, sex,
/// age group)`, the components `(projected year, area, sex, component)`, the movers
/// `(projected year, area, sex, row)`, the alignment factors, then each service's
/// cells `(year, area, cell)` (see [`Ctx::service_width`]); every part is empty
/// unless asked for. The year comes first so that a block writes each year's cells
/// side by side (a run of whole cache lines, where cells a year apart cost a
/// scattered write each: 14 % of a national run's time).
pub(super) struct Layout {
    pub(super) cells: usize,
    pub(super) pop: usize,
    pub(super) comps: usize,
    /// Movers by `(projected year, area, sex, row)`.
    pub(super) mig: usize,
    /// Alignment factors by `(aligned year, parent, sex, age)`.
    pub(super) align: usize,
    /// Where each service's cells start.
    pub(super) services: Vec<usize>,
}

impl Layout {
    pub(super) fn new(ctx: &Ctx<'_>, ga: usize) -> Layout {
        let (n, ny, nyp) = (ctx.kernel.n, ctx.years.len(), ctx.projected.len());
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
            at += al.parents.children.len() * 2 * n * al.to.slots.len();
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
pub(super) struct BlockRun<'c, 'a> {
    pub(super) ctx: &'c Ctx<'a>,
    pub(super) group: std::ops::Range<usize>,
    pub(super) t0: usize,
    pub(super) lay: &'c Layout,
    pub(super) out: &'c mut [f64],
    /// Whether `out` is written with streaming stores ([`BlockOut::stream`]).
    pub(super) stream: bool,
    pub(super) state: &'c mut BlockState,
}

/// A block's state before and after a year step, by `(area, sex, age)`, kept from
/// block to block: every cell is written before it is read (the base year is given),
/// so the buffers are neither zeroed nor allocated again.
#[derive(Default)]
pub(super) struct BlockState {
    pub(super) cur: Vec<V>,
    pub(super) next: Vec<V>,
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

#[inline(always)]
pub(super) fn run_block<const NOISE: bool>(run: BlockRun<'_, '_>) {
    let BlockRun {
        ctx,
        group,
        t0,
        lay,
        out,
        stream,
        state,
    } = run;
    let stride = LANES;
    let (n, ny) = (ctx.kernel.n, ctx.years.len());
    let ga = group.len();
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
    // The net migration rate's AR(1) per (area, lane), each from its own stream, so
    // that a trajectory draws the same numbers in every block, window and variant.
    let shock = ctx.spec.migration_rate.as_ref();
    let mut shock_rngs: Vec<[Rng; LANES]> = match shock {
        Some(_) => group
            .clone()
            .map(|a| {
                std::array::from_fn(|l| Rng::new(&[ctx.spec.seed, lanes_t[l] as u64, 3, a as u64]))
            })
            .collect(),
        None => Vec::new(),
    };
    let mut shock_z: Vec<V> = vec![[0.0; LANES]; if shock.is_some() { ga } else { 0 }];
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
        stream,
        scratch: Vec::new(),
        totals: Vec::new(),
        group_sums: Vec::new(),
    };
    state.cur.resize(ga * 2 * n, [0.0; LANES]);
    state.next.resize(ga * 2 * n, [0.0; LANES]);
    let (mut cur, mut next) = (&mut state.cur, &mut state.next);
    let mut scratch = GeneralScratch::<LANES>::default();
    let mut comp: Vec<[V; COMPONENTS]> = vec![[[0.0; LANES]; COMPONENTS]; ga * 2];
    // Movers by (area, sex, flow) and a closed system's arrivals: `mv_at`.
    let nf = ctx.kernel.nf;
    let mut mv: Vec<V> = if ctx.sums_wanted() {
        vec![[0.0; LANES]; ga * 2 * nf * 2]
    } else {
        Vec::new()
    };
    let mut ly = LaneYear::<LANES>::ones(nf);
    // A year's alignment factors by (parent, sex, age).
    let mut factors: Vec<V> = match &ctx.align {
        Some(al) => vec![[1.0; LANES]; al.parents.children.len() * 2 * n],
        None => Vec::new(),
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
        } else if let Some(r) = &ctx.kernel.rates[k] {
            let at = ((t0 / LANES) * ny + k) * (2 + ctx.kernel.nf);
            ly.mf = ctx.lane_mult[at];
            ly.mq = ctx.lane_mult[at + 1];
            for f in 0..r.flows.len() {
                ly.mm[f] = ctx.lane_mult[at + 2 + f];
            }
            if NOISE {
                step_general(
                    &ctx.kernel,
                    k,
                    r,
                    &ly,
                    &group,
                    cur,
                    next,
                    &mut scratch,
                    &mut comp,
                    &mut mv,
                    &mut Poisson(&mut rngs),
                );
            } else if step(
                &ctx.kernel,
                k,
                r,
                &ly,
                &group,
                cur,
                next,
                &mut scratch,
                &mut comp,
                &mut mv,
            ) {
                // The step was made in place: `cur` is the new state.
                std::mem::swap(&mut cur, &mut next);
            }
            // `next` is the new state.
            if let Some(m) = shock {
                migration_shock(
                    m,
                    &group,
                    n,
                    &mut shock_rngs,
                    &mut shock_z,
                    next,
                    ctx.sums_wanted().then_some(&mut comp[..]),
                );
            }
            if ctx.want.migration {
                let kp = ctx.projected.iter().position(|p| *p == k).unwrap_or(0);
                let rows = ctx.mig_rows.len();
                for (row, &(f, arrivals)) in ctx.mig_rows.iter().enumerate() {
                    for i in 0..ga * 2 {
                        let cell = (kp * ga * 2 + i) * rows + row;
                        let v = &mv[mv_at(nf, i, f, arrivals)];
                        put_cell(out.mig, cell * out.stride, v, out.stream);
                    }
                }
            }
            if ctx.want.components {
                let kp = ctx.projected.iter().position(|p| *p == k).unwrap_or(0);
                for (i, c) in comp.iter().enumerate() {
                    for (j, v) in c.iter().enumerate() {
                        let cell = (kp * ga * 2 + i) * COMPONENTS + j;
                        put_cell(out.comps, cell * out.stride, v, out.stream);
                    }
                }
            }
        }
        std::mem::swap(&mut cur, &mut next);
        // One call of `observe` (it is inlined: a second would double the kernel).
        let state: &[V] = match ctx.align.as_ref().and_then(|al| Some((al, al.slot_of[k]?))) {
            Some((al, j)) => {
                // `next` is free until the next year: it takes the aligned copy.
                let control = al.to.control.index_axis(ndarray::Axis(0), k);
                align_year(&al.parents, control, cur, next, &mut factors);
                // By (aligned year, parent, sex, age).
                for (i, f) in factors.iter().enumerate() {
                    let cell = j * factors.len() + i;
                    put_cell(out.align, cell * out.stride, f, out.stream);
                }
                next
            }
            None => cur,
        };
        observe(ctx, &group, k, state, &mut out);
    }
    if out.stream {
        // Every thread that sees the block done sees its cells.
        crate::projection::stream_fence();
    }
}

/// Adds a year's net migration of [`MigrationRate`] to a block's new state `next`
/// (every area of the group, by `(area, sex, age)`) and to the net migration of the
/// components `comp`, after advancing each area's `z`.
#[inline(never)]
pub(super) fn migration_shock(
    m: &MigrationRate,
    group: &std::ops::Range<usize>,
    n: usize,
    rngs: &mut [[Rng; LANES]],
    z: &mut [V],
    next: &mut [V],
    mut comp: Option<&mut [[V; COMPONENTS]]>,
) {
    for (al, a) in group.clone().enumerate() {
        for l in 0..LANES {
            z[al][l] = m.ar * z[al][l] + rngs[al][l].normal();
        }
        let za = z[al];
        for s in 0..2 {
            let sd = &lane(&m.sd, a, s)[..n];
            let cells = &mut next[(al * 2 + s) * n..(al * 2 + s + 1) * n];
            let mut gained = [0.0; LANES];
            for (v, sd) in cells.iter_mut().zip(sd) {
                for l in 0..LANES {
                    let x = v[l] + v[l] * (za[l] * sd);
                    let x = if x > 0.0 { x } else { 0.0 };
                    gained[l] += x - v[l];
                    v[l] = x;
                }
            }
            if let Some(c) = comp.as_deref_mut() {
                for l in 0..LANES {
                    c[al * 2 + s][5][l] += gained[l];
                }
            }
        }
    }
}
