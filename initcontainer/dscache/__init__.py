"""dscache: versioned dataset cache for Kubernetes training jobs (data plane library and CLI)."""

__version__ = "0.1.0"
