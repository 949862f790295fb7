"""End-to-end demonstrations on the shipped event files and the built-in toys.

Every demo is a module with ``run_demo(output_dir, *, quick, seed, progress)``
that trains, evaluates on held-out events, writes a report folder and
returns a JSON-ready dict of its figures. The dict has at least ``demo``,
``output`` and ``wall_time_s``, plus a ``summary`` dict of the headline
figures that ``quasiratio demo`` prints as a table. ``quick=True`` trains
for a few seconds only, for tests and a first look; its figures are not
meant to be quoted.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from quasiratio.errors import InputError

#: Demo name -> (module, one-line description).
DEMOS = {
    "nlo": (
        "quasiratio.demos.nlo_lo",
        "NLO FxFx Z (signed weights) over LO MLM Z: reweight LO to NLO",
    ),
    "eft": (
        "quasiratio.demos.eft",
        "SMEFT VBF Higgs: cHW = 0.2 over SM, and the signed interference term over SM",
    ),
    "scale": (
        "quasiratio.demos.scale",
        "dijet scale variation: dynamic scale sqrt(s) over the nominal weight",
    ),
    "interference": (
        "quasiratio.demos.interference",
        "signal-background interference toy: intervals on the signal strength mu",
    ),
    "gaussian-mixture": (
        "quasiratio.demos.toy",
        "2-D signed Gaussian-mixture toy with a negative target region and exact ratio",
    ),
}

#: Other accepted names for a demo.
ALIASES = {"default": "nlo"}


def demo_names() -> list[str]:
    """Return the accepted demo names, aliases included."""
    return [*ALIASES, *DEMOS]


def resolve_name(name: str) -> str:
    """Return the canonical demo name for ``name`` or an alias of it."""
    canonical = ALIASES.get(name, name)
    if canonical not in DEMOS:
        raise InputError(f"unknown demo {name!r}; choose one of {demo_names()}")
    return canonical


def run_demo(
    name: str,
    output_dir: str | os.PathLike,
    *,
    quick: bool = False,
    seed: int = 0,
    progress: bool = False,
) -> dict:
    """Run the demo ``name`` and return its figures; the report goes to ``output_dir``."""
    canonical = resolve_name(name)
    module = importlib.import_module(DEMOS[canonical][0])
    result = module.run_demo(Path(output_dir), quick=quick, seed=seed, progress=progress)
    result.setdefault("demo", canonical)
    result.setdefault("output", str(output_dir))
    return result
