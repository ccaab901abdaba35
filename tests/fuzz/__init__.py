"""Fuzzing the service: hypothesis strategies for every request (`strategies`), a driver that
runs them against a real server process and tallies the codes (`runner`), and `make fuzz`
(`python -m fuzz`, from tests/)."""
