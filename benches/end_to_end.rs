//! `kunta run` end to end, as a user runs it: read the CSV inputs, project 309 areas ×
//! 2 sexes × 101 ages × 30 years, write the Parquet tables. The scenario's files are
//! written once, outside the timed closure.

use criterion::{criterion_group, criterion_main, Criterion};
use std::fmt::Write;
use std::process::Command;

const AREAS: usize = 309;
const YEARS: i32 = 30;

fn scenario(dir: &std::path::Path) {
    let mut pop = String::from("area,sex,age,year,population\n");
    let mut counts = String::from("area,sex,age,count\n");
    for a in 0..AREAS {
        for sex in ["female", "male"] {
            for x in 0..=100u32 {
                let v = 50 + (a * 7 + x as usize * 13) % 97;
                let _ = writeln!(pop, "{a:03},{sex},{x},2024,{v}");
                let _ = writeln!(counts, "{a:03},{sex},{x},{}", 1 + x % 3);
            }
        }
    }
    let mut mort = String::from("sex,age,rate\n");
    let mut out_rates = String::from("sex,age,rate\n");
    for sex in ["female", "male"] {
        let _ = writeln!(mort, "{sex},s,1.0");
        for x in 0..=100u32 {
            let q = (0.5 * (0.09 * f64::from(x)).exp()).min(500.0);
            let _ = writeln!(mort, "{sex},{x},{q:.4}");
            let _ = writeln!(out_rates, "{sex},{x},{:.3}", 10.0 + f64::from(x % 30));
        }
    }
    let mut fert = String::from("age,rate\n");
    for x in 15..=49 {
        let _ = writeln!(fert, "{x},40");
    }
    let files = [
        ("pop.csv", pop),
        ("mort.csv", mort),
        ("fert.csv", fert),
        ("in.csv", counts),
        ("out.csv", out_rates),
        (
            "s.toml",
            format!(
                "[scenario]\nname = \"bench\"\nbase_year = 2024\nend_year = {}\n\n[population]\nfile = \"pop.csv\"\n\n[fertility]\nfile = \"fert.csv\"\nscale = 1000\n\n[mortality]\nfile = \"mort.csv\"\nscale = 1000\n\n[[migration]]\nname = \"in\"\ndirection = \"in\"\ncounts = \"in.csv\"\n\n[[migration]]\nname = \"out\"\ndirection = \"out\"\nrates = \"out.csv\"\nscale = 1000\n",
                2024 + YEARS
            ),
        ),
    ];
    for (name, content) in files {
        std::fs::write(dir.join(name), content).expect("write the bench scenario");
    }
}

fn end_to_end(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary directory");
    scenario(dir.path());
    let mut g = c.benchmark_group("kunta_run");
    g.sample_size(10);
    g.bench_function(
        format!("{AREAS}areas_x2_x101ages_x{YEARS}years_csv_to_parquet"),
        |b| {
            b.iter(|| {
                let o = Command::new(env!("CARGO_BIN_EXE_kunta"))
                    .args(["run", "s.toml", "--out", "out", "--json"])
                    .current_dir(dir.path())
                    .output()
                    .expect("kunta runs");
                assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            })
        },
    );
    g.finish();
}

criterion_group!(benches, end_to_end);
criterion_main!(benches);
