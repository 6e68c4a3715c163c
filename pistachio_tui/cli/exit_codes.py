"""Exit codes shared by every headless subcommand, so scripts can branch on them."""

OK = 0
#: The work ran but ended badly: an execution error, an interrupt, a failed step.
FAILED = 1
#: The server refused the input (a prompt failing validation, a bad workflow file).
REJECTED = 2
#: The server (ComfyUI, RunPod, a download host) could not be reached.
UNREACHABLE = 3
#: The command line or the configuration is wrong.
USAGE = 64
#: A bug: an exception Pistachio did not plan for (details in the debug log).
INTERNAL = 70
#: Stopped by Ctrl-C (128 + SIGINT, as shells report it).
INTERRUPTED = 130
