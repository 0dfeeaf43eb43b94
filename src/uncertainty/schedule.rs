//! How the groups of areas share the threads: each thread takes the next group as
//! soon as it is free, the services' running sums are handed from group to group in
//! group order, and each group's results are put in place in group order, so that
//! the bits do not depend on the threads ([`run_in_order`]); and the units of every
//! service ([`UnitPlan`]) with their sums over the groups ([`UnitSums`]).

use super::*;
use std::sync::{Condvar, Mutex};

/// Pairs of rows by (year, trajectory): per service its demand and total cost, or per
/// unit its demand and floor area need.
pub(super) type SumRows = Vec<(Vec<f64>, Vec<f64>)>;

/// What a group gives back: its cells' summaries (packed as [`Slot::packed`]), the
/// units it summarised itself and its sums of the others.
pub(super) struct GroupOut {
    pub(super) packed: Vec<f64>,
    pub(super) finished: Vec<(usize, UnitSummary)>,
    pub(super) units: SumRows,
}

/// A running sum of the services' totals, with the number of the group whose turn it
/// is to add to it, and the condition the workers wait on for their turn.
struct RunningSum {
    turn: Mutex<(usize, SumRows)>,
    ready: Condvar,
}

/// Gives a running sum's turn to group number `next` when dropped, and wakes the
/// workers waiting for it.
struct PassTurn<'t> {
    sum: &'t RunningSum,
    next: usize,
}

impl Drop for PassTurn<'_> {
    fn drop(&mut self) {
        self.sum.turn.lock().unwrap_or_else(|e| e.into_inner()).0 = self.next;
        self.sum.ready.notify_all();
    }
}

/// Groups done, waiting for those before them to be put in place.
struct InOrder {
    next: usize,
    waiting: std::collections::BTreeMap<usize, GroupOut>,
}

/// Runs every group with `run_group` on the workers' `slots` (one a thread; a single
/// slot runs them all on this thread) and hands each group's results to `commit` in
/// group order. Group number `gi` adds the services' totals to running sum
/// `gi % running` (in [`Slot::tots`] while it runs), in group order; the `running`
/// sums are returned. `running` is at least 1, and there is a slot where there are
/// groups.
///
/// A worker takes the next group until none is left. Its thread waits only for a
/// running sum another worker's group still holds; nothing else runs on rayon's
/// threads while workers wait (a group's blocks run in parallel only where a single
/// worker takes every group in turn).
pub(super) fn run_in_order(
    groups: &[std::ops::Range<usize>],
    running: usize,
    slots: &mut [Slot],
    run_group: impl Fn(&std::ops::Range<usize>, &mut Slot) + Sync,
    commit: impl FnMut(&std::ops::Range<usize>, GroupOut) + Send,
) -> Vec<SumRows> {
    debug_assert!(
        slots.len() <= running,
        "the groups running at once each have a running sum of their own"
    );
    let sums: Vec<RunningSum> = (0..running)
        .map(|r| RunningSum {
            turn: Mutex::new((r, Vec::new())),
            ready: Condvar::new(),
        })
        .collect();
    let next_group = AtomicUsize::new(0);
    let in_order = InOrder {
        next: 0,
        waiting: std::collections::BTreeMap::new(),
    };
    let ordered = Mutex::new((in_order, commit));
    let work = |slot: &mut Slot| loop {
        let gi = next_group.fetch_add(1, Ordering::Relaxed);
        let Some(g) = groups.get(gi) else { break };
        let RunningSum { turn, ready } = &sums[gi % running];
        {
            let mut t = turn.lock().unwrap_or_else(|e| e.into_inner());
            while t.0 != gi {
                t = ready.wait(t).unwrap_or_else(|e| e.into_inner());
            }
            std::mem::swap(&mut slot.tots, &mut t.1);
        }
        // The sum's next turn, given on the way out even if the group panics (the
        // panic then ends the run instead of leaving the next group waiting).
        let pass = PassTurn {
            sum: &sums[gi % running],
            next: gi + running,
        };
        run_group(g, slot);
        {
            let mut t = turn.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::swap(&mut slot.tots, &mut t.1);
        }
        drop(pass);
        let out = GroupOut {
            packed: std::mem::take(&mut slot.packed),
            finished: std::mem::take(&mut slot.finished),
            units: std::mem::take(&mut slot.units),
        };
        let mut guard = ordered.lock().unwrap_or_else(|e| e.into_inner());
        let (o, commit) = &mut *guard;
        o.waiting.insert(gi, out);
        while let Some(out) = o.waiting.remove(&o.next) {
            commit(&groups[o.next], out);
            o.next += 1;
        }
    };
    if let [slot] = slots {
        work(slot);
    } else {
        slots.par_iter_mut().for_each(work);
    }
    drop(ordered);
    sums.into_iter()
        .map(|s| s.turn.into_inner().unwrap_or_else(|e| e.into_inner()).1)
        .collect()
}

/// Every unit of every service (in service order) and the number of groups that send
/// it demand.
pub(super) struct UnitPlan {
    /// Per unit: its service and its place among the service's units.
    pub(super) unit_of: Vec<(usize, usize)>,
    /// Per unit: how many groups send it demand.
    pub(super) n_groups: Vec<usize>,
    /// Per service: the place of its first unit among all services' units.
    pub(super) base: Vec<usize>,
}

impl UnitPlan {
    /// Every unit of `services`, and how many of `groups` send it demand.
    pub(super) fn new(services: &[ServiceInput<'_>], groups: &[std::ops::Range<usize>]) -> Self {
        let unit_of: Vec<(usize, usize)> = services
            .iter()
            .enumerate()
            .flat_map(|(i, s)| (0..s.units.len()).map(move |j| (i, j)))
            .collect();
        let n_groups = unit_of
            .iter()
            .map(|&(i, j)| {
                let shares = services[i].units[j].shares;
                groups
                    .iter()
                    .filter(|g| shares[(*g).clone()].iter().any(|sh| *sh != 0.0))
                    .count()
            })
            .collect();
        let base = services
            .iter()
            .scan(0, |at, s| {
                let b = *at;
                *at += s.units.len();
                Some(b)
            })
            .collect();
        UnitPlan {
            unit_of,
            n_groups,
            base,
        }
    }
}

/// Per unit: the groups still to send it demand, its sums over the groups done (by
/// year and trajectory: demand, floor area need), and its summary once no group is
/// left, so that only the units still open hold a row per trajectory.
pub(super) struct UnitSums {
    left: Vec<usize>,
    sums: SumRows,
    done: Vec<Option<UnitSummary>>,
}

impl UnitSums {
    /// No group's sums yet: every unit of `plan` open.
    pub(super) fn new(plan: &UnitPlan) -> Self {
        let n = plan.n_groups.len();
        UnitSums {
            left: plan.n_groups.clone(),
            sums: vec![Default::default(); n],
            done: vec![None; n],
        }
    }

    /// Takes in a group's units, the groups in group order (the caller's to keep):
    /// those it summarised itself (`finished`), and its sums of the others (`parts`),
    /// added to theirs; a unit no group is left to send demand to is summarised with
    /// `finish` and its sums dropped.
    pub(super) fn commit(
        &mut self,
        finished: Vec<(usize, UnitSummary)>,
        parts: SumRows,
        finish: &dyn Fn(usize, Vec<f64>, Vec<f64>) -> UnitSummary,
    ) {
        for (u, sm) in finished {
            self.left[u] -= 1;
            self.done[u] = Some(sm);
        }
        for (u, (od, of)) in parts.into_iter().enumerate() {
            if od.is_empty() {
                continue;
            }
            let (d, f) = &mut self.sums[u];
            for (v, part) in [(d, od), (f, of)] {
                if v.is_empty() {
                    *v = part;
                } else {
                    add_to(v, &part);
                }
            }
            self.left[u] -= 1;
            if self.left[u] == 0 {
                let (d, f) = std::mem::take(&mut self.sums[u]);
                self.done[u] = Some(finish(u, d, f));
            }
        }
    }

    /// Every unit's summary, in unit order; a unit no group sent demand to (no demand
    /// in any trajectory) is summarised with `summarise` where the services are
    /// `wanted`, left out otherwise.
    pub(super) fn finish(
        mut self,
        wanted: bool,
        summarise: &dyn Fn(usize, Vec<f64>, Vec<f64>) -> UnitSummary,
    ) -> Vec<(usize, UnitSummary)> {
        let done = std::mem::take(&mut self.done);
        done.into_iter()
            .enumerate()
            .filter_map(|(u, done)| match done {
                Some(sm) => Some((u, sm)),
                None if wanted => {
                    let (d, f) = std::mem::take(&mut self.sums[u]);
                    Some((u, summarise(u, d, f)))
                }
                None => None,
            })
            .collect()
    }
}

/// Adds `part` to `v` element by element.
pub(super) fn add_to(v: &mut [f64], part: &[f64]) {
    v.iter_mut().zip(part).for_each(|(x, y)| *x += y);
}
