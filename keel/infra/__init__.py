"""Process glue for the entry points: settings, logging, connections, binaries."""
