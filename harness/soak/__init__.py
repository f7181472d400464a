"""The soak: long conversations and long agent loops, held to the history's limits."""
