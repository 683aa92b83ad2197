"""Benchmarks a person runs by hand (``make bench``). They print figures and never assert on time."""
