"""The artifact format registry and the errors every loader shares.

A format pairs ``save(path, obj, ...)`` (its arguments are the format's own: a module, a
program, an ONNX model, engine bytes) with ``load(path, variant, device=, threads=)``, which
returns what the runner executes (an ``nn.Module``, an ``InferenceSession``, an engine).
``compiled`` says the runner should wrap the loaded module in ``torch.compile``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qbench.errors import QBenchError
from qbench.registry import Registry

if TYPE_CHECKING:
    from qbench.records import VariantRecord

Loader = Callable[..., Any]  # (path, variant, *, device="cpu", threads=None) -> loaded artifact


@dataclass(frozen=True)
class ArtifactFormat:
    name: str
    save: Callable[..., Any]
    load: Loader
    description: str
    compiled: bool = False


ARTIFACT_FORMATS: Registry[ArtifactFormat] = Registry(
    "artifact format", package="qbench.artifacts", entry_point_group="qbench.artifacts"
)


def register_format(
    name: str, *, save: Callable[..., Any], load: Loader, description: str, compiled: bool = False
) -> ArtifactFormat:
    fmt = ArtifactFormat(name, save, load, description, compiled)
    ARTIFACT_FORMATS.register(name)(fmt)
    return fmt


def load_artifact(variant: VariantRecord, variant_dir: Path, device: str = "cpu", threads: int | None = None):
    """Load ``variant``'s artifact with its format's loader."""
    if not variant.artifact or not variant.format:
        raise QBenchError(
            f"variant {variant.mode!r} records no artifact; rerun 'qbench quantize --mode {variant.mode}'."
        )
    fmt = ARTIFACT_FORMATS.get(variant.format)
    return fmt.load(Path(variant_dir) / variant.artifact, variant, device=device, threads=threads)


def require_artifact(path: Path, mode: str, what: str = "artifact") -> None:
    if not Path(path).is_file():
        raise QBenchError(f"{what} {path} does not exist; rerun 'qbench quantize --mode {mode}'.")


def corrupt_artifact(path: Path, mode: str, exc: BaseException, what: str = "artifact") -> QBenchError:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
    return QBenchError(
        f"{what} {path} cannot be loaded ({first}); it is corrupt or truncated: "
        f"rerun 'qbench quantize --mode {mode}'."
    )
