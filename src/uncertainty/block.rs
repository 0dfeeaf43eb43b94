//! One block of eight trajectories through a run of years for a group of areas: the
//! year kernel's step (`crate::projection::kernel`), the net migration rate's
//! shock, the alignment of each aligned year, and what is observed of each year,
//! written where [`Layout`] puts the group's cells; what a block carries from one
//! year to the next when it runs a year at a time.

use super::rng::Poisson;
use super::*;
use crate::projection::kernel::{mv_at, step, step_general, GeneralScratch, LaneYear};

/// Where one block of trajectories writes, per cell and lane.
pub(super) struct BlockOut<'o> {
    /// Every cell's lanes, cell `c` of `lay` at `cells[c · stride..][..LANES]`.
    pub(super) cells: &'o mut [f64],
    pub(super) lay: &'o Layout,
    /// From one cell's lanes to the next.
    pub(super) stride: usize,
    /// The year slot the cells start at (0 where they hold every year).
    pub(super) k0: usize,
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

/// The cells each part of a [`Layout`] holds a year (0 for a part not asked for):
/// the population's, the components' and the movers' (in a projected year), and
/// each service's.
struct YearWidths {
    pop: usize,
    comps: usize,
    mig: usize,
    services: Vec<usize>,
}

impl YearWidths {
    fn new(ctx: &Ctx<'_>, ga: usize) -> YearWidths {
        let on = |wanted: bool, w: usize| if wanted { w } else { 0 };
        YearWidths {
            pop: on(ctx.want.population, ga * 3 * ctx.groups.len()),
            comps: on(ctx.want.components, COMPONENTS * ga * 2),
            mig: on(ctx.want.migration, ctx.mig_rows.len() * ga * 2),
            services: (0..ctx.services.len())
                .map(|i| on(ctx.services_wanted(), ga * ctx.service_width(i)))
                .collect(),
        }
    }
}

impl Layout {
    pub(super) fn new(ctx: &Ctx<'_>, ga: usize) -> Layout {
        let (n, ny, nyp) = (ctx.kernel.n, ctx.years.len(), ctx.projected.len());
        let w = YearWidths::new(ctx, ga);
        let mut at = 0;
        let mut part = |cells: usize| {
            at += cells;
            at - cells
        };
        let pop = part(w.pop * ny);
        let comps = part(w.comps * nyp);
        let mig = part(w.mig * nyp);
        let align = part(ctx.align.as_ref().map_or(0, |al| {
            al.parents.children.len() * 2 * n * al.to.slots.len()
        }));
        let services = w.services.iter().map(|ws| part(ws * ny)).collect();
        Layout {
            cells: at,
            pop,
            comps,
            mig,
            align,
            services,
        }
    }

    /// The cells of year slot `k` alone, in the parts and order of `all`'s (see
    /// [`Layout::new`]; no alignment factors), and where each part's cells lie:
    /// `(first cell here, first cell in all, cells)`.
    pub(super) fn year(
        ctx: &Ctx<'_>,
        ga: usize,
        k: usize,
        all: &Layout,
    ) -> (Layout, Vec<[usize; 3]>) {
        debug_assert!(ctx.align.is_none());
        let w = YearWidths::new(ctx, ga);
        // The components and movers are by projected year.
        let kp = ctx.projected.iter().position(|p| *p == k);
        let (comps, mig) = match kp {
            Some(_) => (w.comps, w.mig),
            None => (0, 0),
        };
        let kp = kp.unwrap_or(0);
        let mut at = 0;
        let mut parts = Vec::new();
        let mut part = |start: usize, w: usize| {
            if w > 0 {
                parts.push([at, start, w]);
            }
            at += w;
            at - w
        };
        let pop = part(all.pop + k * w.pop, w.pop);
        let comps = part(all.comps + kp * comps, comps);
        let mig = part(all.mig + kp * mig, mig);
        let align = part(0, 0);
        let services = all
            .services
            .iter()
            .zip(&w.services)
            .map(|(&off, &ws)| part(off + k * ws, ws))
            .collect();
        let lay = Layout {
            cells: at,
            pop,
            comps,
            mig,
            align,
            services,
        };
        (lay, parts)
    }
}

/// One block of trajectories through the years `years` for a group of areas, writing
/// its lanes of cell `c` of `lay` at `out[c · stride..][..LANES]`: `stride` is
/// [`LANES`] where the block has a part of its own, by `(cell, lane)`, and a row's
/// length where the cells are rows over all trajectories and `out` starts at the
/// block's first trajectory. A block starts at year 0; one run a few years at a time
/// carries its state and its random streams from one call to the next in `carry`,
/// and gives the same numbers as one run through every year at once.
pub(super) struct BlockRun<'c, 'a> {
    pub(super) ctx: &'c Ctx<'a>,
    pub(super) group: std::ops::Range<usize>,
    pub(super) t0: usize,
    pub(super) lay: &'c Layout,
    pub(super) out: &'c mut [f64],
    pub(super) stride: usize,
    /// Whether `out` is written with streaming stores ([`BlockOut::stream`]).
    pub(super) stream: bool,
    pub(super) years: std::ops::Range<usize>,
    /// The year slot and the projected year `lay`'s cells start at: 0 where it holds
    /// every year, the year's where it holds one.
    pub(super) k0: usize,
    pub(super) kp0: usize,
    pub(super) carry: &'c mut Carry,
    pub(super) state: &'c mut BlockState,
}

/// What a block carries from one year to the next: its state after the last year
/// run, by `(area, sex, age)`, its random streams and its multipliers' holder.
#[derive(Default)]
pub(super) struct Carry {
    pub(super) cur: Vec<V>,
    rngs: Vec<[Rng; LANES]>,
    shock_rngs: Vec<[Rng; LANES]>,
    shock_z: Vec<V>,
    ly: Option<LaneYear<LANES>>,
}

/// The working space of the blocks a thread runs one after another, kept from block
/// to block: every value is written before it is read, so the buffers are neither
/// zeroed nor allocated again.
#[derive(Default)]
pub(super) struct BlockState {
    next: Vec<V>,
    scratch: GeneralScratch<LANES>,
    comp: Vec<[V; COMPONENTS]>,
    mv: Vec<V>,
    factors: Vec<V>,
    out_scratch: Vec<V>,
    totals: Vec<V>,
    group_sums: Vec<[V; 2]>,
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
        stride,
        stream,
        years,
        k0,
        kp0,
        carry,
        state,
    } = run;
    let (n, nf) = (ctx.kernel.n, ctx.kernel.nf);
    let ga = group.len();
    let shock = ctx.spec.migration_rate.as_ref();
    if years.start == 0 {
        let lanes_t: [usize; LANES] =
            std::array::from_fn(|l| (t0 + l).min(ctx.spec.trajectories - 1));
        carry.rngs.clear();
        if NOISE {
            carry.rngs.extend(group.clone().map(|a| {
                std::array::from_fn(|l| Rng::new(&[ctx.spec.seed, lanes_t[l] as u64, 1, a as u64]))
            }));
        }
        // The net migration rate's AR(1) per (area, lane), each from its own stream,
        // so that a trajectory draws the same numbers in every block, window and
        // variant.
        carry.shock_rngs.clear();
        carry.shock_z.clear();
        if shock.is_some() {
            carry.shock_rngs.extend(group.clone().map(|a| {
                std::array::from_fn(|l| Rng::new(&[ctx.spec.seed, lanes_t[l] as u64, 3, a as u64]))
            }));
            carry.shock_z.resize(ga, [0.0; LANES]);
        }
        carry.ly = Some(LaneYear::<LANES>::ones(nf));
        carry.cur.resize(ga * 2 * n, [0.0; LANES]);
    }
    let BlockState {
        next,
        scratch,
        comp,
        mv,
        factors,
        out_scratch,
        totals,
        group_sums,
    } = state;
    let mut out = BlockOut {
        cells: out,
        lay,
        stride,
        k0,
        stream,
        scratch: std::mem::take(out_scratch),
        totals: std::mem::take(totals),
        group_sums: std::mem::take(group_sums),
    };
    next.resize(ga * 2 * n, [0.0; LANES]);
    comp.clear();
    comp.resize(ga * 2, [[0.0; LANES]; COMPONENTS]);
    // Movers by (area, sex, flow) and a closed system's arrivals: `mv_at`.
    mv.clear();
    if ctx.sums_wanted() {
        mv.resize(ga * 2 * nf * 2, [0.0; LANES]);
    }
    // A year's alignment factors by (parent, sex, age).
    factors.clear();
    if let Some(al) = &ctx.align {
        factors.resize(al.parents.children.len() * 2 * n, [1.0; LANES]);
    }
    let Carry {
        cur,
        rngs,
        shock_rngs,
        shock_z,
        ly,
    } = carry;
    let ly = ly.as_mut().expect("a block starts at year 0");

    for k in years {
        if let Some(given) = &ctx.known[k] {
            for (al, a) in group.clone().enumerate() {
                for s in 0..2 {
                    for x in 0..n {
                        next[(al * 2 + s) * n + x] = [given[[a, s, x]]; LANES];
                    }
                }
            }
        } else if let Some(r) = &ctx.kernel.rates[k] {
            let at = ctx.lane_mult_at(t0 / LANES, k);
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
                    ly,
                    &group,
                    cur,
                    next,
                    scratch,
                    comp,
                    mv,
                    &mut Poisson(rngs),
                );
            } else if step(&ctx.kernel, k, r, ly, &group, cur, next, scratch, comp, mv) {
                // The step was made in place: `cur` is the new state.
                std::mem::swap(cur, next);
            }
            // `next` is the new state.
            if let Some(m) = shock {
                migration_shock(
                    m,
                    &group,
                    n,
                    shock_rngs,
                    shock_z,
                    next,
                    ctx.sums_wanted().then_some(&mut comp[..]),
                );
            }
            if ctx.want.migration {
                let kp = ctx.projected.iter().position(|p| *p == k).unwrap_or(0);
                let rows = ctx.mig_rows.len();
                for (row, &(f, arrivals)) in ctx.mig_rows.iter().enumerate() {
                    for i in 0..ga * 2 {
                        let cell = ((kp - kp0) * ga * 2 + i) * rows + row;
                        let v = &mv[mv_at(nf, i, f, arrivals)];
                        put_cell(out.cells, (lay.mig + cell) * out.stride, v, out.stream);
                    }
                }
            }
            if ctx.want.components {
                let kp = ctx.projected.iter().position(|p| *p == k).unwrap_or(0);
                for (i, c) in comp.iter().enumerate() {
                    for (j, v) in c.iter().enumerate() {
                        let cell = ((kp - kp0) * ga * 2 + i) * COMPONENTS + j;
                        put_cell(out.cells, (lay.comps + cell) * out.stride, v, out.stream);
                    }
                }
            }
        }
        // `next` is the new state: it becomes the block's (the buffers trade places).
        std::mem::swap(cur, next);
        // One call of `observe` (it is inlined: a second would double the kernel).
        let state: &[V] = match ctx.align.as_ref().and_then(|al| Some((al, al.slot_of[k]?))) {
            Some((al, j)) => {
                // `next` is free until the next year: it takes the aligned copy.
                let control = al.to.control.index_axis(ndarray::Axis(0), k);
                align_year(&al.parents, control, cur, next, factors);
                // By (aligned year, parent, sex, age).
                for (i, f) in factors.iter().enumerate() {
                    let cell = j * factors.len() + i;
                    put_cell(out.cells, (lay.align + cell) * out.stride, f, out.stream);
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
    (*out_scratch, *totals, *group_sums) = (out.scratch, out.totals, out.group_sums);
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
