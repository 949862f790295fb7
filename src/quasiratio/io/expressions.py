"""Branch references and weight products, parsed without evaluating any code.

A reference is a branch name, optionally with a non-negative integer index
into a jagged branch (``MET_pt``, ``Jet_pt[0]``). A weight is a product of
references and number literals joined by ``*``, such as
``genWeight * LHEScaleWeight[8]``; any other operator is rejected.
"""

from __future__ import annotations

import re

from quasiratio.errors import InputError

_FACTOR = re.compile(r"^([A-Za-z_][A-Za-z0-9_.]*)(?:\[\s*([0-9]+)\s*\])?$")
_NUMBER = re.compile(r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$")


def parse_column(text: str) -> tuple[str, int | None]:
    """Split ``"Jet_pt[0]"`` into ``("Jet_pt", 0)`` and ``"MET_pt"`` into ``("MET_pt", None)``."""
    match = _FACTOR.match(text.strip())
    if not match:
        raise InputError(
            f"invalid branch reference {text!r}; write a branch name, optionally with "
            "an index such as Jet_pt[0]"
        )
    index = match.group(2)
    return match.group(1), None if index is None else int(index)


def parse_weight(expression: str) -> list[tuple[str, int | None] | float]:
    """Parse a product such as ``"genWeight * LHEScaleWeight[8]"`` into factors."""
    factors: list[tuple[str, int | None] | float] = []
    for part in str(expression).split("*"):
        part = part.strip()
        if _NUMBER.match(part):
            factors.append(float(part))
        elif _FACTOR.match(part):
            factors.append(parse_column(part))
        else:
            raise InputError(
                f"invalid weight expression {expression!r}: {part!r} is not a branch, an "
                "indexed branch or a number; write a product such as "
                "'genWeight * LHEScaleWeight[8]'"
            )
    return factors
