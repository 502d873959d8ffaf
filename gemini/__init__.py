"""gemini: a custom-metrics autoscaler for Kubernetes workloads and Cloud Bigtable clusters."""

__version__ = "0.1.0"
