"""Benchmarks (run as scripts: ``python bench/ivr.py``); a package so the unit tests
can import the pure parts (``bench.measure``, ``bench.odbc_twin``)."""
