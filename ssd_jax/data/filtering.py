"""Which sampled completions SSD trains on (the paper keeps the raw samples behind a minimal filter).

Rules, selected by `config.data.filter`:
  minimal           drop empty responses and single-line stubs (the paper's rule);
  shortest_percent  `minimal`, then also drop the shortest P % of what is left, by characters
                    (the released data script's variant);
  none              keep everything (the paper's stress test).

Independently, `config.data.truncated` decides what happens to a sample that hit its token
budget (finish reason `length`): `drop` (the default) removes it before the rule above, and
counts it as `truncated`; `keep` trains on it as if it had ended there. Dropping matters most
for thinking models: a cut-off thinking trace rendered through Qwen3-Thinking-2507's chat
template becomes an empty closed thinking block followed by the unfinished reasoning, which
teaches the model to close its thinking at once.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

FILTER_RULES = ("minimal", "shortest_percent", "none")
TRUNCATED_POLICIES = ("drop", "keep")


@dataclasses.dataclass(frozen=True)
class FilterResult:
    """The indices of the kept completions and, per reason, how many were dropped."""

    kept: list[int]
    dropped: dict[str, int]

    @property
    def total(self) -> int:
        return len(self.kept) + sum(self.dropped.values())


def stub_reason(completion: str) -> str | None:
    """Why `minimal` drops a completion (`empty`, `single_line`), or None to keep it."""
    lines = [line for line in completion.splitlines() if line.strip()]
    if not lines:
        return "empty"
    if len(lines) == 1:
        return "single_line"
    return None


def filter_completions(
    completions: Sequence[str],
    rule: str,
    shortest_percent: float = 10.0,
    *,
    finish_reasons: Sequence[str] | None = None,
    truncated: str = "keep",
) -> FilterResult:
    """Applies `truncated` (with each completion's finish reason), then `rule` to the
    completions (in order); ties in length keep the earlier ones."""
    if rule not in FILTER_RULES:
        raise ValueError(f"config.data.filter={rule!r}: choose one of {FILTER_RULES}")
    if truncated not in TRUNCATED_POLICIES:
        raise ValueError(f"config.data.truncated={truncated!r}: choose one of {TRUNCATED_POLICIES}")
    dropped: dict[str, int] = {}
    candidates = list(range(len(completions)))
    if truncated == "drop":
        if finish_reasons is None or len(finish_reasons) != len(completions):
            raise ValueError("config.data.truncated='drop' needs each completion's finish reason")
        candidates = [i for i in candidates if finish_reasons[i] != "length"]
        dropped["truncated"] = len(completions) - len(candidates)
    if rule == "none":
        return FilterResult(candidates, dropped)
    dropped.update(empty=0, single_line=0)
    kept = []
    for index in candidates:
        reason = stub_reason(completions[index])
        if reason is None:
            kept.append(index)
        else:
            dropped[reason] += 1
    if rule == "shortest_percent":
        if not 0.0 <= shortest_percent < 100.0:
            raise ValueError(f"config.data.shortest_percent={shortest_percent}: give a percentage in [0, 100)")
        n_short = math.floor(len(kept) * shortest_percent / 100.0)
        shortest = set(sorted(kept, key=lambda i: (len(completions[i]), i))[:n_short])
        kept = [i for i in kept if i not in shortest]
        dropped["shortest_percent"] = n_short
    return FilterResult(kept, dropped)
