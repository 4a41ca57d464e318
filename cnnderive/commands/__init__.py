"""The CLI commands, one module each. Heavy imports happen inside the functions, so --help stays fast."""
