"""Small torch helpers shared by the embedders."""
from __future__ import annotations

__all__ = ["resolve_device"]


def resolve_device(device: str = "cpu") -> str:
    """``"cpu"``, ``"cuda"`` or ``"auto"`` (cuda when available) -> ``"cpu"`` or ``"cuda"``."""
    import torch

    if device not in ("cpu", "cuda", "auto"):
        raise ValueError(f'device must be "cpu", "cuda" or "auto", got {device!r}')
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' requested but torch sees no CUDA device")
    return device
