"""Many nodes as one: a registry of live nodes, one placement per room, failover and drain, kept
in NATS JetStream key-value buckets (compare-and-set writes, watches), with no coordinator of
our own. Only a node with ``VDX_NATS_URL`` joins a cluster; alone, ``routing.LocalOnly`` holds."""
