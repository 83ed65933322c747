"""What every part uses and none owns: logging that never prints a secret, metrics,
/healthz's checks, work that follows an ack, validation errors in words, counted nouns. May
import: storage."""
