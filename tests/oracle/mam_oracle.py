"""Oracle for touchline's data-driven models (attribution.md, "Data-driven models").

Reads grouped journey paths and writes, per dataset, what the reference packages
compute on them:

- marketing-attribution-models 2.1.1 (`mam`): the removal effects of
  `MAM.run_markov(transition_to_same_state=False)` and the credits of
  `MAM.run_shapley(max_size=None)` (no truncation of key sets);
- ChannelAttribution: the credits of `markov_model(..., order=1)` (a simulation),
  when the package imports (or always, with `--ca require`).

Input: a tab-separated file with the header `dataset path conversions nulls`,
one row per distinct path of a dataset; `path` is the keys in time order joined
by " > " (MAM's default separator), consecutive repeats kept.
Output: JSON written to the file named by the second argument (the packages print
banners on stdout, so stdout is not the channel).

Usage: mam_oracle.py IN.tsv OUT.json [--ca auto|require|off] [--time]
With --time, each model's wall time (seconds, one run; MAM's frame building
apart) is reported too, and MAM is run and timed a second time on one row per
path (`*_per_path`) instead of one per distinct path.
"""

import argparse
import io
import json
import sys
import time
from contextlib import redirect_stdout
from importlib import metadata

import polars as pl
from mam import MAM

MAM_SEP = " > "
CA_SEP = ">"


def read_datasets(path):
    frame = pl.read_csv(
        path,
        separator="\t",
        schema={"dataset": pl.String, "path": pl.String, "conversions": pl.Int64, "nulls": pl.Int64},
        quote_char=None,
    )
    out = {}
    for (name,), group in frame.group_by(["dataset"], maintain_order=True):
        out[name] = group.select(["path", "conversions", "nulls"])
    return out


def mam_frame(grouped, expand=False):
    """MAM's `grouped_journey` input: one row per (path, outcome) with its count,
    or, with `expand`, one row per path (count 1), as ungrouped data would be."""
    conv = grouped.filter(pl.col("conversions") > 0).select(
        pl.col("path"), pl.col("conversions").alias("occurrences"), pl.lit(True).alias("has_conv")
    )
    null = grouped.filter(pl.col("nulls") > 0).select(
        pl.col("path"), pl.col("nulls").alias("occurrences"), pl.lit(False).alias("has_conv")
    )
    frame = pl.concat([conv, null])
    if expand:
        frame = frame.select(
            pl.col("path").repeat_by("occurrences"), pl.col("has_conv").repeat_by("occurrences")
        ).explode(["path", "has_conv"]).with_columns(pl.lit(1, dtype=pl.Int64).alias("occurrences"))
    return frame


def run_mam(grouped, timings, expand=False):
    t0 = time.perf_counter()
    model = MAM(
        mam_frame(grouped, expand),
        format_type="grouped_journey",
        channels_colname="path",
        journey_with_conv_colname="has_conv",
        occurrences_colname="occurrences",
        path_separator=MAM_SEP,
    )
    t1 = time.perf_counter()
    markov = model.run_markov(transition_to_same_state=False)
    t2 = time.perf_counter()
    shapley = model.run_shapley(max_size=None).to_dict()
    t3 = time.perf_counter()
    suffix = "_per_path" if expand else ""
    timings.update(
        {f"mam_preprocess{suffix}": t1 - t0, f"mam_run_markov{suffix}": t2 - t1, f"mam_run_shapley{suffix}": t3 - t2}
    )
    re = markov.metadata["removal_effect"]["removal_effect"]
    return (
        {str(k): float(v) for k, v in re.items()},
        {str(k): float(v) for k, v in zip(shapley["channels"], shapley["attribution"])},
    )


def run_ca(ca, grouped, timings):
    frame = grouped.with_columns(pl.col("path").str.replace_all(MAM_SEP, CA_SEP, literal=True)).to_pandas()
    t0 = time.perf_counter()
    with redirect_stdout(io.StringIO()):
        res = ca.markov_model(
            frame, "path", "conversions", var_null="nulls", order=1, sep=CA_SEP, seed=0, verbose=False, flg_pro=False
        )
    timings["ca_markov_model"] = time.perf_counter() - t0
    return {str(k): float(v) for k, v in zip(res["channel_name"], res["total_conversions"])}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--ca", choices=["auto", "require", "off"], default="auto")
    ap.add_argument("--time", action="store_true")
    args = ap.parse_args()

    ca, ca_error = None, None
    if args.ca != "off":
        try:
            with redirect_stdout(io.StringIO()):  # its import prints a banner
                import ChannelAttribution as ca
        except Exception as e:  # reported, and fatal with --ca require
            ca_error = f"{type(e).__name__}: {e}"
            if args.ca == "require":
                sys.exit(f"ChannelAttribution does not import: {ca_error}")

    versions = {"python": sys.version.split()[0]}
    for dist in ["marketing-attribution-models", "ChannelAttribution", "polars", "pandas", "numpy"]:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None

    out = {"versions": versions, "ca_available": ca is not None, "ca_error": ca_error, "datasets": {}}
    for name, grouped in read_datasets(args.input).items():
        timings = {}
        for p in grouped["path"]:
            keys = p.split(MAM_SEP)
            if any(CA_SEP in k or not k or k != k.strip() for k in keys):
                sys.exit(f"dataset {name}: path {p!r} has a key MAM or ChannelAttribution would split differently")
        removal_effects, shapley = run_mam(grouped, timings)
        if args.time:  # MAM again, on one row per path (its results must not change)
            for a, b in zip(run_mam(grouped, timings, expand=True), (removal_effects, shapley)):
                if a.keys() != b.keys() or any(abs(a[k] - b[k]) > 1e-9 * max(1.0, abs(b[k])) for k in b):
                    sys.exit(f"dataset {name}: MAM differs between grouped and per-path input")
        ca_credits = run_ca(ca, grouped, timings) if ca is not None else None
        entry = {"markov_removal_effects": removal_effects, "shapley": shapley, "ca_markov": ca_credits}
        if args.time:
            entry["seconds"] = timings
        out["datasets"][name] = entry

    with open(args.output, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
