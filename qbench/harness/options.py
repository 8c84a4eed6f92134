"""Settings of one ``qbench bench`` run; passed to worker processes as JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from qbench.errors import QBenchError

DEFAULT_BATCH_SIZES = (1, 8, 16, 32, 64)


@dataclass
class BenchOptions:
    variants: list[str] | None = None  # None: every variant in the workspace
    batch_sizes: list[int] = field(default_factory=lambda: list(DEFAULT_BATCH_SIZES))
    warmup: int = 10
    warmup_s: float = 0.0
    iters: int = 100
    min_seconds: float = 0.0
    max_iters: int = 100_000
    repeats: int = 1
    threads: int | None = None  # None: torch's default intra-op thread count, pinned and recorded
    device: str = "cpu"
    cv_threshold: float = 0.10
    isolate: bool = True
    accuracy: bool = True
    accuracy_batch_size: int = 64
    watcher_interval_ms: float = 1.0
    keep_samples: bool = True

    def __post_init__(self) -> None:
        if self.iters < 1:
            raise QBenchError("--iters must be 1 or more.")
        if self.warmup < 0 or self.warmup_s < 0 or self.min_seconds < 0:
            raise QBenchError("--warmup, --warmup-s and --min-seconds must not be negative.")
        if self.repeats < 1:
            raise QBenchError("--repeats must be 1 or more.")
        if not self.batch_sizes or any(b < 1 for b in self.batch_sizes):
            raise QBenchError("--batch-sizes needs positive whole numbers, e.g. 1,8,16,32,64.")
        if self.threads is not None and self.threads < 1:
            raise QBenchError("--threads must be 1 or more.")
        if self.cv_threshold <= 0:
            raise QBenchError("--cv-threshold must be positive, e.g. 0.1.")
        if self.device not in ("cpu", "cuda") and not self.device.startswith("cuda:"):
            raise QBenchError(f"--device {self.device!r} is not supported; pass cpu or cuda.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchOptions:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
