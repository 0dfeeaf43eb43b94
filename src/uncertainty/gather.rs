//! The memory of a run and the gathering of its cells: how many trajectories fit,
//! the windows of cells summarised at a time, the slots groups run in, and each
//! tile of cells gathered over the blocks with the totals and units' sums taken on
//! the way.

use super::*;

/// The most memory a Monte Carlo run holds in rows of one value per trajectory
/// (multipliers, sums over areas, open units' sums, the windows of cells): 8 GiB on
/// any machine, so that a scenario is run or refused alike everywhere. A count of
/// trajectories above it is refused before anything is allocated.
pub const TRAJECTORY_MEMORY: usize = 8 << 30;

/// Bytes a run holds per trajectory whatever the windows: the multipliers (drawn and
/// by lane), every service's demand and cost totals (all groups' and one running
/// sum's: as many trajectories as reach the limit leave one, see [`running_sums`]),
/// the units whose groups are not all done (their sums, the groups' parts and the
/// summary's copies) and a window of a tile of cells per running group.
pub(super) fn bytes_per_trajectory(
    ny: usize,
    nf: usize,
    services: usize,
    open: usize,
    chunk: usize,
) -> usize {
    let values = 2 * (2 + nf) * ny + 2 * ny * services * 2 + 6 * ny * open + TILE * chunk;
    values * std::mem::size_of::<f64>()
}

/// The most trajectories a run can take within [`TRAJECTORY_MEMORY`]: for `areas`
/// areas, `years` year slots (the base year too), `flows` migration flows,
/// `services` services and units with these shares of each area's demand, the
/// areas run as one group when `coupled` (a closed internal system or an alignment)
/// and one by one otherwise. The same on any machine and with any threads. Counted
/// with one running sum of the services' totals, as such counts take; below it the
/// running sums take at most 256 MB more.
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

/// The most memory the running sums of the services' totals by (year, trajectory)
/// take together (see [`running_sums`]).
pub(super) const SUMS_BUDGET: usize = 256 << 20;

/// How many running sums the services' totals by (year, trajectory) are added up in,
/// each `bytes` long: [`SLOTS`] while they fit in `budget`, fewer (at least one) for
/// many trajectories. It depends on the scenario and the number of trajectories,
/// never on the threads, so the totals' bits do not either.
pub(super) fn running_sums(bytes: usize, budget: usize) -> usize {
    (budget / bytes.max(1)).clamp(1, SLOTS)
}

/// The most units whose sums are held at once: a unit's sums are kept from the first
/// group that sends it demand until the last is put in place, and the groups
/// running or waiting to be put in place are at most `window` in a row (see
/// `run_in_order`: a group waits for the running sum of the group `running` before
/// it).
pub(super) fn most_open_units(
    unit_shares: &[&[f64]],
    groups: &[std::ops::Range<usize>],
    window: usize,
) -> usize {
    let spans: Vec<(usize, usize)> = unit_shares
        .iter()
        .filter_map(|shares| {
            let sends = |g: &std::ops::Range<usize>| {
                shares
                    .get(g.clone())
                    .is_some_and(|s| s.iter().any(|v| *v != 0.0))
            };
            Some((
                groups.iter().position(sends)?,
                groups.iter().rposition(sends)?,
            ))
        })
        .collect();
    (0..groups.len())
        .map(|s| {
            let end = s + window.max(1);
            spans.iter().filter(|(a, b)| *a < end && *b >= s).count()
        })
        .max()
        .unwrap_or(0)
}

/// Groups of areas run at once, each in a slot whose buffers are reused.
pub(super) const SLOTS: usize = 8;

/// Cells summarised together (their rows stay in the L2 cache).
pub(super) const TILE: usize = 32;

/// The memory the trajectories' values of the groups running at once may take.
pub(super) const MEMORY_BUDGET: usize = 256 << 20;

/// How many of a group's `cells` are kept at a time over `nt` trajectories: all of
/// them when every trajectory's values fit in the memory budget (shared by the
/// `sharing` groups running at once), else a window of whole tiles, for which the
/// blocks are run again. At least one cell.
pub(super) fn window(cells: usize, nt: usize, sharing: usize) -> usize {
    let budget = MEMORY_BUDGET / sharing.max(1);
    let fit = budget / (nt.div_ceil(LANES) * LANES * std::mem::size_of::<f64>());
    if fit >= cells {
        cells.max(1)
    } else {
        (fit / TILE * TILE).max(TILE)
    }
}

/// Puts a cell's packed summary (the mean, then the quantiles) in place.
pub(super) fn set_packed(sm: &mut Summary, cell: usize, packed: &[f64]) {
    sm.mean[cell] = packed[0];
    for (q, v) in sm.q.iter_mut().zip(&packed[1..]) {
        q[cell] = *v;
    }
}

impl Slot {
    /// Grows `blocks` to hold `len` values from a cache line's start (64 bytes,
    /// [`LANES`] values, so that each cell's lanes are one line) and returns where
    /// they lie in it: the blocks write and the tiles read `blocks[range]`.
    pub(super) fn aligned(&mut self, len: usize) -> std::ops::Range<usize> {
        if self.blocks.len() < len + LANES {
            // Every cell of every block is written, so the buffer is only grown.
            self.blocks.resize(len + LANES, 0.0);
        }
        let off = self.blocks.as_ptr().align_offset(64);
        off..off + len
    }
}

/// The buffers of one group's run, reused from group to group.
#[derive(Default)]
pub(super) struct Slot {
    /// Every block's lanes by `(block, cell, lane)`, cells as in [`Layout`], from
    /// [`Slot::aligned`]'s start on (the buffer is a line longer than they need).
    pub(super) blocks: Vec<f64>,
    /// Per cell: the mean, then the quantiles.
    pub(super) packed: Vec<f64>,
    /// Per service: the demand and total cost by (year, trajectory) of the groups this
    /// running sum holds (see `run_in_order`), this group's added as its cells are read.
    pub(super) tots: Vec<(Vec<f64>, Vec<f64>)>,
    /// Per unit (all services' in order): the demand and the floor area need by
    /// (year, trajectory); the floor area's is empty when not summed.
    pub(super) units: Vec<(Vec<f64>, Vec<f64>)>,
    /// A tile of cells' values over the trajectories, a row per cell.
    pub(super) vals: Vec<f64>,
    /// The working space of the blocks run one after another.
    pub(super) state: BlockState,
    /// What a block run through every year at once carries from year to year.
    pub(super) carry: Carry,
    /// What each block run a year at a time carries from year to year.
    pub(super) carries: Vec<Carry>,
    /// A block's lanes of every cell, when only a window of them is kept.
    pub(super) scratch: Vec<f64>,
    pub(super) sel: Selector,
    /// The summaries of the units only this group sends demand to, by unit.
    pub(super) finished: Vec<(usize, UnitSummary)>,
}

/// A cell that adds to a service's totals by (year, trajectory).
#[derive(Debug, Clone, Copy)]
pub(super) struct Total {
    pub(super) service: usize,
    /// The total cost rather than the demand.
    pub(super) cost: bool,
    pub(super) year: usize,
}

/// A cell that adds to a unit's sums by (year, trajectory).
#[derive(Debug, Clone, Copy)]
pub(super) struct UnitAdd {
    pub(super) cell: usize,
    /// The unit among all services' units.
    pub(super) target: usize,
    /// To the floor area need rather than the demand.
    pub(super) floor: bool,
    pub(super) year: usize,
    /// The area's share of the unit.
    pub(super) scale: f64,
}

/// Adds `tc` cells from `c0` (rows `row` values apart, each `nt` values over the
/// trajectories) to the service totals and the units they go to; returns where the
/// next cells' unit adds start.
#[allow(clippy::too_many_arguments)]
pub(super) fn add_tile(
    tots: &mut [(Vec<f64>, Vec<f64>)],
    units: &mut [(Vec<f64>, Vec<f64>)],
    to_total: &[Option<Total>],
    adds: &[UnitAdd],
    next: usize,
    (c0, tc): (usize, usize),
    tile: &[f64],
    (row, nt): (usize, usize),
) -> usize {
    crate::projection::simd_dispatch(AddTile {
        tots,
        units,
        to_total,
        adds,
        next,
        cells: (c0, tc),
        tile,
        shape: (row, nt),
    })
}

/// [`add_tile`] as a kernel, so that its adds are compiled for AVX-512 or AVX2 where
/// the processor has it (the same bits: each is one addition either way).
struct AddTile<'a> {
    tots: &'a mut [(Vec<f64>, Vec<f64>)],
    units: &'a mut [(Vec<f64>, Vec<f64>)],
    to_total: &'a [Option<Total>],
    adds: &'a [UnitAdd],
    next: usize,
    cells: (usize, usize),
    tile: &'a [f64],
    shape: (usize, usize),
}

impl crate::projection::Kernel for AddTile<'_> {
    type Output = usize;

    #[inline(always)]
    fn run(self) -> usize {
        let ((c0, tc), (row, nt), tile) = (self.cells, self.shape, self.tile);
        for j in 0..tc {
            add_total(
                self.tots,
                self.to_total[c0 + j],
                &tile[j * row..j * row + nt],
            );
        }
        add_units(self.units, self.adds, self.next, c0, tc, tile, (row, nt))
    }
}

/// Adds cells `c0..c0 + tc` (rows `row` values apart, each `nt` values) to the units
/// they go to, from `adds[next..]` (sorted by cell); returns where the next cells'
/// adds start.
#[inline(always)]
pub(super) fn add_units(
    units: &mut [(Vec<f64>, Vec<f64>)],
    adds: &[UnitAdd],
    mut next: usize,
    c0: usize,
    tc: usize,
    tile: &[f64],
    (row, nt): (usize, usize),
) -> usize {
    while let Some(a) = adds.get(next).filter(|a| a.cell < c0 + tc) {
        let v = &tile[(a.cell - c0) * row..(a.cell - c0) * row + nt];
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
#[inline(always)]
pub(super) fn add_total(tots: &mut [(Vec<f64>, Vec<f64>)], t: Option<Total>, v: &[f64]) {
    let Some(t) = t else { return };
    let (d, c) = &mut tots[t.service];
    let row = if t.cost { c } else { d };
    let nt = v.len();
    let dst = &mut row[t.year * nt..(t.year + 1) * nt];
    dst.iter_mut().zip(v).for_each(|(x, y)| *x += y);
}

/// The values over the trajectories of cells `c0..c0 + tc`, gathered from blocks
/// laid out by `(block, cell, lane)` into `tile`, a row of `nt` per cell.
pub(super) fn gather_tile(
    blocks: &[f64],
    cells: usize,
    c0: usize,
    tc: usize,
    nt: usize,
    tile: &mut Vec<f64>,
) {
    tile.resize(tc * nt, 0.0);
    let nb = nt.div_ceil(LANES);
    let part = |b: usize| &blocks[(b * cells + c0) * LANES..(b * cells + c0 + tc) * LANES];
    // Each block's part of the tile is a short run of its own: its lines are asked
    // for a few blocks ahead, so that they arrive while earlier blocks are copied.
    const AHEAD: usize = 4;
    for b in 0..AHEAD.min(nb) {
        crate::projection::prefetch(part(b));
    }
    for b in 0..nb {
        if b + AHEAD < nb {
            crate::projection::prefetch(part(b + AHEAD));
        }
        let (t0, m) = (b * LANES, LANES.min(nt - b * LANES));
        let src = part(b);
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

/// Where group `g`'s cells (laid out by `lay`) add to its slot's sums by (year,
/// trajectory): each service's demand and total cost (`to_total`, by cell), and each
/// unit's demand and floor area need (the adds, sorted by cell). A service's demand and
/// total cost (when asked for; an affine service's total cost follows from its total
/// demand afterwards) go to the running sum the slot holds for the group, zeros the
/// first time (see `run_in_order`); a unit's rows are sized and zeroed for the group,
/// only where the group sends it demand. The cells add in cell order, so the sums do
/// not depend on the threads.
pub(super) fn group_sums(
    ctx: &Ctx<'_>,
    g: &std::ops::Range<usize>,
    lay: &Layout,
    unit_base: &[usize],
    nt: usize,
    slot: &mut Slot,
) -> (Vec<Option<Total>>, Vec<UnitAdd>) {
    let (ga, ny) = (g.len(), ctx.years.len());
    let (tot_d, tot_c) = (ctx.services_wanted(), ctx.want.costs);
    let services = ctx.services;
    slot.tots.resize_with(services.len(), Default::default);
    let mut to_total: Vec<Option<Total>> = vec![None; lay.cells];
    for (i, (d, cost)) in slot.tots.iter_mut().enumerate() {
        let ng = services[i].service.segments.len();
        let nres = ctx.n_res[i];
        let (off, width) = (lay.services[i], ctx.service_width(i));
        // Cells run (year, area, cell).
        let mut mark = |cells: std::ops::Range<usize>, cost: bool| {
            for k in 0..ny {
                for al in 0..ga {
                    for c in cells.clone() {
                        to_total[off + (k * ga + al) * width + c] = Some(Total {
                            service: i,
                            cost,
                            year: k,
                        });
                    }
                }
            }
        };
        // The sums are running sums over groups: zeros the first time.
        if tot_d {
            d.resize(ny * nt, 0.0);
            mark(0..ng, false);
        }
        if tot_c {
            cost.resize(ny * nt, 0.0);
            if !ctx.affine[i] {
                mark(ng + nres + 5..ng + nres + 6, true);
            }
        }
    }
    // Per unit: from the service's demand cells and floor-area cells of the areas it
    // serves.
    let n_units = services.iter().map(|s| s.units.len()).sum::<usize>();
    slot.units.resize_with(n_units, Default::default);
    let mut unit_adds: Vec<UnitAdd> = Vec::new();
    for (i, s) in services.iter().enumerate() {
        if s.units.is_empty() || !ctx.services_wanted() {
            continue;
        }
        let ng = s.service.segments.len();
        let (off, width) = (lay.services[i], ctx.service_width(i));
        let floor = ctx.has[i][0];
        let per_m2 = s
            .service
            .segments
            .first()
            .and_then(|seg| seg.floor_area_per_unit)
            .unwrap_or(0.0);
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
                        cell: off + (k * ga + al) * width + row,
                        target,
                        floor,
                        year: k,
                        scale,
                    });
                };
                for k in 0..ny {
                    let share = if u.by_year.is_empty() {
                        share
                    } else {
                        u.by_year[k][g.start + al]
                    };
                    (0..ng).for_each(|r| add(r, false, k, share));
                    if floor && ctx.affine[i] {
                        // The floor area is the demand times its area a unit.
                        add(0, true, k, share * per_m2);
                    } else if floor {
                        add(ng, true, k, share);
                    }
                }
            }
        }
    }
    unit_adds.sort_by_key(|a| a.cell);
    (to_total, unit_adds)
}
