"""Scale table: the sweep and Slack acks at 1k, 10k, 30k and 100k instances.

For each fleet size, two benches run one after the other, each with the backend simulator
in its own process and each with its baseline from the same run:

- ``bench/sweep.py --sweep-only``: the steady sweep (health per instance) beside a raw
  aiohttp fetch of the same list and health endpoints, and the peak RSS of the process
  whose monitor tracks the fleet (beside its RSS before the monitor existed);
- ``bench/ack_latency.py --gc-freeze``: the bot's Slack ack p99 while that fleet is swept
  back to back (the sweep on its own loop, the start-up heap frozen: as the runtime runs
  it), beside the same bot's idle p99.

    python bench/scale.py                        # 1,000 10,000 30,000 100,000
    python bench/scale.py --sizes 1000 10000 --json
    python bench/scale.py --layout process       # the acks of a web process, a worker sweeping
                                                 # (also paired in time: bench/ack_latency.py)
    python bench/scale.py --quick                # a few seconds: 200 instances
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SIZES = (1_000, 10_000, 30_000, 100_000)

Figures = dict[str, Any]


def _bench(script: str, *args: str) -> Figures:
    """Run ``bench/<script> --json <args>``; its JSON object (the last line of its output)."""
    out = subprocess.run(
        [sys.executable, str(HERE / script), "--json", *args],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    # ack_latency prints indented JSON; sweep prints one line.
    start = out.index("{")
    result: Figures = json.loads(out[start:])
    return result


def one_size(instances: int, *, rounds: int, repeats: int, requests: int, layout: str) -> Figures:
    sweep = _bench(
        "sweep.py", "--sweep-only", "--instances", str(instances), "--rounds", str(rounds)
    )["sweep"]
    ack = _bench(
        "ack_latency.py",
        "--gc-freeze",
        "--sweep-instances",
        str(instances),
        "--repeats",
        str(repeats),
        "--requests",
        str(requests),
        "--layout",
        layout,
    )
    during = ack["during_sweep"]
    # The process layout pairs each sweep with as long an idle phase (bench/ack_latency.py).
    paired = during["paired"] or {}
    return {
        "instances": instances,
        "sweep_secs": sweep["sweep_secs"],
        "raw_fetch_secs": sweep["raw_fetch_secs"],
        "sweep_vs_raw": sweep["sweep_vs_raw"],
        "inline_sweep_secs": sweep["inline_sweep_secs"],
        "raw_list_secs": sweep["raw_list_secs"],
        "rss_mb_tracking": sweep["rss_mb_tracking"],
        "rss_mb_before_monitor": sweep["rss_mb_before_monitor"],
        "ack_p99_ms_idle": ack["bot"]["p99_ms"],
        "ack_p99_ms_during_sweeps": during["bot"]["p99_ms"],
        "ack_during_vs_idle": during["bot_vs_idle_p99"],
        "ack_paired_ratio": paired.get("sweeping_vs_idle_p99"),
        "ack_paired_ratio_median_of_pairs": paired.get("sweeping_vs_idle_p99_pairs_median"),
        "sweeps_during_acks": during["sweeps_during_measurement"],
        "load_average": ack["load_average"],
        "layout": layout,
    }


def print_table(rows: list[Figures]) -> None:
    print(
        "| instances | sweep | raw aiohttp | ratio | inline sweep / raw list | peak RSS "
        "(before monitor) | ack p99 idle | ack p99 during sweeps | ratio | paired ratio "
        "(median of pairs) | load |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in rows:
        print(
            f"| {r['instances']:,} | {r['sweep_secs']:.2f} s | {r['raw_fetch_secs']:.2f} s | "
            f"{r['sweep_vs_raw']:.2f} | {r['inline_sweep_secs']:.2f} / {r['raw_list_secs']:.2f} s"
            f" | {r['rss_mb_tracking']:.0f} MB ({r['rss_mb_before_monitor']:.0f}) | "
            f"{r['ack_p99_ms_idle']:.1f} ms | {r['ack_p99_ms_during_sweeps']:.1f} ms | "
            f"{r['ack_during_vs_idle']:.2f} | {_paired(r)} | {r['load_average'][0]:.1f} |"
        )


def _paired(row: Figures) -> str:
    """The paired ratio and its median of pairs, or a dash (layouts without pairing)."""
    if row["ack_paired_ratio"] is None:
        return "-"
    return f"{row['ack_paired_ratio']:.2f} ({row['ack_paired_ratio_median_of_pairs']:.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--rounds", type=int, default=3, help="sweeps timed per size")
    parser.add_argument("--repeats", type=int, default=1, help="ack phases per size")
    parser.add_argument("--requests", type=int, default=1000, help="acks per app per phase")
    parser.add_argument(
        "--layout",
        default="gated",
        help="where the ack bench's sweep runs: gated (a thread, as --role all), process "
        "(a worker process, as --role web + --role worker); see bench/ack_latency.py",
    )
    parser.add_argument("--quick", action="store_true", help="a few seconds: 200 instances")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.rounds, args.repeats, args.requests = [200], 1, 1, 200
    rows = []
    for n in args.sizes:
        rows.append(
            one_size(
                n,
                rounds=args.rounds,
                repeats=args.repeats,
                requests=args.requests,
                layout=args.layout,
            )
        )
        # Each size as it is done (a 100,000-instance run is long): one JSON line on stderr.
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps({"cpus": os.cpu_count(), "rows": rows}))
    else:
        print_table(rows)


if __name__ == "__main__":
    main()
