"""Exit codes of the surge CLI (documented in docs/cli.md)."""

OK = 0  # run completed and every threshold passed
RUN_ERROR = 1  # the run could not be carried out, or no request could be made
USAGE = 2  # bad flag, option, threshold, stages or scenario file
THRESHOLD_FAILED = 3  # the run completed (or was aborted) and a threshold failed
REGRESSED = 4  # surge gate: a metric regressed against the baseline
INTERRUPTED = 130  # stopped with Ctrl-C; the summary was still written
