"""The configs of each step, as records: validated on construction, saved beside their results.

The CLI takes its defaults from these dataclasses (never a second copy), the library API
accepts them, and the records of each step embed the config that produced them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from qbench.errors import QBenchError
from qbench.records.base import Record

DEFAULT_BATCH_SIZES = (1, 8, 16, 32, 64)
ENGINES = ("x86", "pt2e")  # int8-ptq / qat engines; "auto" picks the faster one here
CALIB_METHODS = ("minmax", "histogram", "percentile", "entropy")
# numpy's and scikit-learn's seeds are unsigned 32-bit numbers (torch's are wider)
MAX_SEED = 2**32 - 1


def check_device(device: str, flag: str = "--device") -> None:
    """The spelling of a device; whether this machine has it is checked where a command starts
    (qbench.preflight.require_device), not here: a record from a GPU machine reads anywhere."""
    if not re.fullmatch(r"cpu|cuda(:\d+)?", device):
        raise QBenchError(f"{flag} {device!r} is not supported; pass cpu, cuda or cuda:N.")


def check_batch_size_list(batch_sizes: list[int]) -> None:
    if not batch_sizes or any(b < 1 for b in batch_sizes):
        raise QBenchError("--batch-sizes needs positive whole numbers, e.g. 1,8,16,32,64.")


def check_seed(seed: int, flag: str = "--seed") -> None:
    if not 0 <= seed <= MAX_SEED:
        raise QBenchError(f"{flag} {seed} is out of range; pass a whole number from 0 to {MAX_SEED}.")


def check_at_least(value: float | None, low: float, flag: str, note: str = "") -> None:
    """``value`` (None: not set, allowed) must be ``low`` or more."""
    if value is not None and value < low:
        raise QBenchError(f"{flag} {value:g} is too small; pass {low:g} or more{note}.")


@dataclass(frozen=True)
class DataConfig(Record):
    name: str = "digits"
    root: Path | None = None
    image_size: int = 64
    seed: int = 42
    augment: str = "default"
    download: bool = False
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    # test-time views of val/test (and train with test-time transforms): center | ten (reference 001)
    eval_crops: str = "center"
    # folder data sets: leave out the images whose header does not decode (else they are an error)
    skip_bad_images: bool = False

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise QBenchError("--dataset is empty; pass a data set name such as digits or imagefolder.")
        if self.eval_crops not in ("center", "ten"):
            raise QBenchError(f"unknown --eval-crops {self.eval_crops!r}; pass center or ten.")
        # the model's own bounds (too small for its layers, too big for this machine's memory)
        # are checked by qbench.baselines.sizing, which knows the model
        if self.image_size < 16:
            raise QBenchError(f"--image-size {self.image_size} is too small; use 16 or more.")
        if not 0 < self.val_fraction < 0.5 or not 0 < self.test_fraction < 0.5:
            raise QBenchError("validation and test fractions must each lie between 0 and 0.5.")
        check_seed(self.seed)


@dataclass
class TrainConfig(Record):
    preset: str = "reference"
    epochs: int = 10
    batch_size: int = 64
    optimizer: str = "AdamW"
    lr_backbone: float = 1e-4
    lr_head: float = 1e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9
    label_smoothing: float = 0.1
    scheduler: str = "ReduceLROnPlateau"
    plateau_factor: float = 0.1
    plateau_patience: int = 3
    early_stopping_patience: int = 10
    seed: int = 42
    # requested with warn_only=True: an op without a deterministic kernel warns instead of failing
    deterministic: bool = True
    device: str = "cpu"
    workers: int = 0
    max_batches: int | None = None  # cap per epoch, for smoke runs
    # the resumable state (model, optimizer, ...: several times the model's size) is written after
    # an epoch once this many seconds have passed since the last write, and after the last epoch
    save_every_s: float = 60.0
    # the AlexNet paper's initialisation (N(0, 0.01) weights, biases 1 in conv2/4/5 and hidden FC)
    paper_init: bool = False

    def __post_init__(self) -> None:
        if self.paper_init and self.preset != "paper":
            raise QBenchError("--paper-init is an option of the paper preset; add --preset paper.")
        if self.epochs < 1:
            raise QBenchError("--epochs must be 1 or more.")
        if self.batch_size < 1:
            raise QBenchError("--batch-size must be 1 or more.")
        if self.save_every_s < 0:
            raise QBenchError("--save-every must not be negative (0: after every epoch).")
        if min(self.lr_backbone, self.lr_head) <= 0:
            raise QBenchError("learning rates must be positive; check --lr-backbone and --lr-head.")
        if self.optimizer not in ("AdamW", "SGD"):
            raise QBenchError(f"unknown optimizer {self.optimizer!r}; use AdamW or SGD.")
        check_at_least(self.max_batches, 1, "--max-batches", " (leave it out for whole epochs)")
        check_at_least(self.workers, 0, "--workers", " (0: load data in the training process)")
        check_at_least(self.weight_decay, 0, "--weight-decay")
        check_at_least(self.early_stopping_patience, 1, "--patience", " epochs")
        check_at_least(self.plateau_patience, 0, "the plateau patience")
        if not 0 <= self.momentum < 1:
            raise QBenchError(f"--momentum {self.momentum:g} must lie in [0, 1), e.g. 0.9.")
        if not 0 <= self.label_smoothing < 1:
            raise QBenchError(f"--label-smoothing {self.label_smoothing:g} must lie in [0, 1), e.g. 0.1.")
        if not 0 < self.plateau_factor < 1:
            raise QBenchError(f"the plateau factor {self.plateau_factor:g} must lie between 0 and 1.")
        check_seed(self.seed)
        check_device(self.device)


@dataclass
class QuantizeOptions(Record):
    calib_batches: int = 8
    calib_batch_size: int = 32
    calib_method: str = "minmax"  # minmax | histogram | percentile | entropy (where the engine has it)
    engine: str = "auto"  # int8-ptq engine: x86 (torch.ao eager) | pt2e (torchao) | auto
    qat_epochs: int = 1
    qat_max_batches: int | None = None  # cap per QAT epoch; None = the whole training split
    qat_lr: float = 1e-5
    device: str = "cpu"
    seed: int = 42
    workers: int = 0
    # the batch sizes an engine is built for (TensorRT: one optimization profile each, kernels tuned
    # for that size); qbench run passes its bench sweep
    batch_sizes: list[int] = field(default_factory=lambda: list(DEFAULT_BATCH_SIZES))

    def __post_init__(self) -> None:
        check_batch_size_list(self.batch_sizes)
        if self.calib_batches < 1:
            raise QBenchError("the calibration set is empty; pass --calib-batches 1 or more.")
        if self.calib_batch_size < 1:
            raise QBenchError("--calib-batch-size must be 1 or more.")
        # checked here, before any conversion starts, so a typo does not surface after minutes of work
        if self.engine not in (*ENGINES, "auto"):
            raise QBenchError(f"unknown --engine {self.engine!r}; pass one of: {', '.join(ENGINES)}, auto.")
        if self.calib_method not in CALIB_METHODS:
            raise QBenchError(
                f"unknown --calib-method {self.calib_method!r}; pass one of: {', '.join(CALIB_METHODS)}."
            )
        if self.qat_epochs < 1:
            raise QBenchError("--qat-epochs must be 1 or more.")
        if self.qat_lr <= 0:
            raise QBenchError(f"--qat-lr {self.qat_lr:g} must be positive, e.g. 1e-5.")
        check_at_least(self.qat_max_batches, 1, "--qat-max-batches", " (0: whole epochs)")
        check_at_least(self.workers, 0, "--workers")
        check_seed(self.seed)
        check_device(self.device)


@dataclass
class BenchOptions(Record):
    variants: list[str] | None = None  # None: every variant in the workspace
    batch_sizes: list[int] = field(default_factory=lambda: list(DEFAULT_BATCH_SIZES))
    warmup: int = 10
    warmup_s: float = 0.0
    iters: int = 100
    min_seconds: float = 0.0
    max_iters: int = 100_000
    # a time budget per batch size (trtexec's --duration idea, as an upper bound): the timed loop
    # stops early once it has run this long and has at least harness.timing.BUDGET_MIN_ITERS
    # samples; warm-up is cut to a share of it. None: the count rules alone (qbench bench's default)
    max_seconds_per_batch: float | None = None
    repeats: int = 1
    threads: int | None = None  # None: torch's default intra-op thread count, pinned and recorded
    device: str = "cpu"
    cv_threshold: float = 0.10
    isolate: bool = True
    accuracy: bool = True
    accuracy_batch_size: int = 64
    watcher_interval_ms: float = 1.0
    keep_samples: bool = True
    # per-layer profiles with the runner's own profiler, after the timed loop (harness.profile)
    profile: bool = False
    # with profile: also profile variants whose arithmetic this machine emulates (fp16 without
    # avx512_fp16...); their per-layer times show the conversions, and at seconds per call they
    # are the costliest to profile. qbench run leaves them out, qbench bench --profile keeps them
    profile_emulated: bool = True
    # GPU only: replay each batch size's call as a captured CUDA graph (torch and TensorRT runners)
    cuda_graph: bool = False
    # GPU only: TF32 tensor-core math for "fp32" matmuls and convolutions; None keeps PyTorch's
    # defaults (matmul off, cuDNN convolutions on). The effective setting is recorded either way.
    tf32: bool | None = None

    def __post_init__(self) -> None:
        if self.iters < 1:
            raise QBenchError("--iters must be 1 or more.")
        if self.warmup < 0 or self.warmup_s < 0 or self.min_seconds < 0:
            raise QBenchError("--warmup, --warmup-s and --min-seconds must not be negative.")
        if self.repeats < 1:
            raise QBenchError("--repeats must be 1 or more.")
        if self.max_seconds_per_batch is not None and self.max_seconds_per_batch <= self.min_seconds:
            raise QBenchError(
                "--max-seconds-per-batch must be above --min-seconds (0 or leave it out for no budget)."
            )
        check_batch_size_list(self.batch_sizes)
        if self.threads is not None and self.threads < 1:
            raise QBenchError("--threads must be 1 or more.")
        if self.cv_threshold <= 0:
            raise QBenchError("--cv-threshold must be positive, e.g. 0.1.")
        check_at_least(self.max_iters, 1, "the iteration cap max_iters")
        check_at_least(self.accuracy_batch_size, 1, "the accuracy batch size")
        if self.watcher_interval_ms <= 0:
            raise QBenchError("the memory watcher's interval must be positive (milliseconds).")
        check_device(self.device)
        if self.cuda_graph and not self.device.startswith("cuda"):
            raise QBenchError("--cuda-graph captures CUDA work; add --device cuda or leave it out.")
        if self.tf32 is not None and not self.device.startswith("cuda"):
            raise QBenchError("--tf32 sets GPU math; add --device cuda or leave it out.")
