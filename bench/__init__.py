"""The benchmarks, each a module run from the repository root as ``python -m bench.<name>``
(``make bench`` runs them all through ``bench.run_all``); their figures live in BENCHMARKS.md."""
