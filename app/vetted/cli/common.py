"""What every `vetted` command shares: exit codes."""

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_PIPE = 0, 1, 2, 141
