# How long a test waits for something it expects before it calls it missing. A bound on a
# failure only: a passing test waits for the event itself, however soon it comes, so this
# is generous enough for a loaded two-core machine running the suite beside other work.
DEADLINE = 30.0
