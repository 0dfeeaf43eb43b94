//! The Monte Carlo kernel alone (a secondary figure; the headline is
//! `benches/national.rs`, the user's command): 1000 trajectories × 309 areas × 2 sexes
//! × 101 ages × 30 years, eight services' demand, resources and costs summarised (the
//! pass `kunta run` takes; demand asked for alone takes the same pass since session
//! 10). Seeded synthetic inputs (`benches/common`, as for `benches/projection.rs`) are
//! built outside the timed closure.

use criterion::{criterion_group, criterion_main, Criterion};
use kunta::services::{Segment, Service, Teaching, Value};
use kunta::uncertainty::{run, ServiceInput, Spec, Want};
use std::hint::black_box;

mod common;

use common::{inputs, AGES, YEARS};

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
                units: Vec::new(),
            })
            .collect();
        g.bench_function(
            format!("{n}traj_x{areas}areas_x2_x{AGES}ages_x{YEARS}years_services_8"),
            |b| {
                b.iter(|| {
                    run(
                        black_box(&pop),
                        2024,
                        2024 + YEARS,
                        Some(&inp),
                        &spec,
                        &si,
                        Want {
                            costs: true,
                            ..Want::DEMAND
                        },
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
