"""Tools around the data plane: the demo, the benchmarks, PMD discovery, and the sample sled they share."""
