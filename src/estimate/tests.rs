use super::backtest::{backtest, scores, GROUPS};
use super::*;
use crate::population::{Age, Record};
use crate::projection::{project, Direction, Flow, FlowForm, ProjectionInputs};
use crate::rates::RateTable;

const TOP: usize = 40;

/// Central death rates by sex and age: a Gompertz curve, men higher.
fn m_of(s: usize, x: usize) -> f64 {
    0.0005 * (0.08 * x as f64).exp() * if s == 1 { 1.4 } else { 1.0 }
}

/// A history of two areas, 2010–2016, projected with known rates: probabilities of
/// dying made from `m_of` by MODEL §11's formulas, births per woman at ages 20–34
/// (start of year), and a net flow of +3 at age 20 and −1 at age 30 in area A, −2 at
/// age 25 in B, and +1 born during the year in A.
fn history() -> (Population, crate::projection::Projection, Array3<f64>) {
    let records = ["A", "B"].into_iter().enumerate().flat_map(|(a, area)| {
        (0..=TOP).flat_map(move |x| {
            Sex::ALL.map(|sex| Record {
                area: area.into(),
                sex,
                age: Age(x as u16),
                year: Year(2010),
                value: 100.0 + 10.0 * a as f64 + x as f64,
            })
        })
    });
    let base = Population::from_records(records).unwrap();
    let areas = base.areas().to_vec();
    let nx = TOP + 1;
    let q_of = |s: usize, i: usize| -> f64 {
        if i == nx {
            1.0 - (-m_of(s, 0) / 2.0).exp()
        } else if i < TOP {
            1.0 - (-(m_of(s, i) + m_of(s, i + 1)) / 2.0).exp()
        } else {
            1.0 - (-m_of(s, TOP)).exp()
        }
    };
    let rows = |f: &dyn Fn(usize, usize, usize) -> f64, sexes: bool| -> Vec<RateRow> {
        let mut out = Vec::new();
        for (a, area) in areas.iter().enumerate() {
            for s in 0..if sexes { 2 } else { 1 } {
                for i in 0..=nx {
                    if !sexes && i == nx {
                        continue;
                    }
                    out.push(RateRow {
                        area: Some(area.clone()),
                        year: None,
                        sex: sexes.then_some(Sex::ALL[s]),
                        age: Some(AgeIndex::of_slot(i, nx)),
                        value: f(a, s, i),
                    });
                }
            }
        }
        out
    };
    let mut net = Array3::<f64>::zeros((2, 2, nx + 1));
    net[[0, 0, 20]] = 3.0;
    net[[0, 1, 30]] = -1.0;
    net[[1, 0, 25]] = -2.0;
    net[[0, 1, nx]] = 1.0;
    let inputs = ProjectionInputs {
        fertility: RateTable::from_rows(
            &rows(
                &|_, _, i| if (20..35).contains(&i) { 0.1 } else { 0.0 },
                false,
            ),
            1.0,
            &areas,
        )
        .unwrap(),
        mortality: RateTable::from_rows(&rows(&|_, s, i| q_of(s, i), true), 1.0, &areas).unwrap(),
        boys_share: 0.512,
        tfr: None,
        improvement: None,
        flows: vec![Flow {
            name: "net".into(),
            direction: Direction::Net,
            form: FlowForm::Counts(
                RateTable::from_rows(&rows(&|a, s, i| net[[a, s, i]], true), 1.0, &areas).unwrap(),
            ),
            multiplier: None,
            destinations: None,
        }],
    };
    let p = project(&base, 2010, 2016, Some(&inputs)).unwrap();
    let years = p.years.iter().map(|y| Year(*y)).collect();
    let hist = Population::new(areas, years, p.population.clone()).unwrap();
    (hist, p, net)
}

/// Death rates `m_of` for 2011–2016, and the projection's births (both sexes) put at
/// the mother's age 30.
fn events(p: &crate::projection::Projection) -> (Events, Events) {
    let years: Vec<i32> = (2011..=2016).collect();
    let mut d = Array4::<f64>::zeros((2, years.len(), 2, TOP + 1));
    for ((_, _, s, x), v) in d.indexed_iter_mut() {
        *v = m_of(s, x);
    }
    let mut b = Array4::<f64>::zeros((2, years.len(), 1, TOP + 1));
    for (k, c) in p.components.iter().skip(1).enumerate() {
        let c = c.as_ref().unwrap();
        for a in 0..2 {
            b[[a, k, 0, 30]] = c.births.row(a).sum();
        }
    }
    (
        Events {
            years: years.clone(),
            values: b,
            kind: EventKind::Counts,
            source: "births".into(),
        },
        Events {
            years,
            values: d,
            kind: EventKind::Rates,
            source: "deaths".into(),
        },
    )
}

#[test]
fn the_residual_gives_back_the_net_flow_and_death_rates_their_probabilities() {
    let (hist, p, net) = history();
    let (births, deaths) = events(&p);
    let opts = Options {
        improvement: Improvement::None,
        ..Options::default()
    };
    let e = estimate(&hist, &births, &deaths, 2016, &opts).unwrap();
    for ((idx, got), want) in e.net.indexed_iter().zip(net.iter()) {
        assert!((got - want).abs() < 1e-9, "{idx:?}: {got} against {want}");
    }
    // q(i) = 1 − exp(−(m(i) + m(i+1))/2), the open group 1 − exp(−m(ω)), birth 1 − exp(−m(0)/2).
    let q = |s, i| e.mortality[[1, s, i]];
    assert!((q(0, 5) - (1.0 - (-(m_of(0, 5) + m_of(0, 6)) / 2.0).exp())).abs() < 1e-15);
    assert!((q(1, TOP) - (1.0 - (-m_of(1, TOP)).exp())).abs() < 1e-15);
    assert!((q(1, TOP + 1) - (1.0 - (-m_of(1, 0) / 2.0).exp())).abs() < 1e-15);
    // A migration level scales the flow.
    let half = estimate(
        &hist,
        &births,
        &deaths,
        2016,
        &Options {
            migration_level: 0.5,
            ..opts.clone()
        },
    )
    .unwrap();
    assert!((half.net[[0, 0, 20]] - 1.5).abs() < 1e-9);
    // A window the history does not reach is named.
    let e = estimate(&hist, &births, &deaths, 2012, &opts).unwrap_err();
    assert_eq!(e.to_string(), "the population history has no year 2007: estimating from 5 years before the base year needs every year from 2007 to the base year");
}

#[test]
fn fertility_by_age_at_birth_moves_to_age_at_the_start_of_the_year() {
    let (hist, p, _) = history();
    let (_, deaths) = events(&p);
    // F = 0.1 at the mother's ages 25–34 in every year: TFR 1.
    let years: Vec<i32> = (2011..=2016).collect();
    let mut f = Array4::<f64>::zeros((2, years.len(), 1, TOP + 1));
    for ((_, _, _, x), v) in f.indexed_iter_mut() {
        if (25..=34).contains(&x) {
            *v = 0.1;
        }
    }
    let births = Events {
        years,
        values: f,
        kind: EventKind::Rates,
        source: "fertility".into(),
    };
    for level in [FertilityLevel::Mean, FertilityLevel::Last] {
        let opts = Options {
            fertility: level,
            ..Options::default()
        };
        let e = estimate(&hist, &births, &deaths, 2016, &opts).unwrap();
        let row = e.fertility.row(0);
        assert!(
            (row[24] - 0.05).abs() < 1e-12
                && (row[30] - 0.1).abs() < 1e-12
                && (row[34] - 0.05).abs() < 1e-12
        );
        assert!((row.sum() - 1.0).abs() < 1e-12);
        assert_eq!(e.tfr[0].len(), 1);
        assert!((e.tfr[0][0] - 1.0).abs() < 1e-12);
    }
    // A falling level: 2% less each year; the trend follows it for 3 years.
    let mut falling = births.clone();
    for ((_, k, _, _), v) in falling.values.indexed_iter_mut() {
        *v *= 1.0 - 0.02 * k as f64;
    }
    let last = estimate(&hist, &falling, &deaths, 2016, &Options::default()).unwrap();
    assert!((last.tfr[0][0] - 0.9).abs() < 1e-12, "{:?}", last.tfr[0]);
    let tr = estimate(
        &hist,
        &falling,
        &deaths,
        2016,
        &Options {
            fertility: FertilityLevel::Trend { years: 3 },
            ..Options::default()
        },
    )
    .unwrap();
    let path: Vec<f64> = tr.tfr[0].iter().map(|v| (v * 1e9).round() / 1e9).collect();
    assert_eq!(path, vec![0.9, 0.88, 0.86, 0.84]);
    // Damped: the pooled log slope g of the window 0.98, …, 0.9 (every area the same), the
    // year h level 0.9 · exp(g · (φ + … + φ^h)), held after DAMPED_YEARS.
    let g = trend(&[0.98f64, 0.96, 0.94, 0.92, 0.9].map(f64::ln));
    let dp = estimate(
        &hist,
        &falling,
        &deaths,
        2016,
        &Options {
            fertility: FertilityLevel::Damped { phi: 0.5 },
            ..Options::default()
        },
    )
    .unwrap();
    assert_eq!(dp.tfr[0].len(), DAMPED_YEARS as usize + 1);
    for (h, want) in [
        (0, 0.9),
        (1, 0.9 * (0.5 * g).exp()),
        (2, 0.9 * (0.75 * g).exp()),
    ] {
        assert!((dp.tfr[0][h] - want).abs() < 1e-12, "{h}: {:?}", dp.tfr[0]);
    }
    assert!((dp.tfr[0][DAMPED_YEARS as usize] - 0.9 * g.exp()).abs() < 1e-9);
    assert!(dp.tfr[0].windows(2).all(|w| w[1] < w[0]));
    assert_eq!(
        tr.fertility_rows()
            .iter()
            .filter(|r| r.area.as_deref() == Some("A") && r.age == Some(AgeIndex::Age(30)))
            .count(),
        4
    );
}

#[test]
fn improvement_is_applied_year_by_year() {
    let rows = vec![RateRow {
        area: None,
        year: None,
        sex: Some(Sex::Female),
        age: Some(AgeIndex::Age(70)),
        value: 0.02,
    }];
    let out = improved_rows(&rows, 2024, 2026, &|_| 0.1);
    let v: Vec<(Option<i32>, f64)> = out.iter().map(|r| (r.year, r.value)).collect();
    assert_eq!(v.len(), 3);
    assert!((v[2].1 - 0.02 * 0.81).abs() < 1e-15 && v[2].0 == Some(2026));
    assert!((v[0].1 - 0.02).abs() < 1e-15);
}

#[test]
fn a_backtest_scores_kunta_and_the_baselines() {
    let (hist, p, _) = history();
    let (births, deaths) = events(&p);
    let opts = Options {
        years: 3,
        improvement: Improvement::None,
        ..Options::default()
    };
    let rows = backtest(&hist, &births, &deaths, &[2013], &[2, 3, 9], &opts).unwrap();
    // Horizons 2 and 3 reached (9 is past 2016): 2 areas × 8 groups × 3 methods each.
    assert_eq!(rows.len(), 2 * 2 * GROUPS.len() * 3);
    let v = hist.values();
    let total = |k: usize, a: usize| v.slice(ndarray::s![k, a, .., ..]).sum();
    let naive = rows
        .iter()
        .find(|r| r.method == "naive" && r.group == "total" && r.area == "B" && r.horizon == 2)
        .unwrap();
    assert_eq!(naive.predicted, total(3, 1));
    assert_eq!(naive.observed, total(5, 1));
    // Mortality and migration are exact here; only fertility's move between age
    // conventions differs, so kunta is within a fraction of a percent.
    let kunta = rows
        .iter()
        .find(|r| r.method == "kunta" && r.group == "total" && r.area == "A" && r.horizon == 3)
        .unwrap();
    assert!(kunta.error_pct.abs() < 0.5, "{kunta:?}");
    let s = scores(&rows);
    // The history's ages end at 40: the groups from 65 have no one to score.
    let scored = GROUPS.iter().filter(|g| g.1 <= TOP).count();
    assert_eq!(s.len(), 2 * scored * 3);
    assert!(s
        .iter()
        .all(|x| x.cells == 2 && x.mape >= x.malpe.abs() - 1e-12));
}

#[test]
fn trajectories_give_kunta_intervals_and_their_coverage() {
    use super::backtest::{backtest_with, coverage, Trajectories};
    let (hist, p, _) = history();
    let (births, deaths) = events(&p);
    let opts = Options {
        years: 3,
        improvement: Improvement::None,
        ..Options::default()
    };
    let t = Some(Trajectories { n: 50, seed: 7 });
    let rows = backtest_with(&hist, &births, &deaths, &[2013], &[2, 3], &opts, t).unwrap();
    for r in &rows {
        match (r.method, r.interval) {
            ("kunta", Some(q)) if r.observed > 0.0 => {
                assert!(q[0] <= q[1] && q[1] <= q[2] && q[2] <= q[3], "{r:?}");
                assert!(q[3] > q[0], "spreads give an interval: {r:?}");
            }
            ("kunta", _) => {}
            (_, q) => assert!(q.is_none()),
        }
    }
    let c = coverage(&rows);
    assert_eq!(
        c.iter().map(|x| (x.0, x.1)).collect::<Vec<_>>(),
        [(2, 0.5), (2, 0.9), (3, 0.5), (3, 0.9)]
    );
    // Groups nobody is in (ages from 65 here) are not scored.
    let scored = GROUPS.iter().filter(|g| g.1 <= TOP).count();
    assert!(
        c.iter()
            .all(|x| (0.0..=1.0).contains(&x.2) && x.3 == 2 * scored),
        "{c:?}"
    );
    // By group: the scored groups at each horizon, in order, whose cells add up to
    // the whole and whose shares, weighted by cells, give the whole's.
    let by = super::backtest::coverage_by_group(&rows);
    assert_eq!(by.len(), 2 * scored);
    assert_eq!(by[0].group, "total");
    assert!(by.windows(2).all(|w| w[0].horizon <= w[1].horizon));
    for (h, whole) in [(2, &c[1]), (3, &c[3])] {
        let of_h: Vec<_> = by.iter().filter(|x| x.horizon == h).collect();
        assert_eq!(of_h.iter().map(|x| x.cells).sum::<usize>(), whole.3);
        let inside: f64 = of_h.iter().map(|x| x.inside_90 * x.cells as f64).sum();
        assert!((inside / whole.3 as f64 - whole.2).abs() < 1e-12, "{by:?}");
    }
    // The same seed, the same intervals.
    let again = backtest_with(&hist, &births, &deaths, &[2013], &[2, 3], &opts, t).unwrap();
    let intervals = |r: &[super::backtest::Row]| r.iter().map(|x| x.interval).collect::<Vec<_>>();
    assert_eq!(intervals(&rows), intervals(&again));
}
