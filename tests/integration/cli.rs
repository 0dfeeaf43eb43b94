//! The `kunta` binary as a user runs it: exit status, messages, files written.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn kunta(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kunta"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the kunta binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Writes `content` to `name` in a new temporary directory.
fn file(name: &str, content: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(name);
    std::fs::write(&p, content).unwrap();
    (dir, p)
}

/// Converting `content` fails with exit status 1, one line on stderr containing every
/// one of `expected`, and no output file (nor a temporary one) left behind.
fn convert_fails(name: &str, content: &[u8], expected: &[&str]) {
    let (dir, _) = file(name, content);
    for out in ["out.csv", "out.parquet"] {
        let o = kunta(&["convert", name, "--out", out], dir.path());
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{name}: {err}");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "one sentence expected: {err}"
        );
        assert!(err.starts_with("error: "), "{err}");
        // No part of the sentence said twice ("x: the file is empty: x: the file is
        // empty").
        let parts: Vec<&str> = err.trim_end().split(": ").collect();
        for w in 1..=parts.len() / 2 {
            for i in 0..=parts.len() - 2 * w {
                assert_ne!(parts[i..i + w], parts[i + w..i + 2 * w], "repeated: {err}");
            }
        }
        for e in expected {
            assert!(err.contains(e), "{name}: `{e}` not in: {err}");
        }
        assert!(!err.contains("panicked"), "{err}");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != name)
            .collect();
        assert!(left.is_empty(), "{name}: left behind {left:?}");
    }
}

const GOOD_CSV: &str = "area,sex,age,year,population\n091,1,0,2024,10\n091,1,1,2024,11\n091,2,0,2024,12\n091,2,1,2024,13\n";

#[test]
fn good_csv_converts_to_csv_and_parquet() {
    let (dir, _) = file("pop.csv", GOOD_CSV.as_bytes());
    let o = kunta(&["convert", "pop.csv", "--out", "out.csv"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let out = std::fs::read_to_string(dir.path().join("out.csv")).unwrap();
    assert_eq!(
        out,
        "area,sex,age,year,population\n091,female,0,2024,12\n091,female,1,2024,13\n091,male,0,2024,10\n091,male,1,2024,11\n"
    );
    let o = kunta(&["convert", "pop.csv", "--out", "out.parquet"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    // Parquet read back through kunta's own reader gives the same table.
    let o = kunta(
        &["convert", "out.parquet", "--out", "again.csv"],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("again.csv")).unwrap(),
        out
    );
}

#[test]
fn total_rows_are_skipped_and_reported() {
    let csv = format!("{GOOD_CSV}091,0,0,2024,22\nSSS,1,0,2024,99\n");
    let (dir, _) = file("pop.csv", csv.as_bytes());
    let o = kunta(&["convert", "pop.csv", "--out", "out.csv"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("skipped 2 total rows"), "{err}");
    let out = std::fs::read_to_string(dir.path().join("out.csv")).unwrap();
    assert_eq!(out.lines().count(), 5);
}

#[test]
fn bad_population_csv_rows_are_named() {
    convert_fails(
        "pop.csv",
        b"area,sex,year,population\n091,1,2024,10\n",
        &["pop.csv", "no age column"],
    );
    convert_fails(
        "pop.csv",
        b"area,sex,age,year,population\n091,1,0,2024,10\n091,1,abc,2024,10\n",
        &["pop.csv", "line 3", "column `age`", "value `abc`"],
    );
    convert_fails(
        "pop.csv",
        b"area,sex,age,year,population\n091,1,0,2024,10\n091,2,0,2024,-4\n",
        &[
            "pop.csv",
            "line 3",
            "column `population`",
            "value `-4`",
            "non-negative",
        ],
    );
    convert_fails(
        "pop.csv",
        b"area,sex,age,year,population\n091,1,0,2024,NaN\n",
        &["pop.csv", "line 2", "column `population`", "value `NaN`"],
    );
    convert_fails(
        "pop.csv",
        b"area,sex,age,year,population\n091,1,0,2024,10\n091,2,0,2024,1e308\n",
        &[
            "pop.csv",
            "line 3",
            "column `population`",
            "not a plausible number of persons",
        ],
    );
    convert_fails(
        "pop.csv",
        b"area,sex,age,year,population\n091,1,0,2024,10\n091,x,0,2024,10\n",
        &[
            "pop.csv",
            "line 3",
            "column `sex`",
            "value `x`",
            "not a sex code",
        ],
    );
    convert_fails(
        "pop.csv",
        b"area,sex,age,year,population\n091,1,0,2024,10\n091,2,0,2024,10\n091,1,0,2024,11\n",
        &["pop.csv", "line 4", "given twice", "line 2"],
    );
    // The same where the area × sex × age × year grid is far larger than the table
    // (five centuries apart): the duplicates are found by a map, not a flat grid.
    convert_fails(
        "pop.csv",
        b"area,sex,age,year,population\n091,1,0,1500,10\n091,2,90,2024,10\n092,1,0,1500,3\n091,1,0,1500,11\n",
        &["pop.csv", "line 5", "given twice", "line 2"],
    );
}

#[test]
fn broken_px_files_are_refused() {
    let px = "CHARSET=\"ANSI\";\nSTUB=\"Alue\";\nHEADING=\"Vuosi\";\nVALUES(\"Alue\")=\"A\",\"B\";\nVALUES(\"Vuosi\")=\"2019\",\"2020\";\nDATA=\n1 2\n3 4;\n";
    // Truncated in the header and in DATA.
    convert_fails("t.px", &px.as_bytes()[..40], &["t.px", "no `DATA=`"]);
    convert_fails(
        "t.px",
        &px.as_bytes()[..px.len() - 4],
        &["t.px", "DATA holds 3 values", "promise 4"],
    );
    convert_fails(
        "t.px",
        px.replace("3 4;", "3;").as_bytes(),
        &["t.px", "DATA holds 3 values"],
    );
    convert_fails(
        "t.px",
        px.replace("3 4;", "3 x;").as_bytes(),
        &["t.px", "line 8", "value `x`"],
    );
    // A population cube listing an area twice: its cells are given twice.
    let twice = "CHARSET=\"ANSI\";\nSTUB=\"Alue\",\"Sukupuoli\",\"Ikä\";\nHEADING=\"Vuosi\";\nVALUES(\"Alue\")=\"091\",\"049\",\"091\";\nVALUES(\"Sukupuoli\")=\"1\",\"2\";\nVALUES(\"Ikä\")=\"0\";\nVALUES(\"Vuosi\")=\"2024\";\nDATA=\n1 2 3 4 5 6;\n";
    convert_fails(
        "p.px",
        twice.as_bytes(),
        &["p.px", "area `091`", "given twice"],
    );
    // A header declaring 10^12 cells.
    let list: Vec<String> = (0..1000).map(|i| format!("\"{i}\"")).collect();
    let list = list.join(",");
    let huge = format!("STUB=\"a\",\"b\";\nHEADING=\"c\",\"d\";\nVALUES(\"a\")={list};\nVALUES(\"b\")={list};\nVALUES(\"c\")={list};\nVALUES(\"d\")={list};\nDATA=\n1 2 3;\n");
    convert_fails(
        "huge.px",
        huge.as_bytes(),
        &["huge.px", "1000000000000 cells"],
    );
}

#[test]
fn broken_jsonstat_files_are_refused() {
    let doc = r#"{"version":"2.0","class":"dataset","id":["a","b"],"size":[2,2],
      "dimension":{"a":{"category":{"index":["x","y"]}},"b":{"category":{"index":["1","2"]}}},
      "value":[1,2,3,4]}"#;
    convert_fails(
        "d.json",
        doc.replace("[1,2,3,4]", "[1,2,3]").as_bytes(),
        &["d.json", "`value` has 3 entries", "promises 4"],
    );
    convert_fails(
        "d.json",
        doc.replace("[2,2]", "[2,-2]").as_bytes(),
        &["d.json", "size[1]", "value `-2`"],
    );
    convert_fails(
        "d.json",
        &doc.as_bytes()[..60],
        &["d.json", "not valid JSON"],
    );
}

#[test]
fn empty_and_random_files_are_refused() {
    for name in ["e.csv", "e.px", "e.json", "e.parquet"] {
        convert_fails(name, b"", &[name, "empty"]);
    }
    // Seeded pseudo-random bytes.
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let bytes: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    for name in ["r.csv", "r.px", "r.json", "r.parquet"] {
        convert_fails(name, &bytes, &[name]);
    }
}

#[test]
fn unknown_scenario_keys_are_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pop.csv"), GOOD_CSV).unwrap();
    std::fs::write(
        dir.path().join("s.toml"),
        "[scenario]\nname = \"t\"\nbase_year = 2024\nend_year = 2030\nhorizon = 3\n\n[population]\nfile = \"pop.csv\"\nfiel = \"x\"\n",
    )
    .unwrap();
    let o = kunta(&["validate", "s.toml"], dir.path());
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("line 5: `scenario.horizon`: unknown key"),
        "{err}"
    );
    assert!(
        err.contains("line 9: `population.fiel`: unknown key"),
        "{err}"
    );
    assert!(err.contains("2 problems found"), "{err}");
    let o = kunta(&["run", "s.toml"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("scenario.horizon"));
}

#[test]
fn validate_lists_every_input_problem() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pop.csv"), GOOD_CSV).unwrap();
    std::fs::write(
        dir.path().join("s.toml"),
        "[scenario]\nname = \"t\"\nbase_year = 2023\nend_year = 2030\n\n[population]\nfile = \"pop.csv\"\n\n[fertility]\nfile = \"missing.csv\"\n",
    )
    .unwrap();
    let o = kunta(&["validate", "s.toml"], dir.path());
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("`scenario.base_year`: 2023 is not a year of"),
        "{err}"
    );
    assert!(err.contains("missing.csv: cannot read"), "{err}");
    assert!(
        err.contains("[fertility] is given but [mortality] is not"),
        "{err}"
    );
    assert!(err.contains("3 problems found"), "{err}");
}

#[test]
fn run_example_prints_summary_and_writes_population() {
    let dir = tempfile::tempdir().unwrap();
    let o = kunta(&["run", "--format", "csv"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("Esimerkkilä"), "{out}");
    let table = std::fs::read_to_string(dir.path().join("kunta-out/population.csv")).unwrap();
    assert!(
        table.starts_with("scenario,area,sex,age,year,population\nEsimerkkilä,01,female,0,2024,")
    );
    // The base and its two variants, each with every cell.
    let base = table
        .lines()
        .filter(|l| l.starts_with("Esimerkkilä,"))
        .count();
    assert_eq!(base, 4 * 2 * 101 * 22);
    assert_eq!(table.lines().count(), 1 + 3 * base);
    for variant in ["Tehostettu tuki,", "Uusi koulu,"] {
        assert_eq!(
            table.lines().filter(|l| l.starts_with(variant)).count(),
            base
        );
    }
    assert!(dir.path().join("kunta-out/impact.csv").exists());
    for name in [
        "components.csv",
        "migration.csv",
        "summary.json",
        "manifest.json",
    ] {
        assert!(dir.path().join("kunta-out").join(name).exists(), "{name}");
    }

    let o = kunta(&["run", "--json", "--out", "j"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
    assert_eq!(v["base_year"], 2024);
    let areas_sum: f64 = v["areas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["population_last"].as_f64().unwrap())
        .sum();
    let total = v["population_last"].as_f64().unwrap();
    assert!((areas_sum - total).abs() < 1e-6 * total);
}

#[test]
fn example_writes_a_runnable_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let o = kunta(&["example", "--out", "ex"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let o = kunta(&["validate", "ex/scenario.toml"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let o = kunta(&["run", "ex/scenario.toml", "--out", "o"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(dir.path().join("o/population.parquet").exists());
}

#[test]
fn too_many_trajectories_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let o = kunta(&["example", "--out", "ex"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    // From the command line: refused at once, nothing written.
    let o = kunta(
        &[
            "run",
            "ex/scenario.toml",
            "--out",
            "o",
            "--trajectories",
            "4294967295",
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("--trajectories: 4294967295 trajectories cannot run")
            && e.contains("at most")
            && e.contains("8 GiB"),
        "{e}"
    );
    assert!(!dir.path().join("o").exists());
    // From the scenario file: `validate` refuses it too, naming the key.
    let toml = std::fs::read_to_string(dir.path().join("ex/scenario.toml")).unwrap();
    std::fs::write(
        dir.path().join("ex/scenario.toml"),
        format!("{toml}\n[uncertainty]\ntrajectories = 1000000000\n"),
    )
    .unwrap();
    let o = kunta(&["validate", "ex/scenario.toml"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("`uncertainty.trajectories`: 1000000000 trajectories cannot run"),
        "{e}"
    );
    // A number that fits runs.
    let o = kunta(
        &[
            "run",
            "ex/scenario.toml",
            "--out",
            "o",
            "--trajectories",
            "16",
            "--quiet",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Every file of a directory with its bytes, the manifest left out (it holds the
/// wall time).
fn files_of(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name() != "manifest.json")
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_killed_or_concurrent_run_leaves_the_output_whole() {
    let dir = tempfile::tempdir().unwrap();
    let run = |seed: &str, out: &str| {
        Command::new(env!("CARGO_BIN_EXE_kunta"))
            .args(["run", "--out", out, "--format", "csv", "--quiet", "--json"])
            .args(["--trajectories", "2000", "--seed", seed])
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    assert!(run("1", "o").wait().unwrap().success());
    let before = files_of(&dir.path().join("o"));
    // Killed at several moments of another run into the same directory: the
    // directory is the first run's, byte for byte, or wholly the second's.
    let started = std::time::Instant::now();
    assert!(run("2", "second").wait().unwrap().success());
    let full = started.elapsed().as_secs_f64();
    let second = files_of(&dir.path().join("second"));
    // The tables are written in the last part of a run: kill it there most often.
    for part in [0.3, 0.6, 0.75, 0.85, 0.9, 0.93, 0.96, 0.98, 0.99] {
        let ms = (part * full * 1000.0) as u64;
        let mut child = run("2", "o");
        std::thread::sleep(std::time::Duration::from_millis(ms));
        let _ = child.kill();
        let _ = child.wait();
        let now = files_of(&dir.path().join("o"));
        assert!(
            now == before || now == second,
            "killed after {ms} ms: a mixed set"
        );
    }
    // Two runs at once into one directory: both succeed, and the directory is one
    // run's whole output.
    let (mut a, mut b) = (run("1", "o"), run("2", "o"));
    assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
    let now = files_of(&dir.path().join("o"));
    assert!(
        now == before || now == second,
        "concurrent runs: a mixed set"
    );
    // The next run removes what the killed runs left beside the directory.
    assert!(run("1", "o").wait().unwrap().success());
    let left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("kunta-tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // A directory holding a user's own files is refused and left as it was.
    std::fs::write(dir.path().join("o/notes.txt"), "mine").unwrap();
    let o = kunta(&["run", "--out", "o", "--format", "csv"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("notes.txt"), "{}", stderr(&o));
    assert!(dir.path().join("o/notes.txt").exists());
    assert_eq!(files_of(&dir.path().join("o")).len(), before.len() + 1);
}

/// Runs kunta and fails the test if it has not finished within ten seconds.
fn kunta_within(args: &[&str], dir: &Path) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kunta"))
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > std::time::Duration::from_secs(10) {
            let _ = child.kill();
            panic!("kunta {args:?} hung");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn only_regular_files_are_read() {
    let dir = projection_dir();
    let fifo = dir.path().join("fifo.csv");
    let made = Command::new("mkfifo").arg(&fifo).status();
    let s = std::fs::read_to_string(dir.path().join("s.toml")).unwrap();
    // A pipe (where mkfifo exists), a directory and a device named as the population.
    let mut cases = vec!["dirpop.csv", "/dev/zero"];
    std::fs::create_dir(dir.path().join("dirpop.csv")).unwrap();
    if made.is_ok_and(|m| m.success()) {
        cases.push("fifo.csv");
    }
    for input in cases {
        std::fs::write(
            dir.path().join("bad.toml"),
            s.replace("file = \"pop.csv\"", &format!("file = \"{input}\"")),
        )
        .unwrap();
        for cmd in ["validate", "run"] {
            let o = kunta_within(
                &[cmd, "bad.toml", "--out", "o"][..if cmd == "run" { 4 } else { 2 }],
                dir.path(),
            );
            assert_eq!(o.status.code(), Some(1), "{cmd} {input}");
            let e = stderr(&o);
            assert!(
                e.contains(input.trim_start_matches('/'))
                    && e.contains("kunta reads its inputs from files"),
                "{cmd} {input}: {e}"
            );
        }
        let o = kunta_within(&["convert", input, "--out", "x.csv"], dir.path());
        assert_eq!(o.status.code(), Some(1), "convert {input}");
        assert!(
            stderr(&o).contains("kunta reads its inputs from files"),
            "{}",
            stderr(&o)
        );
    }
    assert!(!dir.path().join("o").exists() && !dir.path().join("x.csv").exists());
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let o = kunta(&["convert"], dir.path());
    assert_eq!(o.status.code(), Some(2));
    let o = kunta(&["frobnicate"], dir.path());
    assert_eq!(o.status.code(), Some(2));
    std::fs::write(dir.path().join("p.csv"), GOOD_CSV).unwrap();
    let o = kunta(
        &[
            "convert",
            "p.csv",
            "--out",
            "x.csv",
            "--encoding",
            "klingon",
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--encoding: unknown encoding `klingon`"),
        "{}",
        stderr(&o)
    );
    assert!(!dir.path().join("x.csv").exists());
    // Bad option values and choices of options, found by kunta rather than by the
    // parser, are usage errors too; each names its option.
    let cases: [(&[&str], &str); 5] = [
        (&["run", "--trajectories", "0"], "--trajectories"),
        (
            &["estimate", "p.csv", "--base-year", "2024", "--out", "e"],
            "give either --births or --fertility-rates",
        ),
        (
            &[
                "estimate",
                "p.csv",
                "--base-year",
                "2024",
                "--births",
                "b.csv",
                "--deaths",
                "d.csv",
                "--years",
                "0",
                "--out",
                "e",
            ],
            "--years must be at least 1",
        ),
        (
            &[
                "estimate",
                "p.csv",
                "--base-year",
                "2024",
                "--births",
                "b.csv",
                "--deaths",
                "d.csv",
                "--end-year",
                "2020",
                "--out",
                "e",
            ],
            "--end-year 2020 must come after the base year 2024",
        ),
        (
            &[
                "backtest",
                "p.csv",
                "--jump-off",
                "2020",
                "--horizon",
                "2",
                "--births",
                "b.csv",
                "--deaths",
                "d.csv",
                "--format",
                "xlsx",
            ],
            "--format xlsx",
        ),
    ];
    for (args, said) in cases {
        let o = kunta(args, dir.path());
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(said), "{args:?}: `{said}` not in {err}");
        assert!(!dir.path().join("e").exists() && !dir.path().join("kunta-out").exists());
    }
}

#[test]
fn variants_problems_and_notes_are_said_once_and_where() {
    let dir = tempfile::tempdir().unwrap();
    let o = kunta(&["example", "--out", "ex"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let ex = dir.path().join("ex");
    // A bad input row that the base scenario and both its variants read is one
    // problem, not three.
    let pop = std::fs::read_to_string(ex.join("population.csv")).unwrap();
    let mut lines: Vec<String> = pop.lines().map(str::to_string).collect();
    let good = lines[4].clone();
    lines[4] = format!("{},-40", good.rsplit_once(',').unwrap().0);
    std::fs::write(ex.join("population.csv"), lines.join("\n") + "\n").unwrap();
    let o = kunta(&["validate", "ex/scenario.toml"], dir.path());
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.matches("value `-40`").count(), 1, "{err}");
    assert!(err.contains("1 problem found"), "{err}");
    lines[4] = good;
    std::fs::write(ex.join("population.csv"), lines.join("\n") + "\n").unwrap();
    // A variant's new school opened after its catchment sends it pupils, and shares
    // from a year past the end: both said on stderr by `validate` and `run`, named
    // with the variant and the file, line and value.
    let toml = std::fs::read_to_string(ex.join("scenario.toml")).unwrap();
    assert!(toml.contains("opens = 2031"));
    std::fs::write(
        ex.join("scenario.toml"),
        toml.replace("opens = 2031", "opens = 2033"),
    )
    .unwrap();
    let catchment = std::fs::read_to_string(ex.join("catchment_uusi_koulu.csv")).unwrap();
    let last = catchment.lines().last().unwrap().to_string();
    let (head, _) = last.rsplit_once(',').unwrap();
    let (unit_area, _) = head.rsplit_once(',').unwrap();
    std::fs::write(
        ex.join("catchment_uusi_koulu.csv"),
        format!("{catchment}{unit_area},2099,1\n"),
    )
    .unwrap();
    for args in [
        &["validate", "ex/scenario.toml"][..],
        &["run", "ex/scenario.toml", "--out", "o"],
    ] {
        let o = kunta(args, dir.path());
        let err = stderr(&o);
        assert!(o.status.success(), "{args:?}: {err}");
        assert!(
            err.contains("note: variant `Uusi koulu`: unit `Keskustan uusi koulu` is not open in 2 of the years 2031–2032"),
            "{args:?}: {err}"
        );
        assert!(
            err.contains("catchment_uusi_koulu.csv: line ")
                && err.contains("column `year`, value `2099`: the shares from 2099 are never used"),
            "{args:?}: {err}"
        );
    }
    // A variant file's problems name the file; a mistyped service id is said as such.
    std::fs::write(
        ex.join("typo.toml"),
        "[[variant]]\nname = \"Typo\"\n[[variant.service]]\nid = \"basic_16\"\ncoverage = 0.9\n",
    )
    .unwrap();
    std::fs::write(
        ex.join("typo2.toml"),
        "[[variant]]\nname = \"Typo2\"\n[[variant.unit]]\nid = \"Keskustan koulu\"\ncapasity = 300\n",
    )
    .unwrap();
    let args = [
        "validate",
        "ex/scenario.toml",
        "--variant",
        "ex/typo.toml",
        "--variant",
        "ex/typo2.toml",
    ];
    let o = kunta(&args, dir.path());
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    for said in [
        "ex/typo.toml: variant `Typo`: service `basic_16` is not one of the scenario's (ecec,",
        "ex/typo2.toml: variant `Typo2`: `unit[Keskustan koulu].capasity`: unknown key",
    ] {
        assert!(err.contains(said), "`{said}` not in {err}");
    }
    // A unit's move is told against the variant's own baseline, here another variant
    // (which opens a school this one does not).
    std::fs::write(
        ex.join("v2.toml"),
        "[[variant]]\nname = \"Toinen\"\nbaseline = \"Uusi koulu\"\n[[variant.unit]]\nid = \"Harjun koulu\"\ncapacity = 1300\n",
    )
    .unwrap();
    std::fs::write(ex.join("scenario.toml"), &toml).unwrap();
    std::fs::write(ex.join("catchment_uusi_koulu.csv"), &catchment).unwrap();
    let args = [
        "run",
        "ex/scenario.toml",
        "--variant",
        "ex/v2.toml",
        "--out",
        "o2",
        "--quiet",
    ];
    let o = kunta(&args, dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("  Toinen: Keskustan koulu first short of places in ")
            && text.contains("(Uusi koulu: never)"),
        "{text}"
    );
    assert!(
        text.contains("  Uusi koulu: Keskustan koulu never short of places (base: "),
        "{text}"
    );
    // The scenario file and the variant file are inputs too, hashed, first in the
    // manifest's list.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("o2/manifest.json")).unwrap())
            .unwrap();
    let sha = |f: &str| kunta::io::sha256_hex(&std::fs::read(ex.join(f)).unwrap());
    for (i, f) in ["scenario.toml", "v2.toml"].iter().enumerate() {
        assert_eq!(manifest["inputs"][i]["path"], format!("ex/{f}"));
        assert_eq!(manifest["inputs"][i]["sha256"], sha(f).as_str());
    }
}

/// A small valid projection scenario: two areas, ages 0–15, two years.
fn projection_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let w = |name: &str, content: &str| std::fs::write(dir.path().join(name), content).unwrap();
    let mut pop = String::from("area,sex,age,year,population\n");
    let mut mort = String::from("sex,age,rate\n");
    for sex in ["male", "female"] {
        mort.push_str(&format!("{sex},s,1\n"));
        for age in 0..=15 {
            for area in ["A", "B"] {
                pop.push_str(&format!("{area},{sex},{age},2024,100\n"));
            }
            mort.push_str(&format!("{sex},{age},{}\n", 10 * (age + 1)));
        }
    }
    w("pop.csv", &pop);
    w("mort.csv", &mort);
    w("fert.csv", "age,rate\n13,100\n14,200\n");
    w(
        "in.csv",
        "area,sex,age,count\nA,male,1,5\nA,female,1,5\nB,male,1,5\nB,female,1,5\n",
    );
    w("total.csv", "area,total\nA,10\nB,20\n");
    w(
        "profile.csv",
        "sex,age,share\nmale,0,0.25\nmale,1,0.25\nfemale,0,0.25\nfemale,1,0.25\n",
    );
    w(
        "s.toml",
        "[scenario]\nname = \"t\"\nbase_year = 2024\nend_year = 2026\n\n[population]\nfile = \"pop.csv\"\n\n[fertility]\nfile = \"fert.csv\"\nscale = 1000\n\n[mortality]\nfile = \"mort.csv\"\nscale = 1000\n\n[[migration]]\nname = \"intl\"\ndirection = \"in\"\ncounts = \"in.csv\"\n\n[[migration]]\nname = \"dom\"\ndirection = \"out\"\ntotal = \"total.csv\"\nprofile = \"profile.csv\"\n",
    );
    dir
}

#[test]
fn a_small_projection_runs() {
    let dir = projection_dir();
    let o = kunta(&["validate", "s.toml"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let o = kunta(
        &["run", "s.toml", "--format", "csv", "--out", "o"],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let c = std::fs::read_to_string(dir.path().join("o/components.csv")).unwrap();
    // 2 areas × 2 sexes × 2 projected years.
    assert_eq!(c.lines().count(), 1 + 8);
    let m = std::fs::read_to_string(dir.path().join("o/migration.csv")).unwrap();
    assert!(m.starts_with("scenario,area,sex,year,flow,direction,count\nt,A,female,2025,intl,in,5\nt,A,female,2025,dom,out,5\n"), "{m}");
}

#[test]
fn rates_that_take_out_more_than_there_is_are_refused_by_validate() {
    let dir = projection_dir();
    let s = std::fs::read_to_string(dir.path().join("s.toml")).unwrap();
    let check = |toml: &str, expected: &[&str]| {
        std::fs::write(dir.path().join("bad.toml"), toml).unwrap();
        for cmd in ["validate", "run"] {
            let o = kunta(
                &[cmd, "bad.toml", "--out", "o"][..if cmd == "run" { 4 } else { 2 }],
                dir.path(),
            );
            assert_eq!(o.status.code(), Some(1), "{cmd}: {}", stderr(&o));
            for e in expected {
                assert!(stderr(&o).contains(e), "{cmd}: `{e}` not in {}", stderr(&o));
            }
        }
        assert!(!dir.path().join("o").exists());
    };
    // Mortality rising 200 % a year: q of 0.16 at 15 passes 1 in 2026.
    check(
        &s.replace(
            "scale = 1000\n\n[[migration]]",
            "scale = 1000\nimprovement = -2.0\n\n[[migration]]",
        ),
        &[
            "`mortality.improvement`",
            "-2",
            "age 11 in 2026",
            "at most 1",
        ],
    );
    // An out-rate of 0.9 at 15 on top of q = 0.16.
    let mut rates = String::from("sex,age,rate\n");
    for sex in ["male", "female"] {
        rates.push_str(&format!("{sex},s,0\n"));
        for age in 0..=15 {
            rates.push_str(&format!(
                "{sex},{age},{}\n",
                if age == 15 { 0.9 } else { 0.01 }
            ));
        }
    }
    std::fs::write(dir.path().join("rates.csv"), rates).unwrap();
    check(
        &format!(
            "{s}\n[[migration]]\nname = \"away\"\ndirection = \"out\"\nrates = \"rates.csv\"\n"
        ),
        &[
            "in 2025",
            "age 15",
            "plus the out-migration rates",
            "at most 1",
        ],
    );
}

#[test]
fn table_values_and_years_are_refused_where_they_are() {
    let dir = projection_dir();
    let d = dir.path();
    let toml = std::fs::read_to_string(d.join("s.toml")).unwrap();
    let fert = |text: &str| std::fs::write(d.join("fert.csv"), text).unwrap();
    // A value beyond a float is shown as written, not as `inf`.
    fert("age,rate\n13,100\n14,1e400\n");
    assert_refused(
        d,
        &["fert.csv", "line 3", "`rate`", "`1e400`", "too large"],
        "1e400",
    );
    // Years with a gap between them.
    fert("year,age,rate\n2024,13,100\n2024,14,200\n2026,13,100\n2026,14,200\n");
    assert_refused(d, &["fert.csv", "2024 and 2026", "years between"], "gap");
    // A stray row far above the others: the message shows the range it makes.
    fert("age,rate\n13,100\n14,200\n17,5\n");
    assert_refused(d, &["fert.csv", "age 15", "ages 13–17"], "stray row");
    // A broken table does not hide what the improvement does to mortality.
    fert("age,rate\n13,abc\n14,200\n");
    std::fs::write(
        d.join("s.toml"),
        toml.replace(
            "scale = 1000\n\n[[migration]]",
            "scale = 1000\nimprovement = -2.0\n\n[[migration]]",
        ),
    )
    .unwrap();
    assert_refused(
        d,
        &[
            "`abc`: not a number",
            "`mortality.improvement`: -2",
            "at most 1",
        ],
        "two problems",
    );
}

#[test]
fn a_net_flow_adds_its_signed_counts_and_is_reported_as_net() {
    let dir = projection_dir();
    let w = |name: &str, content: &str| std::fs::write(dir.path().join(name), content).unwrap();
    // Area A loses 30 of its 100 ten-year-olds of each sex, B gains 20; a loss of
    // 150 from A's 100 five-year-old women cannot happen in full.
    let mut net = String::from("area,sex,age,count\n");
    for area in ["A", "B"] {
        for sex in ["male", "female"] {
            for age in 0..=15 {
                let v = match (area, sex, age) {
                    ("A", _, 10) => -30,
                    ("B", _, 10) => 20,
                    ("A", "female", 5) => -150,
                    _ => 0,
                };
                net.push_str(&format!("{area},{sex},{age},{v}\n"));
            }
        }
    }
    w("net.csv", &net);
    let s = std::fs::read_to_string(dir.path().join("s.toml")).unwrap();
    w(
        "s.toml",
        &format!(
            "{s}\n[[migration]]\nname = \"residual\"\ndirection = \"net\"\ncounts = \"net.csv\"\n"
        ),
    );
    let o = kunta(&["validate", "s.toml"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let o = kunta(
        &["run", "s.toml", "--format", "csv", "--out", "o"],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let read = |name: &str| std::fs::read_to_string(dir.path().join("o").join(name)).unwrap();
    let m = read("migration.csv");
    for row in [
        "t,A,female,2025,residual,net,-180",
        "t,A,male,2025,residual,net,-30",
        "t,B,male,2025,residual,net,20",
    ] {
        assert!(m.contains(&format!("{row}\n")), "{row} not in {m}");
    }
    // Components: in and out hold the in- and out-flows only; net_migration is
    // in − out + net; the balance holds with the unmet part of the net loss.
    let comps: Vec<Vec<String>> = read("components.csv")
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    let pop: Vec<Vec<String>> = read("population.csv")
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    let total = |area: &str, sex: &str, year: &str| -> f64 {
        pop.iter()
            .filter(|r| r[1] == area && r[2] == sex && r[4] == year)
            .map(|r| r[5].parse::<f64>().unwrap())
            .sum()
    };
    let f = |r: &Vec<String>, i: usize| r[i].parse::<f64>().unwrap();
    let a_f_2025 = comps
        .iter()
        .find(|r| r[1] == "A" && r[2] == "female" && r[3] == "2025")
        .unwrap();
    // in 5 (intl) and out 5 (dom: 10 × 0.25 × 2 ages) are the other flows.
    assert_eq!((f(a_f_2025, 6), f(a_f_2025, 7)), (5.0, 5.0));
    assert_eq!(f(a_f_2025, 8), 5.0 - 5.0 - 180.0);
    // 150 of the 5-year-olds could not leave: 100 did, less this year's deaths.
    assert!(f(a_f_2025, 9) > 50.0, "unmet {}", f(a_f_2025, 9));
    // One warning for area A, with its total and worst year; none for B.
    let manifest: serde_json::Value = serde_json::from_str(&read("manifest.json")).unwrap();
    let unmet: Vec<&str> = manifest["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w.as_str())
        .filter(|w| w.contains("unmet out-migration"))
        .collect();
    assert_eq!(unmet.len(), 1, "{unmet:?}");
    let unmet_in = |year: &str| -> f64 {
        comps
            .iter()
            .filter(|r| r[1] == "A" && r[3] == year)
            .map(|r| f(r, 9))
            .sum()
    };
    let (u25, u26) = (unmet_in("2025"), unmet_in("2026"));
    let worst = if u26 > u25 {
        ("2026", u26)
    } else {
        ("2025", u25)
    };
    let expected = format!(
        "unmet out-migration of {:.1} persons in area `A` (most in {}: {:.1})",
        u25 + u26,
        worst.0,
        worst.1
    );
    assert!(unmet[0].starts_with(&expected), "{unmet:?} vs {expected}");
    for r in &comps {
        let (before, after) = (
            total(&r[1], &r[2], &(f(r, 3) as i32 - 1).to_string()),
            total(&r[1], &r[2], &r[3]),
        );
        let expected = before + f(r, 4) - f(r, 5) + f(r, 8) + f(r, 9);
        assert!(
            (after - expected).abs() < 1e-9 * after,
            "{r:?}: {after} vs {expected}"
        );
    }
    // A net flow takes signed counts only; other flows' counts may not be negative.
    let s = std::fs::read_to_string(dir.path().join("s.toml")).unwrap();
    w(
        "s.toml",
        &s.replace("counts = \"net.csv\"", "rates = \"net.csv\""),
    );
    let o = kunta(&["validate", "s.toml"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("rates are for out-migration only"),
        "{}",
        stderr(&o)
    );
    w(
        "s.toml",
        &s.replace("direction = \"net\"", "direction = \"in\""),
    );
    let o = kunta(&["validate", "s.toml"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("net.csv") && stderr(&o).contains("must be a non-negative number"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn bad_projection_inputs_are_all_listed() {
    let dir = projection_dir();
    let w = |name: &str, content: &str| std::fs::write(dir.path().join(name), content).unwrap();
    // A probability of dying above 1 once scaled (the scale is forgotten).
    let s = std::fs::read_to_string(dir.path().join("s.toml")).unwrap();
    w(
        "s.toml",
        &s.replace("file = \"mort.csv\"\nscale = 1000", "file = \"mort.csv\""),
    );
    // A mother's age outside 10–55.
    w("fert.csv", "age,rate\n9,100\n10,200\n");
    // A profile that does not sum to 1.
    w(
        "profile.csv",
        "sex,age,share\nmale,0,0.25\nmale,1,0.25\nfemale,0,0.25\nfemale,1,0.2\n",
    );
    // An area with no population.
    w("in.csv", "area,sex,age,count\nA,male,1,5\nZ,female,1,5\n");
    // A missing file.
    std::fs::remove_file(dir.path().join("total.csv")).unwrap();
    let o = kunta(&["validate", "s.toml"], dir.path());
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    for expected in [
        "mort.csv: line 3, column `rate`, value `10`: 10 after scaling (scale 1) is a probability of dying above 1 (per 1000? then give `scale = 1000`)",
        "fert.csv: fertility is given for mothers aged 9–10",
        "profile.csv: the profile's shares for area `A` sum to 0.95",
        "in.csv: area `Z` has no population",
        "total.csv: cannot read",
    ] {
        assert!(err.contains(expected), "`{expected}` not in:\n{err}");
    }
    let o = kunta(&["run", "s.toml"], dir.path());
    assert_eq!(o.status.code(), Some(1));
}

/// The projection scenario with areas A and B aligned to parent P, whose control is
/// `150 + age` persons of each sex in 2025.
fn aligned_dir() -> tempfile::TempDir {
    let dir = projection_dir();
    let w = |name: &str, content: &str| std::fs::write(dir.path().join(name), content).unwrap();
    w("parents.csv", "area,parent\nA,P\nB,P\n");
    let mut control = String::from("area,sex,age,year,population\n");
    for sex in ["male", "female"] {
        for age in 0..=15 {
            control.push_str(&format!("P,{sex},{age},2025,{}\n", 150 + age));
        }
    }
    w("control.csv", &control);
    let s = std::fs::read_to_string(dir.path().join("s.toml")).unwrap();
    w(
        "s.toml",
        &format!("{s}\n[alignment]\nparents = \"parents.csv\"\ncontrol = \"control.csv\"\n"),
    );
    dir
}

/// The areas of a population table (CSV; the value the sixth column) add up to the
/// control of [`aligned_dir`] in 2025, for every sex and age (rows of both sexes or
/// all ages, as `population_quantiles` has, left out).
fn assert_meets_control(table: &str) {
    let mut sums = std::collections::HashMap::new();
    for l in table.lines().skip(1) {
        let f: Vec<&str> = l.split(',').collect();
        if f[4] == "2025" && f[2] != "all" && f[3] != "all" {
            *sums
                .entry((f[2].to_string(), f[3].parse::<u32>().unwrap()))
                .or_insert(0.0) += f[5].parse::<f64>().unwrap();
        }
    }
    assert_eq!(sums.len(), 2 * 16);
    for ((_, age), v) in &sums {
        let target = 150.0 + f64::from(*age);
        assert!((v - target).abs() < 1e-9 * target, "age {age}: {v}");
    }
}

#[test]
fn areas_align_to_control_totals() {
    let dir = aligned_dir();
    let o = kunta(
        &["run", "s.toml", "--format", "csv", "--out", "o"],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_meets_control(&std::fs::read_to_string(dir.path().join("o/population.csv")).unwrap());
    let factors = std::fs::read_to_string(dir.path().join("o/alignment.csv")).unwrap();
    assert!(factors.starts_with("scenario,parent,sex,age,year,factor\nt,P,female,0,2025,"));
    assert_eq!(factors.lines().count(), 1 + 2 * 16);
}

#[test]
fn aligned_areas_run_trajectories_aligned_to_the_same_controls() {
    let dir = aligned_dir();
    // Single years of age in population_quantiles, to compare with the control.
    let s = std::fs::read_to_string(dir.path().join("s.toml")).unwrap();
    let s = format!("{s}\n[uncertainty]\nage_groups = \"single\"\n");
    std::fs::write(dir.path().join("s.toml"), s).unwrap();
    let o = kunta(
        &[
            "run",
            "s.toml",
            "--format",
            "csv",
            "--out",
            "o",
            "--trajectories",
            "40",
            "--quiet",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let read = |name: &str| std::fs::read_to_string(dir.path().join("o").join(name)).unwrap();
    // Every trajectory meets the control, so the areas' means add up to it.
    assert_meets_control(&read("population_quantiles.csv"));
    // The factors' summaries have the alignment table's keys, row for row.
    let det = read("alignment.csv");
    let q = read("alignment_quantiles.csv");
    assert!(q.starts_with("scenario,parent,sex,age,year,mean,p05,p25,p50,p75,p95\n"));
    let keys = |t: &str| -> Vec<String> {
        t.lines()
            .skip(1)
            .map(|l| l.split(',').take(5).collect::<Vec<_>>().join(","))
            .collect()
    };
    assert_eq!(keys(&q), keys(&det));
    for l in q.lines().skip(1) {
        let v: Vec<f64> = l.split(',').skip(5).map(|x| x.parse().unwrap()).collect();
        assert!(v[1..].windows(2).all(|w| w[0] <= w[1]), "{l}");
        assert!(v[1] < v[5], "the factors vary over the trajectories: {l}");
    }
}

#[test]
fn a_published_forecast_is_used_as_given_and_extended() {
    let dir = projection_dir();
    // Add a forecast year 2025 to the population table: 7 persons in every cell.
    let mut pop = std::fs::read_to_string(dir.path().join("pop.csv")).unwrap();
    for sex in ["male", "female"] {
        for age in 0..=15 {
            for area in ["A", "B"] {
                pop.push_str(&format!("{area},{sex},{age},2025,7\n"));
            }
        }
    }
    std::fs::write(dir.path().join("pop.csv"), pop).unwrap();
    let o = kunta(
        &["run", "s.toml", "--format", "csv", "--out", "o"],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let table = std::fs::read_to_string(dir.path().join("o/population.csv")).unwrap();
    let rows: Vec<Vec<&str>> = table
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    let of_year = |y: &str| {
        rows.iter()
            .filter(|r| r[4] == y)
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(of_year("2025").len(), 2 * 2 * 16);
    assert!(
        of_year("2025").iter().all(|r| r[5] == "7"),
        "2025 is taken as given"
    );
    // 2026 is projected from the given 2025: survivors, births and movers change it.
    assert_eq!(of_year("2026").len(), 2 * 2 * 16);
    assert!(of_year("2026").iter().any(|r| r[5] != "7"));
    let comps = std::fs::read_to_string(dir.path().join("o/components.csv")).unwrap();
    assert!(
        comps
            .lines()
            .skip(1)
            .all(|l| l.split(',').nth(3) == Some("2026")),
        "{comps}"
    );
    assert_eq!(comps.lines().count(), 1 + 4);
}

/// A published forecast for every year (2024–2026) and no rates: two areas, ages
/// 0–15, `10 + age + year offset` persons in every cell of area A, twice that in B.
fn forecast_dir(services: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let w = |name: &str, content: &str| std::fs::write(dir.path().join(name), content).unwrap();
    let mut pop = String::from("area,sex,age,year,population\n");
    for year in 2024..=2026 {
        for sex in ["1", "2"] {
            for age in 0..=15 {
                let v = 10 + age + (year - 2024);
                pop.push_str(&format!("A,{sex},{age},{year},{v}\n"));
                pop.push_str(&format!("B,{sex},{age},{year},{}\n", 2 * v));
            }
        }
    }
    w("pop.csv", &pop);
    w("cov.csv", "age,coverage\n7,0.5\n8,1.0\n");
    w(
        "s.toml",
        &format!("[scenario]\nname = \"f\"\nbase_year = 2024\nend_year = 2026\ndiscount_rate = 0.05\n\n[population]\nfile = \"pop.csv\"\n{services}"),
    );
    dir
}

const SCHOOL: &str = r#"
[[service]]
id = "school"
name = "Koulu"
unit = "pupil"
ages = [7, 8]
coverage = "cov.csv"
floor_area_per_unit = 10.0
  [[service.segment]]
  id = "general"
  share = 0.75
  max_group_size = 20
  [[service.segment]]
  id = "special"
  share = 0.25
  max_group_size = 8
  support_hours_per_unit = 2.0
  [service.teaching]
  lesson_hours = [20, 22]
  teaching_obligation = 24
  [service.cost]
  per_unit = 1000.0
  per_m2 = 100.0
  per_fte = 60000.0
  overhead = 0.1
  growth = 0.02
"#;

/// Rows of a CSV table as vectors of fields.
fn rows(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

#[test]
fn demand_resources_and_costs_from_a_published_forecast() {
    let dir = forecast_dir(SCHOOL);
    let o = kunta(&["validate", "s.toml"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let o = kunta(
        &["run", "s.toml", "--format", "csv", "--out", "o", "--json"],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let d = rows(&dir.path().join("o/demand.csv"));
    assert_eq!(
        d[0],
        ["scenario", "service", "segment", "area", "year", "demand"]
    );
    // Area A, 2025: ages 7 and 8 have 18 and 19 persons of each sex.
    let pupils_a_2025 = 2.0 * (0.5 * 18.0 + 19.0);
    let get = |seg: &str, area: &str, year: &str| -> f64 {
        d.iter()
            .find(|r| r[2] == seg && r[3] == area && r[4] == year)
            .map(|r| r[5].parse().unwrap())
            .unwrap()
    };
    assert!((get("general", "A", "2025") - 0.75 * pupils_a_2025).abs() < 1e-9);
    assert!((get("special", "A", "2025") - 0.25 * pupils_a_2025).abs() < 1e-9);
    assert_eq!(d.len(), 1 + 2 * 2 * 3);

    // Groups in A, 2025: general 0.75·18 = 13.5 → 1 and 0.75·38 = 28.5 → 2;
    // special 0.25·18 = 4.5 → 1 and 9.5 → 2.
    let r = rows(&dir.path().join("o/resources.csv"));
    assert_eq!(
        r[0],
        ["scenario", "service", "area", "year", "resource", "value"]
    );
    let res = |name: &str| -> f64 {
        r.iter()
            .find(|x| x[2] == "A" && x[3] == "2025" && x[4] == name)
            .map(|x| x[5].parse().unwrap())
            .unwrap()
    };
    assert_eq!(res("groups"), 6.0);
    let hours = 20.0 + 2.0 * 22.0 + 20.0 + 2.0 * 22.0;
    assert!((res("weekly_hours") - hours).abs() < 1e-9);
    let fte = (hours + 2.0 * 0.25 * pupils_a_2025) / 24.0;
    assert!((res("teacher_fte") - fte).abs() < 1e-9);
    assert!((res("floor_area_m2") - 10.0 * pupils_a_2025).abs() < 1e-9);
    assert!(!r.iter().any(|x| x[4] == "staff_fte"));

    let c = rows(&dir.path().join("o/costs.csv"));
    assert_eq!(
        c[0],
        [
            "scenario",
            "service",
            "area",
            "year",
            "component",
            "cost_eur",
            "unit_cost_eur",
            "discounted_cost_eur"
        ]
    );
    let cost = |comp: &str| -> (f64, f64, f64) {
        c.iter()
            .find(|x| x[2] == "A" && x[3] == "2025" && x[4] == comp)
            .map(|x| {
                (
                    x[5].parse().unwrap(),
                    x[6].parse().unwrap(),
                    x[7].parse().unwrap(),
                )
            })
            .unwrap()
    };
    let g = 1.02;
    let direct = (1000.0 * pupils_a_2025 + 100.0 * 10.0 * pupils_a_2025 + 60000.0 * fte) * g;
    let total = direct * 1.1;
    let (t, unit, disc) = cost("total");
    assert!((t - total).abs() < 1e-6, "{t} vs {total}");
    assert!((unit - total / pupils_a_2025).abs() < 1e-9);
    assert!((disc - total / 1.05).abs() < 1e-6);
    assert!((cost("overhead").0 - 0.1 * direct).abs() < 1e-6);

    // The summary: the service's demand in the first and last year, and its present
    // value, which is the sum of the discounted totals.
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
    let s = &v["services"][0];
    assert_eq!(s["service"], "school");
    let pupils = |year: i64| -> f64 {
        let p = |age: i64| 10 + age + (year - 2024);
        3.0 * 2.0 * (0.5 * p(7) as f64 + p(8) as f64)
    };
    assert!((s["demand_first"].as_f64().unwrap() - pupils(2024)).abs() < 1e-9);
    assert!((s["demand_last"].as_f64().unwrap() - pupils(2026)).abs() < 1e-9);
    let pv: f64 = c
        .iter()
        .skip(1)
        .filter(|x| x[4] == "total")
        .map(|x| x[7].parse::<f64>().unwrap())
        .sum();
    assert!((s["present_value_eur"].as_f64().unwrap() - pv).abs() < 1e-6 * pv);
}

#[test]
fn variants_run_beside_the_base_with_their_impact() {
    let variants = r#"
[[variant]]
name = "Kalliimpi"
description = "100 euros more a pupil"
  [[variant.service]]
  id = "school"
    [variant.service.cost]
    per_unit = 1100.0

[[variant]]
name = "Takaisin"
baseline = "Kalliimpi"
  [[variant.service]]
  id = "school"
    [variant.service.cost]
    per_unit = 1000.0
"#;
    let dir = forecast_dir(&format!("{SCHOOL}{variants}"));
    let o = kunta(&["validate", "s.toml"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let o = kunta(
        &["run", "s.toml", "--format", "csv", "--out", "o", "--json"],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // Every table holds every scenario's rows.
    let d = rows(&dir.path().join("o/demand.csv"));
    for name in ["f", "Kalliimpi", "Takaisin"] {
        assert_eq!(
            d.iter().filter(|r| r[0] == name).count(),
            2 * 2 * 3,
            "{name}"
        );
    }
    // The difference by hand: 100 € a pupil, grown 2 % a year, with 10 % overhead.
    let pupils = |year: i32| -> f64 {
        let p = |age: i32| f64::from(10 + age + (year - 2024));
        3.0 * 2.0 * (0.5 * p(7) + p(8))
    };
    let diff = |k: i32| 100.0 * pupils(2024 + k) * 1.02f64.powi(k) * 1.1;
    let imp = rows(&dir.path().join("o/impact.csv"));
    assert_eq!(
        imp[0],
        [
            "scenario",
            "baseline",
            "service",
            "year",
            "cost_diff_eur",
            "cumulative_eur",
            "discounted_cumulative_eur"
        ]
    );
    let get = |v: &str, service: &str, year: &str, col: usize| -> f64 {
        imp.iter()
            .find(|r| r[0] == v && r[2] == service && r[3] == year)
            .map(|r| r[col].parse().unwrap())
            .unwrap()
    };
    let (mut cum, mut disc) = (0.0, 0.0);
    for k in 0..3 {
        let y = (2024 + k).to_string();
        cum += diff(k);
        disc += diff(k) / 1.05f64.powi(k);
        for service in ["school", "all"] {
            assert!((get("Kalliimpi", service, &y, 4) - diff(k)).abs() < 1e-6);
            assert!((get("Kalliimpi", service, &y, 5) - cum).abs() < 1e-6);
            assert!((get("Kalliimpi", service, &y, 6) - disc).abs() < 1e-6);
            // Against its own baseline, the second variant undoes the first.
            assert!((get("Takaisin", service, &y, 4) + diff(k)).abs() < 1e-6);
        }
        let row = imp.iter().find(|r| r[0] == "Takaisin").unwrap();
        assert_eq!(row[1], "Kalliimpi");
    }
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
    let list = v["variants"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["name"], "Kalliimpi");
    assert_eq!(list[0]["baseline"], "f");
    assert!((list[0]["cost_diff_first_eur"].as_f64().unwrap() - diff(0)).abs() < 1e-6);
    assert!((list[0]["cost_diff_last_eur"].as_f64().unwrap() - diff(2)).abs() < 1e-6);
    assert!((list[0]["present_value_diff_eur"].as_f64().unwrap() - disc).abs() < 1e-6);
    // Always dearer: it never pays back; the other never costs more: the base year.
    assert!(list[0]["break_even_year"].is_null());
    assert_eq!(list[1]["break_even_year"], 2024);
    assert_eq!(list[1]["summary"]["scenario"], "Takaisin");

    // The same variants from a file given with --variant.
    std::fs::write(dir.path().join("v.toml"), variants).unwrap();
    std::fs::write(
        dir.path().join("s.toml"),
        std::fs::read_to_string(dir.path().join("s.toml"))
            .unwrap()
            .replace(variants, ""),
    )
    .unwrap();
    let o = kunta(
        &[
            "run",
            "s.toml",
            "--variant",
            "v.toml",
            "--format",
            "csv",
            "--out",
            "o2",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(dir.path().join("o/impact.csv")).unwrap(),
        std::fs::read(dir.path().join("o2/impact.csv")).unwrap()
    );
}

#[test]
fn a_cohort_effect_changes_only_the_exposed_cohorts() {
    let outcome = r#"
[[service]]
id = "later"
ages = [10, 12]
coverage = 0.1
  [service.cost]
  per_unit = 1000.0

[[variant]]
name = "Tuki"
  [[variant.effect]]
  exposure = { service = "school", years = [2024, 2026] }
  outcome = "later"
  factor = 0.5
"#;
    let dir = forecast_dir(&format!("{SCHOOL}{outcome}"));
    let o = kunta(
        &["run", "s.toml", "--format", "csv", "--out", "o"],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let d = rows(&dir.path().join("o/demand.csv"));
    let total = |scenario: &str, year: &str| -> f64 {
        d.iter()
            .filter(|r| r[0] == scenario && r[1] == "later" && r[4] == year)
            .map(|r| r[5].parse::<f64>().unwrap())
            .sum()
    };
    // Only the cohort aged 10 in 2026 used the school (ages 7–8) during 2024–2026,
    // for one year of two (aged 8 in 2024): its coverage is 0.1 · (1 − 0.5 · 1/2).
    // It has 22 persons a sex in area A and 44 in B.
    for y in ["2024", "2025"] {
        assert!((total("Tuki", y) - total("f", y)).abs() < 1e-9, "{y}");
    }
    let diff = total("Tuki", "2026") - total("f", "2026");
    assert!(
        (diff + 0.1 * 0.25 * 2.0 * (22.0 + 44.0)).abs() < 1e-9,
        "{diff}"
    );
    // The impact is that demand times its cost a person.
    let imp = rows(&dir.path().join("o/impact.csv"));
    let r = imp
        .iter()
        .find(|r| r[2] == "later" && r[3] == "2026")
        .unwrap();
    assert!((r[4].parse::<f64>().unwrap() - 1000.0 * diff).abs() < 1e-6);
}

#[test]
fn variants_under_uncertainty_compare_trajectory_by_trajectory() {
    let dir = tempfile::tempdir().unwrap();
    let o = kunta(&["example", "--out", "ex"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::write(
        dir.path().join("v.toml"),
        "[[variant]]\nname = \"Sama\"\n\n[[variant]]\nname = \"Kalliimpi\"\n  [[variant.service]]\n  id = \"basic_1_6\"\n    [variant.service.cost]\n    per_unit = 5500.0\n",
    )
    .unwrap();
    let quantiles = |out: &str| -> Vec<Vec<String>> {
        let o = kunta(
            &[
                "run",
                "ex/scenario.toml",
                "--variant",
                "v.toml",
                "--trajectories",
                "40",
                "--format",
                "csv",
                "--out",
                out,
            ],
            dir.path(),
        );
        assert!(o.status.success(), "{}", stderr(&o));
        // The summary gives each variant's chance of paying back beside its spread.
        let text = String::from_utf8_lossy(&o.stdout).to_string();
        assert!(text.contains("P(pays back by 2045)"), "{text}");
        let chance = |name: &str| {
            text.lines()
                .find(|l| l.starts_with(name) && l.ends_with('%'))
                .map(str::to_string)
                .unwrap_or_default()
        };
        assert!(chance("Sama").ends_with(" 100 %"), "{text}");
        assert!(chance("Kalliimpi").ends_with(" 0 %"), "{text}");
        rows(&dir.path().join(out).join("impact_quantiles.csv"))
    };
    let q = quantiles("o");
    // A unit's own costs do not depend on the population: every statistic of them is
    // the deterministic cost, row for row.
    let uc = rows(&dir.path().join("o/unit_costs.csv"));
    let ucq = rows(&dir.path().join("o/unit_costs_quantiles.csv"));
    assert_eq!(ucq[0][..5], uc[0][..5]);
    assert_eq!(&ucq[0][5..], ["mean", "p05", "p25", "p50", "p75", "p95"]);
    assert_eq!(uc.len(), ucq.len());
    assert!(uc.len() > 1);
    for (d, r) in uc.iter().zip(&ucq).skip(1) {
        assert_eq!(d[..5], r[..5]);
        for v in &r[5..] {
            assert_eq!(v, &d[5], "{r:?} vs {d:?}");
        }
    }
    assert_eq!(
        q[0],
        [
            "scenario",
            "baseline",
            "service",
            "year",
            "quantity",
            "mean",
            "p05",
            "p25",
            "p50",
            "p75",
            "p95",
            "p_pays_back"
        ]
    );
    // A variant identical to its base: exactly 0 in every trajectory, so every
    // statistic is 0 and it "pays back" (never costs more) in all of them.
    let same: Vec<&Vec<String>> = q.iter().filter(|r| r[0] == "Sama").collect();
    assert!(!same.is_empty());
    for r in &same {
        for v in &r[5..11] {
            assert_eq!(v.parse::<f64>().unwrap(), 0.0, "{r:?}");
        }
        assert_eq!(r[11], "1");
    }
    // The dearer variant differs by a spread, and never pays back.
    let dear = |q: &[Vec<String>], year: &str, quantity: &str, col: usize| -> f64 {
        q.iter()
            .find(|r| r[0] == "Kalliimpi" && r[2] == "all" && r[3] == year && r[4] == quantity)
            .map(|r| r[col].parse().unwrap())
            .unwrap()
    };
    assert!(dear(&q, "2045", "cost_diff_eur", 6) < dear(&q, "2045", "cost_diff_eur", 10));
    assert_eq!(dear(&q, "2045", "discounted_cumulative_eur", 11), 0.0);

    // Without spreads every statistic is the deterministic impact.
    let toml = std::fs::read_to_string(dir.path().join("ex/scenario.toml")).unwrap();
    std::fs::write(
        dir.path().join("ex/scenario.toml"),
        format!(
            "{toml}\n[uncertainty]\nfertility_sd = 0.0\nmortality_sd = 0.0\nmigration_sd = 0.0\n"
        ),
    )
    .unwrap();
    let q = quantiles("z");
    let imp = rows(&dir.path().join("z/impact.csv"));
    for r in imp.iter().skip(1).filter(|r| r[0] == "Kalliimpi") {
        for (col, quantity) in [
            (4, "cost_diff_eur"),
            (5, "cumulative_eur"),
            (6, "discounted_cumulative_eur"),
        ] {
            let want: f64 = r[col].parse().unwrap();
            let got = q
                .iter()
                .find(|x| x[0] == r[0] && x[2] == r[2] && x[3] == r[3] && x[4] == quantity)
                .unwrap();
            for v in &got[5..11] {
                let v: f64 = v.parse().unwrap();
                assert!(
                    (v - want).abs() <= 1e-9 * want.abs().max(1.0),
                    "{got:?} vs {want}"
                );
            }
        }
    }
}

#[test]
fn bad_variants_are_refused_with_their_name() {
    let cases: [(&str, &[&str]); 6] = [
        (
            "[[variant]]\nname = \"x\"\n[[variant.service]]\nid = \"school\"\nagse = [7, 9]\n",
            &["s.toml: variant `x`", "`service[school].agse`", "unknown key"],
        ),
        (
            "[[variant]]\nname = \"x\"\n[[variant.service]]\nid = \"nope\"\nremove = true\n",
            &["variant `x`", "removes `nope`"],
        ),
        (
            "[[variant]]\nname = \"x\"\nbaseline = \"y\"\n",
            &["variant `x`", "`baseline` `y`"],
        ),
        (
            "[[variant]]\nname = \"x\"\n[variant.scenario]\nend_year = 2030\n",
            &["variant `x`", "`scenario.end_year` cannot change"],
        ),
        (
            "[[variant]]\nname = \"f\"\n",
            &["variant `f`", "name is taken"],
        ),
        (
            "[[variant]]\nname = \"x\"\n[[variant.service]]\nid = \"school\"\n[variant.service.cost]\nper_unit = -5.0\n",
            &["variant `x`", "service[school].cost.per_unit", "-5"],
        ),
    ];
    for (variant, expected) in cases {
        let dir = forecast_dir(&format!("{SCHOOL}{variant}"));
        assert_refused(dir.path(), expected, variant);
    }
}

/// `validate s.toml` and `run s.toml --out o` in `dir` both exit with 1 and an error
/// holding every `expected` piece, without a panic and without writing `o`; `case`
/// names the case in failures.
fn assert_refused(dir: &Path, expected: &[&str], case: &str) {
    for cmd in ["validate", "run"] {
        let o = kunta(
            &[cmd, "s.toml", "--out", "o"][..if cmd == "run" { 4 } else { 2 }],
            dir,
        );
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{case}: {err}");
        for e in expected {
            assert!(err.contains(e), "{cmd} {case}: `{e}` not in: {err}");
        }
        assert!(!err.contains("panicked"), "{err}");
        assert!(!dir.join("o").exists(), "nothing written");
    }
}

#[test]
fn bad_service_definitions_name_the_service_and_key() {
    let cases: [(&str, &str, &[&str]); 8] = [
        (
            "share = 0.25\n  max_group_size = 8",
            "share = 0.20\n  max_group_size = 8",
            &["service[school].segment.share", "0.95"],
        ),
        (
            "ages = [7, 8]",
            "ages = [15, 16]",
            &["service[school].ages", "oldest age 15"],
        ),
        (
            "per_m2 = 100.0",
            "per_m2 = -100.0",
            &["service[school].cost.per_m2", "-100", "negative"],
        ),
        (
            "lesson_hours = [20, 22]",
            "lesson_hours = [20, 22, 24]",
            &[
                "service[school].teaching.lesson_hours",
                "3 values for 2 grades",
            ],
        ),
        (
            "coverage = \"cov.csv\"",
            "coverage = 1.2",
            &["service[school].coverage", "1.2"],
        ),
        (
            "coverage = \"cov.csv\"",
            "coverage = \"missing.csv\"",
            &["missing.csv"],
        ),
        (
            "  max_group_size = 8\n",
            "\n",
            &["service[school].segment[special].max_group_size"],
        ),
        (
            "coverage = \"cov.csv\"",
            "coverage = { from = [2030, 0.9], to = [2025, 0.95] }",
            &[
                "service[school].coverage",
                "from = [2030, 0.9]",
                "first year is after its last",
            ],
        ),
    ];
    for (from, to, expected) in cases {
        assert!(SCHOOL.contains(from), "{from}");
        let dir = forecast_dir(&SCHOOL.replace(from, to));
        assert_refused(dir.path(), expected, to);
    }
    // A coverage table with a value above 1 names the file and the key.
    let dir = forecast_dir(SCHOOL);
    std::fs::write(dir.path().join("cov.csv"), "age,coverage\n7,0.5\n8,1.5\n").unwrap();
    let o = kunta(&["validate", "s.toml"], dir.path());
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("service[school].coverage") && err.contains("cov.csv"),
        "{err}"
    );
}

#[test]
fn the_example_has_services_with_their_tables() {
    let dir = tempfile::tempdir().unwrap();
    let o = kunta(&["run", "--out", "o"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for name in [
        "Varhaiskasvatus",
        "Perusopetus, vuosiluokat 1–6",
        "Ympärivuorokautinen hoiva",
        "all services",
    ] {
        assert!(out.contains(name), "`{name}` not in: {out}");
    }
    for t in ["demand", "resources", "costs"] {
        assert!(dir.path().join(format!("o/{t}.parquet")).exists(), "{t}");
    }
}

/// Runs the example with trajectories in `dir/out` with the given threads, seed and
/// `KUNTA_SIMD` setting; returns every file's bytes but the manifest (which holds the
/// wall time).
fn mc_run(dir: &Path, out: &str, threads: &str, seed: &str, simd: &str) -> Vec<(String, Vec<u8>)> {
    let o = Command::new(env!("CARGO_BIN_EXE_kunta"))
        .args([
            "run",
            "--trajectories",
            "120",
            "--seed",
            seed,
            "--out",
            out,
            "--format",
            "csv",
        ])
        .env("RAYON_NUM_THREADS", threads)
        .env("KUNTA_SIMD", simd)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    files_of(&dir.join(out))
}

#[test]
fn trajectories_are_identical_whatever_the_threads_and_processor() {
    let dir = tempfile::tempdir().unwrap();
    let one = mc_run(dir.path(), "one", "1", "5", "on");
    let two = mc_run(dir.path(), "two", "2", "5", "on");
    // The plain SSE2 copy of the kernels, as on a processor without AVX2, and the
    // AVX2 copy, as on one without AVX-512. On a processor without AVX-512, `on` runs
    // the AVX2 copy too and the last comparison holds trivially; the AVX-512 copy is
    // compared where the machine has it.
    let plain = mc_run(dir.path(), "plain", "2", "5", "off");
    let avx2 = mc_run(dir.path(), "avx2", "2", "5", "avx2");
    let names: Vec<&str> = one.iter().map(|(n, _)| n.as_str()).collect();
    for t in [
        "population_quantiles.csv",
        "components_quantiles.csv",
        "migration_quantiles.csv",
        "demand_quantiles.csv",
        "resources_quantiles.csv",
        "costs_quantiles.csv",
        "capacity.csv",
        "capacity_quantiles.csv",
    ] {
        assert!(names.contains(&t), "{t} missing: {names:?}");
    }
    // The migration twin has the migration table's keys, row for row.
    let file = |name: &str| {
        String::from_utf8(one.iter().find(|(n, _)| n == name).unwrap().1.clone()).unwrap()
    };
    let (mig, mig_q) = (file("migration.csv"), file("migration_quantiles.csv"));
    assert!(mig_q.starts_with("scenario,area,sex,year,flow,direction,mean,p05,"));
    assert_eq!(mig.lines().count(), mig_q.lines().count());
    for (d, q) in mig.lines().zip(mig_q.lines()).skip(1) {
        let keys = |l: &str| l.split(',').take(6).collect::<Vec<_>>().join(",");
        assert_eq!(keys(d), keys(q));
    }
    assert_eq!(
        one, two,
        "the same seed gives the same bytes at 1 and 2 threads"
    );
    assert_eq!(
        one, plain,
        "the same seed gives the same bytes with and without AVX2"
    );
    assert_eq!(
        one, avx2,
        "the same seed gives the same bytes with and without AVX-512"
    );
    let other = mc_run(dir.path(), "other", "2", "6", "on");
    let q = |files: &[(String, Vec<u8>)]| {
        files
            .iter()
            .find(|(n, _)| n == "population_quantiles.csv")
            .unwrap()
            .1
            .clone()
    };
    assert_ne!(q(&one), q(&other), "another seed gives other numbers");
    let text = String::from_utf8(q(&one)).unwrap();
    assert!(text.starts_with("scenario,area,sex,age_group,year,mean,p05,p25,p50,p75,p95\n"));
    // Four areas × female, male, all × the eight planning groups × 2024–2045, for
    // the base and each of its two variants.
    assert_eq!(text.lines().count(), 1 + 3 * 4 * 3 * 8 * 22);
    // The whole municipality's p50 in the last year: all ages of both sexes is the
    // sum of nothing smaller, but lies between the sums of the groups' p05 and p95.
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect::<Vec<&str>>())
        .filter(|r| r[0] == "Esimerkkilä")
        .collect();
    let stat = |col: usize, sex: &str, group: &str| -> f64 {
        rows.iter()
            .filter(|r| r[2] == sex && r[3] == group && r[4] == "2045")
            .map(|r| r[col].parse::<f64>().unwrap())
            .sum()
    };
    let groups = ["0-6", "7-12", "13-15", "16-18", "19-64", "65-74", "75+"];
    let total = stat(8, "all", "all");
    let lo: f64 = groups.iter().map(|g| stat(6, "all", g)).sum();
    let hi: f64 = groups.iter().map(|g| stat(10, "all", g)).sum();
    assert!(lo < total && total < hi, "{lo} < {total} < {hi}");
    // Both sexes' mean is the sum of the women's and the men's.
    let (f, m, a) = (
        stat(5, "female", "all"),
        stat(5, "male", "all"),
        stat(5, "all", "all"),
    );
    assert!((f + m - a).abs() < 1e-6 * a, "{f} + {m} vs {a}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("one/manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["trajectories"], 120);
    assert_eq!(manifest["seed"], 5);
}

/// Two schools for the forecast directory's two areas: area A goes to K1, area B half
/// to each; K2 keeps 10 % of its places spare and closes after 2025.
const NETWORK: &str = r#"
[[unit]]
id = "K1"
service = "school"
capacity = 110
floor_area = 1200.0

[[unit]]
id = "K2"
service = "school"
capacity = 60
spare_target = 0.1
closes = 2025

[catchment]
file = "catchment.csv"
"#;

const CATCHMENT: &str = "area,unit,share\nA,K1,1\nB,K1,0.5\nB,K2,0.5\n";

fn network_dir(network: &str, catchment: &str) -> tempfile::TempDir {
    let dir = forecast_dir(&format!("{SCHOOL}{network}"));
    std::fs::write(dir.path().join("catchment.csv"), catchment).unwrap();
    dir
}

#[test]
fn units_own_costs_are_reported_and_count_in_a_variants_impact() {
    let network = r#"
[[unit]]
id = "K1"
service = "school"
capacity = 110
floor_area = 1200.0
  [unit.cost]
  per_m2 = 50.0
  fixed = 1000.0
  growth = 0.1

[[unit]]
id = "K2"
service = "school"
capacity = 60
closes = 2025
  [unit.cost]
  fixed = 300.0
  investment = 5000.0
  investment_year = 2025

[catchment]
file = "catchment.csv"

[[variant]]
name = "Ilman K2"
  [[variant.unit]]
  id = "K2"
  remove = true
"#;
    let dir = network_dir(network, "area,unit,share\nA,K1,1\nB,K1,1\n");
    let o = kunta(
        &["run", "s.toml", "--format", "csv", "--out", "o", "--json"],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let u = rows(&dir.path().join("o/unit_costs.csv"));
    assert_eq!(
        u[0],
        [
            "scenario",
            "unit",
            "service",
            "year",
            "component",
            "cost_eur",
            "discounted_cost_eur"
        ]
    );
    let get = |scenario: &str, unit: &str, year: i32, comp: &str| -> (f64, f64) {
        u.iter()
            .find(|r| r[0] == scenario && r[1] == unit && r[3] == year.to_string() && r[4] == comp)
            .map(|r| (r[5].parse().unwrap(), r[6].parse().unwrap()))
            .unwrap_or_else(|| panic!("{scenario} {unit} {year} {comp}"))
    };
    let k2_total = |year: i32| -> f64 {
        (if year <= 2025 { 300.0 } else { 0.0 }) + if year == 2025 { 5000.0 } else { 0.0 }
    };
    for k in 0..3 {
        let y = 2024 + k;
        let g = 1.1f64.powi(k);
        let d = 1.05f64.powi(-k);
        let (p, pd) = get("f", "K1", y, "premises");
        assert!((p - 1200.0 * 50.0 * g).abs() < 1e-6 && (pd - p * d).abs() < 1e-6);
        assert!((get("f", "K1", y, "fixed").0 - 1000.0 * g).abs() < 1e-6);
        assert!((get("f", "K1", y, "total").0 - 1000.0 * g - 60_000.0 * g).abs() < 1e-6);
        assert_eq!(get("f", "K2", y, "total").0, k2_total(y));
        assert_eq!(
            get("f", "K2", y, "investment").0,
            if y == 2025 { 5000.0 } else { 0.0 }
        );
    }
    // The variant without K2 saves exactly K2's own costs (its pupils were sent to K1).
    let imp = rows(&dir.path().join("o/impact.csv"));
    for service in ["school", "all"] {
        for y in 2024..=2026 {
            let r = imp
                .iter()
                .find(|r| r[2] == service && r[3] == y.to_string())
                .unwrap();
            assert!(
                (r[4].parse::<f64>().unwrap() + k2_total(y)).abs() < 1e-6,
                "{r:?}"
            );
        }
    }
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let k2_pv = 300.0 + (300.0 + 5000.0) / 1.05;
    assert!((v["units"][1]["present_value_eur"].as_f64().unwrap() - k2_pv).abs() < 1e-6);
    let services_pv = v["services"][0]["present_value_eur"].as_f64().unwrap();
    let units_pv = v["unit_costs_present_value_eur"].as_f64().unwrap();
    assert!((v["present_value_eur"].as_f64().unwrap() - services_pv - units_pv).abs() < 1e-6);
    assert!((v["variants"][0]["present_value_diff_eur"].as_f64().unwrap() + k2_pv).abs() < 1e-6);
}

#[test]
fn a_catchment_redrawn_from_a_year_moves_demand_to_a_new_unit() {
    let network = r#"
[[unit]]
id = "K1"
service = "school"
capacity = 200

[[unit]]
id = "K3"
service = "school"
capacity = 100
opens = 2025

[catchment]
file = "catchment.csv"
"#;
    let dir = network_dir(
        network,
        "area,unit,year,share\nA,K1,2024,1\nB,K1,2024,1\nB,K1,2025,0\nB,K3,2025,1\n",
    );
    let o = kunta(
        &[
            "run",
            "s.toml",
            "--format",
            "csv",
            "--out",
            "o",
            "--trajectories",
            "20",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("not open"), "{}", stderr(&o));
    let c = rows(&dir.path().join("o/capacity.csv"));
    let demand = |unit: &str, year: &str| -> f64 {
        c.iter()
            .find(|r| r[1] == unit && r[3] == year)
            .map(|r| r[4].parse().unwrap())
            .unwrap()
    };
    // Pupils of area A; area B has twice as many.
    let pupils = |year: f64| 2.0 * (0.5 * (17.0 + year - 2024.0) + (18.0 + year - 2024.0));
    assert!((demand("K1", "2024") - 3.0 * pupils(2024.0)).abs() < 1e-9);
    assert_eq!(demand("K3", "2024"), 0.0);
    for y in [2025.0, 2026.0] {
        assert!((demand("K1", &y.to_string()) - pupils(y)).abs() < 1e-9);
        assert!((demand("K3", &y.to_string()) - 2.0 * pupils(y)).abs() < 1e-9);
    }
    // The trajectories send the demand the same way (a published forecast: no spread).
    let q = rows(&dir.path().join("o/capacity_quantiles.csv"));
    let mean = |unit: &str, year: &str| -> f64 {
        q.iter()
            .find(|r| r[1] == unit && r[3] == year && r[4] == "demand")
            .map(|r| r[5].parse().unwrap())
            .unwrap()
    };
    assert_eq!(mean("K3", "2024"), 0.0);
    assert!((mean("K3", "2026") - 2.0 * pupils(2026.0)).abs() < 1e-9);
    assert!((mean("K1", "2026") - pupils(2026.0)).abs() < 1e-9);
    // A redrawn area whose shares do not sum to 1 is refused with its year.
    std::fs::remove_dir_all(dir.path().join("o")).unwrap();
    std::fs::write(
        dir.path().join("catchment.csv"),
        "area,unit,year,share\nA,K1,2024,1\nB,K1,2024,1\nB,K3,2025,0.5\n",
    )
    .unwrap();
    assert_refused(
        dir.path(),
        &["catchment.csv", "area `B`", "from 2025", "sum to 0.5"],
        "redrawn",
    );
}

#[test]
fn units_compare_their_catchments_demand_with_their_places() {
    let dir = network_dir(NETWORK, CATCHMENT);
    let o = kunta(
        &["run", "s.toml", "--format", "csv", "--out", "o", "--json"],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let c = rows(&dir.path().join("o/capacity.csv"));
    assert_eq!(
        c[0],
        [
            "scenario",
            "unit",
            "service",
            "year",
            "demand",
            "capacity",
            "utilisation",
            "shortage",
            "floor_area_need_m2",
            "floor_area_m2"
        ]
    );
    // Pupils: coverage 0.5 at 7 and 1 at 8; area A has 10 + age + (year − 2024) a
    // sex and age, area B twice that.
    let pupils = |year: f64| 2.0 * (0.5 * (17.0 + year - 2024.0) + (18.0 + year - 2024.0));
    let num = |s: &str| s.parse::<f64>().unwrap();
    assert_eq!(c.len(), 1 + 2 * 3);
    for row in &c[1..] {
        let year = num(&row[3]);
        let a = pupils(year);
        let (demand, places, threshold, floor) = if row[1] == "K1" {
            (2.0 * a, 110.0, 110.0, Some(1200.0))
        } else if year <= 2025.0 {
            (a, 60.0, 54.0, None)
        } else {
            (a, 0.0, 0.0, None)
        };
        assert!((num(&row[4]) - demand).abs() < 1e-9, "{row:?}");
        assert_eq!(num(&row[5]), places, "{row:?}");
        if places > 0.0 {
            assert!((num(&row[6]) - demand / places).abs() < 1e-12, "{row:?}");
        } else {
            assert_eq!(row[6], "", "a closed unit's utilisation is empty");
        }
        let short = (demand - threshold).max(0.0);
        assert!((num(&row[7]) - short).abs() < 1e-9, "{row:?}");
        // 10 m² a pupil.
        assert!((num(&row[8]) - 10.0 * demand).abs() < 1e-6, "{row:?}");
        assert_eq!(row[9].parse::<f64>().ok(), floor, "{row:?}");
    }
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let units = s["units"].as_array().unwrap();
    assert_eq!(units[0]["unit"], "K1");
    assert_eq!(units[0]["first_shortage_year"], 2025);
    assert_eq!(units[1]["first_shortage_year"], 2025);
    assert!(units[1]["utilisation_last"].is_null());

    // Under uncertainty: the twin with a quantity column and the probability of a
    // shortage; K2 is closed in 2026, so every trajectory is short then.
    let o = kunta(
        &[
            "run",
            "s.toml",
            "--format",
            "csv",
            "--out",
            "q",
            "--trajectories",
            "40",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("P(shortage 2026)"));
    // K2 closes after 2025 but its catchment still sends it pupils: the user is told.
    assert!(
        stderr(&o).contains("unit `K2` is not open in 1 of the years 2026–2026"),
        "{}",
        stderr(&o)
    );
    let q = rows(&dir.path().join("q/capacity_quantiles.csv"));
    assert_eq!(
        q[0],
        [
            "scenario",
            "unit",
            "service",
            "year",
            "quantity",
            "mean",
            "p05",
            "p25",
            "p50",
            "p75",
            "p95",
            "p_shortage"
        ]
    );
    // 2 units × 3 years × (demand, utilisation, shortage, floor area need).
    assert_eq!(q.len(), 1 + 2 * 3 * 4);
    let k2_2026: Vec<&Vec<String>> = q[1..]
        .iter()
        .filter(|r| r[1] == "K2" && r[3] == "2026")
        .collect();
    assert_eq!(k2_2026.len(), 4);
    for r in &k2_2026 {
        assert_eq!(r[11], "1", "{r:?}");
    }
    let util = k2_2026.iter().find(|r| r[4] == "utilisation").unwrap();
    assert!(util[5..11].iter().all(String::is_empty), "{util:?}");
}

#[test]
fn bad_networks_name_the_file_row_and_value() {
    let cases: [(&str, &str, &[&str]); 10] = [
        (
            NETWORK,
            "area,unit,share\nA,K1,1\nB,K1,0.5\nB,K2,0.4\n",
            &[
                "catchment.csv",
                "line 3, line 4",
                "column `share`",
                "area `B`",
                "school",
                "0.9",
                "sum to 1",
            ],
        ),
        (
            // A refused row and a bad sum elsewhere: both reported.
            NETWORK,
            "area,unit,share\nA,K1,-1\nB,K1,0.5\nB,K2,0.4\n",
            &["line 2", "-1", "area `B`", "0.9"],
        ),
        (
            NETWORK,
            "area,school,share\nA,K1,1\n",
            &["catchment.csv", "no `unit` column", "`school`"],
        ),
        (
            NETWORK,
            "area,unit,share\nA,K1,1\nB,K1,0.5\nB,K3,0.5\n",
            &["catchment.csv", "line 4", "unit", "K3"],
        ),
        (
            NETWORK,
            "area,unit,share\nA,K1,1\nC,K1,1\nB,K1,0.5\nB,K2,0.5\n",
            &["catchment.csv", "line 3", "area", "`C`", "no population"],
        ),
        (
            NETWORK,
            "area,unit,share\nA,K1,1.5\nB,K1,0.5\nB,K2,0.5\n",
            &["catchment.csv", "line 2", "share", "1.5"],
        ),
        (
            NETWORK,
            "area,unit,share\nA,K1,1\nA,K1,1\nB,K1,0.5\nB,K2,0.5\n",
            &["catchment.csv", "line 3", "given again", "line 2"],
        ),
        (
            &NETWORK.replace(
                "service = \"school\"\ncapacity = 60",
                "service = \"kool\"\ncapacity = 60",
            ),
            CATCHMENT,
            &["unit[K2].service", "`kool`"],
        ),
        (
            &NETWORK.replace("[catchment]\nfile = \"catchment.csv\"\n", ""),
            CATCHMENT,
            &["catchment", "school", "2 units"],
        ),
        (
            &NETWORK.replace("capacity = 110", "capacity = -110"),
            CATCHMENT,
            &["unit[K1].capacity", "-110"],
        ),
    ];
    for (network, catchment, expected) in cases {
        let dir = network_dir(network, catchment);
        assert_refused(dir.path(), expected, catchment);
    }
    // A service with a single unit needs no catchment rows.
    let single = "[[unit]]\nid = \"K\"\nservice = \"school\"\ncapacity = 500\n";
    let dir = network_dir(single, "");
    let o = kunta(
        &["run", "s.toml", "--format", "csv", "--out", "o"],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let c = rows(&dir.path().join("o/capacity.csv"));
    assert_eq!(c.len(), 4);
    assert!(c[1..].iter().all(|r| !r[8].is_empty() && r[9].is_empty()));
}
