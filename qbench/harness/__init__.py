"""The measurement harness: latency, memory, accuracy and size, one record per variant."""
