"""Energy meters: RAPL (CPU package), NVML (NVIDIA board) and an honest estimate."""

from .reading import Reading

__all__ = ["Reading"]
