"""What tests and benchmarks both use to drive a node from outside: waiting with a deadline, free
ports, a node served in this process or in its own, an aiortc participant, a throwaway
nats-server and a cluster of an API and nodes on it. Not shipped in the
wheel; importable from the repository root, so nothing here imports tests/ or bench/."""
