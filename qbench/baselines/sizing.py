"""Image and batch sizes a model accepts, and that this machine's memory can hold.

``--image-size 0`` used to train silently at the default size, ``--image-size 8`` failed deep in
a convolution and ``--image-size 100000`` died trying to allocate 120 GB, after the data had
been loaded. These checks run before the data is loaded: the model is built on PyTorch's
``meta`` device (shapes without storage), so a forward pass at any size costs no memory, and
the same pass measures each layer's output. The first meta forward of a process imports part
of torch (about a second on a busy 2-core machine); each further one takes milliseconds.

- The sizes a model accepts are an interval found by bisection around the size it was designed
  for: adaptive pooling makes it open-ended for most models; a fixed head (``alexnet-paper``)
  closes it from above.
- The memory a size needs is a lower bound, so a refusal is never a guess: the FP32 input batch
  plus, for training, every layer output autograd keeps for the backward pass (in-place layers
  and views count once, the logits not at all), the weights and their gradients; for inference
  the input batch, the largest layer output and the weights. It is compared with the memory
  available now. tests/baselines/test_sizing.py checks the bound against what autograd keeps.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from qbench.errors import QBenchError

FP32_BYTES = 4
MAX_PROBE = 1 << 20  # the largest image side the bisection considers (a meta forward costs nothing)
# a training step holds the weights and their gradients at least (the optimizer's state comes on top)
TRAIN_PARAM_COPIES = 2


@dataclass(frozen=True)
class Footprint:
    """FP32 element counts of one image's forward pass, and the model's parameter count."""

    input: int
    kept: int  # every layer output (a training step keeps them for the backward pass)
    largest: int  # the largest single layer output
    params: int

    def train_bytes(self, batch: int) -> int:
        return FP32_BYTES * (batch * (self.input + self.kept) + TRAIN_PARAM_COPIES * self.params)

    def infer_bytes(self, batch: int) -> int:
        return FP32_BYTES * (batch * (self.input + self.largest) + self.params)


@cache
def _meta_model(model: str, num_classes: int):
    """``model`` on the meta device, with its parameter count; layers that keep their input's
    shape (batch norm) and the linear layers are swapped for stand-ins that only check and
    propagate shapes: the meta kernels of those two import much of torch (about a second)."""
    import torch
    from torch import nn

    from qbench.baselines.models import create_model

    class ShapeLinear(nn.Module):
        def __init__(self, linear: nn.Linear) -> None:
            super().__init__()
            self.in_features, self.out_features = linear.in_features, linear.out_features

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.shape[-1] != self.in_features:
                raise ValueError(f"expected {self.in_features} features, got {x.shape[-1]}")
            return x.new_empty((*x.shape[:-1], self.out_features))

    with torch.device("meta"):
        net = create_model(model, num_classes=num_classes).eval()
    params = sum(p.numel() for p in net.parameters())
    for name, module in list(net.named_modules()):
        if isinstance(module, (nn.Linear, nn.modules.batchnorm._BatchNorm)):
            stand_in = ShapeLinear(module) if isinstance(module, nn.Linear) else nn.Identity()
            net.set_submodule(name, stand_in)
    return net, params


def footprint(model: str, size: int, num_classes: int = 10) -> Footprint | None:
    """One image's forward pass at ``size`` x ``size``; None when the model does not accept that size."""
    import torch

    net, params = _meta_model(model, num_classes)
    outputs: list[torch.Tensor] = []

    def hook(module, args, out) -> None:
        # an in-place layer's output and a view (flatten) share the storage counted before them
        if isinstance(out, torch.Tensor) and not getattr(module, "inplace", False) and out._base is None:
            outputs.append(out)

    leaves = [m for m in net.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        with torch.no_grad():
            out = net(torch.empty(1, 3, size, size, device="meta"))
    except (RuntimeError, ValueError):  # too small for a kernel, or a head of fixed width
        return None
    finally:
        for h in handles:
            h.remove()
    sizes = [t.numel() for t in outputs if t is not out]  # the loss keeps its own tensors, not the logits
    if out.numel() == 0 or 0 in sizes:
        return None
    return Footprint(input=3 * size * size, kept=sum(sizes), largest=max(sizes, default=0), params=params)


def _accepts(model: str, size: int) -> bool:
    return footprint(model, size) is not None


@cache
def accepted_sizes(model: str) -> tuple[int, int | None]:
    """The smallest and largest image side ``model`` accepts (None: no upper limit)."""
    from qbench.baselines.models import MODELS

    design = MODELS.get(model).default_input_size
    if not _accepts(model, design):
        raise AssertionError(f"model {model} does not accept its own input size {design}")
    low, high = 1, design  # smallest accepted in (low-1, high]
    while low < high:
        mid = (low + high) // 2
        low, high = (low, mid) if _accepts(model, mid) else (mid + 1, high)
    smallest = high
    if _accepts(model, MAX_PROBE):
        return smallest, None
    low, high = design, MAX_PROBE  # largest accepted in [low, high)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if _accepts(model, mid) else (low, mid)
    return smallest, low


def available_bytes() -> int:
    import psutil

    return int(psutil.virtual_memory().available)


def _gb(n: int) -> str:
    return f"{n / 2**30:,.1f} GB"


def check_image_size(
    model: str,
    size: int,
    num_classes: int,
    train_batch: int | None,
    eval_batch: int,
    available: int | None = None,
) -> None:
    """Refuse (one sentence naming the fix) an image side ``model`` cannot take, or one whose
    training step at ``train_batch`` (None: no training) or evaluation at ``eval_batch`` needs
    more memory than is available."""
    smallest, largest = accepted_sizes(model)
    if size < smallest:
        raise QBenchError(
            f"--image-size {size} is too small for {model}: its layers need at least {smallest} px; "
            f"pass --image-size {smallest} or more."
        )
    if largest is not None and size > largest:
        raise QBenchError(
            f"--image-size {size} does not fit {model}: its fixed-size head takes {smallest} to {largest} px; "
            f"pass --image-size {largest} or less."
        )
    fp = footprint(model, size, num_classes)
    assert fp is not None
    available = available_bytes() if available is None else available

    def need(fp: Footprint) -> tuple[int, str]:
        train = fp.train_bytes(train_batch) if train_batch else 0
        infer = fp.infer_bytes(eval_batch)
        if train >= infer:
            return train, f"a training batch of {train_batch}"
        return infer, f"an evaluation batch of {eval_batch}"

    needed, what = need(fp)
    if needed <= available:
        return
    smaller_batch = " or a smaller --batch-size" if what.startswith("a training") else ""
    low, high = smallest, size  # the largest side that fits lies in [low, high)
    if need(footprint(model, low, num_classes))[0] > available:  # type: ignore[arg-type]
        raise QBenchError(
            f"{model} needs at least {_gb(needed)} for {what} at {size} px and only {_gb(available)} "
            f"of memory is available; free memory{smaller_batch}."
        )
    while high - low > 1:
        mid = (low + high) // 2
        mid_fp = footprint(model, mid, num_classes)
        low, high = (mid, high) if mid_fp is not None and need(mid_fp)[0] <= available else (low, mid)
    raise QBenchError(
        f"--image-size {size} needs at least {_gb(needed)} for {what} of {model} and only "
        f"{_gb(available)} of memory is available; pass --image-size {low} or less{smaller_batch}."
    )


def check_batch_sizes(
    model: str,
    size: int,
    num_classes: int,
    batch_sizes: list[int],
    available: int | None = None,
    flag: str = "--batch-sizes",
) -> None:
    """Refuse batch sizes (of ``flag``) whose FP32 input batch, largest layer output and weights
    alone exceed the memory available (every runner is fed FP32 images)."""
    fp = footprint(model, size, num_classes)
    if fp is None:
        return  # the baseline's own size: its checks happened when it was made
    available = available_bytes() if available is None else available
    too_big = [b for b in batch_sizes if fp.infer_bytes(b) > available]
    if not too_big:
        return
    per_image = FP32_BYTES * (fp.input + fp.largest)
    fits = max(1, (available - FP32_BYTES * fp.params) // per_image)
    raise QBenchError(
        f"{flag} {too_big[0]} needs at least {_gb(fp.infer_bytes(too_big[0]))} for one batch of "
        f"{model} at {size} px and only {_gb(available)} of memory is available; keep {flag} at {fits} or less."
    )
