//! The deterministic projection (MODEL.md §2): 309 areas × 2 sexes × 101 ages × 30
//! years, with fertility, mortality and two migration flows (counts in, rates out).
//! Seeded synthetic inputs are built once, outside the timed closures.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use kunta::projection::{project, project_year};
use std::hint::black_box;
mod common;

use common::{inputs, AGES, YEARS};

fn projection(c: &mut Criterion) {
    let mut g = c.benchmark_group("projection");
    g.sample_size(20);
    for areas in [20usize, 309] {
        let (pop, inp) = inputs(areas);
        let id = format!("{areas}areas_x2_x{AGES}ages_x{YEARS}years");
        g.bench_with_input(
            BenchmarkId::new("project", &id),
            &(pop.clone(), inp.clone()),
            |b, (pop, inp)| {
                b.iter(|| project(black_box(pop), 2024, 2024 + YEARS, Some(inp)).expect("projects"))
            },
        );
        // The hot loop alone: one year step with rates already resolved.
        let rates = inp.year_rates(&pop, 2024, 2025).expect("rates");
        let start = pop.values().index_axis(ndarray::Axis(0), 0).to_owned();
        let mut end = start.clone();
        let id = format!("{areas}areas_x2_x{AGES}ages_x1year");
        g.bench_function(BenchmarkId::new("project_year", &id), |b| {
            b.iter(|| project_year(black_box(start.view()), &rates, end.view_mut()))
        });
    }
    g.finish();
}

criterion_group!(benches, projection);
criterion_main!(benches);
