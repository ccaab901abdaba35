"""Sector credit evaluation service: transparent, point-based credit grades over gRPC."""
