"""gRPC front doors of the network: thin shells over `authnet.network.Network`."""
