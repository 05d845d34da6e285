"""What a benchmark returns, and the table (text or Markdown) and JSON made of it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.stats import median


@dataclass(frozen=True, kw_only=True)
class Figure:
    """One line of the table: a median over repetitions (or one counted value).

    Attributes:
        samples: One value per repetition; ``value`` is their median.
        note: What the figure is compared with, or how it was obtained.
    """

    label: str
    value: float | None
    unit: str
    samples: list[float] = field(default_factory=list)
    note: str = ""

    @classmethod
    def of(cls, label: str, samples: list[float], unit: str, note: str = "") -> Figure:
        return cls(label=label, value=median(samples), unit=unit, samples=samples, note=note)

    @classmethod
    def count(cls, label: str, value: float, unit: str, note: str = "") -> Figure:
        return cls(label=label, value=value, unit=unit, note=note)


@dataclass(kw_only=True)
class Result:
    """A benchmark's figures, or why it was skipped."""

    benchmark: str
    figures: list[Figure] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None
    seconds: float = 0.0


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    magnitude = abs(value)
    if magnitude >= 100 or value == int(value):
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 0.1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _spread(figure: Figure) -> str:
    if len(figure.samples) < 2:
        return ""
    return f"{_number(min(figure.samples))}-{_number(max(figure.samples))}"


HEADER = ("benchmark", "figure", "median", "unit", "min-max", "n", "note")


def rows(results: list[Result]) -> list[tuple[str, ...]]:
    lines: list[tuple[str, ...]] = []
    for result in results:
        if result.skipped is not None:
            lines.append((result.benchmark, "skipped", "-", "", "", "", result.skipped))
            continue
        for figure in result.figures:
            lines.append(
                (
                    result.benchmark,
                    figure.label,
                    _number(figure.value),
                    figure.unit,
                    _spread(figure),
                    str(len(figure.samples)) if figure.samples else "",
                    figure.note,
                )
            )
    return lines


def text_table(results: list[Result]) -> str:
    lines = [HEADER, *rows(results)]
    widths = [max(len(line[column]) for line in lines) for column in range(len(HEADER))]
    aligned = []
    for line in lines:
        cells = [
            cell.rjust(widths[column]) if column in (2, 4, 5) else cell.ljust(widths[column])
            for column, cell in enumerate(line)
        ]
        aligned.append("  ".join(cells).rstrip())
    aligned.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(aligned)


def markdown_table(results: list[Result]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = [
        "| " + " | ".join(HEADER) + " |",
        "|" + "|".join(["---", "---", "---:", "---", "---:", "---:", "---"]) + "|",
    ]
    lines.extend("| " + " | ".join(cell(c) for c in line) + " |" for line in rows(results))
    return "\n".join(lines)


def write_json(path: Path, metadata: dict[str, Any], results: list[Result]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {**metadata, "results": [asdict(result) for result in results]}
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
