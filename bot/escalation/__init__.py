"""Escalations: an answer's 👎 and 🚩 brought, as one message per answer, to the triage
channel its channel names (/feedback escalate), kept up to date as votes and explanations
come, with a "Resolved" button. Sent through the outbox like a verdict (storage's
escalations aggregate queues them; the worker sends them with `SlackEscalations`). May
import: bot.domain, bot.support, bot.slack, bot.providers and storage."""
