"""Tidings: self-hosted event notifications with MNS/SMQ- and OSS-compatible APIs."""

__version__ = "0.1.0"
