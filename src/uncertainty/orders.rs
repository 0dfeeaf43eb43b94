//! The two orders a group's blocks run in (see the module's *Two orders of work*):
//! a year at a time, each year's cells summarised from rows still in the cache
//! ([`run_years`]), or each block through every year, its cells gathered over the
//! blocks a tile at a time ([`run_blocks`]). Both give the same numbers.

use super::*;

/// Where a group's cells add to its slot's sums by (year, trajectory), from
/// [`group_sums`].
#[derive(Clone, Copy)]
pub(super) struct Sums<'s> {
    /// Per cell, the service total it adds to.
    pub(super) to_total: &'s [Option<Total>],
    /// The units' adds, sorted by cell.
    pub(super) unit_adds: &'s [UnitAdd],
}

/// The memory a group of `ga` areas holds when its blocks run a year at a time
/// ([`run_years`]): every block's state, and a year's cells over the trajectories.
pub(super) fn yearwise_bytes(ctx: &Ctx<'_>, ga: usize, nt: usize) -> usize {
    let row = nt.div_ceil(LANES) * LANES;
    let all = Layout::new(ctx, ga);
    let year = (0..ctx.years.len())
        .map(|k| Layout::year(ctx, ga, k, &all).0.cells)
        .max()
        .unwrap_or(0);
    (ga * 2 * ctx.kernel.n + year) * row * std::mem::size_of::<f64>()
}

/// A group's blocks run a year at a time: each block's lanes of the year's cells
/// written into rows over all trajectories, and the year's cells summarised while
/// their rows are in the cache.
#[allow(clippy::too_many_arguments)]
pub(super) fn run_years(
    ctx: &Ctx<'_>,
    g: &std::ops::Range<usize>,
    lay: &Layout,
    slot: &mut Slot,
    Sums {
        to_total,
        unit_adds,
    }: Sums<'_>,
    levels: &[f64],
    progress: &dyn Fn(usize),
) {
    let nt = ctx.spec.trajectories;
    let nb = nt.div_ceil(LANES);
    let row = nb * LANES;
    let stride = 1 + levels.len();
    let (ny, ga) = (ctx.years.len(), g.len());
    slot.carries.resize_with(nb, Carry::default);
    for k in 0..ny {
        let (year, parts) = Layout::year(ctx, ga, k, lay);
        let at = slot.aligned(year.cells * row);
        let rows = &mut slot.blocks[at.clone()];
        let len = rows.len();
        let kp0 = ctx.projected.iter().position(|p| *p == k).unwrap_or(0);
        for (b, carry) in slot.carries.iter_mut().enumerate() {
            crate::projection::simd_dispatch(BlockRun {
                ctx,
                group: g.clone(),
                t0: b * LANES,
                lay: &year,
                // A year without cells (a given year, with only the components
                // asked for) has no rows: the blocks still run it, writing nothing.
                out: &mut rows[(b * LANES).min(len)..],
                stride: row,
                stream: false,
                years: k..k + 1,
                k0: k,
                kp0,
                carry,
                state: &mut slot.state,
            });
        }
        progress(nb);
        let rows = &slot.blocks[at.clone()];
        // Where the year's components start (here, and among all cells).
        let mut comps = None;
        for [here, c0, tc] in parts {
            let part = &rows[here * row..(here + tc) * row];
            // Each part by its place and width (a part not asked for has none).
            if here == year.comps && tc == year.mig - year.comps {
                comps = Some((here, c0));
            }
            let twins = match comps {
                Some(c) if here == year.mig && tc == year.align - year.mig => {
                    twin_rows(&ctx.mig_twins, c, here, tc, rows, (row, nt))
                }
                _ => None,
            };
            if let Some(twins) = twins {
                // Every row is a component's to the bit: its summary is the component's.
                for (i, from) in twins.into_iter().enumerate() {
                    let to = (c0 + i) * stride;
                    slot.packed
                        .copy_within(from * stride..(from + 1) * stride, to);
                }
            } else {
                let packed = &mut slot.packed[c0 * stride..(c0 + tc) * stride];
                slot.sel.summarise_rows(part, row, nt, levels, packed);
            }
            let next = unit_adds.partition_point(|a| a.cell < c0);
            add_tile(
                &mut slot.tots,
                &mut slot.units,
                to_total,
                unit_adds,
                next,
                (c0, tc),
                part,
                (row, nt),
            );
        }
    }
}

/// Where every row of a year's movers (`tc` rows from `here`, by `(area, sex, row)`)
/// holds the same values, to the bit, as its twin among the year's components
/// (`twins`, per movers row; the components from `comps.0` here and `comps.1` among all
/// cells, by `(area, sex, component)`): each row's twin among all cells. None as soon
/// as one row has no twin or differs from it.
fn twin_rows(
    twins: &[Option<usize>],
    comps: (usize, usize),
    here: usize,
    tc: usize,
    rows: &[f64],
    (row, nt): (usize, usize),
) -> Option<Vec<usize>> {
    let nr = twins.len();
    if nr == 0 || twins.iter().any(Option::is_none) {
        return None;
    }
    (0..tc)
        .map(|i| {
            let (pair, r) = (i / nr, i % nr);
            let c = pair * COMPONENTS + twins[r]?;
            let a = &rows[(here + i) * row..][..nt];
            let b = &rows[(comps.0 + c) * row..][..nt];
            same_bits(a, b).then_some(comps.1 + c)
        })
        .collect()
}

/// Whether `a` and `b` hold the same values to the bit (eight at a time).
fn same_bits(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len()
        && a.chunks(8).zip(b.chunks(8)).all(|(x, y)| {
            x.iter()
                .zip(y)
                .fold(0, |d, (x, y)| d | (x.to_bits() ^ y.to_bits()))
                == 0
        })
}

/// A group's blocks each run through every year, in parallel or one after another,
/// writing their lanes of every cell into their own parts of the slot's buffer, by
/// (block, cell, lane), each cell a cache line written with streaming stores: the
/// parts are read only when every block is done, so their lines are neither read into
/// the cache first nor kept there. Then each tile of cells is gathered over the
/// blocks (each block's lanes of the tile's cells lie together, a short run the
/// prefetcher follows, and the tile's rows stay in the L2 cache while they are
/// summarised). Where every trajectory's cells would not fit in the memory budget,
/// the cells are taken a window of `win` at a time and the (reproducible) blocks are
/// run again for each: a block then writes into a scratch part and only the window's
/// cells are kept.
#[allow(clippy::too_many_arguments)]
pub(super) fn run_blocks(
    ctx: &Ctx<'_>,
    g: &std::ops::Range<usize>,
    lay: &Layout,
    slot: &mut Slot,
    Sums {
        to_total,
        unit_adds,
    }: Sums<'_>,
    levels: &[f64],
    (parallel, win): (bool, usize),
    progress: &(dyn Fn(usize) + Sync),
) {
    let (nt, ny) = (ctx.spec.trajectories, ctx.years.len());
    let nb = nt.div_ceil(LANES);
    let stride = 1 + levels.len();
    let per_block = lay.cells * LANES;
    let mut next = 0;
    for w0 in (0..lay.cells).step_by(win) {
        let wc = win.min(lay.cells - w0);
        let kept = wc * LANES;
        let at = slot.aligned(nb * kept);
        let blocks = &mut slot.blocks[at.clone()];
        let whole = wc == lay.cells;
        let block = |(state, carry, scratch): &mut (BlockState, Carry, Vec<f64>),
                     (b, chunk): (usize, &mut [f64])| {
            let out: &mut [f64] = if whole {
                chunk
            } else {
                scratch.resize(per_block, 0.0);
                scratch
            };
            crate::projection::simd_dispatch(BlockRun {
                ctx,
                group: g.clone(),
                t0: b * LANES,
                lay,
                out,
                stride: LANES,
                // A window's scratch part is read back at once.
                stream: whole,
                years: 0..ctx.years.len(),
                k0: 0,
                kp0: 0,
                carry,
                state,
            });
            if !whole {
                chunk.copy_from_slice(&scratch[w0 * LANES..w0 * LANES + kept]);
            }
            progress(ny);
        };
        if parallel {
            blocks
                .par_chunks_mut(kept)
                .enumerate()
                .for_each_init(Default::default, block);
        } else {
            let mut state = (
                std::mem::take(&mut slot.state),
                std::mem::take(&mut slot.carry),
                std::mem::take(&mut slot.scratch),
            );
            blocks
                .chunks_mut(kept)
                .enumerate()
                .for_each(|x| block(&mut state, x));
            (slot.state, slot.carry, slot.scratch) = state;
        }
        let blocks = &slot.blocks[at];
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
                        sel.summarise_rows(tile, nt, nt, levels, packed);
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
                        to_total,
                        unit_adds,
                        next,
                        (c0, tc),
                        tile,
                        (nt, nt),
                    );
                }
            }
        } else {
            let (tile, sel) = (&mut slot.vals, &mut slot.sel);
            for (t, packed) in packed.chunks_mut(TILE * stride).enumerate() {
                let (c0, tc) = (w0 + t * TILE, packed.len() / stride);
                gather_tile(blocks, wc, c0 - w0, tc, nt, tile);
                sel.summarise_rows(tile, nt, nt, levels, packed);
                next = add_tile(
                    &mut slot.tots,
                    &mut slot.units,
                    to_total,
                    unit_adds,
                    next,
                    (c0, tc),
                    tile,
                    (nt, nt),
                );
            }
        }
    }
}
