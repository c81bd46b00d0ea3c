"""What is measured beside the calls: the load generator's own lag and CPU, the server's metrics."""
