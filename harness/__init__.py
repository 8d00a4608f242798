"""What tests and benchmarks both use to drive a node from outside: waiting with a deadline, free
ports, a node served in this process or in its own, and an aiortc participant. Not shipped in the
wheel; importable from the repository root, so nothing here imports tests/ or bench/."""
