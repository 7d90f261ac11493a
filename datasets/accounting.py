"""Record accounting: every record of every file ends up read, skipped or failed, with a reason.

*skipped*: the record was parsed but rejected by a rule (NaN energy, unknown element, no atoms...).
*failed*: the record (or the rest of a file) could not be parsed at all (corrupt bytes, truncated file,
undecodable LMDB value). A truncated container counts one failed record for the unread remainder, since
its true size cannot be known.
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

__all__ = ["RecordIssue", "Accounting"]

log = logging.getLogger("monoculture.datasets")

#: How many example issues are kept per reason (the counts are always exact).
MAX_EXAMPLES_PER_REASON = 5


@dataclass(frozen=True)
class RecordIssue:
    """One skipped or failed record: where it was and why."""

    file: str
    key: str
    reason: str
    detail: str = ""

    def __str__(self) -> str:
        detail = " ".join(self.detail.split())  # one line, whatever the parser's message holds
        extra = f" ({detail})" if detail else ""
        return f"{self.file}: record {self.key}: {self.reason}{extra}"


@dataclass
class Accounting:
    """Counts of read / skipped / failed records, mergeable across files and workers."""

    read: int = 0
    skipped: int = 0
    failed: int = 0
    skipped_reasons: Counter = field(default_factory=Counter)
    failed_reasons: Counter = field(default_factory=Counter)
    examples: list[RecordIssue] = field(default_factory=list)
    quiet: bool = False
    #: Issues already printed, shared by the passes of one dataset so that each is printed once (not merged).
    logged: set | None = field(default=None, repr=False, compare=False)

    def _keep(self, issue: RecordIssue, reasons: Counter) -> None:
        if not self.quiet and reasons[issue.reason] <= MAX_EXAMPLES_PER_REASON:
            if self.logged is None or issue not in self.logged:
                log.warning("%s", issue)
                if self.logged is not None:
                    self.logged.add(issue)
        self.examples = _canonical_examples(self.examples + [issue])

    def add_read(self, n: int = 1) -> None:
        self.read += n

    def skip(self, file: str, key: str, reason: str, detail: str = "") -> None:
        """Count a record rejected by a rule."""
        self.skipped += 1
        self.skipped_reasons[reason] += 1
        self._keep(RecordIssue(str(file), str(key), reason, detail), self.skipped_reasons)

    def fail(self, file: str, key: str, reason: str, detail: str = "") -> None:
        """Count a record that could not be parsed."""
        self.failed += 1
        self.failed_reasons[reason] += 1
        self._keep(RecordIssue(str(file), str(key), reason, detail), self.failed_reasons)

    @property
    def total(self) -> int:
        return self.read + self.skipped + self.failed

    def merge(self, other: "Accounting") -> "Accounting":
        """Combined accounting of ``self`` and ``other`` (a new object)."""
        out = Accounting(
            read=self.read + other.read,
            skipped=self.skipped + other.skipped,
            failed=self.failed + other.failed,
            skipped_reasons=self.skipped_reasons + other.skipped_reasons,
            failed_reasons=self.failed_reasons + other.failed_reasons,
            quiet=self.quiet,
        )
        out.examples = _canonical_examples(self.examples + other.examples)
        return out

    def to_dict(self) -> dict:
        """The ``records`` block of the JSON document (keys sorted for stable output)."""
        return {
            "read": self.read,
            "skipped": self.skipped,
            "failed": self.failed,
            "skipped_reasons": dict(sorted(self.skipped_reasons.items())),
            "failed_reasons": dict(sorted(self.failed_reasons.items())),
            "examples": [
                {"file": e.file, "key": e.key, "reason": e.reason, "detail": e.detail}
                for e in self.examples
            ],
        }


def _canonical_examples(issues: list[RecordIssue]) -> list[RecordIssue]:
    """The examples kept: per reason, the MAX_EXAMPLES_PER_REASON smallest by (file, key).

    A canonical choice, so that accounting merged from shards (Dask workers) equals one serial pass.
    """
    by_reason: dict[str, list[RecordIssue]] = {}
    for issue in issues:
        by_reason.setdefault(issue.reason, []).append(issue)
    out = []
    for reason in sorted(by_reason):
        uniq = {(i.file, i.key): i for i in by_reason[reason]}
        out.extend(uniq[k] for k in sorted(uniq)[:MAX_EXAMPLES_PER_REASON])
    return out
