"""Resources this process has used (for benchmarks and the cost lines of kernels)."""

from __future__ import annotations

import resource


def peak_rss_gib() -> float:
    """Peak resident memory of this process (GiB; Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
