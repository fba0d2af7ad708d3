"""E-mail digests: who is due (schedule), which papers and why (choose), the message (render), and the
run that queues them exactly once and hands them to the outbox (run)."""

from paperwire.digest.run import RunReport, compose_due, preview, run_digests

__all__ = ["RunReport", "compose_due", "preview", "run_digests"]
