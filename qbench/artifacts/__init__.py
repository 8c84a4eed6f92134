"""Artifact formats: one save/load pair per format, keyed by ``VariantRecord.format``.

Exporters write through these modules and runners read through them, so neither imports the
other. A new format is one module here (discovered on the first lookup) that calls
:func:`register_format`; a third-party package registers one through the ``qbench.artifacts``
entry point group.
"""

from qbench.artifacts.base import (
    ARTIFACT_FORMATS,
    ArtifactFormat,
    corrupt_artifact,
    load_artifact,
    register_format,
    require_artifact,
)

__all__ = [
    "ARTIFACT_FORMATS",
    "ArtifactFormat",
    "corrupt_artifact",
    "load_artifact",
    "register_format",
    "require_artifact",
]
