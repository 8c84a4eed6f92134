"""Typed records: the only way any code reads or writes a workspace JSON file.

Each record is a dataclass with ``to_dict`` / ``from_dict``; top-level records carry
``schema_version`` and are saved atomically with ``save_json`` / read with ``from_json``.
A record of another schema version is refused with one sentence naming the fix.
"""

from qbench.records.base import SCHEMA_VERSION, Record, RecordError
from qbench.records.config import BenchOptions, DataConfig, QuantizeOptions, TrainConfig
from qbench.records.env import CpuInfo, EnvRecord, GitInfo, GpuInfo
from qbench.records.evaluation import EvaluationRecord
from qbench.records.limits import (
    BandwidthMeasurement,
    DeviceLimits,
    EnergyPoint,
    EnergyStats,
    MachineLimits,
    PeakMeasurement,
    Roofline,
    RooflinePoint,
)
from qbench.records.metrics import ClassMetrics
from qbench.records.profile import LayerProfile, LayerTime, ProfileOp
from qbench.records.result import (
    AccuracyStats,
    Agreement,
    BenchResult,
    BenchSettings,
    Efficiency,
    GpuTelemetry,
    HostLatency,
    LatencyStats,
    MemoryStats,
    ModelFacts,
)
from qbench.records.train import (
    BaselineSource,
    EpochRecord,
    LayerRow,
    ModelSummary,
    SplitMetrics,
    TrainOutcomeRecord,
    TrainRecord,
)
from qbench.records.variant import BaselineRef, CalibrationInfo, QatEpoch, QatInfo, VariantRecord

__all__ = [
    "SCHEMA_VERSION",
    "AccuracyStats",
    "Agreement",
    "BandwidthMeasurement",
    "BaselineRef",
    "BaselineSource",
    "BenchOptions",
    "BenchResult",
    "BenchSettings",
    "CalibrationInfo",
    "ClassMetrics",
    "CpuInfo",
    "DataConfig",
    "DeviceLimits",
    "Efficiency",
    "EnergyPoint",
    "EnergyStats",
    "EnvRecord",
    "EpochRecord",
    "EvaluationRecord",
    "GitInfo",
    "GpuInfo",
    "GpuTelemetry",
    "HostLatency",
    "LatencyStats",
    "LayerProfile",
    "LayerRow",
    "LayerTime",
    "MachineLimits",
    "MemoryStats",
    "ModelFacts",
    "ModelSummary",
    "PeakMeasurement",
    "ProfileOp",
    "QatEpoch",
    "QatInfo",
    "QuantizeOptions",
    "Record",
    "RecordError",
    "Roofline",
    "RooflinePoint",
    "SplitMetrics",
    "TrainConfig",
    "TrainOutcomeRecord",
    "TrainRecord",
    "VariantRecord",
]
