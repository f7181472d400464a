"""The command-line client's commands and output rendering."""
