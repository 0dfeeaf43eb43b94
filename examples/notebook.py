# %% [markdown]
# # kunta walk-through: basic education grades 1–6 in the example municipality
# Run as a script (`python3 examples/notebook.py [OUT_DIR]`) or open it as a
# notebook with Jupytext / VS Code. Requirements: `examples/requirements.txt`.

# %%
# Imports. Agg is a non-interactive backend, so the plot is only written to a file.
import json, os, subprocess, sys, tempfile
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import polars as pl

SERVICE = "basic_1_6"

def check(ok, msg):
    """Like assert, but never stripped by `python -O`; exits with status 1."""
    if not ok:
        sys.exit(f"CHECK FAILED: {msg}")

# %%
# Find the binary: $KUNTA_BIN, else the release build in the repo, else `cargo run`.
here = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
root = here.parent
built = root / "target" / "release" / "kunta"
if os.environ.get("KUNTA_BIN"):
    kunta = [os.environ["KUNTA_BIN"]]
elif built.exists():
    kunta = [str(built)]
else:
    kunta = ["cargo", "run", "--release", "--quiet", "--"]

# Output directory: argv[1] if given (ignored inside Jupyter, whose argv is the kernel's).
use_argv = len(sys.argv) > 1 and "ipykernel" not in sys.modules
out = Path(sys.argv[1] if use_argv else tempfile.mkdtemp(prefix="kunta-"))
out.mkdir(parents=True, exist_ok=True)
# kunta replaces its output directory as a whole, so its tables get a directory of
# their own and the plot goes beside it.
tables = out / "tables"

# %%
# Run the bundled example municipality; stdout is the run summary as JSON.
proc = subprocess.run(kunta + ["run", "--out", str(tables), "--json"],
                      cwd=root, capture_output=True, text=True)
check(proc.returncode == 0, f"kunta exited with {proc.returncode}:\n{proc.stderr}")
summary = json.loads(proc.stdout)
print(f"{summary['scenario']}: {summary['base_year']}–{summary['end_year']}, tables in {tables}")
# Every table holds the base and its variants, each row under its scenario's name:
# the base's rows are those of summary["scenario"].
BASE = summary["scenario"]


def read(name: str) -> pl.DataFrame:
    """One of kunta's tables, the base scenario's rows."""
    return pl.read_parquet(tables / f"{name}.parquet").filter(pl.col("scenario") == BASE)

# %%
# Headline figures per service: demand in the first and last year, present value of costs.
print(f"{'service':<40}{'demand_first':>14}{'demand_last':>14}{'PV (M€)':>12}")
for s in summary["services"]:
    print(f"{s['name']:<40}{s['demand_first']:>14.1f}{s['demand_last']:>14.1f}"
          f"{s['present_value_eur'] / 1e6:>12.1f}")
svc = next(s for s in summary["services"] if s["service"] == SERVICE)

# %%
# Demand for grades 1–6 by support segment and year, summed over areas (wide: one column per segment).
demand = read("demand").filter(pl.col("service") == SERVICE)
segments = sorted(demand["segment"].unique())
by_segment = (demand.group_by("year", "segment").agg(pl.col("demand").sum())
              .pivot(on="segment", index="year", values="demand")
              .select("year", *segments)
              .sort("year"))
print(by_segment)

# %%
# Total cost per year (in base-year euros, and discounted to the base year), summed over areas.
costs = read("costs")
cost_total = (costs.filter(pl.col("service") == SERVICE, pl.col("component") == "total")
              .group_by("year")
              .agg(pl.col("cost_eur", "discounted_cost_eur").sum())
              .sort("year"))
print(cost_total)

# %%
# Teacher FTE per area and year (plus a municipality total column).
teachers = (read("resources")
            .filter(pl.col("service") == SERVICE, pl.col("resource") == "teacher_fte")
            .sort("area")
            .pivot(on="area", index="year", values="value")
            .sort("year"))
teachers = teachers.with_columns(total=pl.sum_horizontal(pl.exclude("year")))
print(teachers)

# %%
# The schools: places against the pupils their catchments send them, and the first
# year each one is short of places.
capacity = read("capacity").filter(pl.col("service") == SERVICE)
utilisation = (capacity.pivot(on="unit", index="year", values="utilisation").sort("year"))
print(utilisation)
for u in summary["units"]:
    if u["service"] == SERVICE:
        print(f"{u['unit']:<20} places {u['capacity_last']:>6.0f}  "
              f"first shortage {u['first_shortage_year'] or '–'}")

# %%
# The variants against the base: the discounted cumulative cost difference of all
# services by year, and each variant's present value and break-even year.
impact = (pl.read_parquet(tables / "impact.parquet")
          .filter(pl.col("service") == "all")
          .pivot(on="scenario", index="year", values="discounted_cumulative_eur")
          .sort("year"))
print(impact)
for v in summary["variants"]:
    print(f"{v['name']:<20} against {v['baseline']}: PV of the difference "
          f"{v['present_value_diff_eur'] / 1e6:+.1f} M€, break-even {v['break_even_year'] or '–'}")

# %%
# Plot: stacked demand by segment (left axis) and total cost in M€ (right axis).
years = by_segment["year"].to_list()
fig, ax = plt.subplots(figsize=(9, 5))
ax.stackplot(years, *[by_segment[s].to_list() for s in segments], labels=segments, alpha=0.8)
ax.set_xlabel("Year")
ax.set_ylabel("Pupils (demand)")
ax2 = ax.twinx()
ax2.plot(cost_total["year"].to_list(), (cost_total["cost_eur"] / 1e6).to_list(),
         color="black", marker=".", label="total cost (M€, right)")
ax2.set_ylabel("Total cost, M€ (base-year euros)")
ax2.set_ylim(bottom=0)
handles = ax.get_legend_handles_labels()
handles2 = ax2.get_legend_handles_labels()
ax.legend(handles[0] + handles2[0], handles[1] + handles2[1], loc="lower left")
ax.set_title(f"{svc['name']} ({SERVICE}) — {summary['scenario']}")
fig.tight_layout()
png = out / f"{SERVICE}.png"
fig.savefig(png, dpi=120)
plt.close(fig)
print(f"plot written to {png}")

# %%
# Sanity checks: segments, consistency between tables and summary, plot written.
check(set(segments) == {"general", "intensified", "special"}, f"unexpected segments {segments}")
first = by_segment.row(0, named=True)
first_sum = sum(first[s] for s in segments)
check(first["year"] == svc["first_year"], f"first year {first['year']} != {svc['first_year']}")
check(abs(first_sum - svc["demand_first"]) <= 1e-6 * abs(svc["demand_first"]),
      f"demand sum {first_sum} != summary demand_first {svc['demand_first']}")
pv = cost_total["discounted_cost_eur"].sum()
check(abs(pv - svc["present_value_eur"]) <= 1e-6 * svc["present_value_eur"],
      f"discounted cost sum {pv} != summary present value {svc['present_value_eur']}")
check(png.exists() and png.stat().st_size > 0, f"{png} missing or empty")
# Every area's pupils go somewhere: the schools' demand adds up to the service's.
schools = capacity.group_by("year").agg(pl.col("demand").sum()).sort("year")
check(abs(schools["demand"][0] - svc["demand_first"]) <= 1e-6 * svc["demand_first"],
      f"schools' demand {schools['demand'][0]} != service demand {svc['demand_first']}")
# The impact table's last discounted difference is each variant's present value.
for v in summary["variants"]:
    last = impact[v["name"]][-1]
    check(abs(last - v["present_value_diff_eur"]) <= 1e-6 * max(1.0, abs(last)),
          f"{v['name']}: impact {last} != summary {v['present_value_diff_eur']}")
print("all checks passed")
