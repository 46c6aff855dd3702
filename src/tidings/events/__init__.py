"""Event documents sent to subscribers: the MNS topic notification formats."""
