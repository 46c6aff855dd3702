"""The `mns-open` (2022-01-19) control-plane OpenAPI, served on the MNS listener."""
