"""Flow definitions as data: nodes, edges and their policies.

Pure code with no I/O, so both workflow code and the CLI import it.
"""
