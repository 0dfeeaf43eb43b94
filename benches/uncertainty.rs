//! The Monte Carlo workload of issue 5: 1000 trajectories × 309 areas × 2 sexes ×
//! 101 ages × 30 years, with the demand quantiles of eight services. Seeded synthetic
//! inputs (those of `benches/projection.rs`) are built outside the timed closure.

use criterion::{criterion_group, criterion_main, Criterion};
use kunta::population::{Age, Population, Record, Sex, Year};
use kunta::projection::{Direction, Flow, FlowForm, ProjectionInputs};
use kunta::rates::{AgeIndex, RateRow, RateTable};
use kunta::services::{Segment, Service, Teaching, Value};
use kunta::uncertainty::{run, ServiceInput, Spec, Want};
use std::hint::black_box;

const AGES: u16 = 101;
const YEARS: i32 = 30;

/// A seeded uniform number in [0, 1) for cell `i` (SplitMix64).
fn u(i: u64) -> f64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
}

fn inputs(areas: usize) -> (Population, ProjectionInputs) {
    let mut records = Vec::new();
    for a in 0..areas {
        for s in Sex::ALL {
            for x in 0..AGES {
                let i = ((a * 2 + s.index()) * usize::from(AGES) + usize::from(x)) as u64;
                records.push(Record {
                    area: format!("{a:03}"),
                    sex: s,
                    age: Age(x),
                    year: Year(2024),
                    value: 50.0 + 100.0 * u(i),
                });
            }
        }
    }
    let pop = Population::from_records(records).expect("valid population");
    let by_sex_age = |f: &dyn Fn(u16) -> f64| -> Vec<RateRow> {
        Sex::ALL
            .iter()
            .flat_map(|s| {
                (0..AGES).map(move |x| RateRow {
                    area: None,
                    year: None,
                    sex: Some(*s),
                    age: Some(AgeIndex::Age(x)),
                    value: f(x),
                })
            })
            .collect()
    };
    let fertility: Vec<RateRow> = (15..=49)
        .map(|x| RateRow {
            area: None,
            year: None,
            sex: None,
            age: Some(AgeIndex::Age(x)),
            value: 0.04,
        })
        .collect();
    let table =
        |rows: &[RateRow]| RateTable::from_rows(rows, 1.0, pop.areas()).expect("valid table");
    let inputs = ProjectionInputs {
        fertility: table(&fertility),
        mortality: table(&by_sex_age(&|x| {
            (0.0005 * (0.09 * f64::from(x)).exp()).min(0.5)
        })),
        boys_share: 0.512,
        tfr: None,
        improvement: Some(0.01),
        flows: vec![
            Flow {
                name: "in".into(),
                direction: Direction::In,
                form: FlowForm::Counts(table(&by_sex_age(&|x| 2.0 + f64::from(x % 7)))),
                multiplier: None,
                destinations: None,
            },
            Flow {
                name: "out".into(),
                direction: Direction::Out,
                form: FlowForm::OutRates(table(&by_sex_age(&|x| 0.01 + 0.0001 * f64::from(x)))),
                multiplier: None,
                destinations: None,
            },
        ],
    };
    (pop, inputs)
}

/// Eight services shaped like the example municipality's.
fn services() -> Vec<Service> {
    let seg = |id: &str, share: f64, max: Option<f64>| Segment {
        share: Value::Constant(share),
        max_group_size: max,
        ..Segment::new(id)
    };
    let school = |id: &str, ages: (u16, u16), hours: Vec<f64>| Service {
        coverage: Value::Constant(0.99),
        segments: vec![
            seg("general", 0.764, Some(25.0)),
            seg("intensified", 0.139, Some(25.0)),
            seg("special", 0.097, Some(10.0)),
        ],
        teaching: Some(Teaching {
            lesson_hours: hours,
            teaching_obligation: 24.0,
        }),
        ..Service::new(id, ages)
    };
    let simple = |id: &str, ages: (u16, u16), c: f64| Service {
        coverage: Value::Constant(c),
        ..Service::new(id, ages)
    };
    vec![
        Service {
            coverage: Value::Constant(0.75),
            segments: vec![seg("under_3", 0.4, None), seg("from_3", 0.6, None)],
            ..Service::new("ecec", (1, 5))
        },
        simple("preprimary", (6, 6), 0.99),
        school(
            "basic_1_6",
            (7, 12),
            vec![20.0, 20.0, 22.0, 24.0, 25.0, 25.0],
        ),
        school("basic_7_9", (13, 15), vec![30.0, 29.0, 30.0]),
        simple("upper_secondary", (16, 18), 0.92),
        simple("child_health", (0, 6), 1.0),
        simple("home_care", (75, 100), 0.12),
        simple("care_24h", (75, 100), 0.095),
    ]
}

fn monte_carlo(c: &mut Criterion) {
    let mut g = c.benchmark_group("monte_carlo");
    g.sample_size(10);
    let svcs = services();
    let demand_only = Want {
        population: false,
        components: false,
        demand: true,
        costs: false,
    };
    if std::env::var("KUNTA_PROBE").is_ok() {
        let (pop, inp) = inputs(309);
        let spec = Spec {
            trajectories: 200,
            ..Spec::default()
        };
        let si: Vec<ServiceInput<'_>> = svcs
            .iter()
            .map(|service| ServiceInput {
                service,
                fixed_shares: None,
                discount_rate: 0.0,
            })
            .collect();
        for (name, w) in [
            (
                "kernel",
                Want {
                    population: false,
                    components: false,
                    demand: false,
                    costs: false,
                },
            ),
            ("demand", demand_only),
            (
                "components",
                Want {
                    population: false,
                    components: true,
                    demand: false,
                    costs: false,
                },
            ),
        ] {
            if std::env::var("KUNTA_PROBE").unwrap() != "1"
                && std::env::var("KUNTA_PROBE").unwrap() != name
            {
                continue;
            }
            let t = std::time::Instant::now();
            run(
                &pop,
                2024,
                2024 + YEARS,
                Some(&inp),
                &spec,
                &si,
                w,
                &|_, _| {},
            )
            .unwrap();
            eprintln!("{name}: {:?}", t.elapsed());
        }
        let spec1 = Spec {
            trajectories: 200,
            ..Spec::default()
        };
        let t = std::time::Instant::now();
        rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| {
                run(
                    &pop,
                    2024,
                    2024 + YEARS,
                    Some(&inp),
                    &spec1,
                    &si,
                    Want {
                        population: false,
                        components: false,
                        demand: false,
                        costs: false,
                    },
                    &|_, _| {},
                )
                .unwrap()
            });
        eprintln!("kernel 1 thread: {:?}", t.elapsed());
        std::process::exit(0);
    }
    for (areas, n) in [(309usize, 1000usize), (20, 1000)] {
        let (pop, inp) = inputs(areas);
        let spec = Spec {
            trajectories: n,
            ..Spec::default()
        };
        let si: Vec<ServiceInput<'_>> = svcs
            .iter()
            .map(|service| ServiceInput {
                service,
                fixed_shares: None,
                discount_rate: 0.0,
            })
            .collect();
        g.bench_function(
            format!("{n}traj_x{areas}areas_x2_x{AGES}ages_x{YEARS}years_demand_8services"),
            |b| {
                b.iter(|| {
                    run(
                        black_box(&pop),
                        2024,
                        2024 + YEARS,
                        Some(&inp),
                        &spec,
                        &si,
                        demand_only,
                        &|_, _| {},
                    )
                    .expect("runs")
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, monte_carlo);
criterion_main!(benches);
