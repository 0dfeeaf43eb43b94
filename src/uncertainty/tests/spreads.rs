//! Spreads: intervals that widen, process noise, the same numbers whatever the
//! threads or the workspace, and what a run refuses.

use super::*;

/// With a net migration rate spread, the population's intervals widen while the
/// median stays near the deterministic run, and a trajectory's net migration carries
/// what the spread adds: the population's change is its components' sum.
#[test]
fn a_migration_rate_spread_widens_the_intervals_and_counts_as_net_migration() {
    use Form::*;
    let (pop, inp) = matrix_case(&[Counts, OutRates], false, false);
    let det = project(&pop, 2024, 2034, Some(&inp)).unwrap();
    let sp = Spec {
        migration_rate: Some(MigrationRate {
            sd: ndarray::Array3::from_elem((pop.areas().len(), 2, pop.n_ages()), 0.01),
            ar: 0.5,
        }),
        age_groups: AgeGroups::SingleYears,
        ..spec(1)
    };
    let want = Want {
        population: true,
        components: true,
        migration: false,
        demand: false,
        costs: false,
    };
    let go = |sp: &Spec| {
        run_aligned(
            &pop,
            2024,
            2034,
            Some(&inp),
            sp,
            &[],
            want,
            None,
            &|_, _| {},
            &mut Workspace::default(),
        )
        .unwrap()
    };
    // One trajectory: its quantiles are its values.
    let mc = go(&sp);
    let p = mc.population.as_ref().unwrap();
    let c = mc.components.as_ref().unwrap();
    let ny = mc.years.len();
    let ng = mc.age_groups.len();
    let nyp = mc.projected.len();
    let mut moved = 0.0;
    for a in 0..pop.areas().len() {
        for s in 0..2 {
            // The "all" group of (area, sex), each year.
            let total = |k: usize| p.q[2][((a * 3 + s) * ng + ng - 1) * ny + k];
            for (kp, k) in mc.projected.iter().enumerate() {
                let comp = |j: usize| c[j].q[2][(a * 2 + s) * nyp + kp];
                let change = comp(0) - comp(1) + comp(5);
                let want = total(*k) - total(*k - 1);
                assert!(
                    (change - want).abs() < 1e-6 * total(*k).max(1.0),
                    "{change} against {want}"
                );
                let expected = det.components[*k].as_ref().unwrap().net_migration()[[a, s]];
                moved += (comp(5) - expected).abs();
            }
        }
    }
    assert!(moved > 1.0, "the spread moved {moved} persons");
    // Many trajectories: the 90 % interval of every area's population in the last
    // year is wider than 2 % of it.
    let mc = go(&Spec {
        trajectories: 200,
        age_groups: AgeGroups::default(),
        ..sp
    });
    let p = mc.population.as_ref().unwrap();
    let ng = mc.age_groups.len();
    for a in 0..pop.areas().len() {
        let cell = ((a * 3 + 2) * ng + ng - 1) * ny + ny - 1;
        let total: f64 = det.population.slice(ndarray::s![ny - 1, a, .., ..]).sum();
        assert!(p.q[4][cell] - p.q[0][cell] > 0.02 * total, "area {a}");
        assert!((p.q[2][cell] - total).abs() < 0.02 * total, "area {a}");
    }
}

#[test]
fn quantiles_are_monotone_and_spread_with_uncertainty() {
    let (pop, inp) = setup(true, 50.0);
    let sp = noisy(101);
    let sv = school();
    let units = test_units(1);
    let services = [ServiceInput {
        units: units
            .iter()
            .map(|(unit, shares)| UnitInput {
                unit,
                shares,
                by_year: &[],
            })
            .collect(),
        ..input(&sv)
    }];
    let mc = run(
        &pop,
        2024,
        2040,
        Some(&inp),
        &sp,
        &services,
        ALL,
        &|_, _| {},
    )
    .unwrap();
    let check = |s: &Summary| {
        for c in 0..s.mean.len() {
            for w in s.q.windows(2) {
                assert!(w[0][c] <= w[1][c], "{} > {}", w[0][c], w[1][c]);
            }
        }
    };
    let p = mc.population.as_ref().unwrap();
    check(p);
    mc.components.as_ref().unwrap().iter().for_each(check);
    check(&mc.services[0].demand);
    mc.services[0].costs.iter().for_each(check);
    // Units: monotone quantiles, and the probability of a shortage agrees with the
    // shortage's quantiles (with 101 trajectories p05 and p95 are the 6th and the
    // 96th value).
    let mut uncertain = 0;
    for u in &mc.services[0].units {
        check(&u.demand);
        check(&u.shortage);
        check(u.floor_area_need_m2.as_ref().unwrap());
        for (k, p) in u.p_shortage.iter().enumerate() {
            assert!((0.0..=1.0).contains(p));
            if u.shortage.q[0][k] > 0.0 {
                assert!(*p >= 96.0 / 101.0, "{p}");
            }
            if u.shortage.q[4][k] == 0.0 {
                assert!(*p <= 5.0 / 101.0, "{p}");
            }
            if *p > 0.0 && *p < 1.0 {
                uncertain += 1;
            }
        }
    }
    assert!(uncertain > 0, "no year has an uncertain shortage");
    // The last year's spread is wide: p95 above p05 in most cells that hold people
    // (the groups 65–74 and 75+ are empty with ages 0–20).
    let ny = mc.years.len();
    let last: Vec<usize> = (0..p.mean.len())
        .filter(|c| c % ny == ny - 1 && p.mean[*c] > 0.0)
        .collect();
    let wide = last.iter().filter(|c| p.q[4][**c] > p.q[0][**c]).count();
    assert!(last.len() >= p.mean.len() / ny * 3 / 4, "{}", last.len());
    assert!(wide > last.len() * 9 / 10, "{wide} of {}", last.len());
    assert!(p.mean.iter().all(|v| *v >= 0.0));
}

#[test]
fn with_process_noise_only_the_mean_converges_to_the_deterministic_run() {
    // Large cells (hundreds of persons) so that truncating a draw at the cell's
    // population never binds; 2000 trajectories.
    let (pop, inp) = setup(false, 400.0);
    let det = project(&pop, 2024, 2030, Some(&inp)).unwrap();
    let n = 2000;
    let sp = Spec {
        process_noise: true,
        age_groups: AgeGroups::SingleYears,
        ..spec(n)
    };
    let want = Want {
        population: true,
        components: false,
        migration: true,
        demand: false,
        costs: false,
    };
    let mc = run(&pop, 2024, 2030, Some(&inp), &sp, &[], want, &|_, _| {}).unwrap();
    // The first year's movers of each flow are drawn around the projection's.
    let (mig, c0) = (
        mc.migration.as_ref().unwrap(),
        det.components[1].as_ref().unwrap(),
    );
    let nyp = mc.projected.len();
    for (row, &(f, arrivals)) in mc.migration_rows.iter().enumerate() {
        for a in 0..det.population.dim().1 {
            for s in 0..2 {
                let cell = (a * 2 + s) * nyp;
                let d = if arrivals {
                    c0.flow_arrivals[[f, a, s]]
                } else {
                    c0.flow_movers[[f, a, s]]
                };
                let m = &mig[row];
                let sd = (m.q[3][cell] - m.q[1][cell]) / 1.349;
                let tol = 5.0 * sd / (n as f64).sqrt() + 1.0 / (n as f64).sqrt();
                assert!(
                    (m.mean[cell] - d).abs() <= tol,
                    "flow {f} arrivals {arrivals} area {a} sex {s}: mean {} vs {d} (sd {sd})",
                    m.mean[cell]
                );
            }
        }
    }
    let p = mc.population.as_ref().unwrap();
    let (ny, na, _, nx) = det.population.dim();
    let mut worst: f64 = 0.0;
    for a in 0..na {
        for s in 0..2 {
            for x in 0..nx {
                let k = ny - 1;
                // Single years, then all ages: nx + 1 groups.
                let cell = ((a * 3 + s) * (nx + 1) + x) * ny + k;
                let d = det.population[[k, a, s, x]];
                // The standard deviation from the interquartile range (normal: IQR =
                // 1.349 σ); the mean of n draws is within 5 standard errors, plus one
                // person for the rounding of the quartiles of integer counts.
                let sd = (p.q[3][cell] - p.q[1][cell]) / 1.349;
                let tol = 5.0 * sd / (n as f64).sqrt() + 1.0 / (n as f64).sqrt();
                let z = (p.mean[cell] - d).abs() / tol;
                worst = worst.max(z);
                assert!(
                    (p.mean[cell] - d).abs() <= tol,
                    "cell {a} {s} {x}: mean {} vs {d} (sd {sd})",
                    p.mean[cell]
                );
            }
        }
    }
    assert!(worst > 0.0);
}

/// `f` run on a pool of `threads` threads.
fn on_threads<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

#[test]
fn the_same_seed_gives_the_same_numbers_whatever_the_threads() {
    let (pop, inp) = setup(true, 20.0);
    let sp = noisy(37);
    let sv = school();
    let services = [input(&sv)];
    let go = |threads: usize, seed: u64| {
        let sp = Spec { seed, ..sp.clone() };
        on_threads(threads, || {
            run(
                &pop,
                2024,
                2034,
                Some(&inp),
                &sp,
                &services,
                ALL,
                &|_, _| {},
            )
            .unwrap()
        })
    };
    let one = go(1, 5);
    assert_eq!(one, go(2, 5));
    assert_eq!(one, go(3, 5));
    assert_ne!(one.population, go(2, 6).population);
}

/// Eleven areas without internal migration (more than the eight running sums).
fn eleven_areas() -> (Population, ProjectionInputs) {
    let codes: Vec<String> = (0..11).map(|a| format!("K{a:02}")).collect();
    let codes: Vec<&str> = codes.iter().map(String::as_str).collect();
    setup_areas(&codes, false, 20.0)
}

/// Areas without internal migration run as groups side by side, each thread taking
/// the next group as soon as it is free; more groups than running sums of the totals
/// (eight), and units whose areas lie in one group and in several: the same numbers
/// with 1, 2, 3 and 9 threads (9: more threads than slots, so the groups run one
/// after another, each with its blocks in parallel).
#[test]
fn separate_areas_give_the_same_numbers_whatever_the_threads() {
    let (pop, inp) = eleven_areas();
    let sp = noisy(21);
    let sv = school();
    let one_area: Vec<f64> = (0..11).map(|a| if a == 0 { 1.0 } else { 0.0 }).collect();
    let spread: Vec<f64> = (0..11).map(|a| [0.0, 1.0, 0.5][a % 3]).collect();
    let (ua, ub) = (Unit::new("A", 0, 300.0), Unit::new("B", 0, 900.0));
    let services = [ServiceInput {
        units: vec![
            UnitInput {
                unit: &ua,
                shares: &one_area,
                by_year: &[],
            },
            UnitInput {
                unit: &ub,
                shares: &spread,
                by_year: &[],
            },
        ],
        ..input(&sv)
    }];
    let go = |threads: usize| {
        on_threads(threads, || {
            to_2030(&pop, &inp, &sp, &services, &mut Workspace::default())
        })
    };
    let one = go(1);
    assert_eq!(one.services[0].units.len(), 2);
    for threads in [2, 3, 9] {
        assert_eq!(one, go(threads), "{threads} threads");
    }
}

/// Separate areas whose blocks run one after another run them a year at a time (each
/// block carrying its state, its random streams and its migration shock from year to
/// year); with more threads than slots each block runs through every year at once.
/// Both give the same numbers: one thread against nine, with process noise, a net
/// migration rate spread, a trajectory count that leaves the last block part empty,
/// and every output asked for.
#[test]
fn a_year_at_a_time_gives_what_a_block_through_every_year_gives() {
    let (pop, inp) = eleven_areas();
    let sp = Spec {
        migration_rate: Some(MigrationRate {
            sd: ndarray::Array3::from_elem((pop.areas().len(), 2, pop.n_ages()), 0.02),
            ar: 0.5,
        }),
        ..noisy(13)
    };
    let sv = school();
    let spread: Vec<f64> = (0..11).map(|a| [0.0, 1.0, 0.5][a % 3]).collect();
    let ub = Unit::new("B", 0, 900.0);
    let services = [ServiceInput {
        units: vec![UnitInput {
            unit: &ub,
            shares: &spread,
            by_year: &[],
        }],
        ..input(&sv)
    }];
    let go = |threads: usize| {
        on_threads(threads, || {
            to_2030(&pop, &inp, &sp, &services, &mut Workspace::default())
        })
    };
    let (yearwise, blockwise) = (go(1), go(9));
    assert!(yearwise.population.is_some() && yearwise.migration.is_some());
    assert_eq!(yearwise, blockwise);
}

/// With one flow in and one out, each flow's movers are its migration component lane
/// for lane: a year at a time, their rows are found to be the component's to the bit
/// and summarised once. The summaries are the components', and what a block through
/// every year gives (its rows each summarised); with a second flow out, no row has a
/// twin, and both orders still agree.
#[test]
fn movers_that_are_a_component_to_the_bit_are_summarised_as_it() {
    let (pop, mut inp) = eleven_areas();
    inp.flows.retain(|f| f.direction != Direction::Net);
    let sp = Spec {
        trajectories: 29,
        ..Spec::default()
    };
    let sv = school();
    let services = [input(&sv)];
    let go = |inp: &ProjectionInputs, threads: usize| {
        on_threads(threads, || {
            to_2030(&pop, inp, &sp, &services, &mut Workspace::default())
        })
    };
    let (yearwise, blockwise) = (go(&inp, 1), go(&inp, 9));
    assert_eq!(yearwise, blockwise);
    let (comps, movers) = (
        yearwise.components.as_ref().unwrap(),
        yearwise.migration.as_ref().unwrap(),
    );
    assert_eq!(yearwise.migration_rows, [(0, false), (1, false)]);
    assert_eq!(movers[0], comps[2], "in-migration");
    assert_eq!(movers[1], comps[3], "out-migration");
    let (lo, hi) = (&movers[0].q[0], movers[0].q.last().unwrap());
    assert!(
        lo.iter().zip(hi).any(|(a, b)| a < b),
        "a spread to summarise"
    );
    let mut two_out = inp.clone();
    let mut second = two_out.flows[1].clone();
    second.name = "out2".into();
    two_out.flows.push(second);
    let (yearwise, blockwise) = (go(&two_out, 1), go(&two_out, 9));
    assert_eq!(yearwise, blockwise);
    let (comps, movers) = (
        yearwise.components.as_ref().unwrap(),
        yearwise.migration.as_ref().unwrap(),
    );
    assert_eq!(movers[0], comps[2], "the one flow in");
    assert_ne!(movers[1], comps[3], "one of two flows out");
}

/// A year may have no cells to record (the base year when only the components or
/// only the movers are asked for, or nothing at all): both orders still run it, give
/// the same numbers, and count their progress up to its total.
#[test]
fn years_without_cells_run_in_both_orders_and_progress_reaches_its_total() {
    let (pop, inp) = eleven_areas();
    let sp = noisy(13);
    let none = Want {
        population: false,
        components: false,
        migration: false,
        demand: false,
        costs: false,
    };
    let comps = Want {
        components: true,
        ..none
    };
    let movers = Want {
        migration: true,
        ..none
    };
    for want in [comps, movers, none] {
        let go = |threads: usize| {
            let last = std::sync::Mutex::new((0, 0));
            let mc = on_threads(threads, || {
                run_aligned(
                    &pop,
                    2024,
                    2030,
                    Some(&inp),
                    &sp,
                    &[],
                    want,
                    None,
                    &|done, total| {
                        let mut l = last.lock().unwrap();
                        *l = (l.0.max(done), total);
                    },
                    &mut Workspace::default(),
                )
                .unwrap()
            });
            (mc, last.into_inner().unwrap())
        };
        let ((yearwise, p1), (blockwise, p9)) = (go(1), go(9));
        assert_eq!(yearwise.components.is_some(), want.components);
        assert_eq!(yearwise.migration.is_some(), want.migration);
        assert_eq!(yearwise, blockwise, "{want:?}");
        for (done, total) in [p1, p9] {
            assert_eq!(done, total, "{want:?}");
        }
    }
}

/// With many trajectories the services' totals are added up in fewer running sums
/// than eight, to stay within their memory budget: still the same numbers with 1, 2, 3
/// and 9 threads, every output but the totals the same as with eight sums, and the
/// totals the same but for the order of their additions.
#[test]
fn fewer_running_sums_give_the_same_numbers_whatever_the_threads() {
    let (pop, inp) = eleven_areas();
    let sp = noisy(21);
    let sv = school();
    let services = [input(&sv)];
    // One service's demand and cost by (year, trajectory), 2024–2030.
    let sum = 2 * 7 * sp.trajectories * std::mem::size_of::<f64>();
    let go = |threads: usize, budget: usize| {
        on_threads(threads, || {
            run_budgeted(
                &pop,
                2024,
                2030,
                Some(&inp),
                &sp,
                &services,
                ALL,
                None,
                &|_, _| {},
                &mut Workspace::default(),
                budget,
            )
            .unwrap()
        })
    };
    assert_eq!(running_sums(sum, 3 * sum + 1), 3);
    assert_eq!(running_sums(sum, sum / 2), 1);
    assert_eq!(running_sums(sum, 100 * sum), SLOTS);
    let eight = go(2, 100 * sum);
    assert_eq!(eight, go(2, SUMS_BUDGET), "eight sums either way");
    for budget in [3 * sum, sum / 2] {
        let one = go(1, budget);
        for threads in [2, 3, 9] {
            assert_eq!(
                one,
                go(threads, budget),
                "{threads} threads, budget {budget}"
            );
        }
        let (a, b) = (&eight.services[0], &one.services[0]);
        let close = |x: &[f64], y: &[f64]| {
            assert_eq!(x.len(), y.len());
            for (x, y) in x.iter().zip(y) {
                assert!((x - y).abs() <= 1e-12 * x.abs().max(1.0), "{x} vs {y}");
            }
        };
        for (x, y) in [
            (&a.total_demand, &b.total_demand),
            (&a.total_cost, &b.total_cost),
            (&a.present_value, &b.present_value),
        ] {
            close(&x.mean, &y.mean);
            for (qx, qy) in x.q.iter().zip(&y.q) {
                close(qx, qy);
            }
        }
        close(&a.total_cost_by_trajectory, &b.total_cost_by_trajectory);
        // Everything else exactly.
        let mut same = one.clone();
        let s = &mut same.services[0];
        s.total_demand = a.total_demand.clone();
        s.total_cost = a.total_cost.clone();
        s.present_value = a.present_value.clone();
        s.total_cost_by_trajectory = a.total_cost_by_trajectory.clone();
        assert_eq!(same, eight, "budget {budget}");
    }
}

/// Every output of a run from 2024 to 2030 with the buffers of `ws`.
fn to_2030(
    pop: &Population,
    inp: &ProjectionInputs,
    sp: &Spec,
    services: &[ServiceInput<'_>],
    ws: &mut Workspace,
) -> McResult {
    run_aligned(
        pop,
        2024,
        2030,
        Some(inp),
        sp,
        services,
        ALL,
        None,
        &|_, _| {},
        ws,
    )
    .unwrap()
}

/// A workspace carried from run to run (coupled areas, separate areas, coupled again,
/// with other trajectory counts) gives each run the result it has on its own.
#[test]
fn a_workspace_from_earlier_runs_changes_no_result() {
    let codes: Vec<String> = (0..5).map(|a| format!("K{a}")).collect();
    let codes: Vec<&str> = codes.iter().map(String::as_str).collect();
    let sv = school();
    let services = [input(&sv)];
    let mut ws = Workspace::default();
    for (closed, n) in [(true, 40), (false, 17), (true, 9)] {
        let (pop, inp) = setup_areas(&codes, closed, 30.0);
        let sp = noisy(n);
        let go = |ws: &mut Workspace| to_2030(&pop, &inp, &sp, &services, ws);
        assert_eq!(
            go(&mut ws),
            go(&mut Workspace::default()),
            "closed {closed}, {n} trajectories"
        );
    }
    assert!(format!("{ws:?}").starts_with("Workspace"));
}

/// Destinations go with an out-flow given as rates: a flow of counts with them is
/// refused by name, in the deterministic run and under uncertainty alike.
#[test]
fn a_closed_system_of_counts_is_refused() {
    let (pop, mut inp) = setup(true, 50.0);
    let within = inp
        .flows
        .iter_mut()
        .find(|f| f.destinations.is_some())
        .unwrap();
    let FlowForm::OutRates(t) = &within.form else {
        panic!("the closed system is given as rates")
    };
    within.form = FlowForm::Counts(t.clone());
    let err = project(&pop, 2024, 2030, Some(&inp)).unwrap_err();
    assert!(
        err.to_string().contains("migration flow `within`") && err.to_string().contains("rates"),
        "{err}"
    );
    let mc = run(&pop, 2024, 2030, Some(&inp), &spec(8), &[], ALL, &|_, _| {});
    assert!(matches!(mc, Err(McError::Projection(_))));
}

#[test]
fn an_age_group_split_by_earlier_groups_is_summed_from_them() {
    let default = [0..7, 7..13, 13..16, 16..19, 19..65, 65..75, 75..101, 0..101];
    let parts = group_parts(&default);
    assert_eq!(parts[7], (0..7).collect::<Vec<_>>());
    assert!(parts[..7].iter().all(Vec::is_empty));
    // Single years and their total; a later group over two earlier ones.
    let singles: Vec<_> = (0..5).map(|a| a..a + 1).chain([0..5, 2..4]).collect();
    let parts = group_parts(&singles);
    assert_eq!(parts[5], vec![0, 1, 2, 3, 4]);
    assert_eq!(parts[6], vec![2, 3]);
    // Groups that overlap, leave a gap or are one earlier group are summed by age.
    for groups in [
        vec![0..7, 5..10, 0..10],
        vec![0..7, 8..10, 0..10],
        vec![0..7, 0..7],
        vec![0..7, 7..13, 0..12],
        // A split that needs a second choice at age 0 (`0..3`, not `0..5`).
        vec![0..5, 0..3, 3..10, 0..10],
    ] {
        let parts = group_parts(&groups);
        assert!(parts.iter().all(Vec::is_empty), "{groups:?}: {parts:?}");
    }
}

/// Two services of one segment over the same ages, one after the other, have their
/// demand summed side by side in each block; each gives, to the bit, what it gives
/// with another service between them (summed on its own), with process noise.
#[test]
fn services_summed_side_by_side_give_what_each_gives_alone() {
    let (pop, inp) = eleven_areas();
    let sp = noisy(21);
    let care = |id: &str, coverage: f64| Service {
        coverage: Value::Constant(coverage),
        segments: vec![Segment {
            units_per_fte: Some(4.0),
            cost: Cost {
                per_unit: 100.0,
                per_fte: 50_000.0,
                overhead: 0.1,
                ..Cost::default()
            },
            ..Segment::new("all")
        }],
        ..Service::new(id, (10, 20))
    };
    let (a, b) = (care("a", 0.3), care("b", 0.6));
    let between = Service::new("c", (0, 4));
    let paired = to_2030(
        &pop,
        &inp,
        &sp,
        &[input(&a), input(&b)],
        &mut Workspace::default(),
    );
    let apart = to_2030(
        &pop,
        &inp,
        &sp,
        &[input(&a), input(&between), input(&b)],
        &mut Workspace::default(),
    );
    assert_eq!(paired.services[0], apart.services[0]);
    assert_eq!(paired.services[1], apart.services[2]);
    // The demand is there and spread.
    let d = &paired.services[1].demand;
    assert!(d.q[0][5] > 0.0 && d.q[4][5] > d.q[0][5]);
}
