"""Output of a suite run: a table per section on the terminal, JSON, and one PNG."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt

from harness.bench.common import Section


def format_table(section: Section) -> str:
    widths = [
        max(len(str(cell)) for cell in [header, *(row[i] for row in section.rows)])
        for i, header in enumerate(section.headers)
    ]
    lines = [section.title]
    lines.append("  ".join(h.rjust(w) for h, w in zip(section.headers, widths, strict=True)))
    lines.append("  ".join("-" * w for w in widths))
    lines.extend(
        "  ".join(str(c).rjust(w) for c, w in zip(row, widths, strict=True)) for row in section.rows
    )
    lines.extend(section.notes)
    return "\n".join(lines)


def write_json(path: Path, machine: dict[str, Any], sections: Sequence[Section]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "machine": machine,
        "sections": {
            s.name: {
                "title": s.title,
                "headers": s.headers,
                "rows": s.rows,
                "notes": s.notes,
                "data": s.data,
            }
            for s in sections
        },
    }
    path.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")


# Each panel's axes and title: (x label, y label, title).
PANEL_LABELS = {
    "step_overhead": (
        "model latency per call",
        "overhead per step, ms",
        "Per-step overhead vs plain asyncio",
    ),
    "throughput": ("flows started at once", "flows per minute", "Throughput"),
    "fanout": ("sub-agents", "total ms", "Fan-out"),
    "replay": ("history events", "replay ms", "Replay"),
}


def plot(path: Path, sections: Sequence[Section]) -> None:
    """One figure, a panel per measurement that has a curve worth seeing."""
    by_name = {s.name: s.data for s in sections}
    panels = [
        name for name in ("step_overhead", "throughput", "fanout", "replay") if name in by_name
    ]
    if not panels:
        return
    fig, axes = plt.subplots(2, 2, figsize=(11, 8), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, name in zip(axes.flat, panels, strict=False):
        data = by_name[name]
        if name == "step_overhead":
            latencies = list(data["latencies"])
            for offset, system in enumerate(("temporal", "langgraph")):
                values = [
                    data["latencies"][lat][system]["overhead_per_step_ms"] for lat in latencies
                ]
                ax.bar([i + offset * 0.4 for i in range(len(latencies))], values, 0.4, label=system)
            ax.set_xticks([i + 0.2 for i in range(len(latencies))], [f"{x} ms" for x in latencies])
        elif name == "throughput":
            data = data["results"]
            for system in ("floor", "temporal", "langgraph"):
                for latency in sorted({k.split("ms_")[0] for k in data}):
                    keys = [k for k in data if k.startswith(f"{latency}ms_")]
                    ns = [int(k.split("_n")[1]) for k in keys]
                    values = [data[k][system]["flows_per_min"] for k in keys]
                    ax.plot(ns, values, marker="o", label=f"{system}, {latency} ms")
            ax.set_xscale("log")
            ax.set_yscale("log")
        elif name == "fanout":
            data = data["results"]
            for mode in ("child_workflows", "activities", "asyncio.gather"):
                keys = [k for k in data if k.startswith(f"{mode}_")]
                ks = [int(k.rsplit("_", 1)[1]) for k in keys]
                ax.plot(ks, [data[k]["wall_ms"] for k in keys], marker="o", label=mode)
            ax.set_xscale("log", base=2)
        else:
            data = data["histories"]
            names = [k for k in data if k.startswith("probe")]
            ax.plot(
                [data[k]["events"] for k in names],
                [data[k]["replay_ms"] for k in names],
                marker="o",
            )
            ax.set_xscale("log")
            ax.set_yscale("log")
        xlabel, ylabel, title = PANEL_LABELS[name]
        ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
        if name != "replay":
            ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
