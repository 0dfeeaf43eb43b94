//! Reading population tables: PX, JSON-stat and tidy CSV of a national-size grid
//! (areas × 2 sexes × 101 ages × 1 year), parsed and turned into a population cube.
//! Inputs are built once, outside the timed closures.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kunta::io::{csv, jsonstat, px, to_population, CsvOptions};
use std::fmt::Write;
use std::hint::black_box;

const AGES: usize = 101;

/// A seeded value for cell `i` (a small LCG): realistic magnitudes, no `rand` needed.
fn value(i: usize) -> u64 {
    (i as u64)
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407)
        >> 54
}

fn areas(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("KU{i:03}")).collect()
}

fn px_file(n: usize) -> Vec<u8> {
    let quote = |v: &[String]| {
        v.iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(",")
    };
    let ages: Vec<String> = (0..AGES).map(|x| x.to_string()).collect();
    let mut s = String::new();
    let _ = write!(
        s,
        "CHARSET=\"ANSI\";\nCODEPAGE=\"utf-8\";\nSTUB=\"Alue\",\"Ikä\";\nHEADING=\"Sukupuoli\",\"Vuosi\";\nVALUES(\"Alue\")={};\nVALUES(\"Ikä\")={};\nVALUES(\"Sukupuoli\")=\"Miehet\",\"Naiset\";\nVALUES(\"Vuosi\")=\"2024\";\nCODES(\"Sukupuoli\")=\"1\",\"2\";\nDATA=\n",
        quote(&areas(n)),
        quote(&ages)
    );
    for i in 0..n * AGES {
        let _ = writeln!(s, "{} {}", value(2 * i), value(2 * i + 1));
    }
    s.push_str(";\n");
    s.into_bytes()
}

fn jsonstat_file(n: usize) -> Vec<u8> {
    let idx = |v: Vec<String>| {
        v.iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(",")
    };
    let values: Vec<String> = (0..n * AGES * 2).map(|i| value(i).to_string()).collect();
    format!(
        r#"{{"version":"2.0","class":"dataset","id":["alue","ikaryhma","sukupuoli","timeperiod_y"],"size":[{n},{AGES},2,1],
        "dimension":{{"alue":{{"category":{{"index":[{}]}}}},"ikaryhma":{{"category":{{"index":[{}]}}}},
        "sukupuoli":{{"category":{{"index":["1","2"]}}}},"timeperiod_y":{{"category":{{"index":["2024"]}}}}}},
        "value":[{}]}}"#,
        idx(areas(n)),
        idx((0..AGES).map(|x| format!("{x:03}")).collect()),
        values.join(",")
    )
    .into_bytes()
}

fn csv_file(n: usize) -> Vec<u8> {
    let mut s = String::from("area,sex,age,year,population\n");
    for (a, code) in areas(n).iter().enumerate() {
        for sex in 1..=2 {
            for x in 0..AGES {
                let _ = writeln!(
                    s,
                    "{code},{sex},{x},2024,{}",
                    value((a * 2 + sex) * AGES + x)
                );
            }
        }
    }
    s.into_bytes()
}

fn readers(c: &mut Criterion) {
    let mut g = c.benchmark_group("read_population");
    for n in [20usize, 309] {
        let cells = (n * 2 * AGES) as u64;
        g.throughput(Throughput::Elements(cells));
        let id = format!("{n}areas_x2_x{AGES}ages_x1year");
        let px_bytes = px_file(n);
        g.bench_with_input(BenchmarkId::new("px", &id), &px_bytes, |b, d| {
            b.iter(|| to_population(&px::read(black_box(d), "b.px").unwrap()).unwrap())
        });
        let js = jsonstat_file(n);
        g.bench_with_input(BenchmarkId::new("jsonstat", &id), &js, |b, d| {
            b.iter(|| to_population(&jsonstat::read(black_box(d), "b.json").unwrap()).unwrap())
        });
        let cs = csv_file(n);
        let opts = CsvOptions::default();
        g.bench_with_input(BenchmarkId::new("csv", &id), &cs, |b, d| {
            b.iter(|| to_population(&csv::read(black_box(d), "b.csv", &opts).unwrap()).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, readers);
criterion_main!(benches);
