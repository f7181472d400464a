"""The LLM gateway: every model call of every workflow goes through its activity."""
