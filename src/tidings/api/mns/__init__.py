"""The MNS/SMQ data-plane API (version 2015-06-06)."""
